//! Payments that go wrong half-way are always settled: an abandoned charge is sent again exactly
//! as first sent (or cancelled, when it was left waiting on the student) before another may
//! begin, a charge the provider made but never answered is
//! found by its webhook, a late answer never undoes the webhook, and money owed back (a refund
//! Stripe failed, a charge that succeeded after its session was cancelled) is refunded by the
//! sweep. A free session never reaches Stripe.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, TestResponse, all_day_rules, days_ahead_at, spawn_app_with};
use crate::stripe::{a_charge_key, booked_session, charge, stripe_api_error, stripe_key_of};

const KEY: &str = "sk_test_local";
const WEBHOOK_SECRET: &str = "whsec_recovery";

/// A Stripe-backed server that takes webhooks and sweeps for refunds owed every `sweep`.
async fn stripe_app(stripe: &MockServer, sweep: Duration) -> TestApp {
    let api_base = stripe.uri();
    spawn_app_with(move |settings| {
        settings.payments.provider = "stripe".to_owned();
        settings.payments.stripe_secret_key = Some(KEY.to_owned());
        settings.payments.stripe_api_base = Some(api_base);
        settings.payments.stripe_webhook_secret = Some(WEBHOOK_SECRET.to_owned());
        settings.payments.refund_retry = sweep;
    })
    .await
}

/// The provider as the server has it, for running one refund sweep by hand.
fn stripe_provider(stripe: &MockServer) -> tutoring::payments::Payments {
    tutoring::payments::Payments::from_settings(&tutoring::configuration::PaymentSettings {
        provider: "stripe".to_owned(),
        stripe_secret_key: Some(KEY.to_owned()),
        stripe_api_base: Some(stripe.uri()),
        stripe_webhook_secret: None,
        refund_retry: Duration::from_secs(60),
    })
    .expect("a Stripe provider")
}

async fn deliver(app: &TestApp, event: Value) -> TestResponse {
    let body = event.to_string();
    let signature = tutoring::payments::webhook::sign(
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    app.stripe_webhook(&body, &signature).await
}

fn intent_event(event_id: &str, kind: &str, intent: &str, payment: Uuid) -> Value {
    json!({"id": event_id, "type": kind, "data": {"object": {
        "id": intent, "object": "payment_intent", "metadata": {"payment_id": payment.to_string()},
    }}})
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

/// `(session payment_status, payment status)` of the session's only payment, or of its latest.
async fn payment_state(app: &TestApp, session: Uuid) -> (String, String) {
    sqlx::query_as(
        "SELECT s.payment_status, p.status FROM sessions s JOIN payments p ON p.session_id = s.id \
         WHERE s.id = $1 ORDER BY p.created_at DESC LIMIT 1",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .expect("state")
}

/// The payment's status once it stops being `succeeded`, polled with a deadline.
async fn settled_payment_status(app: &TestApp, session: Uuid) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut poll = actix_web::rt::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let (_, status) = payment_state(app, session).await;
        if status != "succeeded" || Instant::now() > deadline {
            return status;
        }
    }
}

#[actix_web::test]
async fn an_abandoned_charge_is_settled_exactly_as_first_sent_before_another_begins() {
    let stripe = MockServer::start().await;
    let app = stripe_app(&stripe, Duration::from_secs(60)).await;
    let (_, student, session) = booked_session(&app).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"error": {
            "type": "api_error", "message": "Service unavailable",
        }})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&stripe)
        .await;
    charge(&app, &student.token, session, "pm_first_card", "first-key")
        .await
        .assert_problem(503, "service_unavailable");
    // While the first request may still be running, no other charge begins.
    charge(
        &app,
        &student.token,
        session,
        "pm_second_card",
        "second-key",
    )
    .await
    .assert_problem(409, "payment_in_progress");

    // Long after, the first charge is sent again under its key and with its card (Stripe would
    // refuse other parameters under that key): the card was declined. Then the new one goes.
    sqlx::query("UPDATE payments SET updated_at = now() - interval '2 minutes'")
        .execute(&app.db)
        .await
        .expect("aged");
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header(
            "idempotency-key",
            stripe_key_of(&app, "first-key").await.as_str(),
        ))
        .and(body_string_contains("payment_method=pm_first_card"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({"error": {
            "type": "card_error", "code": "card_declined", "decline_code": "expired_card",
            "message": "Your card has expired.",
            "payment_intent": {"id": "pi_first", "status": "requires_payment_method"},
        }})))
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(a_charge_key())
        .and(body_string_contains("payment_method=pm_second_card"))
        .respond_with(intent("pi_second", "succeeded"))
        .expect(1)
        .mount(&stripe)
        .await;
    let paid = charge(
        &app,
        &student.token,
        session,
        "pm_second_card",
        "second-key",
    )
    .await;
    assert_eq!(paid.assert_status(201)["status"], "succeeded");
    // Each key keeps answering with its own payment.
    let again = charge(
        &app,
        &student.token,
        session,
        "pm_second_card",
        "second-key",
    )
    .await;
    assert_eq!(paid.body, again.body);
    let first = charge(&app, &student.token, session, "pm_first_card", "first-key").await;
    assert_eq!(first.assert_status(201)["status"], "failed");
    assert_eq!(
        payment_state(&app, session).await,
        ("paid".into(), "succeeded".into())
    );
}

#[actix_web::test]
async fn a_charge_left_waiting_on_the_student_is_cancelled_by_a_later_one() {
    take_over_a_waiting_charge(intent("pi_waiting", "canceled")).await;
}

#[actix_web::test]
async fn a_charge_left_waiting_and_cancelled_at_stripe_already_makes_way_for_a_later_one() {
    // Stripe refuses to cancel an intent cancelled before (from its dashboard, say).
    take_over_a_waiting_charge(ResponseTemplate::new(400).set_body_json(json!({"error": {
        "type": "invalid_request_error", "code": "payment_intent_unexpected_state",
        "payment_intent": {"id": "pi_waiting", "object": "payment_intent", "status": "canceled"},
    }})))
    .await;
}

/// A charge left waiting on the student for long, taken over by a later one once Stripe answers
/// its cancellation with `cancelled`.
async fn take_over_a_waiting_charge(cancelled: ResponseTemplate) {
    let stripe = MockServer::start().await;
    let app = stripe_app(&stripe, Duration::from_secs(60)).await;
    let (_, student, session) = booked_session(&app).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(a_charge_key())
        .and(body_string_contains("payment_method=pm_card_3ds"))
        .respond_with(intent("pi_waiting", "requires_action"))
        .expect(1)
        .mount(&stripe)
        .await;
    let waiting = charge(&app, &student.token, session, "pm_card_3ds", "waiting-key").await;
    assert_eq!(waiting.assert_status(201)["status"], "requires_action");
    // While the student may still confirm it, no other charge begins.
    charge(&app, &student.token, session, "pm_card_visa", "other-key")
        .await
        .assert_problem(409, "payment_in_progress");

    // Left waiting for long, it is cancelled at Stripe and another charge takes its place.
    sqlx::query("UPDATE payments SET updated_at = now() - interval '20 minutes'")
        .execute(&app.db)
        .await
        .expect("aged");
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents/pi_waiting/cancel"))
        .respond_with(cancelled)
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(a_charge_key())
        .and(body_string_contains("payment_method=pm_card_visa"))
        .respond_with(intent("pi_other", "succeeded"))
        .expect(1)
        .mount(&stripe)
        .await;
    let paid = charge(&app, &student.token, session, "pm_card_visa", "other-key").await;
    assert_eq!(paid.assert_status(201)["status"], "succeeded");
    let abandoned: (String, Option<String>) = sqlx::query_as(
        "SELECT status, failure_code FROM payments WHERE idempotency_key = 'waiting-key'",
    )
    .fetch_one(&app.db)
    .await
    .expect("the first payment");
    assert_eq!(abandoned, ("failed".into(), Some("abandoned".into())));
    assert_eq!(
        payment_state(&app, session).await,
        ("paid".into(), "succeeded".into())
    );
}

#[actix_web::test]
async fn a_late_answer_never_undoes_what_the_webhook_settled() {
    let stripe = MockServer::start().await;
    let app = stripe_app(&stripe, Duration::from_secs(60)).await;
    let (_, student, session) = booked_session(&app).await;
    // Stripe answers the charge late; meanwhile its webhook says the money was taken. The
    // payment has no Stripe id yet: the webhook finds it by the id in the intent's metadata.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(body_string_contains("metadata%5Bpayment_id%5D="))
        .respond_with(intent("pi_slow", "requires_action").set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&stripe)
        .await;
    let charging = charge(&app, &student.token, session, "pm_card_3ds", "slow-key");
    let settling = async {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut poll = actix_web::rt::time::interval(Duration::from_millis(20));
        let payment: Uuid = loop {
            poll.tick().await;
            let found: Option<Uuid> =
                sqlx::query_scalar("SELECT id FROM payments WHERE session_id = $1")
                    .bind(session)
                    .fetch_optional(&app.db)
                    .await
                    .expect("payment");
            if let Some(found) = found {
                break found;
            }
            assert!(Instant::now() < deadline, "the charge never began");
        };
        deliver(
            &app,
            intent_event("evt_fast", "payment_intent.succeeded", "pi_slow", payment),
        )
        .await
        .assert_status(200);
    };
    let (answer, ()) = futures_util::join!(charging, settling);
    assert_eq!(answer.assert_status(201)["status"], "succeeded");
    assert_eq!(
        payment_state(&app, session).await,
        ("paid".into(), "succeeded".into())
    );
}

#[actix_web::test]
async fn a_refund_stripe_fails_at_cancellation_is_made_by_the_next_sweep() {
    refund_failed_at_cancellation_then_swept(refund_of("pi_paid")).await;
}

#[actix_web::test]
async fn a_refund_stripe_made_but_whose_answer_was_lost_long_ago_is_settled_by_the_sweep() {
    // Too late for the idempotency key: Stripe says the charge is refunded already.
    refund_failed_at_cancellation_then_swept(ResponseTemplate::new(400).set_body_json(json!({
        "error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                  "message": "Charge ch_1 has already been refunded."},
    })))
    .await;
}

/// A paid session cancelled while Stripe fails the refund; the next sweep asks again and Stripe
/// answers `next`, which settles the refund.
async fn refund_failed_at_cancellation_then_swept(next: ResponseTemplate) {
    let stripe = MockServer::start().await;
    let app = stripe_app(&stripe, Duration::from_secs(60)).await;
    let (tutor, student, session) = booked_session(&app).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(intent("pi_paid", "succeeded"))
        .mount(&stripe)
        .await;
    let paid = charge(&app, &student.token, session, "pm_card_visa", "pay-1").await;
    assert_eq!(paid.assert_status(201)["status"], "succeeded");

    // Stripe fails the refund at cancellation: the cancellation stands all the same.
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(stripe_api_error())
        .up_to_n_times(1)
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
    let body = cancelled.assert_status(200);
    assert_eq!(
        (&body["status"], &body["payment_status"]),
        (&json!("cancelled"), &json!("paid"))
    );

    // The next sweep refunds it.
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(header("idempotency-key", "refund-pi_paid"))
        .and(body_string_contains("payment_intent=pi_paid"))
        .respond_with(next)
        .expect(1)
        .mount(&stripe)
        .await;
    let provider = stripe_provider(&stripe);
    assert_eq!(
        tutoring::payments::refunds::refund_owed(&app.db, &provider, None).await,
        1
    );
    assert_eq!(
        payment_state(&app, session).await,
        ("refunded".into(), "refunded".into())
    );
    assert_eq!(
        tutoring::payments::refunds::refund_owed(&app.db, &provider, None).await,
        0
    );
}

#[actix_web::test]
async fn a_charge_that_succeeds_after_its_session_was_cancelled_is_refunded_by_the_sweep() {
    let stripe = MockServer::start().await;
    let app = stripe_app(&stripe, Duration::from_millis(200)).await;
    let (tutor, student, session) = booked_session(&app).await;
    // The card needs the student's confirmation; meanwhile the tutor cancels.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(intent("pi_late", "requires_action"))
        .mount(&stripe)
        .await;
    let waiting = charge(&app, &student.token, session, "pm_card_3ds", "late-1").await;
    let payment: Uuid = waiting.assert_status(201)["payment_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a payment id");
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

    // Then the student confirms, and Stripe says the money was taken: the sweep gives it back.
    deliver(
        &app,
        intent_event("evt_late", "payment_intent.succeeded", "pi_late", payment),
    )
    .await
    .assert_status(200);
    assert_eq!(settled_payment_status(&app, session).await, "refunded");
    assert_eq!(
        payment_state(&app, session).await,
        ("refunded".into(), "refunded".into())
    );
}

#[actix_web::test]
async fn a_free_session_is_paid_and_refunded_without_asking_stripe() {
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&stripe)
        .await;
    let app = stripe_app(&stripe, Duration::from_secs(60)).await;
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

#[actix_web::test]
async fn a_charge_stripe_keeps_failing_under_its_key_is_looked_up_then_sent_under_a_new_one() {
    let stripe = MockServer::start().await;
    let app = stripe_app(&stripe, Duration::from_secs(60)).await;
    // Stripe fails the charge, and from then on answers the same error again from its memory
    // of the key (for a day), saying so.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(a_charge_key())
        .respond_with(stripe_api_error().insert_header("Idempotent-Replayed", "true"))
        .mount(&stripe)
        .await;
    let age = |session: Uuid| {
        let app = &app;
        async move {
            sqlx::query_scalar::<_, Uuid>(
                "UPDATE payments SET provider_attempted_at = now() - interval '11 minutes' \
                 WHERE session_id = $1 RETURNING id",
            )
            .bind(session)
            .fetch_one(&app.db)
            .await
            .expect("the payment")
        }
    };
    let stuck = |student: crate::helpers::TestUser, session: Uuid| {
        let app = &app;
        async move {
            for _ in 0..2 {
                charge(app, &student.token, session, "pm_card_visa", "stuck")
                    .await
                    .assert_problem(503, "service_unavailable");
            }
            // Long after its last request that may have run.
            age(session).await
        }
    };
    let search = |payment: Uuid| {
        Mock::given(method("GET"))
            .and(path("/v1/payment_intents/search"))
            .and(query_param(
                "query",
                format!("metadata['payment_id']:'{payment}'").as_str(),
            ))
    };

    // Stripe made no intent for the payment: the charge goes under its next key.
    let (_, student, session) = booked_session(&app).await;
    let payment = stuck(student.clone(), session).await;
    // Looked up once only (and not before the wait below is over).
    search(payment)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "search_result", "data": [], "has_more": false,
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    // But an error that is not a replay (a timeout, a first failure) may have made the charge
    // just now, before Stripe's search can show it: no new key then, and the wait starts over.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(stripe_api_error())
        .with_priority(1)
        .up_to_n_times(1)
        .expect(1)
        .mount(&stripe)
        .await;
    for _ in 0..2 {
        charge(&app, &student.token, session, "pm_card_visa", "stuck")
            .await
            .assert_problem(503, "service_unavailable");
    }
    let attempt: i32 = sqlx::query_scalar("SELECT provider_attempt FROM payments WHERE id = $1")
        .bind(payment)
        .fetch_one(&app.db)
        .await
        .expect("the payment");
    assert_eq!(
        attempt, 0,
        "no new key after an error that may have made the charge"
    );
    age(session).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header(
            "idempotency-key",
            format!("charge-{payment}-1").as_str(),
        ))
        .respond_with(intent("pi_second_try", "succeeded"))
        .expect(1)
        .mount(&stripe)
        .await;
    let paid = charge(&app, &student.token, session, "pm_card_visa", "stuck").await;
    assert_eq!(paid.assert_status(201)["status"], "succeeded");
    assert_eq!(
        payment_state(&app, session).await,
        ("paid".into(), "succeeded".into())
    );

    // Stripe made one after all: it is that payment's charge, and none other is made.
    let (_, student, session) = booked_session(&app).await;
    let payment = stuck(student.clone(), session).await;
    search(payment)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "search_result", "has_more": false,
            "data": [{"id": "pi_made", "object": "payment_intent", "status": "succeeded",
                      "metadata": {"payment_id": payment.to_string()}}],
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    let paid = charge(&app, &student.token, session, "pm_card_visa", "stuck").await;
    assert_eq!(paid.assert_status(201)["status"], "succeeded");
    let made: (String, i32) =
        sqlx::query_as("SELECT provider_ref, provider_attempt FROM payments WHERE id = $1")
            .bind(payment)
            .fetch_one(&app.db)
            .await
            .expect("the payment");
    assert_eq!(made, ("pi_made".into(), 0));
}

#[actix_web::test]
async fn a_charge_last_sent_a_day_ago_is_looked_up_before_it_is_sent_again() {
    let stripe = MockServer::start().await;
    let app = stripe_app(&stripe, Duration::from_secs(60)).await;
    let (_, student, session) = booked_session(&app).await;
    // Stripe's answer was lost; a day later it has forgotten the key, so a resend would make a
    // second charge.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(stripe_api_error())
        .up_to_n_times(1)
        .expect(1)
        .mount(&stripe)
        .await;
    charge(&app, &student.token, session, "pm_card_visa", "lost")
        .await
        .assert_problem(503, "service_unavailable");
    let payment: Uuid = sqlx::query_scalar(
        "UPDATE payments SET provider_attempted_at = now() - interval '25 hours', \
                             updated_at = now() - interval '25 hours' \
         WHERE session_id = $1 RETURNING id",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .expect("the payment");
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "search_result", "has_more": false,
            "data": [{"id": "pi_made_long_ago", "object": "payment_intent",
                      "status": "succeeded", "metadata": {"payment_id": payment.to_string()}}],
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(intent("pi_twice", "succeeded"))
        .expect(0)
        .mount(&stripe)
        .await;
    let paid = charge(&app, &student.token, session, "pm_card_visa", "lost").await;
    assert_eq!(paid.assert_status(201)["status"], "succeeded");
    let made: String = sqlx::query_scalar("SELECT provider_ref FROM payments WHERE id = $1")
        .bind(payment)
        .fetch_one(&app.db)
        .await
        .expect("the payment");
    assert_eq!(made, "pi_made_long_ago");
}

#[actix_web::test]
async fn a_charge_begun_before_keys_were_per_student_is_sent_again_under_the_students_key() {
    let stripe = MockServer::start().await;
    let app = stripe_app(&stripe, Duration::from_secs(60)).await;
    let (_, student, session) = booked_session(&app).await;
    // As the previous release left it: no student, its request to Stripe never answered.
    sqlx::query(
        "INSERT INTO payments (id, session_id, provider, idempotency_key, amount_cents, \
                               currency, payment_method, status) \
         VALUES ($1, $2, 'stripe', 'legacy-key', 12000, 'BRL', 'pm_card_visa', 'pending')",
    )
    .bind(Uuid::now_v7())
    .bind(session)
    .execute(&app.db)
    .await
    .expect("a payment of the previous release");
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("idempotency-key", "legacy-key"))
        .respond_with(intent("pi_legacy", "succeeded"))
        .expect(1)
        .mount(&stripe)
        .await;
    // The student's retry with the same key finds it and sends it as first sent.
    let paid = charge(&app, &student.token, session, "pm_card_visa", "legacy-key").await;
    assert_eq!(paid.assert_status(201)["status"], "succeeded");
    assert_eq!(
        payment_state(&app, session).await,
        ("paid".into(), "succeeded".into())
    );
}
