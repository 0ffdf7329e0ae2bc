//! Fans events out to this process's WebSocket connections: one broadcast channel per tutor
//! with subscribers, one per connected user (for `session.updated`). A broadcast channel never
//! waits for a slow receiver: the receiver falls behind, notices it, and its connection is
//! closed, so one slow client never delays the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::events::{ServerMessage, TutorEvent};
use crate::configuration::RealtimeSettings;

/// Events a subscriber of a tutor may fall behind by before it is dropped as too slow.
const TUTOR_CHANNEL_CAPACITY: usize = 256;
/// Session updates a user's connections may fall behind by.
const USER_CHANNEL_CAPACITY: usize = 64;

/// What a tutor's subscribers receive.
#[derive(Debug)]
pub enum TutorFeed {
    /// The next event, already serialized once for every subscriber.
    Event {
        seq: i64,
        json: Arc<str>,
        availability_changed: bool,
    },
    /// Events may have been missed (the database connection was lost, or the tutor's state was
    /// reloaded): take a fresh snapshot.
    Resync,
}

/// The fan-out of this process.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    tutors: Mutex<HashMap<Uuid, broadcast::Sender<Arc<TutorFeed>>>>,
    users: Mutex<HashMap<Uuid, broadcast::Sender<Arc<str>>>>,
    /// Raised once when the process is shutting down: every connection closes with 1001.
    going_away: watch::Sender<bool>,
    heartbeat: RealtimeSettings,
    /// Live WebSocket connections of this process.
    connections: std::sync::atomic::AtomicUsize,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            tutors: Mutex::default(),
            users: Mutex::default(),
            going_away: watch::channel(false).0,
            heartbeat: RealtimeSettings {
                ping_every: std::time::Duration::from_secs(10),
                silence_limit: std::time::Duration::from_secs(30),
            },
            connections: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Hub {
    /// A hub whose connections ping and time out as `heartbeat` says.
    pub fn new(heartbeat: RealtimeSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                heartbeat,
                ..Inner::default()
            }),
        }
    }

    /// The heartbeat every connection of this process keeps.
    pub fn heartbeat(&self) -> RealtimeSettings {
        self.inner.heartbeat
    }

    /// Starts receiving a tutor's feed. Pair with [`release_tutor`](Self::release_tutor).
    pub fn subscribe_tutor(&self, tutor_id: Uuid) -> broadcast::Receiver<Arc<TutorFeed>> {
        lock(&self.inner.tutors)
            .entry(tutor_id)
            .or_insert_with(|| broadcast::channel(TUTOR_CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Forgets a tutor's channel once its last receiver is gone.
    pub fn release_tutor(&self, tutor_id: Uuid) {
        let mut tutors = lock(&self.inner.tutors);
        if tutors
            .get(&tutor_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            tutors.remove(&tutor_id);
        }
    }

    /// How many receivers a tutor's channel has (one per subscribed connection).
    pub fn tutor_receivers(&self, tutor_id: Uuid) -> usize {
        lock(&self.inner.tutors)
            .get(&tutor_id)
            .map_or(0, |sender| sender.receiver_count())
    }

    /// Whether any connection of this process follows this tutor.
    pub fn has_tutor_subscribers(&self, tutor_id: Uuid) -> bool {
        lock(&self.inner.tutors)
            .get(&tutor_id)
            .is_some_and(|sender| sender.receiver_count() > 0)
    }

    /// Sends a tutor's next event to its subscribers. Called by the tutor's actor only, in
    /// sequence order.
    pub fn publish_tutor(&self, event: &TutorEvent) {
        let sender = lock(&self.inner.tutors).get(&event.tutor_id).cloned();
        let Some(sender) = sender else { return };
        let message = ServerMessage::from(event);
        let json: Arc<str> = match serde_json::to_string(&message) {
            Ok(json) => json.into(),
            Err(_) => return,
        };
        let availability_changed = matches!(message, ServerMessage::AvailabilityChanged { .. });
        // No receiver left is not an error: the channel is released shortly.
        let _ = sender.send(Arc::new(TutorFeed::Event {
            seq: event.seq,
            json,
            availability_changed,
        }));
    }

    /// Asks a tutor's subscribers for a fresh snapshot.
    pub fn resync_tutor(&self, tutor_id: Uuid) {
        if let Some(sender) = lock(&self.inner.tutors).get(&tutor_id) {
            let _ = sender.send(Arc::new(TutorFeed::Resync));
        }
    }

    /// Asks every subscriber for a fresh snapshot.
    pub fn resync_all(&self) {
        for sender in lock(&self.inner.tutors).values() {
            let _ = sender.send(Arc::new(TutorFeed::Resync));
        }
    }

    /// Starts receiving a user's session updates. Pair with [`release_user`](Self::release_user).
    pub fn subscribe_user(&self, user_id: Uuid) -> broadcast::Receiver<Arc<str>> {
        lock(&self.inner.users)
            .entry(user_id)
            .or_insert_with(|| broadcast::channel(USER_CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Forgets a user's channel once its last receiver is gone.
    pub fn release_user(&self, user_id: Uuid) {
        let mut users = lock(&self.inner.users);
        if users
            .get(&user_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            users.remove(&user_id);
        }
    }

    /// Whether any connection of this process listens for this user.
    pub fn wants_user(&self, user_id: Uuid) -> bool {
        lock(&self.inner.users)
            .get(&user_id)
            .is_some_and(|sender| sender.receiver_count() > 0)
    }

    /// Sends a `session.updated` message to this user's connections.
    pub fn publish_user(&self, user_id: Uuid, json: Arc<str>) {
        if let Some(sender) = lock(&self.inner.users).get(&user_id) {
            let _ = sender.send(json);
        }
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection {
        self.inner
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// How many WebSocket connections this process holds.
    pub fn open_connections(&self) -> usize {
        self.inner
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Changes once, when the process starts shutting down.
    pub fn going_away(&self) -> watch::Receiver<bool> {
        self.inner.going_away.subscribe()
    }

    /// Tells every connection to close (1001, going away).
    pub fn go_away(&self) {
        self.inner.going_away.send_replace(true);
    }

    /// How many tutors and users have live channels (for tests and metrics).
    pub fn channel_counts(&self) -> (usize, usize) {
        (
            lock(&self.inner.tutors).len(),
            lock(&self.inner.users).len(),
        )
    }
}

/// One open connection, counted by the hub while it lives.
pub struct OpenConnection(Hub);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .inner
            .connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::events::Change;

    #[test]
    fn channels_are_forgotten_when_their_last_receiver_goes() {
        let hub = Hub::default();
        let tutor = Uuid::now_v7();
        let first = hub.subscribe_tutor(tutor);
        let second = hub.subscribe_tutor(tutor);
        drop(first);
        hub.release_tutor(tutor);
        assert_eq!(hub.channel_counts(), (1, 0));
        drop(second);
        hub.release_tutor(tutor);
        assert_eq!(hub.channel_counts(), (0, 0));
    }

    #[test]
    fn subscribers_receive_events_serialized_once() {
        let hub = Hub::default();
        let tutor = Uuid::now_v7();
        let mut receiver = hub.subscribe_tutor(tutor);
        hub.publish_tutor(&TutorEvent {
            tutor_id: tutor,
            seq: 3,
            change: Change::AvailabilityChanged,
        });
        match receiver.try_recv().as_deref() {
            Ok(TutorFeed::Event {
                seq,
                json,
                availability_changed,
            }) => {
                assert_eq!(*seq, 3);
                assert!(*availability_changed);
                assert!(json.contains("\"availability.changed\""));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
