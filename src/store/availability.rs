//! A tutor's availability rules and what its actor loads at activation.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::sessions;
use crate::domain::TimeZone;
use crate::domain::availability::{
    AvailabilityRules, AvailabilityRulesDto, ExceptionDto, WeeklyWindowDto,
};

#[derive(sqlx::FromRow)]
struct RulesRow {
    active: bool,
    timezone: String,
    weekly: Json<Vec<WeeklyWindowDto>>,
    exceptions: Json<Vec<ExceptionDto>>,
    slot_minutes: i32,
    min_duration_minutes: i32,
    max_duration_minutes: i32,
    min_notice_minutes: i32,
    horizon_days: i32,
    buffer_minutes: i32,
}

/// A tutor's rules, and whether the tutor is active; `None` for an unknown tutor.
pub async fn load_rules(
    db: impl PgExecutor<'_>,
    tutor_id: Uuid,
) -> anyhow::Result<Option<(bool, AvailabilityRules)>> {
    let row: Option<RulesRow> = sqlx::query_as(
        "SELECT u.deactivated_at IS NULL AS active, t.timezone, r.weekly, r.exceptions, \
                r.slot_minutes, r.min_duration_minutes, r.max_duration_minutes, \
                r.min_notice_minutes, r.horizon_days, r.buffer_minutes \
         FROM tutors t JOIN users u ON u.id = t.user_id \
         JOIN availability_rules r ON r.tutor_id = t.user_id \
         WHERE t.user_id = $1",
    )
    .bind(tutor_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let timezone = TimeZone::parse(&row.timezone)
        .map_err(|e| anyhow::anyhow!("tutor {tutor_id} has a bad stored time zone: {e}"))?;
    let dto = AvailabilityRulesDto {
        timezone: Some(row.timezone.clone()),
        weekly: row.weekly.0,
        exceptions: row.exceptions.0,
        slot_minutes: Some(row.slot_minutes.into()),
        min_duration_minutes: Some(row.min_duration_minutes.into()),
        max_duration_minutes: Some(row.max_duration_minutes.into()),
        min_notice_minutes: Some(row.min_notice_minutes.into()),
        horizon_days: Some(row.horizon_days.into()),
        buffer_minutes: Some(row.buffer_minutes.into()),
    };
    let rules = AvailabilityRules::parse(&dto, timezone).map_err(|errors| {
        anyhow::anyhow!("tutor {tutor_id} has stored rules that no longer parse: {errors:?}")
    })?;
    Ok(Some((row.active, rules)))
}

/// Everything a tutor's actor holds: whether the tutor is active, its rules, its active
/// sessions that have not ended long ago, and the number of the last event they reflect.
pub struct TutorSchedule {
    pub active: bool,
    pub rules: AvailabilityRules,
    pub busy: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>,
    pub seq: i64,
}

/// How far back an actor keeps ended sessions: past the largest buffer a rule may ask for.
pub const BUSY_LOOKBACK: TimeDelta = TimeDelta::days(2);

/// Loads what a tutor's actor holds; `None` for an unknown tutor. All of it is read in one
/// snapshot, so the sessions and rules are exactly those of event `seq`.
pub async fn load_schedule(pool: &PgPool, tutor_id: Uuid) -> anyhow::Result<Option<TutorSchedule>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let Some((active, rules)) = load_rules(&mut *tx, tutor_id).await? else {
        return Ok(None);
    };
    let seq: i64 = sqlx::query_scalar("SELECT event_seq FROM tutors WHERE user_id = $1")
        .bind(tutor_id)
        .fetch_one(&mut *tx)
        .await?;
    let busy = sessions::busy_of_tutor(&mut *tx, tutor_id, Utc::now() - BUSY_LOOKBACK).await?;
    tx.commit().await?;
    Ok(Some(TutorSchedule {
        active,
        rules,
        busy,
        seq,
    }))
}

/// Replaces a tutor's rules and time zone in one transaction, announcing the change; returns
/// the event's number, or `None` when the tutor is not active.
pub async fn replace_rules(
    pool: &PgPool,
    tutor_id: Uuid,
    rules: &AvailabilityRules,
) -> sqlx::Result<Option<i64>> {
    let dto = rules.to_dto();
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE availability_rules SET weekly = $2, exceptions = $3, slot_minutes = $4, \
                min_duration_minutes = $5, max_duration_minutes = $6, min_notice_minutes = $7, \
                horizon_days = $8, buffer_minutes = $9, updated_at = now() \
         WHERE tutor_id = $1 \
           AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND deactivated_at IS NULL)",
    )
    .bind(tutor_id)
    .bind(Json(&dto.weekly))
    .bind(Json(&dto.exceptions))
    .bind(as_i32(rules.slot_minutes()))
    .bind(as_i32(rules.min_duration_minutes()))
    .bind(as_i32(rules.max_duration_minutes()))
    .bind(as_i32(rules.min_notice_minutes()))
    .bind(as_i32(rules.horizon_days()))
    .bind(as_i32(rules.buffer_minutes()))
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query("UPDATE tutors SET timezone = $2 WHERE user_id = $1")
        .bind(tutor_id)
        .bind(rules.timezone().name())
        .execute(&mut *tx)
        .await?;
    let seq: i64 = sqlx::query_scalar(
        "SELECT tutoring_emit($1, 'availability.changed', NULL, NULL, NULL, NULL)",
    )
    .bind(tutor_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(seq))
}

/// Rule numbers are validated far below `i32::MAX`.
fn as_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
