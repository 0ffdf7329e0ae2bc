//! Money owed back. A succeeded charge of a cancelled session is refunded right after the
//! cancellation; should the provider fail then (or a charge succeed after its session was
//! cancelled), a sweep on every server node tries again until the refund is made. The provider
//! deduplicates refunds of one charge, so nodes sweeping at once refund it once.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use uuid::Uuid;

use super::Payments;
use crate::store::payments::PaymentRecord;
use crate::store::refunds as owed;

/// Refunds examined per sweep; the next sweep takes the rest.
const SWEEP_BATCH: i64 = 100;

/// How long a request that made refunds due waits for them before it answers anyway.
const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// Refunds what the sessions owe in a task of its own, and waits for it a little: the answer
/// usually shows the refunds made, but never waits long on the provider (the task goes on, and
/// the sweep catches what it could not do).
pub async fn refund_soon(pool: &PgPool, provider: &Payments, sessions: Vec<Uuid>) {
    let (pool, provider) = (pool.clone(), provider.clone());
    let task = tokio::spawn(async move {
        for session_id in sessions {
            refund_owed(&pool, &provider, Some(session_id)).await;
        }
    });
    let _ = tokio::time::timeout(ANSWER_WAIT, task).await;
}

/// Refunds what is owed on one session (`Some`) or on any (`None`), and returns how many
/// refunds were made. Failures are logged and left for the next sweep: the cancellation that
/// made the refund due has committed whatever happens here.
pub async fn refund_owed(pool: &PgPool, provider: &Payments, session_id: Option<Uuid>) -> usize {
    let owed = match session_id {
        Some(session_id) => owed::by_session(pool, provider.name(), session_id)
            .await
            .map(|owed| owed.into_iter().collect()),
        None => owed::oldest_first(pool, provider.name(), SWEEP_BATCH).await,
    };
    let owed: Vec<PaymentRecord> = match owed {
        Ok(owed) => owed,
        Err(err) => {
            tracing::warn!(error = %err, "could not look for refunds owed; will retry");
            return 0;
        }
    };
    let mut refunded = 0;
    for payment in owed {
        match refund(pool, provider, &payment).await {
            Ok(()) => refunded += 1,
            Err(err) => tracing::warn!(
                payment = %payment.id,
                error = format!("{err:#}"),
                "a refund failed; it will be retried"
            ),
        }
    }
    refunded
}

async fn refund(pool: &PgPool, provider: &Payments, payment: &PaymentRecord) -> anyhow::Result<()> {
    let provider_ref = payment
        .provider_ref
        .as_deref()
        .context("a succeeded payment without the provider's id")?;
    owed::attempted(pool, payment.id).await?;
    let refund_ref = provider.refund(provider_ref, payment.amount_cents).await?;
    owed::mark_refunded(pool, payment.id, &refund_ref).await?;
    Ok(())
}

/// Sweeps for refunds owed every `every`, until the runtime stops.
pub fn spawn_refunder(pool: PgPool, provider: Payments, every: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let refunded = refund_owed(&pool, &provider, None).await;
            if refunded > 0 {
                tracing::info!(refunded, "refunds owed were made");
            }
        }
    });
}
