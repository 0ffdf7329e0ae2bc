//! Money owed back is always given back: a refund Stripe fails at cancellation, or a charge that
//! succeeds after its session was cancelled, is refunded by the sweep; a free session never
//! reaches Stripe.

use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, all_day_rules, days_ahead_at, read, spawn_app_with};
use crate::stripe::{app_on, booked_session, charge};

const WEBHOOK_SECRET: &str = "whsec_refunds";

/// A Stripe-backed server whose refund sweep runs every 200 ms.
async fn sweeping_app(stripe: &MockServer) -> TestApp {
    let api_base = stripe.uri();
    spawn_app_with(move |settings| {
        settings.payments.provider = "stripe".to_owned();
        settings.payments.stripe_secret_key = Some("sk_test_local".to_owned());
        settings.payments.stripe_api_base = Some(api_base);
        settings.payments.stripe_webhook_secret = Some(WEBHOOK_SECRET.to_owned());
        settings.payments.refund_retry = Duration::from_millis(200);
    })
    .await
}

/// The payment's status once it stops being `succeeded`, polled with a deadline.
async fn settled_payment_status(app: &TestApp, session: Uuid) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut poll = actix_web::rt::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let status: String =
            sqlx::query_scalar("SELECT status FROM payments WHERE session_id = $1")
                .bind(session)
                .fetch_one(&app.db)
                .await
                .expect("payment");
        if status != "succeeded" || Instant::now() > deadline {
            return status;
        }
    }
}

fn intent(id: &str, status: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"id": id, "object": "payment_intent", "status": status}))
}

fn refund_of(intent: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": format!("re_{intent}"), "object": "refund", "payment_intent": intent,
        "status": "succeeded",
    }))
}

#[actix_web::test]
async fn a_refund_stripe_fails_at_cancellation_is_made_by_the_sweep() {
    let stripe = MockServer::start().await;
    let app = sweeping_app(&stripe).await;
    let (tutor, student, session) = booked_session(&app).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(intent("pi_paid", "succeeded"))
        .mount(&stripe)
        .await;
    let paid = charge(&app, &student.token, session, "pm_card_visa", "pay-1").await;
    assert_eq!(paid.assert_status(201)["status"], "succeeded");

    // Stripe fails the first refund; later ones go through.
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {
            "type": "api_error", "message": "An unknown error occurred",
        }})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&stripe)
        .await;
    // The cancellation's own attempt and a sweep may overlap: the shared key makes Stripe
    // refund once however often it is asked.
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(header("idempotency-key", "refund-pi_paid"))
        .and(body_string_contains("payment_intent=pi_paid"))
        .respond_with(refund_of("pi_paid"))
        .expect(1..=2)
        .mount(&stripe)
        .await;

    // The cancellation stands whatever Stripe answers.
    let cancelled = app
        .post(
            &format!("/sessions/{session}/cancel"),
            Some(&tutor.token),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.assert_status(200)["status"], "cancelled");
    assert_eq!(settled_payment_status(&app, session).await, "refunded");
    let owed: String = sqlx::query_scalar("SELECT payment_status FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&app.db)
        .await
        .expect("session");
    assert_eq!(owed, "refunded");
}

#[actix_web::test]
async fn a_charge_that_succeeds_after_its_session_was_cancelled_is_refunded() {
    let stripe = MockServer::start().await;
    let app = sweeping_app(&stripe).await;
    let (tutor, student, session) = booked_session(&app).await;
    // The card needs the student's confirmation; meanwhile the tutor cancels.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(intent("pi_late", "requires_action"))
        .mount(&stripe)
        .await;
    let waiting = charge(&app, &student.token, session, "pm_card_3ds", "late-1").await;
    assert_eq!(waiting.assert_status(201)["status"], "requires_action");
    app.post(
        &format!("/sessions/{session}/cancel"),
        Some(&tutor.token),
        &json!({}),
    )
    .await
    .assert_status(200);
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(body_string_contains("payment_intent=pi_late"))
        .respond_with(refund_of("pi_late"))
        .expect(1)
        .mount(&stripe)
        .await;

    // Then the student confirms, and Stripe says the money was taken.
    let event = json!({"id": "evt_late", "type": "payment_intent.succeeded",
                       "data": {"object": {"id": "pi_late", "object": "payment_intent"}}})
    .to_string();
    let signature = tutoring::payments::webhook::sign(
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        event.as_bytes(),
    );
    let delivered = read(
        app.client
            .post(app.url("/payment/webhook/stripe"))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(event)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    delivered.assert_status(200);
    assert_eq!(settled_payment_status(&app, session).await, "refunded");
}

#[actix_web::test]
async fn a_free_session_is_paid_and_refunded_without_asking_stripe() {
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&stripe)
        .await;
    let app = app_on(&stripe.uri()).await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    app.put(
        &format!("/user/{}", tutor.id),
        Some(&tutor.token),
        &json!({"price_per_hour": {"amount_cents": 0, "currency": "BRL"}}),
    )
    .await
    .assert_status(200);
    let student = app.student().await;
    let booked = app
        .book(&student, tutor.id, days_ahead_at(2, 10, 0), 60)
        .await;
    let session: Uuid = booked.assert_status(201)["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an id");

    let paid = charge(&app, &student.token, session, "pm_card_visa", "free-1").await;
    let body = paid.assert_status(201);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["amount"]["amount_cents"], 0);
    let cancelled = app
        .post(
            &format!("/sessions/{session}/cancel"),
            Some(&tutor.token),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.assert_status(200)["payment_status"], "refunded");
}
