//! Payments of sessions: at most one live charge per session (the schema holds it), and a
//! session becomes `paid` only in the transaction that records a succeeded charge.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::payments::{ChargeOutcome, ChargeStatus};

/// A payment as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRecord {
    pub id: Uuid,
    pub session_id: Uuid,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub idempotency_key: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub client_secret: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, session_id, provider, provider_ref, idempotency_key, amount_cents, \
                       currency, status, client_secret, created_at";

/// Why a charge could not begin.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the session is already paid")]
    AlreadyPaid,
    #[error("another charge of the session is in progress")]
    InProgress,
    #[error("the key was used for another charge")]
    KeyReused,
}

/// What to do with a charge request.
#[derive(Debug)]
pub enum Begun {
    /// A new pending payment: charge it.
    New(PaymentRecord),
    /// The same key charged this session before: answer with that payment.
    Replay(PaymentRecord),
    /// An earlier charge of the session, under another key, was never answered by the provider
    /// and its request is long over: send it again, with its own key, so the provider makes at
    /// most one charge of the two.
    Resume(PaymentRecord),
}

/// How long a charge may stay `pending` before another request may take it over. Longer than
/// any provider call may last (Stripe's client gives up after 25 s), so the first attempt is
/// over by then, however it ended.
const ABANDONED_AFTER_SECS: f64 = 60.0;

/// Records a pending payment for a session, unless one is live or the key was used.
pub async fn begin(
    pool: &PgPool,
    session_id: Uuid,
    provider: &str,
    key: &str,
    amount_cents: i64,
    currency: &str,
) -> Result<Begun, BeginError> {
    if let Some(existing) = find_by_key(pool, provider, key).await? {
        return if existing.session_id == session_id {
            Ok(Begun::Replay(existing))
        } else {
            Err(BeginError::KeyReused)
        };
    }
    let inserted: Result<PaymentRecord, sqlx::Error> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO payments (id, session_id, provider, idempotency_key, amount_cents, \
                               currency, status) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending') RETURNING {COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(session_id)
        .bind(provider)
        .bind(key)
        .bind(amount_cents)
        .bind(currency)
        .fetch_one(pool)
        .await;
    match inserted {
        Ok(payment) => Ok(Begun::New(payment)),
        Err(sqlx::Error::Database(err)) if err.constraint() == Some("payments_idempotency_key") => {
            // The same key, concurrently: the other request owns it.
            Err(BeginError::InProgress)
        }
        Err(sqlx::Error::Database(err))
            if err.constraint() == Some("payments_one_live_per_session") =>
        {
            // A pending charge nobody has touched for long is taken over (one request wins
            // the update); one still in flight, or waiting on the client, is in progress.
            let abandoned: Option<PaymentRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE payments SET updated_at = now() \
                 WHERE session_id = $1 AND status = 'pending' \
                   AND updated_at < now() - make_interval(secs => $2) \
                 RETURNING {COLUMNS}"
            )))
            .bind(session_id)
            .bind(ABANDONED_AFTER_SECS)
            .fetch_optional(pool)
            .await?;
            if let Some(abandoned) = abandoned {
                return Ok(Begun::Resume(abandoned));
            }
            let live: Option<String> = sqlx::query_scalar(
                "SELECT status FROM payments WHERE session_id = $1 \
                 AND status IN ('pending', 'requires_action', 'succeeded')",
            )
            .bind(session_id)
            .fetch_optional(pool)
            .await?;
            Err(match live.as_deref() {
                Some("succeeded") => BeginError::AlreadyPaid,
                _ => BeginError::InProgress,
            })
        }
        Err(err) => Err(err.into()),
    }
}

/// The payment made with this key, if any.
pub async fn find_by_key(
    pool: &PgPool,
    provider: &str,
    key: &str,
) -> sqlx::Result<Option<PaymentRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE provider = $1 AND idempotency_key = $2"
    )))
    .bind(provider)
    .bind(key)
    .fetch_optional(pool)
    .await
}

/// A charge's outcome, recorded.
#[derive(Debug)]
pub struct Finished {
    pub payment: PaymentRecord,
    /// The charge succeeded but the session was cancelled meanwhile: refund it.
    pub needs_refund: bool,
}

/// Records the provider's answer; a success marks the session paid in the same transaction and
/// tells its participants.
pub async fn finish(
    pool: &PgPool,
    payment_id: Uuid,
    outcome: &ChargeOutcome,
) -> sqlx::Result<Finished> {
    let (status, failure) = match &outcome.status {
        ChargeStatus::Succeeded => ("succeeded", None),
        ChargeStatus::RequiresAction => ("requires_action", None),
        ChargeStatus::Failed { code } => ("failed", Some(code.as_str())),
    };
    let mut tx = pool.begin().await?;
    let payment: PaymentRecord = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET status = $2, provider_ref = $3, client_secret = $4, \
                             failure_code = $5, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(payment_id)
    .bind(status)
    .bind(&outcome.provider_ref)
    .bind(outcome.client_secret.as_deref())
    .bind(failure)
    .fetch_one(&mut *tx)
    .await?;
    let mut needs_refund = false;
    if outcome.status == ChargeStatus::Succeeded {
        needs_refund = !mark_session_paid(&mut tx, payment.session_id).await?;
    }
    tx.commit().await?;
    Ok(Finished {
        payment,
        needs_refund,
    })
}

/// Succeeded payments through `provider` of cancelled sessions: money owed back. Of one session
/// when given, else of any (the oldest first, `limit` at most).
pub async fn owed_refunds(
    pool: &PgPool,
    provider: &str,
    session_id: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<PaymentRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments \
         WHERE status = 'succeeded' AND provider = $3 \
           AND ($1::uuid IS NULL OR session_id = $1) \
           AND EXISTS (SELECT 1 FROM sessions s \
                       WHERE s.id = payments.session_id AND s.status = 'cancelled') \
         ORDER BY updated_at LIMIT $2"
    )))
    .bind(session_id)
    .bind(limit)
    .bind(provider)
    .fetch_all(pool)
    .await
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

/// A provider event, once verified.
#[derive(Debug, Clone)]
pub struct ProviderEvent<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    /// The provider's id of the charge it concerns (a PaymentIntent id).
    pub charge_ref: Option<&'a str>,
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
                let session: Option<Uuid> = sqlx::query_scalar(
                    "UPDATE payments SET status = 'succeeded', updated_at = now() \
                     WHERE provider = $1 AND provider_ref = $2 \
                       AND status IN ('pending', 'requires_action') \
                     RETURNING session_id",
                )
                .bind(provider)
                .bind(charge_ref)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(session) = session {
                    mark_session_paid(&mut tx, session).await?;
                }
            }
            "payment_intent.payment_failed" => {
                sqlx::query(
                    "UPDATE payments SET status = 'failed', updated_at = now() \
                     WHERE provider = $1 AND provider_ref = $2 \
                       AND status IN ('pending', 'requires_action')",
                )
                .bind(provider)
                .bind(charge_ref)
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

/// Marks an unpaid, uncancelled session paid and tells its participants; false when it was not
/// (cancelled meanwhile, or already paid).
async fn mark_session_paid(conn: &mut sqlx::PgConnection, session_id: Uuid) -> sqlx::Result<bool> {
    let paid: Option<bool> = sqlx::query_scalar(
        "UPDATE sessions SET payment_status = 'paid', updated_at = now() \
         WHERE id = $1 AND payment_status = 'unpaid' AND status <> 'cancelled' \
         RETURNING tutoring_session_updated(id, tutor_id, student_id)",
    )
    .bind(session_id)
    .fetch_optional(conn)
    .await?;
    Ok(paid.is_some())
}

/// Marks a paid session refunded and tells its participants.
async fn mark_session_refunded(
    conn: &mut sqlx::PgConnection,
    session_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sessions SET payment_status = 'refunded', updated_at = now() \
         WHERE id = $1 AND payment_status = 'paid' \
         RETURNING tutoring_session_updated(id, tutor_id, student_id)",
    )
    .bind(session_id)
    .fetch_optional(conn)
    .await?;
    Ok(())
}
