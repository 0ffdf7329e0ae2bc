//! `Idempotency-Key`: the same key and request within 24 h get the first result, never a second
//! effect.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// How long a request may hold its key before a retry may take it over.
pub const LEASE_SECS: f64 = 60.0;

/// What to do with a request that carries a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key is ours: run the request, creating the resource with this id.
    Run { resource_id: Uuid },
    /// A retry of an attempt that died: the resource with this id may or may not exist.
    Resume { resource_id: Uuid },
    /// Answered before: send this again.
    Replay { status: u16, body: Value },
    /// Another request with this key is running.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: String,
    response_status: Option<i16>,
    response_body: Option<Value>,
    resource_id: Option<Uuid>,
    taken: bool,
    resumed: bool,
}

/// Claims `key` for a request whose fingerprint is `request_hash`.
pub async fn claim(
    pool: &PgPool,
    user_id: Uuid,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> sqlx::Result<Claim> {
    let fresh_id = Uuid::now_v7();
    // Insert the key, or take it over when it expired (24 h) or its holder died (lease over,
    // no answer). `taken` says whether this call now holds the key.
    let row: Option<KeyRow> = sqlx::query_as(
        "WITH attempt AS ( \
             INSERT INTO idempotency_keys (user_id, scope, idempotency_key, request_hash, \
                                           resource_id, locked_until) \
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) \
             ON CONFLICT (user_id, scope, idempotency_key) DO UPDATE \
                 SET locked_until = EXCLUDED.locked_until, \
                     request_hash = CASE WHEN idempotency_keys.created_at < now() - interval '24 hours' \
                                         THEN EXCLUDED.request_hash \
                                         ELSE idempotency_keys.request_hash END, \
                     resource_id = CASE WHEN idempotency_keys.created_at < now() - interval '24 hours' \
                                        THEN EXCLUDED.resource_id \
                                        ELSE idempotency_keys.resource_id END, \
                     response_status = NULL, response_body = NULL, \
                     created_at = CASE WHEN idempotency_keys.created_at < now() - interval '24 hours' \
                                       THEN now() ELSE idempotency_keys.created_at END \
                 WHERE idempotency_keys.created_at < now() - interval '24 hours' \
                    OR (idempotency_keys.response_status IS NULL \
                        AND idempotency_keys.locked_until < now() \
                        AND idempotency_keys.request_hash = EXCLUDED.request_hash) \
             RETURNING request_hash, response_status, response_body, resource_id, \
                       true AS taken, (resource_id <> $5) AS resumed) \
         SELECT * FROM attempt \
         UNION ALL \
         SELECT request_hash, response_status, response_body, resource_id, \
                false AS taken, false AS resumed \
         FROM idempotency_keys \
         WHERE user_id = $1 AND scope = $2 AND idempotency_key = $3 \
           AND NOT EXISTS (SELECT 1 FROM attempt)",
    )
    .bind(user_id)
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(fresh_id)
    .bind(LEASE_SECS)
    .fetch_optional(pool)
    .await?;
    // No row: another request inserted the key and has not committed yet.
    let Some(row) = row else {
        return Ok(Claim::InFlight);
    };
    Ok(match row {
        KeyRow {
            taken: true,
            resumed: false,
            resource_id,
            ..
        } => Claim::Run {
            resource_id: resource_id.unwrap_or(fresh_id),
        },
        KeyRow {
            taken: true,
            resumed: true,
            resource_id,
            ..
        } => Claim::Resume {
            resource_id: resource_id.unwrap_or(fresh_id),
        },
        KeyRow {
            request_hash: stored,
            ..
        } if stored != request_hash => Claim::Mismatch,
        KeyRow {
            response_status: Some(status),
            response_body: Some(body),
            ..
        } => Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        },
        _ => Claim::InFlight,
    })
}

/// Records the answer to send again for this key.
pub async fn complete(
    pool: &PgPool,
    user_id: Uuid,
    scope: &str,
    key: &str,
    status: u16,
    body: &Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $4, response_body = $5 \
         WHERE user_id = $1 AND scope = $2 AND idempotency_key = $3",
    )
    .bind(user_id)
    .bind(scope)
    .bind(key)
    .bind(i16::try_from(status).unwrap_or(500))
    .bind(body)
    .execute(pool)
    .await?;
    Ok(())
}
