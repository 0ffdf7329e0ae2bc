//! What a tutor's actor publishes for requests that only read its schedule.
//!
//! The actor still owns the schedule and is the only one to change it. After every change, and
//! before it answers anyone about that change, it publishes an immutable [`TutorView`]: activity,
//! rules, busy time (reservations included) and the slot lists it keeps. Request handlers read
//! the latest view on their own thread instead of waiting their turn in the actor's mailbox:
//!
//! - a slot query for a kept list is answered from the view;
//! - a booking the view already refuses (taken, outside availability, too soon, …) is refused
//!   without a message to the actor. A booking the view accepts still goes to the actor, which
//!   checks it against its own state and reserves it; only the actor ever says yes.
//!
//! A view is never newer than the actor's state, and a request that reads it is ordered as if it
//! had reached the actor when the view was published. A refusal from a view the actor has since
//! replaced is one the actor would have given at that instant; the same holds when several
//! server processes share the database, where the actor itself may lag another process.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::messages::{ScheduleError, SlotList, SlotsAnswer};
use crate::domain::availability::AvailabilityRules;
use crate::domain::slots::{self, Interval, StartBounds};

/// A slot query's range and duration.
pub type SlotQuery = (DateTime<Utc>, DateTime<Utc>, u32);

/// A tutor's schedule as of one change.
#[derive(Debug)]
pub struct TutorView {
    pub active: bool,
    pub rules: Arc<AvailabilityRules>,
    /// Active sessions and reservations, sorted by start.
    pub busy: Arc<[Interval]>,
    /// Slot lists the actor keeps, most recently used first.
    pub slot_lists: Vec<(SlotQuery, Arc<SlotList>)>,
}

impl TutorView {
    /// Refuses a booking this view shows cannot be made; `Ok` means only that the actor must
    /// decide. Only a booking that comes near busy time is checked in full here: the others
    /// are checked by the actor anyway, and most of them are accepted.
    pub fn precheck(
        &self,
        start: DateTime<Utc>,
        minutes: u32,
        now: DateTime<Utc>,
    ) -> Result<(), ScheduleError> {
        if !self.active {
            return Err(ScheduleError::TutorNotFound);
        }
        let (rules, busy) = (&*self.rules, &*self.busy);
        if !slots::near_busy(rules, busy, start, minutes) {
            return Ok(());
        }
        guarded(|| slots::check_start(rules, busy, now, start, minutes))?
            .map(drop)
            .map_err(ScheduleError::Refused)
    }

    /// The answer to a slot query whose list is kept; `None` when only the actor can answer.
    pub fn kept_slots(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        minutes: Option<u32>,
        now: DateTime<Utc>,
    ) -> Option<Result<SlotsAnswer, ScheduleError>> {
        if !self.active {
            return Some(Err(ScheduleError::TutorNotFound));
        }
        let query = (
            from,
            to,
            minutes.unwrap_or(self.rules.min_duration_minutes()),
        );
        let (_, list) = self.slot_lists.iter().find(|(kept, _)| *kept == query)?;
        Some(Ok(SlotsAnswer {
            list: Arc::clone(list),
            bounds: StartBounds::at(&self.rules, now),
        }))
    }
}

/// Where an actor publishes its view, shared with the registry. Readers also leave the time of
/// their last read here, so an actor whose reads all come from its view is not taken for idle.
#[derive(Debug)]
pub struct ViewCell {
    view: RwLock<Arc<TutorView>>,
    /// Milliseconds after `epoch` of the last read, updated at most every 100 ms.
    last_read_ms: AtomicU64,
    epoch: Instant,
}

/// Reads closer together than this leave the recorded time alone (no write on the hot path).
const READ_STAMP_GRANULARITY_MS: u64 = 100;

impl ViewCell {
    pub fn new(view: TutorView) -> Self {
        Self {
            view: RwLock::new(Arc::new(view)),
            last_read_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// The latest view, noting the read.
    pub fn read(&self) -> Arc<TutorView> {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        if now_ms.saturating_sub(self.last_read_ms.load(Ordering::Relaxed))
            >= READ_STAMP_GRANULARITY_MS
        {
            self.last_read_ms.store(now_ms, Ordering::Relaxed);
        }
        Arc::clone(&self.view.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the view (the actor, after a change).
    pub fn publish(&self, view: TutorView) {
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
    }

    /// When the view was last read.
    pub fn last_read(&self) -> Instant {
        self.epoch + std::time::Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed))
    }
}

/// Runs pure domain code; a panic in it (a bug) fails this request and is logged, instead of
/// taking down the thread and every tutor on it.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ScheduleError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        tracing::error!("the scheduling rules panicked");
        ScheduleError::Internal("the scheduling rules failed".to_owned())
    })
}
