//! Payment providers behind one interface, chosen by `PAYMENT_PROVIDER`.
//!
//! `fake` (the default) needs no network, answers at once and deterministically, and can be made
//! to fail through `payment_method` (see [`FakeProvider`]). `stripe` speaks to Stripe's API
//! ([`StripeProvider`]); its outcomes are confirmed by the webhook ([`webhook`]).

mod fake;
pub mod refunds;
mod stripe;
pub mod webhook;

pub use fake::FakeProvider;
pub use stripe::StripeProvider;

/// A charge to make.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// Our id of the payment, sent along so the provider's events name it.
    pub payment_id: uuid::Uuid,
    pub amount_cents: i64,
    pub currency: String,
    /// Sent to the provider, so a retried charge is never made twice: the same for every
    /// attempt of one payment.
    pub idempotency_key: String,
    pub session_id: uuid::Uuid,
    pub payment_method: Option<String>,
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeOutcome {
    /// The provider's id for the charge.
    pub provider_ref: String,
    pub status: ChargeStatus,
    /// For a charge the client must confirm (3-D Secure and the like).
    pub client_secret: Option<String>,
}

/// Where a charge stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeStatus {
    Succeeded,
    RequiresAction,
    Failed { code: String },
}

/// The provider could not be reached or answered nonsense; nothing is known to be charged.
#[derive(Debug, thiserror::Error)]
#[error("payment provider error: {message}")]
pub struct ProviderError {
    pub message: String,
    /// The provider answered this from its memory of the request's idempotency key: the
    /// request did not run now, and will not run again under that key.
    pub replayed: bool,
}

impl ProviderError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            replayed: false,
        }
    }
}

/// The configured provider.
#[derive(Debug, Clone)]
pub enum Payments {
    Fake(FakeProvider),
    Stripe(StripeProvider),
}

impl Payments {
    /// The provider the settings name (`fake`, the default, or `stripe`).
    pub fn from_settings(settings: &crate::configuration::PaymentSettings) -> anyhow::Result<Self> {
        match settings.provider.as_str() {
            "fake" => Ok(Self::Fake(FakeProvider)),
            "stripe" => {
                let key = settings.stripe_secret_key.clone().ok_or_else(|| {
                    anyhow::anyhow!("PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY")
                })?;
                Ok(Self::Stripe(StripeProvider::new(
                    key,
                    settings.stripe_api_base.clone(),
                )?))
            }
            other => anyhow::bail!("PAYMENT_PROVIDER must be `fake` or `stripe`, not `{other}`"),
        }
    }

    /// The name stored with each payment.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Fake(_) => "fake",
            Self::Stripe(_) => "stripe",
        }
    }

    pub async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        // A free session (a tutor's price may be zero) is paid without asking anyone: no
        // provider takes a charge of nothing (Stripe refuses amounts under its minimum).
        if request.amount_cents == 0 {
            return Ok(ChargeOutcome {
                provider_ref: format!("free_{}", request.idempotency_key),
                status: ChargeStatus::Succeeded,
                client_secret: None,
            });
        }
        match self {
            Self::Fake(provider) => Ok(provider.charge(request)),
            Self::Stripe(provider) => provider.charge(request).await,
        }
    }

    /// The charge the provider made for our payment `payment_id`, under any key, if it made
    /// one. The fake provider answers every request, so it never needs asking.
    pub async fn find_charge(
        &self,
        payment_id: uuid::Uuid,
    ) -> Result<Option<ChargeOutcome>, ProviderError> {
        match self {
            Self::Fake(_) => Ok(None),
            Self::Stripe(provider) => provider.find_intent(payment_id).await,
        }
    }

    /// Cancels a charge still waiting on the client, so it can never succeed.
    pub async fn cancel(&self, provider_ref: &str) -> Result<(), ProviderError> {
        match self {
            Self::Fake(_) => Ok(()),
            Self::Stripe(provider) => provider.cancel(provider_ref).await,
        }
    }

    /// Refunds a succeeded charge of `amount_cents` in full; returns the provider's refund id.
    pub async fn refund(
        &self,
        provider_ref: &str,
        amount_cents: i64,
    ) -> Result<String, ProviderError> {
        if amount_cents == 0 {
            return Ok(format!("free_refund_{provider_ref}"));
        }
        match self {
            Self::Fake(provider) => Ok(provider.refund(provider_ref)),
            Self::Stripe(provider) => provider.refund(provider_ref).await,
        }
    }
}
