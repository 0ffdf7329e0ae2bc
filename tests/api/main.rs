//! The API test suite: one binary, one module per resource. Every test talks to a real server on
//! port 0 backed by its own fresh PostgreSQL database.

mod actors;
mod auth;
mod concurrency;
mod errors;
mod health;
mod helpers;
mod live;
mod nodes;
mod payment_recovery;
mod payments;
mod resilience;
mod reviews;
mod sessions;
mod shutdown;
mod stripe;
mod students;
mod teachers;
mod tutors;
mod users;
mod webhooks;
