//! The tutoring scheduling server: tutors publish weekly hours in their own time zone, students
//! book paid sessions live. See `SPEC.md` for the contract and `README.md` for running it.

pub mod auth;
pub mod configuration;
pub mod domain;
pub mod error;
pub mod payments;
pub mod realtime;
pub mod routes;
pub mod scheduling;
pub mod startup;
pub mod store;
pub mod telemetry;
