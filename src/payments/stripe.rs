//! Stripe, over its HTTP API: a PaymentIntent per charge (form-encoded, amount in minor units,
//! the session id in metadata, an `Idempotency-Key` per charge) and a refund per cancellation.
//!
//! A small reqwest client rather than the `async-stripe` crates: two endpoints are needed, the
//! crates are a release candidate split over many packages, and a client of our own keeps the
//! dependency tree (and its TLS stack, `ring`-backed rustls) small.

use std::time::Duration;

use serde_json::Value;

use super::{ChargeOutcome, ChargeRequest, ChargeStatus, ProviderError};

/// The refund reference kept for a charge Stripe says was refunded already.
pub const ALREADY_REFUNDED: &str = "already_refunded";

/// Stripe's API, unless configured otherwise (tests point it at a local server).
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// A client of Stripe's API.
#[derive(Debug, Clone)]
pub struct StripeProvider {
    http: reqwest::Client,
    api_base: String,
    secret_key: String,
}

impl StripeProvider {
    pub fn new(secret_key: String, api_base: Option<String>) -> anyhow::Result<Self> {
        crate::startup::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            http,
            api_base: api_base
                .unwrap_or_else(|| DEFAULT_API_BASE.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            secret_key,
        })
    }

    /// Creates (and, with a payment method, confirms) a PaymentIntent.
    pub async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        let mut form = vec![
            ("amount", request.amount_cents.to_string()),
            ("currency", request.currency.to_ascii_lowercase()),
            ("metadata[session_id]", request.session_id.to_string()),
            ("metadata[payment_id]", request.payment_id.to_string()),
        ];
        if let Some(method) = &request.payment_method {
            form.push(("payment_method", method.clone()));
            form.push(("confirm", "true".to_owned()));
            // No redirect flows: a card needing one answers `requires_action`.
            form.push(("automatic_payment_methods[enabled]", "true".to_owned()));
            form.push((
                "automatic_payment_methods[allow_redirects]",
                "never".to_owned(),
            ));
        }
        let (status, body, replayed) = self
            .post("/v1/payment_intents", &request.idempotency_key, &form)
            .await?;
        if status.is_success() {
            return intent_outcome(&body);
        }
        // A refused charge is an answer, not a failure: 402 when the card was declined, 400 when
        // Stripe will not make this charge at all (an amount under its minimum, an unknown
        // payment method, an unsupported currency). Other statuses (401, 409, 429, 5xx) say
        // nothing about the charge: it may be retried with the same key. Neither does an
        // `idempotency_error` (a key reused with other parameters), which is a fault of ours.
        if matches!(status.as_u16(), 400 | 402) && body["error"]["type"] != "idempotency_error" {
            let error = &body["error"];
            let code = error["decline_code"]
                .as_str()
                .or(error["code"].as_str())
                .unwrap_or(if status.as_u16() == 402 {
                    "card_declined"
                } else {
                    "invalid_request"
                })
                .to_owned();
            let provider_ref = error["payment_intent"]["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("declined_{}", request.idempotency_key));
            return Ok(ChargeOutcome {
                provider_ref,
                status: ChargeStatus::Failed { code },
                client_secret: None,
            });
        }
        // A 5xx replayed under the key is Stripe's memory of an earlier failure: it will answer
        // the same for a day, however often the charge is sent under that key.
        Err(ProviderError {
            message: format!(
                "Stripe refused the charge ({status}): {}",
                body["error"]["message"].as_str().unwrap_or("no message")
            ),
            replayed: replayed && status.is_server_error(),
        })
    }

    /// The PaymentIntent made for our payment, found by the id it carries in its metadata
    /// (Stripe's search, which may lag a new intent by a minute or so).
    pub async fn find_intent(
        &self,
        payment_id: uuid::Uuid,
    ) -> Result<Option<ChargeOutcome>, ProviderError> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/v1/payment_intents/search", self.api_base),
            [("query", format!("metadata['payment_id']:'{payment_id}'"))],
        )
        .map_err(|err| ProviderError::new(format!("a bad Stripe address: {err}")))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(|err| ProviderError::new(format!("Stripe is unreachable: {err}")))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|err| ProviderError::new(format!("Stripe answered nonsense: {err}")))?;
        let Some(intents) = body["data"].as_array().filter(|_| status.is_success()) else {
            return Err(ProviderError::new(format!(
                "Stripe could not search PaymentIntents ({status})"
            )));
        };
        // Should there be several, the one that took the money, else one still alive.
        let rank = |intent: &&Value| match intent["status"].as_str() {
            Some("succeeded") => 0,
            Some("canceled") => 2,
            _ => 1,
        };
        intents
            .iter()
            .min_by_key(rank)
            .map(intent_outcome)
            .transpose()
    }

    /// Cancels a PaymentIntent that still waits on the client. Stripe refuses to cancel one that
    /// has succeeded meanwhile, which is an error here: the webhook settles that payment. One
    /// cancelled already (from Stripe's dashboard, or by an earlier attempt whose answer was
    /// lost) is cancelled: Stripe refuses it naming the intent's status.
    pub async fn cancel(&self, intent_id: &str) -> Result<(), ProviderError> {
        let (status, body, _) = self
            .post(
                &format!("/v1/payment_intents/{intent_id}/cancel"),
                &format!("cancel-{intent_id}"),
                &[("cancellation_reason", "abandoned")],
            )
            .await?;
        let cancelled_before =
            status.is_client_error() && body["error"]["payment_intent"]["status"] == "canceled";
        if (status.is_success() && body["status"] == "canceled") || cancelled_before {
            Ok(())
        } else {
            Err(ProviderError::new(format!(
                "Stripe did not cancel the PaymentIntent ({status})"
            )))
        }
    }

    /// Refunds a PaymentIntent in full; returns the refund's id ([`ALREADY_REFUNDED`] when
    /// Stripe says the charge was refunded before, without naming the refund).
    pub async fn refund(&self, intent_id: &str) -> Result<String, ProviderError> {
        let (status, body, _) = self
            .post(
                "/v1/refunds",
                &format!("refund-{intent_id}"),
                &[("payment_intent", intent_id)],
            )
            .await?;
        match body["id"].as_str() {
            Some(id) if status.is_success() => Ok(id.to_owned()),
            // Refunded by an earlier attempt whose answer was lost, too long ago for its key to
            // be remembered: the money is back all the same.
            _ if status.is_client_error() && body["error"]["code"] == "charge_already_refunded" => {
                Ok(ALREADY_REFUNDED.to_owned())
            }
            _ => Err(ProviderError::new(format!(
                "Stripe refused the refund ({status})"
            ))),
        }
    }

    /// A form-encoded POST to Stripe's API under an idempotency key: the status, the JSON body
    /// and whether Stripe replayed its answer from an earlier request under the key
    /// (`Idempotent-Replayed`), or why there is none.
    async fn post<F: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &F,
    ) -> Result<(reqwest::StatusCode, Value, bool), ProviderError> {
        let response = self
            .http
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await
            .map_err(|err| ProviderError::new(format!("Stripe is unreachable: {err}")))?;
        let status = response.status();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true"));
        let body = response
            .json()
            .await
            .map_err(|err| ProviderError::new(format!("Stripe answered nonsense: {err}")))?;
        Ok((status, body, replayed))
    }
}

fn intent_outcome(body: &Value) -> Result<ChargeOutcome, ProviderError> {
    let provider_ref = body["id"]
        .as_str()
        .ok_or_else(|| ProviderError::new("a PaymentIntent without an id"))?
        .to_owned();
    let client_secret = body["client_secret"].as_str().map(str::to_owned);
    let status = match body["status"].as_str() {
        Some("succeeded") => ChargeStatus::Succeeded,
        Some("canceled") => ChargeStatus::Failed {
            code: "canceled".to_owned(),
        },
        // requires_payment_method, requires_confirmation, requires_action, processing: the
        // client (or Stripe) has a step left; the webhook will tell how it ends.
        _ => ChargeStatus::RequiresAction,
    };
    Ok(ChargeOutcome {
        provider_ref,
        status,
        client_secret,
    })
}
