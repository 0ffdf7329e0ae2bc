//! Payments of sessions: at most one live charge per session (the schema holds it), and a
//! session becomes `paid` only in the transaction that records a succeeded charge. Provider
//! events (webhooks) are applied in `events.rs`.

mod events;

pub use events::{ProviderEvent, apply_event};

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
    /// What the charge was asked with, kept to send it again exactly as first sent.
    pub payment_method: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `None` for a payment begun before keys were kept per student, whose charge went to the
    /// provider under the student's key.
    pub student_id: Option<Uuid>,
    /// How many times the charge was sent under a new key ([`next_attempt`]), and when a
    /// request of it last may have run at the provider (it began, moved to a new key, or failed
    /// without a replayed answer: [`attempted`]).
    pub provider_attempt: i32,
    pub provider_attempted_at: DateTime<Utc>,
}

impl PaymentRecord {
    /// The key its charge is sent to the provider with, the same for every request of one
    /// attempt: one of ours, so students' keys never meet there (nor the keys of our
    /// cancellations and refunds). A payment begun before that was first sent the student's
    /// key, and keeps it.
    pub fn provider_key(&self) -> String {
        match (self.provider_attempt, self.student_id) {
            (0, Some(_)) => format!("charge-{}", self.id),
            (0, None) => self.idempotency_key.clone(),
            (attempt, _) => format!("charge-{}-{attempt}", self.id),
        }
    }
}

pub(super) const COLUMNS: &str = "id, session_id, provider, provider_ref, idempotency_key, amount_cents, \
                       currency, status, client_secret, payment_method, created_at, student_id, \
                       provider_attempt, provider_attempted_at";

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
    #[error("the session is cancelled")]
    SessionCancelled,
}

/// What to do with a charge request.
#[derive(Debug)]
pub enum Begun {
    /// A new pending payment: charge it.
    New(PaymentRecord),
    /// The same key charged this session before: answer with that payment.
    Replay(PaymentRecord),
    /// An earlier charge of the session, under another key, was abandoned: never answered by
    /// the provider, its request long over (`pending`), or left waiting on the student
    /// (`requires_action`). Settle it first: send a pending one again exactly as first sent,
    /// under its own key, so the provider answers with whatever it made of it; cancel a waiting
    /// one. Only if it failed may a new charge begin.
    Abandoned(PaymentRecord),
}

/// How long a charge may stay `pending` before another request may take it over. Longer than
/// any provider call may last (Stripe's client gives up after 25 s), so the first attempt is
/// over by then, however it ended.
const ABANDONED_AFTER_SECS: f64 = 60.0;
/// How long a charge may wait on the student (`requires_action`: a 3-D Secure check, say)
/// before another charge may cancel it and take its place.
const ACTION_ABANDONED_AFTER_SECS: f64 = 15.0 * 60.0;

/// What a new charge is. Its amount is the session's price as the charge begins.
#[derive(Debug, Clone, Copy)]
pub struct NewCharge<'a> {
    pub session_id: Uuid,
    /// The session's student, who charges it; `key` is theirs.
    pub student_id: Uuid,
    pub provider: &'a str,
    pub key: &'a str,
    pub payment_method: Option<&'a str>,
}

/// Records a pending payment for a session, unless one is live, the key was used, or the
/// session is no longer scheduled and unpaid (checked in the insert itself, so a cancellation
/// committed since the caller read the session is seen).
///
/// The amount is read from the session in the insert itself, under a key-share lock: a
/// reschedule in progress (which holds the row `FOR UPDATE`) finishes first and the charge is for
/// its new price, and a reschedule that comes after sees the pending charge and keeps the price.
/// The lock is no stronger than the foreign key's own, so it never waits on a payment settling
/// the session (whose update of `payment_status` leaves the key alone); a share lock did, and
/// deadlocked concurrent charges.
pub async fn begin(pool: &PgPool, charge: NewCharge<'_>) -> Result<Begun, BeginError> {
    let NewCharge {
        session_id,
        student_id,
        provider,
        key,
        payment_method,
    } = charge;
    if let Some(existing) = find_by_key(pool, provider, student_id, key).await? {
        return if existing.session_id == session_id {
            Ok(Begun::Replay(existing))
        } else {
            Err(BeginError::KeyReused)
        };
    }
    let inserted: Result<PaymentRecord, sqlx::Error> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO payments (id, session_id, provider, idempotency_key, amount_cents, \
                                   currency, payment_method, status, student_id) \
             SELECT $1, s.id, $3, $4, s.price_cents, s.currency, $5, 'pending', s.student_id \
             FROM sessions s \
             WHERE s.id = $2 AND s.status = 'scheduled' AND s.payment_status = 'unpaid' \
               AND s.student_id = $6 \
             FOR KEY SHARE \
             RETURNING {COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(session_id)
        .bind(provider)
        .bind(key)
        .bind(payment_method)
        .bind(student_id)
        .fetch_one(pool)
        .await;
    match inserted {
        Ok(payment) => Ok(Begun::New(payment)),
        // Cancelled or paid since the caller looked: say which.
        Err(sqlx::Error::RowNotFound) => {
            let cancelled: Option<bool> =
                sqlx::query_scalar("SELECT status = 'cancelled' FROM sessions WHERE id = $1")
                    .bind(session_id)
                    .fetch_optional(pool)
                    .await?;
            Err(if cancelled == Some(true) {
                BeginError::SessionCancelled
            } else {
                BeginError::AlreadyPaid
            })
        }
        Err(sqlx::Error::Database(err)) if err.constraint() == Some("payments_idempotency_key") => {
            // The same key, concurrently: the other request owns it.
            Err(BeginError::InProgress)
        }
        Err(sqlx::Error::Database(err))
            if err.constraint() == Some("payments_one_live_per_session") =>
        {
            // A charge nobody has touched for long is taken over (one request wins the update):
            // a pending one whose request is surely over, or one the student left waiting for
            // their action. Others are in progress. Resending a pending one is safe even a day
            // later, when the provider has forgotten its key: it is looked up by our payment's
            // id first (`routes::payments::send`).
            let abandoned: Option<PaymentRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "UPDATE payments SET updated_at = now() \
                 WHERE session_id = $1 \
                   AND ((status = 'pending' \
                         AND updated_at < now() - make_interval(secs => $2)) \
                     OR (status = 'requires_action' \
                         AND updated_at < now() - make_interval(secs => $3))) \
                 RETURNING {COLUMNS}"
            )))
            .bind(session_id)
            .bind(ABANDONED_AFTER_SECS)
            .bind(ACTION_ABANDONED_AFTER_SECS)
            .fetch_optional(pool)
            .await?;
            if let Some(abandoned) = abandoned {
                return Ok(Begun::Abandoned(abandoned));
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

/// A payment by its id.
pub async fn find(pool: &PgPool, payment_id: Uuid) -> sqlx::Result<Option<PaymentRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1"
    )))
    .bind(payment_id)
    .fetch_optional(pool)
    .await
}

/// The payment a student made with this key, if any (a payment begun before keys were kept per
/// student is its session's student's).
pub async fn find_by_key(
    pool: &PgPool,
    provider: &str,
    student_id: Uuid,
    key: &str,
) -> sqlx::Result<Option<PaymentRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments \
         WHERE provider = $1 AND idempotency_key = $3 \
           AND (student_id = $2 \
                OR (student_id IS NULL \
                    AND session_id IN (SELECT id FROM sessions WHERE student_id = $2)))"
    )))
    .bind(provider)
    .bind(student_id)
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
/// tells its participants. A payment already settled (by the webhook, or by another request
/// with the same key) keeps its state: an answer never moves a payment backwards.
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
    let updated: Option<PaymentRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET status = $2, provider_ref = $3, client_secret = $4, \
                             failure_code = $5, updated_at = now() \
         WHERE id = $1 AND status IN ('pending', 'requires_action') RETURNING {COLUMNS}"
    )))
    .bind(payment_id)
    .bind(status)
    .bind(&outcome.provider_ref)
    .bind(outcome.client_secret.as_deref())
    .bind(failure)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(payment) = updated else {
        let settled: PaymentRecord = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE id = $1"
        )))
        .bind(payment_id)
        .fetch_one(&mut *tx)
        .await?;
        return Ok(Finished {
            payment: settled,
            needs_refund: false,
        });
    };
    let mut needs_refund = false;
    if outcome.status == ChargeStatus::Succeeded {
        needs_refund = mark_session_paid(&mut tx, payment.session_id).await? == Some(true);
    }
    tx.commit().await?;
    Ok(Finished {
        payment,
        needs_refund,
    })
}

/// Moves a pending charge on to its next attempt, to be sent under a new key; `None` when it is
/// not pending any more or another request moved it on first.
pub async fn next_attempt(
    pool: &PgPool,
    payment: &PaymentRecord,
) -> sqlx::Result<Option<PaymentRecord>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET provider_attempt = provider_attempt + 1, \
                             provider_attempted_at = now(), updated_at = now() \
         WHERE id = $1 AND status = 'pending' AND provider_attempt = $2 \
         RETURNING {COLUMNS}"
    )))
    .bind(payment.id)
    .bind(payment.provider_attempt)
    .fetch_optional(pool)
    .await
}

/// Notes that a request of the charge may have just run at the provider (it failed without a
/// replayed answer: a network error, a timeout, a first failure).
pub async fn attempted(pool: &PgPool, payment_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE payments SET provider_attempted_at = now() \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(payment_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks a charge left waiting on the student failed, once the provider has cancelled it; false
/// when it was settled meanwhile.
pub async fn abandon(pool: &PgPool, payment_id: Uuid) -> sqlx::Result<bool> {
    let abandoned = sqlx::query(
        "UPDATE payments SET status = 'failed', failure_code = 'abandoned', updated_at = now() \
         WHERE id = $1 AND status = 'requires_action'",
    )
    .bind(payment_id)
    .execute(pool)
    .await?;
    Ok(abandoned.rows_affected() == 1)
}

/// Marks an unpaid session paid and tells its participants. `Some(cancelled)` when it was
/// marked, saying whether it is cancelled (and so owes a refund); `None` when it was paid
/// already.
async fn mark_session_paid(
    conn: &mut sqlx::PgConnection,
    session_id: Uuid,
) -> sqlx::Result<Option<bool>> {
    // A session cancelled while it was being charged is paid all the same (the money was taken),
    // and so owes a refund.
    let cancelled: Option<(bool, bool)> = sqlx::query_as(
        "UPDATE sessions SET payment_status = 'paid', updated_at = now() \
         WHERE id = $1 AND payment_status = 'unpaid' \
         RETURNING status = 'cancelled', tutoring_session_updated(id, tutor_id, student_id)",
    )
    .bind(session_id)
    .fetch_optional(conn)
    .await?;
    Ok(cancelled.map(|(cancelled, _)| cancelled))
}

/// Marks a paid session refunded and tells its participants.
pub(super) async fn mark_session_refunded(
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
