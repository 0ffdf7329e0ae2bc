//! `/payment/charge`: the session's student pays for it. A session is charged at most once: the
//! schema allows one live payment per session, the provider gets an idempotency key, and the
//! same `Idempotency-Key` returns the first payment.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::json::ApiJson;
use crate::auth::StudentUser;
use crate::domain::{MoneyDto, PaymentStatus, SessionStatus};
use crate::error::ApiError;
use crate::payments::webhook::{self, WebhookSecret};
use crate::payments::{ChargeOutcome, ChargeRequest, Payments, ProviderError, refunds};
use crate::store::payments::{self, BeginError, Begun, NewCharge, PaymentRecord};
use crate::store::sessions;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/payment/charge").route(web::post().to(charge)))
        .service(web::resource("/payment/webhook/stripe").route(web::post().to(stripe_webhook)));
}

#[derive(Debug, Deserialize)]
struct ChargeBody {
    session_id: Uuid,
    payment_method: Option<String>,
}

/// `{payment_id, session_id, amount, status, client_secret?}`.
#[derive(Debug, Serialize)]
struct PaymentView {
    payment_id: Uuid,
    session_id: Uuid,
    amount: MoneyDto,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

impl From<&PaymentRecord> for PaymentView {
    fn from(p: &PaymentRecord) -> Self {
        Self {
            payment_id: p.id,
            session_id: p.session_id,
            amount: MoneyDto {
                amount_cents: p.amount_cents,
                currency: p.currency.clone(),
            },
            status: p.status.clone(),
            client_secret: p.client_secret.clone(),
        }
    }
}

impl From<BeginError> for ApiError {
    fn from(err: BeginError) -> Self {
        match err {
            BeginError::Database(err) => err.into(),
            BeginError::AlreadyPaid => {
                ApiError::conflict("already_paid", "the session is already paid")
            }
            BeginError::InProgress => ApiError::conflict(
                "payment_in_progress",
                "another charge of this session is in progress",
            ),
            BeginError::SessionCancelled => {
                ApiError::conflict("session_cancelled", "the session is cancelled")
            }
            BeginError::KeyReused => ApiError::unprocessable(
                "idempotency_key_reused",
                "Idempotency-Key",
                "this Idempotency-Key was used for another charge",
            ),
        }
    }
}

/// `POST /payment/charge`.
async fn charge(
    req: HttpRequest,
    db: web::Data<PgPool>,
    provider: web::Data<Payments>,
    student: StudentUser,
    ApiJson(body): ApiJson<ChargeBody>,
) -> Result<HttpResponse, ApiError> {
    super::acting_as(&db, student.id()).await?;
    let session = sessions::find(db.get_ref(), body.session_id)
        .await?
        .filter(|s| s.is_participant(student.id()))
        .ok_or_else(|| {
            ApiError::not_found("session_not_found", "no session of yours has this id")
        })?;
    if session.student_id != student.id() {
        return Err(ApiError::forbidden(
            "only the session's student pays for it",
        ));
    }
    let key = match req.headers().get("idempotency-key") {
        None => Uuid::now_v7().to_string(),
        Some(value) => match value.to_str().map(str::trim) {
            Ok(key) if (1..=255).contains(&key.len()) => key.to_owned(),
            _ => {
                return Err(ApiError::invalid_field(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                ));
            }
        },
    };
    let payment_method = match body.payment_method.as_deref().map(str::trim) {
        None => None,
        Some(method)
            if (1..=255).contains(&method.len())
                && method.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Some(method)
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "payment_method",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
    };
    // The same key answers with its first payment, whatever the session became since; a
    // charge the provider never answered (network failure) is sent again with the same key,
    // which the provider deduplicates.
    let existing = payments::find_by_key(&db, provider.name(), student.id(), &key).await?;
    if let Some(existing) = &existing
        && existing.session_id == session.id
        && existing.status != "pending"
    {
        return Ok(HttpResponse::Created().json(PaymentView::from(existing)));
    }
    let resumed = existing.filter(|p| p.session_id == session.id);
    if session.status == SessionStatus::Cancelled && resumed.is_none() {
        return Err(ApiError::conflict(
            "session_cancelled",
            "the session is cancelled",
        ));
    }
    if session.payment_status != PaymentStatus::Unpaid && resumed.is_none() {
        return Err(ApiError::conflict(
            "already_paid",
            "the session is already paid",
        ));
    }
    let payment = match resumed {
        Some(pending) => pending,
        None => {
            let charge = NewCharge {
                session_id: session.id,
                student_id: student.id(),
                provider: provider.name(),
                key: &key,
                payment_method,
            };
            match payments::begin(&db, charge).await? {
                Begun::Replay(existing) if existing.status != "pending" => {
                    return Ok(HttpResponse::Created().json(PaymentView::from(&existing)));
                }
                Begun::Replay(pending) | Begun::New(pending) => pending,
                Begun::Abandoned(abandoned) => {
                    // Settle the abandoned charge first; only if it failed may this one begin.
                    let settled = settle_abandoned(&db, &provider, abandoned).await?;
                    match settled.status.as_str() {
                        "failed" => match payments::begin(&db, charge).await? {
                            Begun::New(pending) => pending,
                            // Another request began a charge meanwhile.
                            _ => return Err(BeginError::InProgress.into()),
                        },
                        "succeeded" => return Err(BeginError::AlreadyPaid.into()),
                        _ => return Err(BeginError::InProgress.into()),
                    }
                }
            }
        }
    };
    let finished = send(&db, &provider, &payment).await?;
    Ok(HttpResponse::Created().json(PaymentView::from(&finished)))
}

/// Settles an abandoned charge: a pending one is sent again as first sent, and one left waiting
/// on the student is cancelled at the provider, then marked failed. Returns it as it ends.
async fn settle_abandoned(
    db: &PgPool,
    provider: &Payments,
    abandoned: PaymentRecord,
) -> Result<PaymentRecord, ApiError> {
    if abandoned.status == "pending" {
        return send(db, provider, &abandoned).await;
    }
    let Some(provider_ref) = abandoned.provider_ref.as_deref() else {
        return Ok(abandoned);
    };
    if let Err(err) = provider.cancel(provider_ref).await {
        // Succeeded meanwhile (the webhook will say), or Stripe is away: still in progress.
        tracing::warn!(payment = %abandoned.id, error = %err, "could not cancel an abandoned charge");
        return Ok(abandoned);
    }
    payments::abandon(db, abandoned.id).await?;
    Ok(payments::find(db, abandoned.id).await?.unwrap_or(abandoned))
}

/// How long after a charge's last request that may have run a replayed failure sends it under a
/// new key, once the provider is found never to have made it. Stripe answers a failed request's
/// error again under its key for a day, and its search may lag a new charge by a minute or so:
/// this is well past that lag.
const NEW_KEY_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Stripe forgets an idempotency key after a day: a charge last sent longer ago is looked up
/// before it is sent again, so a resend can never make it twice.
const KEY_FORGOTTEN_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(23);

/// Sends a pending payment's charge to the provider, exactly as it was first asked for (its own
/// key, method and amount, so a resend is deduplicated by the provider), and records the answer.
///
/// `provider_attempted_at` is when a request of the charge last may have run at the provider.
/// A charge the provider keeps failing from memory of its key (a replayed error) long after
/// that is looked up, and sent under a new key only if the provider never made it; one last
/// sent a day ago is looked up before it is sent at all.
async fn send(
    db: &PgPool,
    provider: &Payments,
    payment: &PaymentRecord,
) -> Result<PaymentRecord, ApiError> {
    let unavailable = |err: ProviderError| ApiError::Unavailable(err.into());
    let since_attempt = chrono::Utc::now() - payment.provider_attempted_at;
    let made = if since_attempt >= KEY_FORGOTTEN_AFTER {
        provider
            .find_charge(payment.id)
            .await
            .map_err(unavailable)?
    } else {
        None
    };
    let outcome = match made {
        Some(made) => made,
        None => match provider.charge(&charge_request(payment)).await {
            Ok(outcome) => outcome,
            Err(err) if err.replayed && since_attempt >= NEW_KEY_AFTER => {
                send_under_new_key(db, provider, payment).await?
            }
            Err(err) => return Err(charge_failed(db, payment, err).await),
        },
    };
    let finished = payments::finish(db, payment.id, &outcome).await?;
    if finished.needs_refund {
        // Cancelled while we charged: give the money back now (or on the next sweep).
        refunds::refund_soon(db, provider, vec![payment.session_id]).await;
    }
    Ok(finished.payment)
}

fn charge_request(payment: &PaymentRecord) -> ChargeRequest {
    ChargeRequest {
        payment_id: payment.id,
        session_id: payment.session_id,
        amount_cents: payment.amount_cents,
        currency: payment.currency.clone(),
        idempotency_key: payment.provider_key(),
        payment_method: payment.payment_method.clone(),
    }
}

/// The charge the provider made for `payment` under an earlier key, or, when it made none, the
/// answer to the charge sent under the next key.
async fn send_under_new_key(
    db: &PgPool,
    provider: &Payments,
    payment: &PaymentRecord,
) -> Result<ChargeOutcome, ApiError> {
    let unavailable = |err: ProviderError| ApiError::Unavailable(err.into());
    if let Some(made) = provider
        .find_charge(payment.id)
        .await
        .map_err(unavailable)?
    {
        return Ok(made);
    }
    let Some(next) = payments::next_attempt(db, payment).await? else {
        // Another request moved it on first, or it was settled meanwhile.
        return Err(BeginError::InProgress.into());
    };
    tracing::warn!(payment = %payment.id, attempt = next.provider_attempt,
        "the provider kept failing a charge it never made; sending it under a new key");
    match provider.charge(&charge_request(&next)).await {
        Ok(outcome) => Ok(outcome),
        Err(err) => Err(charge_failed(db, &next, err).await),
    }
}

/// The answer to a charge request that failed. Unless the provider replayed an earlier answer,
/// the request may have run: it is noted, so the provider's search can catch up with it before
/// any new key is tried.
async fn charge_failed(db: &PgPool, payment: &PaymentRecord, err: ProviderError) -> ApiError {
    if !err.replayed
        && let Err(db_err) = payments::attempted(db, payment.id).await
    {
        return db_err.into();
    }
    ApiError::Unavailable(err.into())
}

/// `POST /payment/webhook/stripe`: verifies `Stripe-Signature` over the raw body, then applies
/// `payment_intent.succeeded`, `payment_intent.payment_failed` and `charge.refunded`, each event
/// id once.
async fn stripe_webhook(
    req: HttpRequest,
    body: web::Bytes,
    db: web::Data<PgPool>,
    secret: web::Data<WebhookSecret>,
) -> Result<HttpResponse, ApiError> {
    let Some(secret) = secret.0.as_deref() else {
        return Err(ApiError::client(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "webhook_not_configured",
            "STRIPE_WEBHOOK_SECRET is not set on this server",
        ));
    };
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    webhook::verify(header, &body, secret, chrono::Utc::now().timestamp())
        .map_err(|err| ApiError::bad_request("invalid_signature", err.to_string()))?;
    let event: serde_json::Value = super::json::parse_json(&body)?;
    let (Some(event_id), Some(event_type)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Err(ApiError::invalid_field(
            "id",
            "an event needs an id and a type",
        ));
    };
    let object = &event["data"]["object"];
    // A PaymentIntent event names the intent itself; a charge event names its intent. A partial
    // refund leaves the charge paid: only a full one concerns it.
    let charge_ref = if event_type.starts_with("payment_intent.") {
        object["id"].as_str()
    } else if event_type == "charge.refunded" && object["refunded"].as_bool() != Some(true) {
        None
    } else {
        object["payment_intent"].as_str()
    };
    // Our payment's id, which a PaymentIntent we created carries in its metadata.
    let payment_id = event_type
        .starts_with("payment_intent.")
        .then(|| object["metadata"]["payment_id"].as_str())
        .flatten()
        .and_then(|id| id.parse::<Uuid>().ok());
    // Stripe's ids and event types are short printable words; anything else is not Stripe's.
    let word = |s: &str| (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic());
    if !word(event_id) || !word(event_type) || charge_ref.is_some_and(|r| !word(r)) {
        return Err(ApiError::bad_request(
            "invalid_event",
            "the event's id, type or object id is not a Stripe identifier",
        ));
    }
    let applied = payments::apply_event(
        &db,
        "stripe",
        &payments::ProviderEvent {
            event_id,
            event_type,
            charge_ref,
            payment_id,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"received": true, "duplicate": !applied})))
}
