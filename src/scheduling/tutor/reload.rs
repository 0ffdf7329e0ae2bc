//! Reloading a tutor's schedule from the database while the actor keeps serving: after another
//! process's change was missed (a gap in events, a refused write, a lost notification
//! connection). Changes the actor makes meanwhile are logged and replayed over what it loads.

use std::time::Duration;

use actix::prelude::*;
use uuid::Uuid;

use super::TutorActor;
use crate::domain::slots::Interval;
use crate::store::availability;

/// How long to wait before reloading again after a failed reload.
const RELOAD_RETRY: Duration = Duration::from_secs(1);

/// A change to the sessions made while a reload runs, with the number of its event (0 when
/// unknown), to be replayed onto the loaded state unless that state already holds it.
#[derive(Debug, Clone, Copy)]
pub(super) enum LocalChange {
    Added(Uuid, Interval, i64),
    Removed(Uuid, i64),
}

impl TutorActor {
    /// Reloads the schedule without blocking the mailbox; changes made meanwhile are replayed.
    pub(super) fn start_reload(&mut self, ctx: &mut Context<Self>) {
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
                        // Published once, whole: the loaded state may predate a change made
                        // here meanwhile (a cancel already answered), replayed below.
                        act.publish_held = true;
                        act.set_active(schedule.active);
                        act.set_rules(schedule.rules);
                        act.replace_sessions(schedule.busy);
                        // Memory now reflects event `schedule.seq`; subscribers start over from a
                        // snapshot of it.
                        // (Events published while the reload ran are newer than the snapshot,
                        // and their changes are replayed below: never move backwards.)
                        act.seq = act.seq.max(schedule.seq);
                        act.rules_seq = act.seq;
                        act.session_seqs.clear();
                        act.session_seq_floor = act.seq;
                        let seq = act.seq;
                        act.early_events.retain(|n, _| *n > seq);
                        act.hub.resync_tutor(act.tutor_id);
                        // A change the loaded state already holds is not replayed: a booking
                        // made here and cancelled through another node before the load would
                        // otherwise come back as busy time that no event ever clears.
                        for change in log {
                            let (id, seq) = match change {
                                LocalChange::Added(id, _, seq) | LocalChange::Removed(id, seq) => {
                                    (id, seq)
                                }
                            };
                            if seq != 0 && seq <= schedule.seq {
                                continue;
                            }
                            if seq != 0 {
                                act.session_seqs.insert(id, seq);
                            }
                            match change {
                                LocalChange::Added(id, interval, seq) => {
                                    act.add_session(id, interval, seq);
                                }
                                LocalChange::Removed(id, seq) => act.remove_session(id, seq),
                            }
                        }
                        act.publish_held = false;
                        act.publish();
                        act.publish_ready();
                        if std::mem::take(&mut act.reload_again) {
                            act.start_reload(ctx);
                        }
                    }
                    Ok(None) => ctx.stop(),
                    Err(err) => {
                        // Keep serving (the database's constraints still guard bookings) and
                        // try again shortly; stopping would drop the requests in flight.
                        tracing::warn!(tutor = %act.tutor_id, error = format!("{err:#}"), "reload failed; retrying");
                        act.reload_again = false;
                        ctx.run_later(RELOAD_RETRY, |act, ctx| act.start_reload(ctx));
                    }
                }
            })
            .spawn(ctx);
    }
}
