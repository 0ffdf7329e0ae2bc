//! The actor that owns one tutor's schedule: its rules and its busy time, in memory.
//!
//! Every change to a tutor's schedule passes through its actor, one message at a time, so two
//! bookings of one tutor are never checked against the same picture of its time. Conflicts are
//! refused from memory. The actor never holds its mailbox across a database round trip: a booking
//! in flight is a *reservation* that blocks its interval until the commit answers, and then
//! becomes busy time or disappears. The database's exclusion constraints stay the last word: when
//! they refuse what the actor accepted (another server process booked it), the actor reloads.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use super::messages::{
    Book, Cancel, Changed, QuerySlots, Refresh, ReplaceRules, Reschedule, ScheduleError,
    SlotsAnswer,
};
use super::persister::{PersistError, Persister};
use super::registry::Registry;
use crate::domain::availability::AvailabilityRules;
use crate::domain::slots::{self, Interval, Refusal};
use crate::store::availability::{self, BUSY_LOOKBACK, TutorSchedule};
use crate::store::sessions::{self, InsertRefusal, NewSession, RescheduleRefusal, SessionRecord};

/// An actor unused for this long stops, freeing its memory; the next request reloads it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// One tutor's schedule.
pub struct TutorActor {
    tutor_id: Uuid,
    active: bool,
    rules: AvailabilityRules,
    /// Active sessions by id.
    sessions: HashMap<Uuid, Interval>,
    /// Bookings and reschedules in flight, by reservation number.
    reservations: HashMap<u64, Interval>,
    next_reservation: u64,
    /// Busy time sorted by start, rebuilt lazily after a change.
    busy_cache: Option<Vec<Interval>>,
    /// Local changes made while a reload is in flight, replayed over what it loads.
    reload: Option<Vec<LocalChange>>,
    /// A refresh was asked for while a reload was in flight: reload again after it.
    reload_again: bool,
    last_used: Instant,
    pool: PgPool,
    persister: Persister,
    registry: Registry,
}

#[derive(Debug, Clone, Copy)]
enum LocalChange {
    Added(Uuid, Interval),
    Removed(Uuid),
}

impl TutorActor {
    pub fn new(
        tutor_id: Uuid,
        schedule: TutorSchedule,
        pool: PgPool,
        persister: Persister,
        registry: Registry,
    ) -> Self {
        let mut actor = Self {
            tutor_id,
            active: schedule.active,
            rules: schedule.rules,
            sessions: HashMap::new(),
            reservations: HashMap::new(),
            next_reservation: 0,
            busy_cache: None,
            reload: None,
            reload_again: false,
            last_used: Instant::now(),
            pool,
            persister,
            registry,
        };
        actor.replace_sessions(schedule.busy);
        actor
    }

    fn replace_sessions(
        &mut self,
        busy: Vec<(Uuid, chrono::DateTime<Utc>, chrono::DateTime<Utc>)>,
    ) {
        self.sessions = busy
            .into_iter()
            .map(|(id, start, end)| (id, Interval { start, end }))
            .collect();
        self.busy_cache = None;
    }

    fn add_session(&mut self, id: Uuid, interval: Interval) {
        self.sessions.insert(id, interval);
        self.busy_cache = None;
        if let Some(log) = &mut self.reload {
            log.push(LocalChange::Added(id, interval));
        }
    }

    fn remove_session(&mut self, id: Uuid) {
        self.sessions.remove(&id);
        self.busy_cache = None;
        if let Some(log) = &mut self.reload {
            log.push(LocalChange::Removed(id));
        }
    }

    /// Busy time: active sessions and reservations, sorted by start, optionally without one
    /// session (the one being rescheduled).
    fn busy(&mut self, except: Option<Uuid>) -> Vec<Interval> {
        let horizon = Utc::now() - BUSY_LOOKBACK;
        let sessions = &self.sessions;
        let cached = self.busy_cache.get_or_insert_with(|| {
            let mut busy: Vec<Interval> = sessions
                .values()
                .copied()
                .filter(|i| i.end > horizon)
                .collect();
            busy.sort_unstable();
            busy
        });
        let mut busy = match except.and_then(|id| self.sessions.get(&id)) {
            Some(own) => {
                let mut without = cached.clone();
                if let Some(i) = without.iter().position(|b| b == own) {
                    without.remove(i);
                }
                without
            }
            None => cached.clone(),
        };
        if !self.reservations.is_empty() {
            busy.extend(self.reservations.values().copied());
            busy.sort_unstable();
        }
        busy
    }

    fn reserve(&mut self, interval: Interval) -> u64 {
        let number = self.next_reservation;
        self.next_reservation += 1;
        self.reservations.insert(number, interval);
        number
    }

    fn touch(&mut self) {
        self.last_used = Instant::now();
    }

    /// Checks a start from memory, the same way the slot list is computed.
    fn check(
        &mut self,
        start: chrono::DateTime<Utc>,
        minutes: u32,
        except: Option<Uuid>,
    ) -> Result<Interval, ScheduleError> {
        if !self.active {
            return Err(ScheduleError::TutorNotFound);
        }
        let busy = self.busy(except);
        let rules = &self.rules;
        let checked = guarded(|| slots::check_start(rules, &busy, Utc::now(), start, minutes))?;
        checked
            .map(|slot| Interval {
                start: slot.start,
                end: slot.end,
            })
            .map_err(ScheduleError::Refused)
    }

    /// Reloads the schedule without blocking the mailbox; changes made meanwhile are replayed.
    fn start_reload(&mut self, ctx: &mut Context<Self>) {
        if self.reload.is_some() {
            self.reload_again = true;
            return;
        }
        self.reload = Some(Vec::new());
        let (pool, tutor_id) = (self.pool.clone(), self.tutor_id);
        async move { availability::load_schedule(&pool, tutor_id).await }
            .into_actor(self)
            .map(|loaded, act, ctx| {
                let log = act.reload.take().unwrap_or_default();
                match loaded {
                    Ok(Some(schedule)) => {
                        act.active = schedule.active;
                        act.rules = schedule.rules;
                        act.replace_sessions(schedule.busy);
                        for change in log {
                            match change {
                                LocalChange::Added(id, interval) => act.add_session(id, interval),
                                LocalChange::Removed(id) => act.remove_session(id),
                            }
                        }
                        if std::mem::take(&mut act.reload_again) {
                            act.start_reload(ctx);
                        }
                    }
                    Ok(None) => ctx.stop(),
                    Err(err) => {
                        // Memory may be stale; stop, so the next request loads afresh.
                        tracing::warn!(tutor = %act.tutor_id, error = format!("{err:#}"), "reload failed");
                        ctx.stop();
                    }
                }
            })
            .spawn(ctx);
    }
}

/// Runs pure domain code; a panic in it (a bug) fails this request and is logged, instead of
/// taking down the arbiter thread and every other tutor on it.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ScheduleError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        tracing::error!("the scheduling rules panicked");
        ScheduleError::Internal("the scheduling rules failed".to_owned())
    })
}

fn persist_failure(err: PersistError) -> ScheduleError {
    ScheduleError::Unavailable(err.0)
}

fn db_failure(err: sqlx::Error) -> ScheduleError {
    if crate::error::is_unavailable(&err) {
        ScheduleError::Unavailable(err.to_string())
    } else {
        ScheduleError::Internal(err.to_string())
    }
}

impl Actor for TutorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Bounded mailbox: callers wait (asynchronously) rather than queue without limit.
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(IDLE_CHECK, |act, ctx| {
            if act.last_used.elapsed() > IDLE_TIMEOUT && act.reservations.is_empty() {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.registry.forget(self.tutor_id, &ctx.address());
    }
}

impl Handler<Book> for TutorActor {
    type Result = ResponseActFuture<Self, Result<SessionRecord, ScheduleError>>;

    fn handle(&mut self, msg: Book, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let interval = match self.check(msg.start, msg.duration_minutes, None) {
            Ok(interval) => interval,
            Err(err) => return Box::pin(fut::ready(Err(err))),
        };
        let reservation = self.reserve(interval);
        let session = NewSession {
            id: msg.session_id,
            tutor_id: self.tutor_id,
            student_id: msg.student_id,
            scheduled_at: interval.start,
            ends_at: interval.end,
            duration_minutes: i32::try_from(msg.duration_minutes).unwrap_or(i32::MAX),
        };
        let persister = self.persister.clone();
        Box::pin(
            async move { persister.insert(session).await }
                .into_actor(self)
                .map(move |outcome, act, ctx| {
                    act.reservations.remove(&reservation);
                    match outcome.map_err(persist_failure)? {
                        Ok(record) => {
                            act.add_session(record.id, interval);
                            Ok(record)
                        }
                        Err(InsertRefusal::SlotTaken) => {
                            // Booked elsewhere: our picture was stale.
                            act.start_reload(ctx);
                            Err(ScheduleError::Refused(Refusal::SlotTaken))
                        }
                        Err(InsertRefusal::StudentBusy) => Err(ScheduleError::StudentBusy),
                        Err(InsertRefusal::StudentInactive) => Err(ScheduleError::StudentInactive),
                        Err(InsertRefusal::TutorInactive) => {
                            act.active = false;
                            Err(ScheduleError::TutorNotFound)
                        }
                    }
                }),
        )
    }
}

impl Handler<QuerySlots> for TutorActor {
    type Result = Result<SlotsAnswer, ScheduleError>;

    fn handle(&mut self, msg: QuerySlots, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        if !self.active {
            return Err(ScheduleError::TutorNotFound);
        }
        let busy = self.busy(None);
        let rules = &self.rules;
        let minutes = msg.duration_minutes.unwrap_or(rules.min_duration_minutes());
        let computed =
            guarded(|| slots::bookable_slots(rules, &busy, Utc::now(), msg.from, msg.to, minutes))?;
        let slots = computed.map_err(ScheduleError::Refused)?;
        Ok(SlotsAnswer {
            slots,
            rules: self.rules.clone(),
        })
    }
}

impl Handler<Cancel> for TutorActor {
    type Result = ResponseActFuture<Self, Result<SessionRecord, ScheduleError>>;

    fn handle(&mut self, msg: Cancel, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let pool = self.pool.clone();
        Box::pin(
            async move { sessions::cancel(&pool, msg.session_id, msg.reason.as_deref()).await }
                .into_actor(self)
                .map(
                    |cancelled, act, _ctx| match cancelled.map_err(db_failure)? {
                        Some(record) => {
                            act.remove_session(record.id);
                            Ok(record)
                        }
                        None => Err(ScheduleError::NotScheduled),
                    },
                ),
        )
    }
}

impl Handler<Reschedule> for TutorActor {
    type Result = ResponseActFuture<Self, Result<SessionRecord, ScheduleError>>;

    fn handle(&mut self, msg: Reschedule, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let interval = match self.check(msg.start, msg.duration_minutes, Some(msg.session_id)) {
            Ok(interval) => interval,
            Err(err) => return Box::pin(fut::ready(Err(err))),
        };
        let reservation = self.reserve(interval);
        let pool = self.pool.clone();
        let minutes = i32::try_from(msg.duration_minutes).unwrap_or(i32::MAX);
        Box::pin(
            async move {
                sessions::reschedule(&pool, msg.session_id, interval.start, interval.end, minutes)
                    .await
            }
            .into_actor(self)
            .map(move |moved, act, ctx| {
                act.reservations.remove(&reservation);
                match moved.map_err(db_failure)? {
                    Ok(record) => {
                        act.remove_session(record.id);
                        act.add_session(record.id, interval);
                        Ok(record)
                    }
                    Err(RescheduleRefusal::NotScheduled) => Err(ScheduleError::NotScheduled),
                    Err(RescheduleRefusal::SlotTaken) => {
                        act.start_reload(ctx);
                        Err(ScheduleError::Refused(Refusal::SlotTaken))
                    }
                    Err(RescheduleRefusal::StudentBusy) => Err(ScheduleError::StudentBusy),
                }
            }),
        )
    }
}

impl Handler<ReplaceRules> for TutorActor {
    type Result = ResponseActFuture<Self, Result<AvailabilityRules, ScheduleError>>;

    fn handle(&mut self, msg: ReplaceRules, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let (pool, tutor_id) = (self.pool.clone(), self.tutor_id);
        let rules = msg.rules;
        Box::pin(
            async move {
                let stored = availability::replace_rules(&pool, tutor_id, &rules).await;
                (stored, rules)
            }
            .into_actor(self)
            .map(|(stored, rules), act, _ctx| {
                if !stored.map_err(db_failure)? {
                    act.active = false;
                    return Err(ScheduleError::TutorNotFound);
                }
                act.rules = rules.clone();
                Ok(rules)
            }),
        )
    }
}

impl Handler<Refresh> for TutorActor {
    type Result = ();

    fn handle(&mut self, _msg: Refresh, ctx: &mut Self::Context) {
        self.start_reload(ctx);
    }
}

impl Handler<Changed> for TutorActor {
    type Result = ();

    fn handle(&mut self, msg: Changed, _ctx: &mut Self::Context) {
        match msg {
            Changed::Deactivated => self.active = false,
            Changed::Timezone(zone) => self.rules = self.rules.clone().with_timezone(zone),
            Changed::Released(ids) => {
                for id in ids {
                    self.remove_session(id);
                }
            }
        }
    }
}
