//! The messages a tutor's actor answers.

use actix::prelude::*;
use chrono::Utc;

use super::{TutorActor, db_failure, persist_failure};
use crate::domain::Note;
use crate::domain::availability::AvailabilityRules;
use crate::domain::slots::{self, Interval, Refusal, StartBounds};
use crate::realtime::events::{Change, TutorEvent};
use crate::scheduling::messages::{
    ApplyEvent, Book, Cancel, Changed, QuerySlots, Refresh, ReplaceRules, Reschedule,
    ScheduleError, SlotsAnswer, Snapshot, SnapshotAnswer,
};
use crate::scheduling::view::guarded;
use crate::store::sessions::{self, InsertRefusal, NewSession, RescheduleRefusal, SessionRecord};
use crate::store::{self, availability};

fn interval_of(record: &SessionRecord) -> Interval {
    Interval {
        start: record.scheduled_at,
        end: record.ends_at,
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
        let deadline = msg.deadline;
        let written = async move { persister.insert(session, deadline).await }.into_actor(self);
        Box::pin(written.map(move |outcome, act, ctx| {
            act.release(reservation);
            match outcome.map_err(persist_failure)? {
                Ok(booked) => {
                    let change = Change::Booked {
                        session_id: booked.record.id,
                        interval,
                    };
                    act.apply_change(change, booked.seq);
                    let event = TutorEvent {
                        tutor_id: act.tutor_id,
                        seq: booked.seq,
                        change,
                    };
                    act.record_event(event, ctx);
                    Ok(booked.record)
                }
                Err(InsertRefusal::SlotTaken) => {
                    // Booked through another process: our picture was stale.
                    act.start_reload(ctx);
                    Err(ScheduleError::Refused(Refusal::SlotTaken))
                }
                Err(InsertRefusal::StudentBusy) => Err(ScheduleError::StudentBusy),
                Err(InsertRefusal::StudentInactive) => Err(ScheduleError::StudentInactive),
                Err(InsertRefusal::Undetermined) => Err(ScheduleError::Unavailable(
                    "the booking was not made; retry shortly".to_owned(),
                )),
                Err(InsertRefusal::TutorInactive) => {
                    act.set_active(false);
                    Err(ScheduleError::TutorNotFound)
                }
            }
        }))
    }
}

impl Handler<QuerySlots> for TutorActor {
    type Result = Result<SlotsAnswer, ScheduleError>;

    fn handle(&mut self, msg: QuerySlots, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        if !self.active {
            return Err(ScheduleError::TutorNotFound);
        }
        let minutes = msg
            .duration_minutes
            .unwrap_or(self.rules.min_duration_minutes());
        let list = self.slot_list((msg.from, msg.to, minutes))?;
        Ok(SlotsAnswer {
            list,
            bounds: StartBounds::at(&self.rules, Utc::now()),
        })
    }
}

impl Handler<Snapshot> for TutorActor {
    type Result = Result<SnapshotAnswer, ScheduleError>;

    fn handle(&mut self, msg: Snapshot, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        if !self.active {
            return Err(ScheduleError::TutorNotFound);
        }
        // Reservations are not commits: a snapshot shows committed state only.
        let mut busy: Vec<Interval> = self.sessions.values().copied().collect();
        busy.sort_unstable();
        let rules = &*self.rules;
        let free = guarded(|| slots::free_intervals(rules, &busy, msg.from, msg.to))?;
        Ok(SnapshotAnswer {
            seq: self.seq,
            free,
        })
    }
}

impl Handler<Cancel> for TutorActor {
    type Result = ResponseActFuture<Self, Result<SessionRecord, ScheduleError>>;

    fn handle(&mut self, msg: Cancel, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let pool = self.pool.clone();
        let written = async move {
            sessions::cancel(&pool, msg.session_id, msg.reason.as_ref().map(Note::as_str)).await
        }
        .into_actor(self);
        Box::pin(written.map(|cancelled, act, ctx| {
            let Some(cancelled) = cancelled.map_err(db_failure)? else {
                return Err(ScheduleError::NotScheduled);
            };
            let record = cancelled.record;
            let change = Change::Released {
                session_id: record.id,
                interval: interval_of(&record),
            };
            act.apply_change(change, cancelled.seq);
            let event = TutorEvent {
                tutor_id: act.tutor_id,
                seq: cancelled.seq,
                change,
            };
            act.record_event(event, ctx);
            Ok(record)
        }))
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
        let written = async move {
            store::retry_transient(|| {
                sessions::reschedule(&pool, msg.session_id, interval.start, interval.end, minutes)
            })
            .await
        }
        .into_actor(self);
        Box::pin(written.map(move |moved, act, ctx| {
            act.release(reservation);
            let moved = match moved.map_err(db_failure)? {
                Ok(moved) => moved,
                Err(RescheduleRefusal::NotScheduled) => return Err(ScheduleError::NotScheduled),
                Err(RescheduleRefusal::SlotTaken) => {
                    act.start_reload(ctx);
                    return Err(ScheduleError::Refused(Refusal::SlotTaken));
                }
                Err(RescheduleRefusal::StudentBusy) => return Err(ScheduleError::StudentBusy),
                Err(RescheduleRefusal::TutorInactive) => {
                    act.set_active(false);
                    return Err(ScheduleError::TutorNotFound);
                }
                Err(RescheduleRefusal::StudentInactive) => {
                    return Err(ScheduleError::StudentInactive);
                }
            };
            let (session_id, tutor_id) = (moved.record.id, act.tutor_id);
            act.apply_change(
                Change::Booked {
                    session_id,
                    interval,
                },
                moved.booked_seq,
            );
            let (start, end) = moved.old;
            act.record_event(
                TutorEvent {
                    tutor_id,
                    seq: moved.released_seq,
                    change: Change::Released {
                        session_id,
                        interval: Interval { start, end },
                    },
                },
                ctx,
            );
            act.record_event(
                TutorEvent {
                    tutor_id,
                    seq: moved.booked_seq,
                    change: Change::Booked {
                        session_id,
                        interval,
                    },
                },
                ctx,
            );
            Ok(moved.record)
        }))
    }
}

impl Handler<ReplaceRules> for TutorActor {
    type Result = ResponseActFuture<Self, Result<AvailabilityRules, ScheduleError>>;

    fn handle(&mut self, msg: ReplaceRules, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let (pool, tutor_id) = (self.pool.clone(), self.tutor_id);
        let rules = msg.rules;
        let written = async move {
            let stored = availability::replace_rules(&pool, tutor_id, &rules).await;
            (stored, rules)
        }
        .into_actor(self);
        Box::pin(written.map(|(stored, rules), act, ctx| {
            let Some(seq) = stored.map_err(db_failure)? else {
                act.set_active(false);
                return Err(ScheduleError::TutorNotFound);
            };
            // Two replacements may finish out of order: the later commit wins.
            if seq > act.rules_seq {
                act.set_rules(rules.clone());
                act.rules_seq = seq;
            }
            let event = TutorEvent {
                tutor_id: act.tutor_id,
                seq,
                change: Change::AvailabilityChanged,
            };
            act.record_event(event, ctx);
            Ok(rules)
        }))
    }
}

impl Handler<ApplyEvent> for TutorActor {
    type Result = ();

    fn handle(&mut self, ApplyEvent(event): ApplyEvent, ctx: &mut Self::Context) {
        if event.seq <= self.seq || self.early_events.contains_key(&event.seq) {
            return; // ours, or already known
        }
        if event.change == Change::AvailabilityChanged {
            // New rules from another process: load them before publishing the change, so a
            // subscriber's fresh snapshot reflects them.
            let (pool, tutor_id) = (self.pool.clone(), self.tutor_id);
            async move { availability::load_rules(&pool, tutor_id).await }
                .into_actor(self)
                .map(move |loaded, act, ctx| match loaded {
                    Ok(Some((active, rules))) => {
                        act.set_active(active);
                        if event.seq > act.rules_seq {
                            act.set_rules(rules);
                            act.rules_seq = event.seq;
                        }
                        act.record_event(event, ctx);
                    }
                    _ => act.start_reload(ctx),
                })
                .wait(ctx);
            return;
        }
        self.apply_change(event.change, event.seq);
        self.record_event(event, ctx);
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
            Changed::Deactivated => self.set_active(false),
            Changed::Timezone { zone, seq } => {
                // Rules replaced by a later commit already hold the zone they were given.
                if seq > self.rules_seq {
                    self.set_rules((*self.rules).clone().with_timezone(zone));
                    self.rules_seq = seq;
                }
            }
            Changed::Released(ids) => {
                // Told by this process's own request after its commit; the event's number
                // is not known here.
                for id in ids {
                    self.remove_session(id, 0);
                }
            }
        }
    }
}
