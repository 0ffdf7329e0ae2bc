//! Live updates over WebSocket: clients subscribe to tutors and see slots disappear and reappear
//! as bookings commit, and participants see their sessions change.
//!
//! Every process listens to PostgreSQL (`LISTEN tutoring_events`); each change to a tutor's
//! schedule is announced there at commit, numbered in the tutor's sequence. The listener hands
//! each announcement to the tutor's actor, which publishes it to the [`Hub`] in sequence order;
//! the hub fans it out to this process's connections.

mod connection;
pub mod events;
mod forward;
mod hub;
mod listener;

pub use connection::configure;
pub use hub::{Hub, OpenConnection, TutorFeed};
pub use listener::spawn_listener;
