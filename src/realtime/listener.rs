//! This process's ear on PostgreSQL: `LISTEN tutoring_events`, announcements handed on in the
//! order they arrive (commit order). Notifications sent while the connection is down are lost,
//! so after every (re)connection each tutor's actor reloads and every subscriber gets a fresh
//! snapshot.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use sqlx::postgres::PgListener;
use sqlx::{Executor as _, PgPool};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Hub;
use super::events::{Announcement, ServerMessage};
use crate::routes::views::SessionView;
use crate::scheduling::Registry;
use crate::store::sessions::{self, SessionRecord};

/// The channel `tutoring_emit` announces on.
pub const CHANNEL: &str = "tutoring_events";

/// Session updates waiting to be read and sent (all read together, with one query); beyond this
/// they are dropped (and logged), so a slow database cannot make the listener fall behind.
const SESSION_UPDATE_QUEUE: usize = 1024;

/// Listens until the runtime stops or the pool is closed, reconnecting as needed. Should the loop ever panic, it is
/// started again (and, connecting afresh, starts everyone over): a node that stopped listening
/// would go on serving other nodes' stale schedules.
pub fn spawn_listener(pool: PgPool, hub: Hub, registry: Registry) {
    let updates = spawn_session_updater(pool.clone(), hub.clone());
    tokio::spawn(async move {
        loop {
            let run = AssertUnwindSafe(listen(&pool, &hub, &registry, &updates)).catch_unwind();
            match run.await {
                // The pool was closed: the server is stopping.
                Ok(()) => return,
                Err(_) => tracing::error!("the event listener panicked; restarting it"),
            }
        }
    });
}

async fn listen(
    pool: &PgPool,
    hub: &Hub,
    registry: &Registry,
    updates: &mpsc::Sender<(Uuid, Uuid, Uuid)>,
) {
    let mut listener: Option<PgListener> = None;
    loop {
        if pool.is_closed() {
            return;
        }
        let Some(active) = listener.as_mut() else {
            match connect(pool).await {
                Ok(fresh) => {
                    listener = Some(fresh);
                    resync(hub, registry);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for events; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        };
        let received = match tokio::time::timeout(QUIET_CHECK, active.try_recv()).await {
            Ok(received) => received,
            // Nothing for a while: quiet, or a connection that died without a word (a network
            // partition), which would leave this node deaf for good. Ask it.
            Err(_) => match tokio::time::timeout(CONNECT_TIMEOUT, active.execute("SELECT 1")).await
            {
                Ok(Ok(_)) => continue,
                Ok(Err(err)) => Err(err),
                Err(_) => Err(sqlx::Error::Io(std::io::ErrorKind::TimedOut.into())),
            },
        };
        match received {
            Ok(Some(notification)) => announce(hub, registry, updates, notification.payload()),
            // The connection was lost: connect and LISTEN again, and only then start everyone
            // over, so nothing announced in between is missed.
            Ok(None) => {
                tracing::warn!("event listener reconnecting");
                listener = None;
            }
            Err(_) if pool.is_closed() => return,
            Err(err) => {
                tracing::warn!(error = %err, "event listener failed; reconnecting");
                listener = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// How long connecting and `LISTEN` (or a check that the connection lives) may take before the
/// attempt is given up and made again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// After this long without a notification the connection is checked.
const QUIET_CHECK: Duration = Duration::from_secs(30);

async fn connect(pool: &PgPool) -> anyhow::Result<PgListener> {
    // Bounded: a connection that never answers (one the database dropped without a word, say)
    // must not leave this node deaf for good.
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let mut listener = PgListener::connect_with(pool).await?;
        // A lost connection is reported at once, and this loop connects again (bounded),
        // rather than sqlx reconnecting inside `try_recv` with no bound.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    })
    .await
    .map_err(|_| anyhow::anyhow!("no answer within {CONNECT_TIMEOUT:?}"))?
    .map_err(Into::into)
}

/// Whatever was announced while we were not listening is unknown: start everyone over.
fn resync(hub: &Hub, registry: &Registry) {
    registry.refresh_all();
    hub.resync_all();
}

/// One notification carries one announcement, or several in order (a batch of bookings).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Payload {
    One(Announcement),
    Many(Vec<Announcement>),
}

fn announce(
    hub: &Hub,
    registry: &Registry,
    updates: &mpsc::Sender<(Uuid, Uuid, Uuid)>,
    payload: &str,
) {
    let announcements = match serde_json::from_str(payload) {
        Ok(Payload::One(announcement)) => vec![announcement],
        Ok(Payload::Many(announcements)) => announcements,
        Err(err) => {
            tracing::warn!(error = %err, "ignoring a malformed announcement");
            return;
        }
    };
    for announcement in announcements {
        if let Some(event) = announcement.tutor_event() {
            registry.deliver(event);
        }
        if let Some((session_id, tutor_id, student_id)) = announcement.session_participants()
            && (hub.wants_user(tutor_id) || hub.wants_user(student_id))
            && updates
                .try_send((session_id, tutor_id, student_id))
                .is_err()
        {
            tracing::warn!(session = %session_id, "session update dropped: too many waiting");
        }
    }
}

/// Reads each updated session as it is now and tells both participants, in announcement order:
/// all the updates waiting at once, with one query.
fn spawn_session_updater(pool: PgPool, hub: Hub) -> mpsc::Sender<(Uuid, Uuid, Uuid)> {
    let (sender, mut receiver) = mpsc::channel::<(Uuid, Uuid, Uuid)>(SESSION_UPDATE_QUEUE);
    tokio::spawn(async move {
        let mut waiting = Vec::with_capacity(SESSION_UPDATE_QUEUE);
        while receiver.recv_many(&mut waiting, SESSION_UPDATE_QUEUE).await > 0 {
            // A session updated twice while waiting is read, and sent, once.
            let mut seen = HashSet::new();
            waiting.retain(|(session_id, _, _)| seen.insert(*session_id));
            let ids: Vec<Uuid> = waiting
                .iter()
                .map(|(session_id, _, _)| *session_id)
                .collect();
            match sessions::find_many(&pool, &ids).await {
                Ok(records) => {
                    let mut records: HashMap<Uuid, _> =
                        records.into_iter().map(|r| (r.id, r)).collect();
                    for (session_id, tutor_id, student_id) in &waiting {
                        if let Some(record) = records.remove(session_id) {
                            tell_participants(&hub, &record, *tutor_id, *student_id);
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "could not read updated sessions"),
            }
            waiting.clear();
        }
    });
    sender
}

fn tell_participants(hub: &Hub, record: &SessionRecord, tutor_id: Uuid, student_id: Uuid) {
    let session = serde_json::to_value(SessionView::from(record)).unwrap_or_default();
    if let Ok(json) = serde_json::to_string(&ServerMessage::SessionUpdated { session }) {
        let json: Arc<str> = json.into();
        hub.publish_user(tutor_id, Arc::clone(&json));
        hub.publish_user(student_id, json);
    }
}
