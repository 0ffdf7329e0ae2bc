//! Money owed back. A succeeded charge of a cancelled session is refunded right after the
//! cancellation; should the provider fail then (or a charge succeed after its session was
//! cancelled), a sweep on every server node tries again until the refund is made. The provider
//! deduplicates refunds of one charge, so nodes sweeping at once refund it once.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use uuid::Uuid;

use super::Payments;
use crate::store::payments::{self, PaymentRecord};

/// Refunds examined per sweep; the next sweep takes the rest.
const SWEEP_BATCH: i64 = 100;

/// Refunds what is owed on one session (`Some`) or on any (`None`), and returns how many
/// refunds were made. Failures are logged and left for the next sweep: the cancellation that
/// made the refund due has committed whatever happens here.
pub async fn refund_owed(pool: &PgPool, provider: &Payments, session_id: Option<Uuid>) -> usize {
    let owed = match payments::owed_refunds(pool, provider.name(), session_id, SWEEP_BATCH).await {
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
    let refund_ref = provider.refund(provider_ref, payment.amount_cents).await?;
    payments::mark_refunded(pool, payment.id, &refund_ref).await?;
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
