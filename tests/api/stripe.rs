//! The Stripe provider against a local server that answers as Stripe's API reference documents.

use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{
    HeaderRegexMatcher, body_string_contains, header, header_regex, method, path,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, TestResponse, all_day_rules, days_ahead_at, read, spawn_app_with};

const KEY: &str = "sk_test_local";

async fn app_on(api_base: &str) -> TestApp {
    let api_base = api_base.to_owned();
    spawn_app_with(move |settings| {
        settings.payments.provider = "stripe".to_owned();
        settings.payments.stripe_secret_key = Some(KEY.to_owned());
        settings.payments.stripe_api_base = Some(api_base);
    })
    .await
}

/// Stripe's answer when something went wrong on its side (`api_error`, 500).
pub fn stripe_api_error() -> ResponseTemplate {
    ResponseTemplate::new(500).set_body_json(json!({"error": {
        "type": "api_error", "message": "An unknown error occurred",
    }}))
}

/// Matches the idempotency key the server sends Stripe with a charge: one of its own per payment,
/// never the student's.
pub fn a_charge_key() -> HeaderRegexMatcher {
    header_regex(
        "idempotency-key",
        "^charge-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    )
}

/// The idempotency key the server sends Stripe for the payment a student made under `key`.
pub async fn stripe_key_of(app: &TestApp, key: &str) -> String {
    let payment: Uuid = sqlx::query_scalar("SELECT id FROM payments WHERE idempotency_key = $1")
        .bind(key)
        .fetch_one(&app.db)
        .await
        .expect("the payment made under that key");
    format!("charge-{payment}")
}

pub async fn booked_session(
    app: &TestApp,
) -> (crate::helpers::TestUser, crate::helpers::TestUser, Uuid) {
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let booked = app
        .book(&student, tutor.id, days_ahead_at(2, 10, 0), 60)
        .await;
    let id = booked.assert_status(201)["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an id");
    (tutor, student, id)
}

pub async fn charge(
    app: &TestApp,
    token: &str,
    session: Uuid,
    method: &str,
    key: &str,
) -> TestResponse {
    read(
        app.client
            .post(app.url("/payment/charge"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"session_id": session, "payment_method": method}))
            .send()
            .await
            .expect("sent"),
    )
    .await
}

#[actix_web::test]
async fn a_charge_creates_one_confirmed_payment_intent_and_a_retry_reuses_it() {
    let stripe = MockServer::start().await;
    let app = app_on(&stripe.uri()).await;
    let (tutor, student, session) = booked_session(&app).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(a_charge_key())
        .and(body_string_contains("amount=12000"))
        .and(body_string_contains("currency=brl"))
        .and(body_string_contains(
            format!("metadata%5Bsession_id%5D={session}").as_str(),
        ))
        .and(body_string_contains("confirm=true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "pi_3Mtw", "object": "payment_intent", "amount": 12000, "currency": "brl",
            "status": "succeeded", "client_secret": "pi_3Mtw_secret_abc",
        })))
        .expect(1)
        .mount(&stripe)
        .await;

    let first = charge(&app, &student.token, session, "pm_card_visa", "charge-1").await;
    let again = charge(&app, &student.token, session, "pm_card_visa", "charge-1").await;
    assert_eq!(first.assert_status(201)["status"], "succeeded");
    assert_eq!(first.body, again.body);
    // Stripe was sent the payment's own key, not the student's.
    let sent = stripe.received_requests().await.expect("recorded");
    assert_eq!(
        sent[0].headers.get("idempotency-key").map(|v| v.as_bytes()),
        Some(stripe_key_of(&app, "charge-1").await.as_bytes())
    );
    let state: (String, Option<String>) = sqlx::query_as(
        "SELECT s.payment_status, p.provider_ref FROM sessions s JOIN payments p ON p.session_id = s.id \
         WHERE s.id = $1",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .expect("state");
    assert_eq!(state, ("paid".to_owned(), Some("pi_3Mtw".to_owned())));

    // Cancelling the paid session refunds the PaymentIntent.
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(body_string_contains("payment_intent=pi_3Mtw"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_1", "object": "refund", "payment_intent": "pi_3Mtw", "status": "succeeded",
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    let cancelled = app
        .post(
            &format!("/sessions/{session}/cancel"),
            Some(&tutor.token),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.assert_status(200)["payment_status"], "refunded");
}

#[actix_web::test]
async fn a_declined_card_is_a_failed_payment_not_an_error() {
    let stripe = MockServer::start().await;
    let app = app_on(&stripe.uri()).await;
    let (_, student, session) = booked_session(&app).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({"error": {
            "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_intent": {"id": "pi_declined", "status": "requires_payment_method"},
        }})))
        .mount(&stripe)
        .await;
    let declined = charge(
        &app,
        &student.token,
        session,
        "pm_card_chargeDeclined",
        "charge-2",
    )
    .await;
    assert_eq!(declined.assert_status(201)["status"], "failed");
    let state: (String, Option<String>) = sqlx::query_as(
        "SELECT s.payment_status, p.failure_code FROM sessions s JOIN payments p ON p.session_id = s.id \
         WHERE s.id = $1",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .expect("state");
    assert_eq!(
        state,
        ("unpaid".to_owned(), Some("insufficient_funds".to_owned()))
    );
}

#[actix_web::test]
async fn a_network_failure_is_a_503_and_the_same_key_retries_the_same_charge() {
    let stripe = MockServer::start().await;
    let app = app_on(&stripe.uri()).await;
    let (_, student, session) = booked_session(&app).await;
    // First, Stripe is down.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(stripe_api_error())
        .up_to_n_times(1)
        .expect(1)
        .mount(&stripe)
        .await;
    charge(&app, &student.token, session, "pm_card_visa", "charge-3")
        .await
        .assert_problem(503, "service_unavailable");
    // Another key meanwhile: the first charge may still land, so no second one starts.
    charge(&app, &student.token, session, "pm_card_visa", "charge-4")
        .await
        .assert_problem(409, "payment_in_progress");
    // The same key goes to Stripe again, with the same Idempotency-Key.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header(
            "idempotency-key",
            stripe_key_of(&app, "charge-3").await.as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "pi_retry", "object": "payment_intent", "status": "succeeded",
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    let retried = charge(&app, &student.token, session, "pm_card_visa", "charge-3").await;
    assert_eq!(retried.assert_status(201)["status"], "succeeded");
}

#[actix_web::test]
async fn a_charge_stripe_refuses_outright_is_a_failed_payment_and_another_may_follow() {
    let stripe = MockServer::start().await;
    let app = app_on(&stripe.uri()).await;
    let (_, student, session) = booked_session(&app).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(a_charge_key())
        .and(body_string_contains("payment_method=pm_gone"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error", "code": "resource_missing",
            "param": "payment_method", "message": "No such PaymentMethod: 'pm_gone'",
        }})))
        .expect(1)
        .mount(&stripe)
        .await;
    let refused = charge(
        &app,
        &student.token,
        session,
        "pm_gone",
        "charge-bad-method",
    )
    .await;
    assert_eq!(refused.assert_status(201)["status"], "failed");
    let failure: Option<String> =
        sqlx::query_scalar("SELECT failure_code FROM payments WHERE session_id = $1")
            .bind(session)
            .fetch_one(&app.db)
            .await
            .expect("failure code");
    assert_eq!(failure.as_deref(), Some("resource_missing"));

    // The session is not stuck: a charge with a good card goes through.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(a_charge_key())
        .and(body_string_contains("payment_method=pm_card_visa"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "pi_after_refusal", "object": "payment_intent", "status": "succeeded",
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    let paid = charge(
        &app,
        &student.token,
        session,
        "pm_card_visa",
        "charge-good-method",
    )
    .await;
    assert_eq!(paid.assert_status(201)["status"], "succeeded");
}

#[actix_web::test]
async fn an_unreachable_stripe_is_a_prompt_503() {
    let app = app_on("http://127.0.0.1:1").await;
    let (_, student, session) = booked_session(&app).await;
    charge(&app, &student.token, session, "pm_card_visa", "charge-5")
        .await
        .assert_problem(503, "service_unavailable");
}

#[actix_web::test]
async fn concurrent_charges_and_webhook_replays_charge_once_and_pay_once() {
    let stripe = MockServer::start().await;
    let secret = "whsec_race";
    let api_base = stripe.uri();
    let app = spawn_app_with(move |settings| {
        settings.payments.provider = "stripe".to_owned();
        settings.payments.stripe_secret_key = Some(KEY.to_owned());
        settings.payments.stripe_api_base = Some(api_base);
        settings.payments.stripe_webhook_secret = Some(secret.to_owned());
    })
    .await;
    let (_, student, session) = booked_session(&app).await;
    // Without a payment method the intent waits for the client; Stripe is asked once.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "pi_race", "object": "payment_intent",
            "status": "requires_payment_method", "client_secret": "pi_race_secret",
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    let charges = (0..10).map(|i| {
        let (app, token) = (&app, student.token.clone());
        async move {
            read(
                app.client
                    .post(app.url("/payment/charge"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("race-{i}"))
                    .json(&json!({"session_id": session}))
                    .send()
                    .await
                    .expect("sent"),
            )
            .await
            .status
            .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(charges).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );

    // Stripe confirms the payment, and retries its webhook: the same event five times at once,
    // plus a second event about the same intent.
    let body = |event: &str| {
        json!({"id": event, "type": "payment_intent.succeeded",
               "data": {"object": {"id": "pi_race", "object": "payment_intent"}}})
        .to_string()
    };
    let deliveries = ["evt_a", "evt_a", "evt_a", "evt_a", "evt_a", "evt_b"].map(|event| {
        let (app, payload) = (&app, body(event));
        async move {
            let signature = tutoring::payments::webhook::sign(
                secret,
                chrono::Utc::now().timestamp(),
                payload.as_bytes(),
            );
            app.stripe_webhook(&payload, &signature)
                .await
                .status
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(deliveries).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let (payments, succeeded, events, paid): (i64, i64, i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM payments WHERE session_id = $1), \
                (SELECT count(*) FROM payments WHERE session_id = $1 AND status = 'succeeded'), \
                (SELECT count(*) FROM webhook_events), \
                (SELECT payment_status FROM sessions WHERE id = $1)",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .expect("state");
    assert_eq!(
        (payments, succeeded, events, paid.as_str()),
        (1, 1, 2, "paid")
    );
}
