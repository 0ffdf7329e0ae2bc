//! Money owed back: succeeded payments of sessions cancelled after being paid, found through a
//! small partial index, and their refunds recorded.

use sqlx::PgPool;
use uuid::Uuid;

use super::payments::{COLUMNS, PaymentRecord, mark_session_refunded};

/// The succeeded payment, through `provider`, of a session that was cancelled after being paid:
/// money owed back.
pub async fn by_session(
    pool: &PgPool,
    provider: &str,
    session_id: Uuid,
) -> sqlx::Result<Option<PaymentRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments \
         WHERE session_id = $1 AND status = 'succeeded' AND provider = $2 \
           AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = $1 \
                       AND s.status = 'cancelled' AND s.payment_status = 'paid')"
    )))
    .bind(session_id)
    .bind(provider)
    .fetch_optional(pool)
    .await
}

/// Money owed back on any session, at most `limit` payments: those never tried first, then
/// those tried longest ago, so a refund that keeps failing does not hold up the others. Reads
/// only the small index of sessions that owe a refund.
pub async fn oldest_first(
    pool: &PgPool,
    provider: &str,
    limit: i64,
) -> sqlx::Result<Vec<PaymentRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments \
         WHERE status = 'succeeded' AND provider = $1 \
           AND session_id IN (SELECT id FROM sessions \
                              WHERE status = 'cancelled' AND payment_status = 'paid') \
         ORDER BY refund_attempted_at NULLS FIRST, updated_at \
         LIMIT $2"
    )))
    .bind(provider)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Notes that a refund of the payment is being tried now.
pub async fn attempted(pool: &PgPool, payment_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE payments SET refund_attempted_at = now() WHERE id = $1")
        .bind(payment_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records a refund: the payment and its session become `refunded`, and the participants are
/// told.
pub async fn mark_refunded(pool: &PgPool, payment_id: Uuid, refund_ref: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let session_id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE payments SET status = 'refunded', refund_ref = $2, updated_at = now() \
         WHERE id = $1 AND status = 'succeeded' RETURNING session_id",
    )
    .bind(payment_id)
    .bind(refund_ref)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(session_id) = session_id {
        mark_session_refunded(&mut tx, session_id).await?;
    }
    tx.commit().await?;
    Ok(())
}
