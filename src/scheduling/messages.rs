//! What REST handlers (and the registry) can ask of a tutor's actor.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use actix::Message;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::availability::AvailabilityRules;
use crate::domain::slots::{Refusal, Slot, StartBounds};
use crate::domain::{Note, TimeZone};
use crate::store::sessions::SessionRecord;

/// Why the scheduler refused or failed a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScheduleError {
    /// The start or duration is not bookable.
    #[error("{0}")]
    Refused(Refusal),
    /// The student has another active session overlapping the requested time.
    #[error("the student already has a session then")]
    StudentBusy,
    /// No active tutor has this id.
    #[error("no active tutor has this id")]
    TutorNotFound,
    /// The student's account is deactivated.
    #[error("the student's account is not active")]
    StudentInactive,
    /// The session is no longer scheduled (cancelled or completed meanwhile).
    #[error("the session is no longer scheduled")]
    NotScheduled,
    /// The database cannot be reached; nothing was written.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else; nothing was written.
    #[error("{0}")]
    Internal(String),
}

/// Book `[start, start + duration)` for a student.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionRecord, ScheduleError>")]
pub struct Book {
    /// Chosen by the caller, so an `Idempotency-Key` retry can find what a first attempt made.
    pub session_id: Uuid,
    pub student_id: Uuid,
    pub start: DateTime<Utc>,
    pub duration_minutes: u32,
    /// When the caller stops waiting; a booking that could commit later is not written.
    pub deadline: Option<std::time::Instant>,
}

/// The bookable starts in `[from, to)` for a duration, from memory.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SlotsAnswer, ScheduleError>")]
pub struct QuerySlots {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `None`: the tutor's shortest bookable duration.
    pub duration_minutes: Option<u32>,
}

/// The answer to a [`QuerySlots`]: the slots of the range at any time, shared with every
/// request that asks the same until the tutor's schedule changes, and the bounds that cut out
/// the ones bookable now.
#[derive(Debug, Clone)]
pub struct SlotsAnswer {
    pub list: Arc<SlotList>,
    pub bounds: StartBounds,
}

impl SlotsAnswer {
    /// Where the slots bookable now lie in `list.slots`.
    pub fn bookable_range(&self) -> Range<usize> {
        let slots = &self.list.slots;
        let first = slots.partition_point(|slot| slot.start < self.bounds.earliest);
        let end = slots.partition_point(|slot| slot.start <= self.bounds.latest);
        first..end.max(first)
    }

    /// The slots bookable now, ascending.
    pub fn bookable(&self) -> &[Slot] {
        self.list
            .slots
            .get(self.bookable_range())
            .unwrap_or_default()
    }
}

/// Every slot of one range and duration that the rules and busy time allow, whatever the time
/// (see [`crate::domain::slots::bookable_slots_within`]).
#[derive(Debug)]
pub struct SlotList {
    /// Ascending by start.
    pub slots: Vec<Slot>,
    /// The tutor's zone, for local times.
    pub timezone: TimeZone,
    /// Each slot as the HTTP layer writes it, rendered by the first request that needs it and
    /// kept as long as the list.
    pub rendered: OnceLock<Vec<Box<str>>>,
}

/// Cancel a scheduled session of this tutor; its time is free again at once.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionRecord, ScheduleError>")]
pub struct Cancel {
    pub session_id: Uuid,
    pub reason: Option<Note>,
}

/// Move a scheduled session; the old time is kept when the new one is refused.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionRecord, ScheduleError>")]
pub struct Reschedule {
    pub session_id: Uuid,
    pub start: DateTime<Utc>,
    pub duration_minutes: u32,
}

/// Replace the tutor's availability rules (and so its time zone).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<AvailabilityRules, ScheduleError>")]
pub struct ReplaceRules {
    pub rules: AvailabilityRules,
}

/// Reload everything from the database: the tutor changed elsewhere (profile, deactivation,
/// a session cancelled by a deactivated student, another server process).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Refresh;

/// Something changed in the database outside the actor, already committed: bring memory in
/// line before the caller answers its client.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum Changed {
    /// The tutor was deactivated.
    Deactivated,
    /// The tutor's profile time zone, which its rules share, changed as event `seq`.
    Timezone {
        zone: crate::domain::TimeZone,
        seq: i64,
    },
    /// These sessions were cancelled (a participant was deactivated).
    Released(Vec<Uuid>),
}

/// A committed change to the tutor's schedule, as PostgreSQL announced it (from any process).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ApplyEvent(pub crate::realtime::events::TutorEvent);

/// The free time in `[from, to)` and the event number it reflects, for a live subscriber.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SnapshotAnswer, ScheduleError>")]
pub struct Snapshot {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Free intervals as of event `seq`.
#[derive(Debug, Clone)]
pub struct SnapshotAnswer {
    pub seq: i64,
    pub free: Vec<crate::domain::slots::Interval>,
}
