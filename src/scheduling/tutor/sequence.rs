//! A tutor's live events in sequence: each committed change, its own or another process's, is
//! published once and in order, and applied to memory unless a later change of the same session
//! is already in force.

use std::time::Duration;

use actix::prelude::*;

use super::TutorActor;
use crate::realtime::events::{Change, TutorEvent};

/// How long an event may wait for an earlier one (lost, or late) before the actor reloads.
const GAP_PATIENCE: Duration = Duration::from_secs(2);

impl TutorActor {
    /// Takes in a committed event: publishes it, and any that were waiting for it, in order.
    /// An event already published (ours, announced back to us) is ignored.
    pub(super) fn record_event(&mut self, event: TutorEvent, ctx: &mut Context<Self>) {
        if event.seq <= self.seq {
            return;
        }
        self.early_events.insert(event.seq, event);
        self.publish_ready();
        if !self.early_events.is_empty() {
            // Wait a little for the missing event; if it never comes, start over.
            let waiting_for = self.seq + 1;
            ctx.run_later(GAP_PATIENCE, move |act, ctx| {
                if act.seq < waiting_for && !act.early_events.is_empty() {
                    tracing::warn!(tutor = %act.tutor_id, missing = waiting_for, "event gap; reloading");
                    act.start_reload(ctx);
                }
            });
        }
    }

    /// Publishes the waiting events that are next in sequence.
    pub(super) fn publish_ready(&mut self) {
        while let Some(next) = self.early_events.remove(&(self.seq + 1)) {
            self.seq = next.seq;
            self.hub.publish_tutor(&next);
        }
    }

    /// Applies a committed change of one session, unless a later change of it is already in
    /// force.
    pub(super) fn apply_change(&mut self, change: Change, seq: i64) {
        let (session_id, interval) = match change {
            Change::Booked {
                session_id,
                interval,
            } => (session_id, Some(interval)),
            Change::Released { session_id, .. } => (session_id, None),
            Change::AvailabilityChanged => return,
        };
        let applied = self
            .session_seqs
            .get(&session_id)
            .copied()
            .unwrap_or(self.session_seq_floor);
        // A repeat of a booking already committed comes back numbered 0: memory keeps it.
        let repeat_of_known = seq == 0 && self.sessions.contains_key(&session_id);
        if repeat_of_known || (seq != 0 && seq <= applied) {
            return;
        }
        self.session_seqs.insert(session_id, seq.max(applied));
        match interval {
            Some(interval) => self.add_session(session_id, interval, seq),
            None => self.remove_session(session_id, seq),
        }
    }

    /// Forgets which event last changed each session, for events already published: memory
    /// reflects every event up to `seq`, so any change numbered up to it is one already applied
    /// (as after a reload). Keeps the map from growing for as long as the actor lives.
    pub(super) fn forget_applied_seqs(&mut self) {
        if self.reload.is_some() {
            return; // its replay still needs them
        }
        let seq = self.seq;
        self.session_seqs.retain(|_, applied| *applied > seq);
        self.session_seq_floor = self.session_seq_floor.max(seq);
    }
}
