//! A tutor's availability rules and what its actor loads at activation.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use sqlx::types::Json;
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
    pool: &PgPool,
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
    .fetch_optional(pool)
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

/// Everything a tutor's actor holds: whether the tutor is active, its rules, and its active
/// sessions that have not ended long ago.
pub struct TutorSchedule {
    pub active: bool,
    pub rules: AvailabilityRules,
    pub busy: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>,
}

/// How far back an actor keeps ended sessions: past the largest buffer a rule may ask for.
pub const BUSY_LOOKBACK: TimeDelta = TimeDelta::days(2);

/// Loads what a tutor's actor holds; `None` for an unknown tutor.
pub async fn load_schedule(pool: &PgPool, tutor_id: Uuid) -> anyhow::Result<Option<TutorSchedule>> {
    let Some((active, rules)) = load_rules(pool, tutor_id).await? else {
        return Ok(None);
    };
    let busy = sessions::busy_of_tutor(pool, tutor_id, Utc::now() - BUSY_LOOKBACK).await?;
    Ok(Some(TutorSchedule {
        active,
        rules,
        busy,
    }))
}

/// Replaces a tutor's rules and time zone in one transaction.
pub async fn replace_rules(
    pool: &PgPool,
    tutor_id: Uuid,
    rules: &AvailabilityRules,
) -> sqlx::Result<bool> {
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
    .bind(i32::try_from(rules.slot_minutes()).unwrap_or(i32::MAX))
    .bind(i32::try_from(rules.min_duration_minutes()).unwrap_or(i32::MAX))
    .bind(i32::try_from(rules.max_duration_minutes()).unwrap_or(i32::MAX))
    .bind(i32::try_from(rules.min_notice_minutes()).unwrap_or(i32::MAX))
    .bind(i32::try_from(rules.horizon_days()).unwrap_or(i32::MAX))
    .bind(i32::try_from(rules.buffer_minutes()).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE tutors SET timezone = $2 WHERE user_id = $1")
        .bind(tutor_id)
        .bind(rules.timezone().name())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
