//! Sessions (bookings): group-inserted by the persister (`insert.rs`), moved in one transaction
//! (`reschedule.rs`), changed one statement at a time otherwise.

mod insert;
mod reschedule;

pub use insert::{InsertRefusal, NewSession, insert_batch, refusal_reason};
pub use reschedule::{RescheduleRefusal, Rescheduled, reschedule};

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::domain::{PaymentStatus, SessionStatus};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: Uuid,
    pub tutor_id: Uuid,
    pub student_id: Uuid,
    pub scheduled_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub duration_minutes: i32,
    pub status: SessionStatus,
    pub price_cents: i64,
    pub currency: String,
    pub payment_status: PaymentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancelled_reason: Option<String>,
}

impl SessionRecord {
    /// Whether `user_id` is this session's tutor or student.
    pub fn is_participant(&self, user_id: Uuid) -> bool {
        self.tutor_id == user_id || self.student_id == user_id
    }
}

const COLUMNS: &str = "id, tutor_id, student_id, scheduled_at, ends_at, duration_minutes, status, \
                       price_cents, currency, payment_status, created_at, updated_at, \
                       cancelled_reason";

/// A session just changed, with the number its change took in the tutor's event sequence.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Sequenced {
    #[sqlx(flatten)]
    pub record: SessionRecord,
    pub seq: i64,
}
/// One session by id.
pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<SessionRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM sessions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The sessions with these ids that exist, in no particular order.
pub async fn find_many(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<SessionRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM sessions WHERE id = ANY($1)"
    )))
    .bind(ids)
    .fetch_all(db)
    .await
}

/// The active sessions of a tutor that end after `after`, by start: what the tutor's actor
/// holds in memory.
pub async fn busy_of_tutor(
    db: impl PgExecutor<'_>,
    tutor_id: Uuid,
    after: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>> {
    sqlx::query_as(
        "SELECT id, scheduled_at, ends_at FROM sessions \
         WHERE tutor_id = $1 AND status <> 'cancelled' AND ends_at > $2 \
         ORDER BY scheduled_at",
    )
    .bind(tutor_id)
    .bind(after)
    .fetch_all(db)
    .await
}

/// Cancels a scheduled session and announces its released time; `None` when it is not
/// scheduled any more (or does not exist).
pub async fn cancel(
    db: impl PgExecutor<'_>,
    id: Uuid,
    reason: Option<&str>,
) -> sqlx::Result<Option<Sequenced>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE sessions SET status = 'cancelled', cancelled_at = now(), cancelled_reason = $2, \
                             updated_at = now() \
         WHERE id = $1 AND status = 'scheduled' \
         RETURNING {COLUMNS}, \
                   tutoring_emit(tutor_id, 'slot.released', scheduled_at, ends_at, id, student_id) \
                       AS seq"
    )))
    .bind(id)
    .bind(reason)
    .fetch_optional(db)
    .await
}
/// Marks a session completed when its tutor says so, it is paid and it has started.
pub async fn complete(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<SessionRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE sessions SET status = 'completed', updated_at = now() \
         WHERE id = $1 AND status = 'scheduled' AND payment_status = 'paid' \
           AND scheduled_at <= now() \
         RETURNING {COLUMNS}, tutoring_session_updated(id, tutor_id, student_id) AS notified"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Filters of a user's session list.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub status: Option<SessionStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One page of a user's sessions (as student or tutor), latest `scheduled_at` first, after the
/// `(scheduled_at, id)` cursor.
pub async fn list_for_user(
    pool: &PgPool,
    user_id: Uuid,
    filter: &SessionFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<SessionRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM ( \
             SELECT * FROM sessions WHERE tutor_id = $1 \
             UNION ALL \
             SELECT * FROM sessions WHERE student_id = $1) s \
         WHERE ($2::text IS NULL OR status = $2) \
           AND ($3::timestamptz IS NULL OR scheduled_at >= $3) \
           AND ($4::timestamptz IS NULL OR scheduled_at < $4) \
           AND ($5::timestamptz IS NULL OR (scheduled_at, id) < ($5, $6)) \
         ORDER BY scheduled_at DESC, id DESC LIMIT $7"
    )))
    .bind(user_id)
    .bind(filter.status)
    .bind(filter.from)
    .bind(filter.to)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await
}
