//! The tasks between the hub and one connection: one per subscription (a snapshot, then the
//! tutor's events in order) and one for the user's session updates, all writing through the
//! connection's bounded queue.

use std::sync::{Arc, OnceLock};

use actix_ws::{CloseCode, CloseReason};
use chrono::{DateTime, Utc};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::Hub;
use super::events::{FreeInterval, ServerMessage};
use super::hub::TutorFeed;
use crate::auth::RevokedTokens;
use crate::scheduling::{Registry, ScheduleError, Snapshot};

/// Why a connection must close, raised by any of its tasks; the first reason raised wins.
#[derive(Default)]
pub(super) struct Ending {
    reason: OnceLock<CloseReason>,
    raised: Notify,
}

impl Ending {
    pub(super) fn raise(&self, code: CloseCode, description: &str) {
        let _ = self.reason.set(CloseReason {
            code,
            description: Some(description.to_owned()),
        });
        self.raised.notify_one();
    }

    /// Waits until a reason is raised, and gives it.
    pub(super) async fn raised(&self) -> CloseReason {
        loop {
            if let Some(reason) = self.reason.get() {
                return reason.clone();
            }
            self.raised.notified().await;
        }
    }
}

/// What the connection's tasks hand to the writer.
#[derive(Clone)]
pub(super) struct Outgoing {
    pub(super) queue: mpsc::Sender<Arc<str>>,
    pub(super) ending: Arc<Ending>,
}

impl Outgoing {
    /// Queues a message; a full queue means the client is too slow. Returns false then.
    pub(super) fn push(&self, json: Arc<str>) -> bool {
        match self.queue.try_send(json) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.ending.raise(CloseCode::Again, "too slow to read");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub(super) fn push_message(&self, message: &ServerMessage) -> bool {
        match serde_json::to_string(message) {
            Ok(json) => self.push(json.into()),
            Err(_) => false,
        }
    }

    pub(super) fn error(&self, code: &'static str, message: impl Into<String>) {
        self.push_error(code, message.into(), None);
    }

    /// An error that ends the subscription to `tutor_id`, saying which one it ended.
    fn subscription_error(&self, tutor_id: Uuid, code: &'static str, message: &str) {
        self.push_error(code, message.to_owned(), Some(tutor_id));
    }

    fn push_error(&self, code: &'static str, message: String, tutor_id: Option<Uuid>) {
        self.push_message(&ServerMessage::Error {
            code,
            message,
            tutor_id,
        });
    }
}

/// Holds a hub subscription and gives it back when the forwarder ends, however it ends (an
/// aborted task drops its state too).
struct TutorSubscription {
    hub: Hub,
    tutor_id: Uuid,
    feed: Option<tokio::sync::broadcast::Receiver<Arc<TutorFeed>>>,
}

impl Drop for TutorSubscription {
    fn drop(&mut self) {
        drop(self.feed.take());
        self.hub.release_tutor(self.tutor_id);
    }
}

pub(super) fn spawn_tutor_forwarder(
    hub: Hub,
    scheduler: Registry,
    tutor_id: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    out: Outgoing,
) -> JoinHandle<()> {
    // Subscribe before taking the snapshot, so no event after the snapshot can be missed.
    let mut subscription = TutorSubscription {
        feed: Some(hub.subscribe_tutor(tutor_id)),
        hub,
        tutor_id,
    };
    actix_web::rt::spawn(async move {
        let Some(mut seq) = snapshot(&scheduler, tutor_id, (from, to), &out).await else {
            return;
        };
        let Some(feed) = subscription.feed.as_mut() else {
            return;
        };
        loop {
            match feed.recv().await {
                Ok(item) => match &*item {
                    TutorFeed::Event {
                        seq: n,
                        json,
                        availability_changed,
                    } => {
                        if *n <= seq {
                            continue; // already in the snapshot
                        }
                        seq = *n;
                        if !out.push(Arc::clone(json)) {
                            return;
                        }
                        if *availability_changed {
                            match snapshot(&scheduler, tutor_id, (from, to), &out).await {
                                Some(fresh) => seq = seq.max(fresh),
                                None => return,
                            }
                        }
                    }
                    TutorFeed::Resync => {
                        match snapshot(&scheduler, tutor_id, (from, to), &out).await {
                            Some(fresh) => seq = fresh,
                            None => return,
                        }
                    }
                },
                // This forwarder fell behind the tutor's events (it waits for the actor while
                // it takes a snapshot), which says nothing of the client: a client too slow to
                // read fills its own queue and is closed for that. Start it over from a fresh
                // snapshot, as after any gap.
                Err(RecvError::Lagged(_)) => {
                    match snapshot(&scheduler, tutor_id, (from, to), &out).await {
                        Some(fresh) => seq = fresh,
                        None => return,
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
}

/// Sends a snapshot of the tutor's free time and returns the event number it reflects; `None`
/// when the subscription cannot go on (the client was told why).
async fn snapshot(
    scheduler: &Registry,
    tutor_id: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    out: &Outgoing,
) -> Option<i64> {
    match scheduler.ask(tutor_id, Snapshot { from, to }).await {
        Ok(Ok(answer)) => {
            let message = ServerMessage::Snapshot {
                tutor_id,
                seq: answer.seq,
                from,
                to,
                free: answer
                    .free
                    .iter()
                    .map(|i| FreeInterval {
                        start: i.start,
                        end: i.end,
                    })
                    .collect(),
            };
            out.push_message(&message).then_some(answer.seq)
        }
        Ok(Err(ScheduleError::TutorNotFound)) | Err(ScheduleError::TutorNotFound) => {
            out.subscription_error(tutor_id, "tutor_not_found", "no active tutor has this id");
            None
        }
        Ok(Err(_)) | Err(_) => {
            out.subscription_error(
                tutor_id,
                "unavailable",
                "the tutor's schedule is unavailable; subscribe again shortly",
            );
            None
        }
    }
}

/// Holds a user subscription and gives it back however the forwarder ends.
struct UserSubscription {
    hub: Hub,
    user_id: Uuid,
    feed: Option<tokio::sync::broadcast::Receiver<Arc<str>>>,
}

impl Drop for UserSubscription {
    fn drop(&mut self) {
        drop(self.feed.take());
        self.hub.release_user(self.user_id);
    }
}

/// The token a connection was opened with. It authenticates the connection for as long as it
/// would act for its account in a request: session updates stop, and the connection closes,
/// once it is revoked or expires, or the account is deactivated.
#[derive(Clone)]
pub(super) struct Credentials {
    pub(super) user_id: Uuid,
    pub(super) jti: Uuid,
    /// Seconds since the epoch.
    pub(super) expires_at: i64,
    pub(super) revoked: Arc<RevokedTokens>,
}

impl Credentials {
    /// Why the token no longer authenticates, when it does not.
    pub(super) fn lapsed(&self) -> Option<&'static str> {
        if self.revoked.is_revoked(self.jti) {
            Some("the token has been revoked")
        } else if Utc::now().timestamp() >= self.expires_at {
            Some("the token has expired")
        } else if self.revoked.is_deactivated(self.user_id) {
            Some("the account is deactivated")
        } else {
            None
        }
    }
}

pub(super) fn spawn_user_forwarder(
    hub: &Hub,
    credentials: Credentials,
    out: Outgoing,
) -> JoinHandle<()> {
    let mut subscription = UserSubscription {
        feed: Some(hub.subscribe_user(credentials.user_id)),
        hub: hub.clone(),
        user_id: credentials.user_id,
    };
    actix_web::rt::spawn(async move {
        let Some(feed) = subscription.feed.as_mut() else {
            return;
        };
        loop {
            match feed.recv().await {
                Ok(json) => {
                    if let Some(why) = credentials.lapsed() {
                        out.ending.raise(CloseCode::Policy, why);
                        return;
                    }
                    if !out.push(json) {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    out.ending.raise(CloseCode::Again, "too slow to read");
                    return;
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
}
