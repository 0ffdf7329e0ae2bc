//! Provider events (webhooks), each applied exactly once.

use sqlx::PgPool;
use uuid::Uuid;

use super::{mark_session_paid, mark_session_refunded};

/// A provider event, once verified.
#[derive(Debug, Clone)]
pub struct ProviderEvent<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    /// The provider's id of the charge it concerns (a PaymentIntent id).
    pub charge_ref: Option<&'a str>,
    /// Our id of the payment, which the charge carries in its metadata: it finds a payment
    /// whose charge was made but never answered (so whose provider id we never learnt).
    pub payment_id: Option<Uuid>,
}

/// Applies a provider's event exactly once: the event id is recorded in the same transaction
/// as its effect, so a replay finds it and changes nothing. Returns whether it was new.
pub async fn apply_event(
    pool: &PgPool,
    provider: &str,
    event: &ProviderEvent<'_>,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let new: Option<String> = sqlx::query_scalar(
        "INSERT INTO webhook_events (provider, event_id, event_type) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(provider)
    .bind(event.event_id)
    .bind(event.event_type)
    .fetch_optional(&mut *tx)
    .await?;
    if new.is_none() {
        return Ok(false);
    }
    if let Some(charge_ref) = event.charge_ref {
        match event.event_type {
            "payment_intent.succeeded" => {
                // A charge given up as failed that succeeds after all (an attempt failed, then
                // the student paid with the same intent) is the session's payment, unless
                // another charge has taken its place meanwhile (and perhaps been refunded).
                // Under a savepoint: a charge beginning concurrently may take that place first,
                // and the one-live-charge index then refuses this update.
                let mut attempt = sqlx::Connection::begin(&mut *tx).await?;
                let settled: sqlx::Result<Option<Uuid>> = sqlx::query_scalar(
                    "UPDATE payments p SET status = 'succeeded', provider_ref = $2, \
                                           updated_at = now() \
                     WHERE provider = $1 \
                       AND (provider_ref = $2 OR (provider_ref IS NULL AND id = $3)) \
                       AND (status IN ('pending', 'requires_action') \
                            OR (status = 'failed' AND NOT EXISTS ( \
                                    SELECT 1 FROM payments o \
                                    WHERE o.session_id = p.session_id AND o.id <> p.id \
                                      AND o.status IN ('pending', 'requires_action', \
                                                       'succeeded', 'refunded')))) \
                     RETURNING session_id",
                )
                .bind(provider)
                .bind(charge_ref)
                .bind(event.payment_id)
                .fetch_optional(&mut *attempt)
                .await;
                let session = match settled {
                    Ok(session) => {
                        attempt.commit().await?;
                        session
                    }
                    Err(sqlx::Error::Database(err))
                        if err.constraint() == Some("payments_one_live_per_session") =>
                    {
                        attempt.rollback().await?;
                        None
                    }
                    Err(err) => return Err(err),
                };
                match session {
                    Some(session) => {
                        mark_session_paid(&mut tx, session).await?;
                    }
                    None => warn_if_charged_twice(&mut tx, provider, charge_ref).await?,
                }
            }
            "payment_intent.payment_failed" => {
                // An attempt failed. A charge waiting on the student stays theirs to complete
                // (the intent takes another attempt with the same client secret): it ends only
                // when it is cancelled. One never answered (pending) has failed.
                sqlx::query(
                    "UPDATE payments \
                     SET status = CASE status WHEN 'pending' THEN 'failed' ELSE status END, \
                         failure_code = 'payment_failed', provider_ref = $2, updated_at = now() \
                     WHERE provider = $1 \
                       AND (provider_ref = $2 OR (provider_ref IS NULL AND id = $3)) \
                       AND status IN ('pending', 'requires_action')",
                )
                .bind(provider)
                .bind(charge_ref)
                .bind(event.payment_id)
                .execute(&mut *tx)
                .await?;
            }
            "charge.refunded" => {
                let session: Option<Uuid> = sqlx::query_scalar(
                    "UPDATE payments SET status = 'refunded', updated_at = now() \
                     WHERE provider = $1 AND provider_ref = $2 AND status = 'succeeded' \
                     RETURNING session_id",
                )
                .bind(provider)
                .bind(charge_ref)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(session) = session {
                    mark_session_refunded(&mut tx, session).await?;
                }
            }
            // Other event types are recorded (so replays stay cheap) and otherwise ignored.
            _ => {}
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// A success that found no charge to settle: a replay, an intent of no payment of ours, or money
/// taken by a charge given up as failed after another charge of its session took its place. The
/// last needs a person: it is logged as an error.
async fn warn_if_charged_twice(
    conn: &mut sqlx::PgConnection,
    provider: &str,
    charge_ref: &str,
) -> sqlx::Result<()> {
    let given_up: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, session_id FROM payments \
         WHERE provider = $1 AND provider_ref = $2 AND status = 'failed'",
    )
    .bind(provider)
    .bind(charge_ref)
    .fetch_optional(conn)
    .await?;
    if let Some((payment, session)) = given_up {
        tracing::error!(
            %payment, %session, charge = charge_ref,
            "a charge given up as failed succeeded after another charge of its session took its \
             place: refund it at the provider"
        );
    }
    Ok(())
}
