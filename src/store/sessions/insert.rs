//! Writing a batch of bookings accepted by tutors' actors, and reading why a row was refused.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Sequenced, find};

/// A booking the tutor's actor has accepted, to be written.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub tutor_id: Uuid,
    pub student_id: Uuid,
    pub scheduled_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub duration_minutes: i32,
}

/// Why the database refused a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertRefusal {
    /// Another active session of the tutor overlaps (booked through another node, say).
    SlotTaken,
    /// Another active session of the student overlaps.
    StudentBusy,
    /// The tutor is deactivated.
    TutorInactive,
    /// The student is deactivated.
    StudentInactive,
    /// Not written, for a reason that could not be read back (the database went away).
    Undetermined,
}

/// Builds the statement that writes a batch of bookings, with or without an `ON CONFLICT` clause.
///
/// One statement, so one round trip and one transaction:
/// - `ins` inserts the rows whose tutor and student are active. The accounts are share-locked, so
///   a concurrent deactivation cannot slip between this check and the insert. The price comes from
///   the tutor's price at commit time, rounded half up.
/// - `bumped` advances each tutor's event sequence once by the number of its rows, and `ev` numbers
///   the rows of each tutor in time order after the previous value.
/// - `announced` tells every listening process, with one notification per [`EVENTS_PER_NOTIFICATION`]
///   rows rather than one per row: a payload must stay under PostgreSQL's 8,000 bytes.
macro_rules! insert_batch_sql {
    ($on_conflict:literal) => {
        concat!(
            "WITH b AS ( \
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], \
                                      $5::timestamptz[], $6::int[]) \
                     AS b(id, tutor_id, student_id, scheduled_at, ends_at, duration_minutes)), \
             ins AS ( \
                 INSERT INTO sessions (id, tutor_id, student_id, scheduled_at, ends_at, \
                                       duration_minutes, price_cents, currency, \
                                       price_per_hour_cents) \
                 SELECT b.id, b.tutor_id, b.student_id, b.scheduled_at, b.ends_at, \
                        b.duration_minutes, (t.price_cents * b.duration_minutes + 30) / 60, \
                        t.currency, t.price_cents \
                 FROM b JOIN tutors t ON t.user_id = b.tutor_id \
                 WHERE EXISTS (SELECT 1 FROM users u \
                               WHERE u.id = b.tutor_id AND u.deactivated_at IS NULL FOR SHARE) \
                   AND EXISTS (SELECT 1 FROM users u \
                               WHERE u.id = b.student_id AND u.role = 'student' \
                                 AND u.deactivated_at IS NULL FOR SHARE) \
                 ORDER BY b.tutor_id, b.scheduled_at ",
            $on_conflict,
            "    RETURNING id, tutor_id, student_id, scheduled_at, ends_at, duration_minutes, \
                           status, price_cents, currency, payment_status, created_at, \
                           updated_at, cancelled_reason), \
             counts AS (SELECT tutor_id, count(*) AS n FROM ins GROUP BY tutor_id), \
             bumped AS ( \
                 UPDATE tutors t SET event_seq = t.event_seq + c.n \
                 FROM counts c WHERE t.user_id = c.tutor_id \
                 RETURNING t.user_id, t.event_seq - c.n AS base), \
             ev AS ( \
                 SELECT ins.*, bumped.base + row_number() OVER ( \
                            PARTITION BY ins.tutor_id ORDER BY ins.scheduled_at) AS seq \
                 FROM ins JOIN bumped ON bumped.user_id = ins.tutor_id), \
             announced AS ( \
                 SELECT pg_notify('tutoring_events', json_agg(json_build_object( \
                            'tutor_id', tutor_id, 'seq', seq, 'type', 'slot.booked', \
                            'start', scheduled_at, 'end', ends_at, 'session_id', id, \
                            'student_id', student_id) ORDER BY tutor_id, seq)::text) \
                 FROM (SELECT ev.*, (row_number() OVER (ORDER BY tutor_id, seq) - 1) / $7 \
                                    AS chunk \
                       FROM ev) numbered \
                 GROUP BY chunk) \
             SELECT ev.*, (SELECT count(*) FROM announced) AS notifications FROM ev"
        )
    };
}

/// Rows per notification: each is under 300 bytes of JSON, and a payload must stay under 8,000.
const EVENTS_PER_NOTIFICATION: i64 = 20;

/// The common case: every row is written, or, if one breaks an exclusion constraint, none is.
const INSERT_ALL: &str = insert_batch_sql!("");
/// After a conflict: each row is written or skipped on its own. `ON CONFLICT DO NOTHING` also
/// skips a row that overlaps one earlier in the same batch, and never deadlocks concurrent
/// inserters of one slot; it costs a second index probe per constraint, so it is not the default.
const INSERT_EACH: &str = insert_batch_sql!("ON CONFLICT DO NOTHING");

/// SQLSTATE `exclusion_violation`.
const EXCLUSION_VIOLATION: &str = "23P01";
/// SQLSTATE `unique_violation`: the same booking sent twice (a retry racing its first commit).
const UNIQUE_VIOLATION: &str = "23505";

/// Writes a batch of bookings in one transaction, on one connection. Each row either lands or
/// is refused on its own: the answer holds, in the batch's order, each row as written, or `None`
/// when it was refused ([`refusal_reason`] says why). Bookings normally conflict with nothing
/// (the tutor's actor has checked them), so the batch is first written whole; only when that
/// breaks an exclusion constraint (or meets a row already written) is it written again row by
/// row.
pub async fn insert_batch(
    conn: &mut PgConnection,
    batch: &[NewSession],
) -> sqlx::Result<Vec<Option<Sequenced>>> {
    let inserted = match insert_rows(&mut *conn, INSERT_ALL, batch).await {
        Err(sqlx::Error::Database(err))
            if matches!(
                err.code().as_deref(),
                Some(EXCLUSION_VIOLATION | UNIQUE_VIOLATION)
            ) =>
        {
            insert_rows(&mut *conn, INSERT_EACH, batch).await?
        }
        other => other?,
    };
    let mut inserted: HashMap<Uuid, Sequenced> = inserted
        .into_iter()
        .map(|row| (row.record.id, row))
        .collect();
    Ok(batch.iter().map(|row| inserted.remove(&row.id)).collect())
}

async fn insert_rows(
    conn: &mut PgConnection,
    statement: &'static str,
    batch: &[NewSession],
) -> sqlx::Result<Vec<Sequenced>> {
    let ids: Vec<Uuid> = batch.iter().map(|s| s.id).collect();
    let tutors: Vec<Uuid> = batch.iter().map(|s| s.tutor_id).collect();
    let students: Vec<Uuid> = batch.iter().map(|s| s.student_id).collect();
    let starts: Vec<DateTime<Utc>> = batch.iter().map(|s| s.scheduled_at).collect();
    let ends: Vec<DateTime<Utc>> = batch.iter().map(|s| s.ends_at).collect();
    let durations: Vec<i32> = batch.iter().map(|s| s.duration_minutes).collect();
    sqlx::query_as(statement)
        .bind(&ids)
        .bind(&tutors)
        .bind(&students)
        .bind(&starts)
        .bind(&ends)
        .bind(&durations)
        .bind(EVENTS_PER_NOTIFICATION)
        .fetch_all(conn)
        .await
}

/// Why [`insert_batch`] refused a row, read after its commit: the rare path. A row sent twice (a
/// retry racing its first commit) is the first one's success. When the reason cannot be read, or
/// what refused the row has gone meanwhile (a session cancelled since), it is
/// [`InsertRefusal::Undetermined`]: nothing was written, and the caller may retry.
pub async fn refusal_reason(pool: &PgPool, row: &NewSession) -> Result<Sequenced, InsertRefusal> {
    match read_refusal_reason(pool, row).await {
        Ok(reason) => reason,
        Err(err) => {
            tracing::warn!(error = %err, "could not tell why a booking was refused");
            Err(InsertRefusal::Undetermined)
        }
    }
}

async fn read_refusal_reason(
    pool: &PgPool,
    row: &NewSession,
) -> sqlx::Result<Result<Sequenced, InsertRefusal>> {
    if let Some(existing) = find(pool, row.id).await?
        && existing.tutor_id == row.tutor_id
        && existing.student_id == row.student_id
        && existing.scheduled_at == row.scheduled_at
        && existing.ends_at == row.ends_at
    {
        // Its event was recorded when it first committed; 0 is never a new event.
        return Ok(Ok(Sequenced {
            record: existing,
            seq: 0,
        }));
    }
    let (tutor_active, student_active, slot_taken, student_busy): (bool, bool, bool, bool) =
        sqlx::query_as(
            "SELECT \
               EXISTS (SELECT 1 FROM users WHERE id = $1 AND deactivated_at IS NULL), \
               EXISTS (SELECT 1 FROM users WHERE id = $2 AND role = 'student' \
                                               AND deactivated_at IS NULL), \
               EXISTS (SELECT 1 FROM sessions WHERE tutor_id = $1 AND status <> 'cancelled' \
                                                AND period && tstzrange($3, $4, '[)')), \
               EXISTS (SELECT 1 FROM sessions WHERE student_id = $2 AND status <> 'cancelled' \
                                                AND period && tstzrange($3, $4, '[)'))",
        )
        .bind(row.tutor_id)
        .bind(row.student_id)
        .bind(row.scheduled_at)
        .bind(row.ends_at)
        .fetch_one(pool)
        .await?;
    Ok(Err(if !tutor_active {
        InsertRefusal::TutorInactive
    } else if !student_active {
        InsertRefusal::StudentInactive
    } else if slot_taken {
        InsertRefusal::SlotTaken
    } else if student_busy {
        InsertRefusal::StudentBusy
    } else {
        InsertRefusal::Undetermined
    }))
}
