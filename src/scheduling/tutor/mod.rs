//! The actor that owns one tutor's schedule: its rules and its busy time, in memory.
//!
//! Every change to a tutor's schedule passes through its actor, one message at a time, so two
//! bookings of one tutor are never checked against the same picture of its time. Conflicts are
//! refused from memory. The actor never holds its mailbox across a database round trip: a booking
//! in flight is a *reservation* that blocks its interval until the commit answers, and then
//! becomes busy time or disappears. The database's exclusion constraints stay the last word: when
//! they refuse what the actor accepted (another server process booked it), the actor reloads.
//! After every change, before anyone hears of it, the actor publishes a view of its schedule
//! that requests which only read it use on their own threads (`view.rs`).
//!
//! The actor is also the single source of its tutor's live events: every committed change (its
//! own, or another process's announced by PostgreSQL) is published to this process's
//! subscribers in sequence order, each once; a snapshot carries the number it reflects.

mod handlers;
mod reload;
mod sequence;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use self::reload::LocalChange;
use super::messages::{ScheduleError, SlotList};
use super::persister::{PersistError, Persister};
use super::registry::Registry;
use super::view::{SlotQuery, TutorView, ViewCell, guarded};
use crate::domain::availability::AvailabilityRules;
use crate::domain::slots::{self, Interval, StartBounds};
use crate::realtime::Hub;
use crate::realtime::events::TutorEvent;
use crate::store::availability::{BUSY_LOOKBACK, TutorSchedule};

/// Slot lists unused for this long are dropped; it is also how often an actor looks for
/// idleness (more often when its idle timeout is shorter).
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// Slot lists kept per actor, most recently used first.
const SLOT_LISTS_KEPT: usize = 4;

/// One tutor's schedule.
pub struct TutorActor {
    tutor_id: Uuid,
    active: bool,
    rules: Arc<AvailabilityRules>,
    /// Active sessions by id.
    sessions: HashMap<Uuid, Interval>,
    /// Bookings and reschedules in flight, by reservation number.
    reservations: HashMap<u64, Interval>,
    next_reservation: u64,
    /// Sessions (ended within the lookback) and reservations sorted by start, kept up to date
    /// by every change.
    busy: Arc<[Interval]>,
    /// Slot lists computed since the last change, kept for queries asked more than once.
    slot_lists: Vec<(SlotQuery, Arc<SlotList>)>,
    /// Where the schedule is published for requests that only read it.
    view: Arc<ViewCell>,
    /// Set while a reload is applied in several steps, so no half-applied state is published.
    publish_held: bool,
    /// The last slot query answered without keeping its list: asked again, its list is kept,
    /// so a tutor whose slots are looked at once costs no memory for them.
    last_slot_query: Option<SlotQuery>,
    /// Local changes made while a reload is in flight, replayed over what it loads.
    reload: Option<Vec<LocalChange>>,
    /// A refresh was asked for while a reload was in flight: reload again after it.
    reload_again: bool,
    last_used: Instant,
    /// The number of the last event published: memory reflects every event up to it.
    seq: i64,
    /// The number of the event that set `rules`: rules from an older event never replace them.
    rules_seq: i64,
    /// The number of the last event applied to each session, so that changes finishing out of
    /// order (a reschedule and a cancel of one session) leave the later one in force.
    session_seqs: HashMap<Uuid, i64>,
    /// Events up to this number are reflected by the last reload.
    session_seq_floor: i64,
    /// Events known but not yet published, waiting for an earlier number.
    early_events: BTreeMap<i64, TutorEvent>,
    pool: PgPool,
    persister: Persister,
    registry: Registry,
    hub: Hub,
}

impl TutorActor {
    /// An actor for `tutor_id`, holding the state loaded for it, its first view published.
    pub fn new(
        tutor_id: Uuid,
        schedule: TutorSchedule,
        pool: PgPool,
        persister: Persister,
        registry: Registry,
        hub: Hub,
    ) -> Self {
        let rules = Arc::new(schedule.rules);
        let view = Arc::new(ViewCell::new(TutorView {
            active: schedule.active,
            rules: Arc::clone(&rules),
            busy: Arc::from([]),
            slot_lists: Vec::new(),
        }));
        let mut actor = Self {
            tutor_id,
            active: schedule.active,
            rules,
            sessions: HashMap::new(),
            reservations: HashMap::new(),
            next_reservation: 0,
            busy: Arc::from([]),
            slot_lists: Vec::new(),
            view,
            publish_held: false,
            last_slot_query: None,
            reload: None,
            reload_again: false,
            last_used: Instant::now(),
            seq: schedule.seq,
            rules_seq: schedule.seq,
            session_seqs: HashMap::new(),
            session_seq_floor: schedule.seq,
            early_events: BTreeMap::new(),
            pool,
            persister,
            registry,
            hub,
        };
        actor.replace_sessions(schedule.busy);
        actor
    }

    /// Where this actor publishes its view.
    pub fn view(&self) -> Arc<ViewCell> {
        Arc::clone(&self.view)
    }

    fn replace_sessions(
        &mut self,
        busy: Vec<(Uuid, chrono::DateTime<Utc>, chrono::DateTime<Utc>)>,
    ) {
        self.sessions = busy
            .into_iter()
            .map(|(id, start, end)| (id, Interval { start, end }))
            .collect();
        self.rebuild_busy();
        self.schedule_changed();
    }

    /// Forgets sessions that ended before the lookback: they can no longer touch a bookable
    /// start. Returns whether any was forgotten.
    fn forget_old_sessions(&mut self) -> bool {
        let lookback = Utc::now() - BUSY_LOOKBACK;
        let before = self.sessions.len();
        self.sessions.retain(|_, interval| interval.end > lookback);
        if self.sessions.len() == before {
            return false;
        }
        self.rebuild_busy();
        self.schedule_changed();
        true
    }

    fn rebuild_busy(&mut self) {
        let mut busy: Vec<Interval> = self
            .sessions
            .values()
            .chain(self.reservations.values())
            .copied()
            .collect();
        busy.sort_unstable();
        self.busy = busy.into();
    }

    /// Adds (or moves) a session; `seq` is its event's number, 0 when unknown.
    fn add_session(&mut self, id: Uuid, interval: Interval, seq: i64) {
        if let Some(replaced) = self.sessions.insert(id, interval) {
            self.busy = without(&self.busy, replaced);
        }
        self.busy = with(&self.busy, interval);
        self.schedule_changed();
        if let Some(log) = &mut self.reload {
            log.push(LocalChange::Added(id, interval, seq));
        }
    }

    /// Removes a session; `seq` is its event's number, 0 when unknown.
    fn remove_session(&mut self, id: Uuid, seq: i64) {
        if let Some(removed) = self.sessions.remove(&id) {
            self.busy = without(&self.busy, removed);
        }
        self.schedule_changed();
        if let Some(log) = &mut self.reload {
            log.push(LocalChange::Removed(id, seq));
        }
    }

    /// Busy time: active sessions and reservations, sorted by start, optionally without one
    /// session (the one being rescheduled).
    fn busy(&self, except: Option<Uuid>) -> Arc<[Interval]> {
        match except.and_then(|id| self.sessions.get(&id)) {
            Some(own) => without(&self.busy, *own),
            None => Arc::clone(&self.busy),
        }
    }

    fn reserve(&mut self, interval: Interval) -> u64 {
        let number = self.next_reservation;
        self.next_reservation += 1;
        self.reservations.insert(number, interval);
        self.busy = with(&self.busy, interval);
        self.schedule_changed();
        number
    }

    fn release(&mut self, reservation: u64) {
        if let Some(released) = self.reservations.remove(&reservation) {
            self.busy = without(&self.busy, released);
            self.schedule_changed();
        }
    }

    fn set_rules(&mut self, rules: AvailabilityRules) {
        self.rules = Arc::new(rules);
        self.schedule_changed();
    }

    fn set_active(&mut self, active: bool) {
        self.active = active;
        self.schedule_changed();
    }

    /// Every change to the rules, sessions, reservations or activity passes through here (after
    /// `busy` is brought up to date), so nothing computed from the old picture is served again,
    /// and the change is published before anyone hears of it.
    fn schedule_changed(&mut self) {
        self.slot_lists.clear();
        if !self.publish_held {
            self.publish();
        }
    }

    /// Publishes the schedule as it is now for requests that only read it.
    fn publish(&self) {
        self.view.publish(TutorView {
            active: self.active,
            rules: Arc::clone(&self.rules),
            busy: Arc::clone(&self.busy),
            slot_lists: self.slot_lists.clone(),
        });
    }

    /// The slots of `query` at any time: a kept list, or computed (and kept when asked twice in
    /// a row).
    fn slot_list(&mut self, query: SlotQuery) -> Result<Arc<SlotList>, ScheduleError> {
        if let Some(i) = self.slot_lists.iter().position(|(kept, _)| *kept == query) {
            let entry = self.slot_lists.remove(i);
            let list = Arc::clone(&entry.1);
            self.slot_lists.insert(0, entry);
            return Ok(list);
        }
        let (from, to, minutes) = query;
        let (rules, busy) = (&*self.rules, &*self.busy);
        let any_time = StartBounds::ANY_TIME;
        let computed =
            guarded(|| slots::bookable_slots_within(rules, busy, any_time, from, to, minutes))?;
        let list = Arc::new(SlotList {
            slots: computed.map_err(ScheduleError::Refused)?,
            timezone: rules.timezone(),
            rendered: OnceLock::new(),
        });
        if self.last_slot_query.replace(query) == Some(query) {
            self.slot_lists.truncate(SLOT_LISTS_KEPT - 1);
            self.slot_lists.insert(0, (query, Arc::clone(&list)));
            self.publish();
        }
        Ok(list)
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
        let rules = &*self.rules;
        let checked = guarded(|| slots::check_start(rules, &busy, Utc::now(), start, minutes))?;
        checked
            .map(|slot| Interval {
                start: slot.start,
                end: slot.end,
            })
            .map_err(ScheduleError::Refused)
    }
}

/// `busy` with `interval` added in start order: one copy, no sort (readers may hold the old
/// list).
fn with(busy: &[Interval], interval: Interval) -> Arc<[Interval]> {
    let at = busy.partition_point(|b| *b < interval);
    let (before, after) = busy.split_at(at);
    before
        .iter()
        .copied()
        .chain(std::iter::once(interval))
        .chain(after.iter().copied())
        .collect()
}

/// `busy` with one occurrence of `interval` removed (a session older than the lookback may not
/// be there at all).
fn without(busy: &Arc<[Interval]>, interval: Interval) -> Arc<[Interval]> {
    let at = busy.partition_point(|b| *b < interval);
    if busy.get(at) != Some(&interval) {
        return Arc::clone(busy);
    }
    busy[..at].iter().chain(&busy[at + 1..]).copied().collect()
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
        // An unused actor stops, freeing its memory; the next request reloads it.
        let idle_timeout = self.registry.idle_timeout();
        let check_every = IDLE_CHECK.min(idle_timeout / 2);
        ctx.run_interval(check_every, move |act, ctx| {
            act.forget_old_sessions();
            act.forget_applied_seqs();
            let last_used = act.last_used.max(act.view.last_read());
            if last_used.elapsed() > IDLE_CHECK {
                act.last_slot_query = None;
                if !act.slot_lists.is_empty() {
                    act.slot_lists.clear();
                    act.publish();
                }
            }
            if last_used.elapsed() > idle_timeout
                && act.reservations.is_empty()
                && !act.hub.has_tutor_subscribers(act.tutor_id)
            {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.registry.forget(self.tutor_id, &ctx.address());
    }
}
