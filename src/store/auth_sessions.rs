//! Server-side records of issued tokens, so that a logout revokes a token on every node.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{Acquire, PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::auth::Claims;

/// Records a token just issued.
pub async fn insert(db: impl PgExecutor<'_>, claims: &Claims) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO auth_sessions (jti, user_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(claims.jti)
    .bind(claims.sub)
    .bind(claims.issued_at())
    .bind(claims.expires_at())
    .execute(db)
    .await?;
    Ok(())
}

/// Marks a token revoked (idempotent).
///
/// Revocations are stamped with the clock when the statement runs, not when its transaction
/// began (`now()`): other nodes poll for revocations stamped since shortly before their last
/// poll, so a stamp must be close to its commit. Callers revoke last in their transactions.
pub async fn revoke(db: impl PgExecutor<'_>, jti: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE auth_sessions SET revoked_at = clock_timestamp() \
         WHERE jti = $1 AND revoked_at IS NULL",
    )
    .bind(jti)
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes every live token of `user_id` except `keep`; returns what was revoked. Stamped as
/// [`revoke`] is: call it last in a transaction.
pub async fn revoke_all_but(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    keep: Uuid,
) -> sqlx::Result<Vec<(Uuid, DateTime<Utc>)>> {
    sqlx::query_as(
        "UPDATE auth_sessions SET revoked_at = clock_timestamp() \
         WHERE user_id = $1 AND jti <> $2 AND revoked_at IS NULL AND expires_at > now() \
         RETURNING jti, expires_at",
    )
    .bind(user_id)
    .bind(keep)
    .fetch_all(db)
    .await
}

/// Unexpired tokens revoked since a point in time, accounts deactivated since then whose
/// tokens may still be unexpired, and the database's clock when read.
pub struct RevokedBatch {
    pub revoked: Vec<(Uuid, DateTime<Utc>)>,
    pub deactivated: Vec<(Uuid, DateTime<Utc>)>,
    pub db_now: DateTime<Utc>,
}

/// Reads revocations made at or after `since` (all when `None`) of tokens that expired no more
/// than `margin` ago, and deactivations made at or after `since` no more than `token_ttl` and
/// `margin` ago (any token of such an account has expired).
pub async fn revoked_since(
    conn: &mut PgConnection,
    since: Option<DateTime<Utc>>,
    margin: TimeDelta,
    token_ttl: TimeDelta,
) -> sqlx::Result<RevokedBatch> {
    let mut tx = conn.begin().await?;
    let db_now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *tx)
        .await?;
    let revoked = sqlx::query_as(
        "SELECT jti, expires_at FROM auth_sessions \
         WHERE revoked_at IS NOT NULL AND ($1::timestamptz IS NULL OR revoked_at >= $1) \
           AND expires_at > now() - make_interval(secs => $2)",
    )
    .bind(since)
    .bind(margin.num_seconds() as f64)
    .fetch_all(&mut *tx)
    .await?;
    let deactivated = sqlx::query_as(
        "SELECT id, deactivated_at FROM users \
         WHERE deactivated_at IS NOT NULL AND ($1::timestamptz IS NULL OR deactivated_at >= $1) \
           AND deactivated_at > now() - make_interval(secs => $2)",
    )
    .bind(since)
    .bind((token_ttl + margin).num_seconds() as f64)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RevokedBatch {
        revoked,
        deactivated,
        db_now,
    })
}

/// Deletes the records of tokens expired more than a day ago (run periodically).
pub async fn prune(pool: &PgPool) -> sqlx::Result<u64> {
    let deleted =
        sqlx::query("DELETE FROM auth_sessions WHERE expires_at < now() - interval '1 day'")
            .execute(pool)
            .await?;
    Ok(deleted.rows_affected())
}
