//! The events of the live channel, as PostgreSQL announces them and as clients receive them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::slots::Interval;

/// One notification on the `tutoring_events` channel (see the `tutoring_emit` migration).
#[derive(Debug, Clone, Deserialize)]
pub struct Announcement {
    pub tutor_id: Uuid,
    /// The event's number in the tutor's sequence; absent for `session.updated`.
    pub seq: Option<i64>,
    #[serde(rename = "type")]
    pub kind: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub session_id: Option<Uuid>,
    pub student_id: Option<Uuid>,
}

/// A change to a tutor's schedule, numbered in the tutor's sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TutorEvent {
    pub tutor_id: Uuid,
    pub seq: i64,
    pub change: Change,
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A session took this time.
    Booked {
        session_id: Uuid,
        interval: Interval,
    },
    /// A session gave this time back.
    Released {
        session_id: Uuid,
        interval: Interval,
    },
    /// The availability rules were replaced.
    AvailabilityChanged,
}

impl Announcement {
    /// The schedule event this announces, if it is one (and well formed).
    pub fn tutor_event(&self) -> Option<TutorEvent> {
        let seq = self.seq?;
        let interval = || {
            Some(Interval {
                start: self.start?,
                end: self.end?,
            })
        };
        let change = match self.kind.as_str() {
            "slot.booked" => Change::Booked {
                session_id: self.session_id?,
                interval: interval()?,
            },
            "slot.released" => Change::Released {
                session_id: self.session_id?,
                interval: interval()?,
            },
            "availability.changed" => Change::AvailabilityChanged,
            _ => return None,
        };
        Some(TutorEvent {
            tutor_id: self.tutor_id,
            seq,
            change,
        })
    }

    /// The participants to tell that their session changed, if this concerns a session.
    pub fn session_participants(&self) -> Option<(Uuid, Uuid, Uuid)> {
        Some((self.session_id?, self.tutor_id, self.student_id?))
    }
}

/// A message to a client, in the wire format of SPEC "Live updates".
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum ServerMessage {
    /// The free time of a subscription's range, as of event `seq`.
    #[serde(rename = "snapshot")]
    Snapshot {
        tutor_id: Uuid,
        seq: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        free: Vec<FreeInterval>,
    },
    /// A session took `[start, end)`.
    #[serde(rename = "slot.booked")]
    SlotBooked {
        tutor_id: Uuid,
        seq: i64,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// A session gave `[start, end)` back.
    #[serde(rename = "slot.released")]
    SlotReleased {
        tutor_id: Uuid,
        seq: i64,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// The tutor's rules changed; a fresh snapshot follows.
    #[serde(rename = "availability.changed")]
    AvailabilityChanged { tutor_id: Uuid, seq: i64 },
    /// One of the connected user's sessions changed (participants only).
    #[serde(rename = "session.updated")]
    SessionUpdated { session: serde_json::Value },
    /// The client's last message was refused, or a subscription ended (then `tutor_id` says
    /// which); the connection stays open.
    #[serde(rename = "error")]
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        tutor_id: Option<Uuid>,
    },
}

/// `{start, end}` of a free stretch in a snapshot.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FreeInterval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl From<&TutorEvent> for ServerMessage {
    fn from(event: &TutorEvent) -> Self {
        let (tutor_id, seq) = (event.tutor_id, event.seq);
        match event.change {
            Change::Booked { interval, .. } => Self::SlotBooked {
                tutor_id,
                seq,
                start: interval.start,
                end: interval.end,
            },
            Change::Released { interval, .. } => Self::SlotReleased {
                tutor_id,
                seq,
                start: interval.start,
                end: interval.end,
            },
            Change::AvailabilityChanged => Self::AvailabilityChanged { tutor_id, seq },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_parse_into_events() {
        let raw = r#"{"tutor_id": "01a1fdc8-c025-75a9-a39f-8523e11dc219", "seq": 7,
                      "type": "slot.booked", "start": "2026-12-01T14:00:00+00:00",
                      "end": "2026-12-01T15:00:00+00:00",
                      "session_id": "01a1fdc8-c025-75a9-a39f-8523e11dc21a",
                      "student_id": "01a1fdc8-c025-75a9-a39f-8523e11dc21b"}"#;
        let announcement: Announcement = serde_json::from_str(raw).expect("parses");
        let event = announcement.tutor_event().expect("an event");
        assert_eq!(event.seq, 7);
        assert!(matches!(event.change, Change::Booked { .. }));
        let wire = serde_json::to_value(ServerMessage::from(&event)).expect("serializes");
        assert_eq!(wire["type"], "slot.booked");
        assert_eq!(wire["seq"], 7);
        assert_eq!(wire["start"], "2026-12-01T14:00:00Z");
    }

    #[test]
    fn a_session_update_is_not_a_schedule_event() {
        let raw = r#"{"tutor_id": "01a1fdc8-c025-75a9-a39f-8523e11dc219", "type": "session.updated",
                      "session_id": "01a1fdc8-c025-75a9-a39f-8523e11dc21a",
                      "student_id": "01a1fdc8-c025-75a9-a39f-8523e11dc21b"}"#;
        let announcement: Announcement = serde_json::from_str(raw).expect("parses");
        assert!(announcement.tutor_event().is_none());
        assert!(announcement.session_participants().is_some());
    }
}
