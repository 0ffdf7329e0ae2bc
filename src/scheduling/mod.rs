//! The scheduling engine: one actor per tutor owns that tutor's availability and busy time and
//! serializes every change to it; a registry activates and supervises the actors; a persister
//! writes bookings to PostgreSQL with group commit.

pub mod messages;
mod persister;
mod registry;
mod tutor;
pub mod view;

pub use messages::{
    ApplyEvent, Book, Cancel, Changed, QuerySlots, Refresh, ReplaceRules, Reschedule,
    ScheduleError, SlotList, SlotsAnswer, Snapshot, SnapshotAnswer,
};
pub use persister::Persister;
pub use registry::Registry;
pub use tutor::TutorActor;
