//! Moving a scheduled session to a new time in one transaction.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::SessionRecord;

/// Why a reschedule was refused by the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescheduleRefusal {
    /// The session is no longer scheduled.
    NotScheduled,
    /// Another active session of the tutor overlaps the new time.
    SlotTaken,
    /// Another active session of the student overlaps the new time.
    StudentBusy,
    /// The tutor's account is deactivated.
    TutorInactive,
    /// The student's account is deactivated.
    StudentInactive,
}

/// A session moved: its new state, the time it left, and the two events the move took (the old
/// time released, then the new time booked).
#[derive(Debug, Clone)]
pub struct Rescheduled {
    pub record: SessionRecord,
    pub old: (DateTime<Utc>, DateTime<Utc>),
    pub released_seq: i64,
    pub booked_seq: i64,
}

/// Moves a scheduled session in one transaction: the exclusion constraints check the new time
/// against every other active session, and a refusal leaves the old time in place. An unpaid
/// session's price follows a new duration at the hourly rate it was booked at; a paid one, or
/// one being charged, keeps its price.
pub async fn reschedule(
    pool: &PgPool,
    id: Uuid,
    scheduled_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    duration_minutes: i32,
) -> sqlx::Result<Result<Rescheduled, RescheduleRefusal>> {
    let mut tx = pool.begin().await?;
    // A session's participants never change.
    let participants: Option<(Uuid, Uuid)> =
        sqlx::query_as("SELECT tutor_id, student_id FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((tutor_id, student_id)) = participants else {
        return Ok(Err(RescheduleRefusal::NotScheduled));
    };
    // Both accounts are held active, as a booking holds them, so a deactivation (which cancels
    // future sessions) cannot slip between this move and its commit. Accounts first, then the
    // session, the order in which a deactivation and a booking take them.
    let active: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE id IN ($1, $2) AND deactivated_at IS NULL \
         ORDER BY id FOR SHARE",
    )
    .bind(tutor_id)
    .bind(student_id)
    .fetch_all(&mut *tx)
    .await?;
    let held: Option<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT scheduled_at, ends_at FROM sessions \
         WHERE id = $1 AND status = 'scheduled' FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(old) = held else {
        return Ok(Err(RescheduleRefusal::NotScheduled));
    };
    if !active.contains(&tutor_id) {
        return Ok(Err(RescheduleRefusal::TutorInactive));
    }
    if !active.contains(&student_id) {
        return Ok(Err(RescheduleRefusal::StudentInactive));
    }
    let updated: Result<SessionRecord, sqlx::Error> = sqlx::query_as(
        "UPDATE sessions s SET scheduled_at = $2, ends_at = $3, duration_minutes = $4, \
                price_cents = CASE WHEN s.payment_status = 'unpaid' AND NOT EXISTS ( \
                                       SELECT 1 FROM payments p WHERE p.session_id = s.id \
                                         AND p.status IN ('pending', 'requires_action')) \
                                   THEN (COALESCE(s.price_per_hour_cents, \
                                                  (s.price_cents * 60 + s.duration_minutes / 2) \
                                                      / s.duration_minutes) * $4 + 30) / 60 \
                                   ELSE s.price_cents END, \
                updated_at = now() \
         WHERE s.id = $1 \
         RETURNING s.id, s.tutor_id, s.student_id, s.scheduled_at, s.ends_at, \
                   s.duration_minutes, s.status, s.price_cents, s.currency, s.payment_status, \
                   s.created_at, s.updated_at, s.cancelled_reason",
    )
    .bind(id)
    .bind(scheduled_at)
    .bind(ends_at)
    .bind(duration_minutes)
    .fetch_one(&mut *tx)
    .await;
    let record = match updated {
        Ok(record) => record,
        Err(sqlx::Error::Database(err))
            if err.constraint() == Some("sessions_tutor_no_overlap") =>
        {
            return Ok(Err(RescheduleRefusal::SlotTaken));
        }
        Err(sqlx::Error::Database(err))
            if err.constraint() == Some("sessions_student_no_overlap") =>
        {
            return Ok(Err(RescheduleRefusal::StudentBusy));
        }
        Err(err) => return Err(err),
    };
    // Released first, so a client applying the deltas in order ends with the right free time.
    let released_seq = emit(&mut tx, &record, "slot.released", old).await?;
    let booked_seq = emit(
        &mut tx,
        &record,
        "slot.booked",
        (record.scheduled_at, record.ends_at),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(Rescheduled {
        record,
        old,
        released_seq,
        booked_seq,
    }))
}

async fn emit(
    conn: &mut sqlx::PgConnection,
    session: &SessionRecord,
    kind: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT tutoring_emit($1, $2, $3, $4, $5, $6)")
        .bind(session.tutor_id)
        .bind(kind)
        .bind(start)
        .bind(end)
        .bind(session.id)
        .bind(session.student_id)
        .fetch_one(conn)
        .await
}
