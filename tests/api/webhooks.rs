//! `POST /payment/webhook/stripe`: signatures, and each event applied once.

use serde_json::{Value, json};
use tutoring::payments::webhook::sign;
use uuid::Uuid;

use crate::helpers::{
    TestApp, TestUser, all_day_rules, days_ahead_at, read, spawn_app, spawn_app_with,
    until_a_query_waits_on_a_lock,
};

const SECRET: &str = "whsec_test_secret";

async fn app_with_secret() -> TestApp {
    spawn_app_with(|settings| settings.payments.stripe_webhook_secret = Some(SECRET.to_owned()))
        .await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn event(id: &str, kind: &str, object: Value) -> String {
    json!({"id": id, "object": "event", "type": kind, "data": {"object": object}}).to_string()
}

/// A booked session with a pending Stripe charge `intent`.
async fn pending_stripe_charge(app: &TestApp, intent: &str) -> Uuid {
    stripe_charge(app, intent, "pending").await.1
}

/// A booked session with a Stripe charge `intent` in `status`, and its student.
async fn stripe_charge(app: &TestApp, intent: &str, status: &str) -> (TestUser, Uuid) {
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let booked = app
        .book(&student, tutor.id, days_ahead_at(2, 10, 0), 60)
        .await;
    let session: Uuid = booked.assert_status(201)["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an id");
    sqlx::query(
        "INSERT INTO payments (id, session_id, provider, provider_ref, idempotency_key, \
                               amount_cents, currency, status) \
         VALUES ($1, $2, 'stripe', $3, $4, 12000, 'BRL', $5)",
    )
    .bind(Uuid::now_v7())
    .bind(session)
    .bind(intent)
    .bind(format!("key-{intent}"))
    .bind(status)
    .execute(&app.db)
    .await
    .expect("a charge");
    (student, session)
}

async fn session_payment(app: &TestApp, session: Uuid) -> (String, String) {
    sqlx::query_as(
        "SELECT s.payment_status, p.status FROM sessions s JOIN payments p ON p.session_id = s.id \
         WHERE s.id = $1",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .expect("state")
}

#[actix_web::test]
async fn a_signed_success_marks_the_session_paid_once_and_a_refund_follows() {
    let app = app_with_secret().await;
    let session = pending_stripe_charge(&app, "pi_123").await;
    let succeeded = event(
        "evt_1",
        "payment_intent.succeeded",
        json!({"id": "pi_123", "object": "payment_intent"}),
    );
    let first = app
        .stripe_webhook(&succeeded, &sign(SECRET, now(), succeeded.as_bytes()))
        .await;
    assert_eq!(first.assert_status(200)["duplicate"], false);
    assert_eq!(
        session_payment(&app, session).await,
        ("paid".into(), "succeeded".into())
    );

    // The same event again (Stripe retries): acknowledged, applied once.
    let replay = app
        .stripe_webhook(&succeeded, &sign(SECRET, now(), succeeded.as_bytes()))
        .await;
    assert_eq!(replay.assert_status(200)["duplicate"], true);
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(recorded, 1);

    // A partial refund leaves the session paid.
    let partly = event(
        "evt_2a",
        "charge.refunded",
        json!({"id": "ch_1", "object": "charge", "payment_intent": "pi_123",
               "refunded": false, "amount_refunded": 5000}),
    );
    app.stripe_webhook(&partly, &sign(SECRET, now(), partly.as_bytes()))
        .await
        .assert_status(200);
    assert_eq!(
        session_payment(&app, session).await,
        ("paid".into(), "succeeded".into())
    );
    let refunded = event(
        "evt_2",
        "charge.refunded",
        json!({"id": "ch_1", "object": "charge", "payment_intent": "pi_123",
               "refunded": true, "amount_refunded": 12000}),
    );
    app.stripe_webhook(&refunded, &sign(SECRET, now(), refunded.as_bytes()))
        .await
        .assert_status(200);
    assert_eq!(
        session_payment(&app, session).await,
        ("refunded".into(), "refunded".into())
    );
}

#[actix_web::test]
async fn a_failed_charge_leaves_the_session_unpaid() {
    let app = app_with_secret().await;
    let session = pending_stripe_charge(&app, "pi_456").await;
    let failed = event(
        "evt_3",
        "payment_intent.payment_failed",
        json!({"id": "pi_456"}),
    );
    app.stripe_webhook(&failed, &sign(SECRET, now(), failed.as_bytes()))
        .await
        .assert_status(200);
    assert_eq!(
        session_payment(&app, session).await,
        ("unpaid".into(), "failed".into())
    );
}

#[actix_web::test]
async fn a_charge_waiting_on_the_student_survives_a_failed_attempt_and_a_late_success_pays() {
    let app = app_with_secret().await;
    let send = |id: &'static str, kind: &'static str, intent: &'static str| {
        let body = event(id, kind, json!({"id": intent}));
        let app = &app;
        async move {
            app.stripe_webhook(&body, &sign(SECRET, now(), body.as_bytes()))
                .await
                .assert_status(200);
        }
    };
    // The student's card fails its check; the intent takes another attempt (same client
    // secret), so the charge stays theirs, and a second charge cannot start beside it.
    let (student, waiting) = stripe_charge(&app, "pi_3ds", "requires_action").await;
    send("evt_a", "payment_intent.payment_failed", "pi_3ds").await;
    assert_eq!(
        session_payment(&app, waiting).await,
        ("unpaid".into(), "requires_action".into())
    );
    app.client
        .post(app.url("/payment/charge"))
        .bearer_auth(&student.token)
        .header("Idempotency-Key", "another-card")
        .json(&json!({"session_id": waiting}))
        .send()
        .await
        .map(read)
        .expect("sent")
        .await
        .assert_problem(409, "payment_in_progress");
    send("evt_b", "payment_intent.succeeded", "pi_3ds").await;
    assert_eq!(
        session_payment(&app, waiting).await,
        ("paid".into(), "succeeded".into())
    );

    // A charge given up as failed that succeeds after all pays its session.
    let given_up = pending_stripe_charge(&app, "pi_late").await;
    send("evt_c", "payment_intent.payment_failed", "pi_late").await;
    assert_eq!(
        session_payment(&app, given_up).await,
        ("unpaid".into(), "failed".into())
    );
    send("evt_d", "payment_intent.succeeded", "pi_late").await;
    assert_eq!(
        session_payment(&app, given_up).await,
        ("paid".into(), "succeeded".into())
    );
}

#[actix_web::test]
async fn a_late_success_racing_a_new_charge_is_acknowledged_and_the_new_charge_stays() {
    let app = app_with_secret().await;
    let (_, session) = stripe_charge(&app, "pi_given_up", "failed").await;
    // A new charge of the session is being written, not yet committed, as the given-up one's
    // success arrives: the success waits on it, then finds its place taken.
    let mut beginning = app.db.begin().await.expect("a transaction");
    sqlx::query(
        "INSERT INTO payments (id, session_id, provider, idempotency_key, amount_cents, \
                               currency, status) \
         VALUES ($1, $2, 'stripe', 'new-key', 12000, 'BRL', 'pending')",
    )
    .bind(Uuid::now_v7())
    .bind(session)
    .execute(&mut *beginning)
    .await
    .expect("a new charge");
    let body = event(
        "evt_late",
        "payment_intent.succeeded",
        json!({"id": "pi_given_up"}),
    );
    let signature = sign(SECRET, now(), body.as_bytes());
    let delivered = app.stripe_webhook(&body, &signature);
    let begun = async {
        until_a_query_waits_on_a_lock(&app).await;
        beginning.commit().await.expect("committed");
    };
    let (delivered, ()) = futures_util::join!(delivered, begun);
    assert_eq!(delivered.assert_status(200)["duplicate"], false);
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM payments WHERE session_id = $1 ORDER BY status")
            .bind(session)
            .fetch_all(&app.db)
            .await
            .expect("payments");
    assert_eq!(statuses, ["failed", "pending"]);
}

#[actix_web::test]
async fn bad_signatures_are_refused_and_change_nothing() {
    let app = app_with_secret().await;
    let session = pending_stripe_charge(&app, "pi_789").await;
    let body = event("evt_4", "payment_intent.succeeded", json!({"id": "pi_789"}));
    let good = sign(SECRET, now(), body.as_bytes());

    let tampered = body.replace("pi_789", "pi_000");
    app.stripe_webhook(&tampered, &good)
        .await
        .assert_problem(400, "invalid_signature");
    app.stripe_webhook(&body, &sign("whsec_wrong", now(), body.as_bytes()))
        .await
        .assert_problem(400, "invalid_signature");
    app.stripe_webhook(&body, &sign(SECRET, now() - 301, body.as_bytes()))
        .await
        .assert_problem(400, "invalid_signature");
    app.stripe_webhook(&body, "")
        .await
        .assert_problem(400, "invalid_signature");
    // Signed, but with ids no Stripe event has: refused before anything is stored.
    for odd in [
        event(
            &"e".repeat(256),
            "payment_intent.succeeded",
            json!({"id": "pi_789"}),
        ),
        event(
            "evt_5\u{0}",
            "payment_intent.succeeded",
            json!({"id": "pi_789"}),
        ),
        event(
            "evt_6",
            "payment_intent.succeeded",
            json!({"id": "pi_789\u{0}"}),
        ),
    ] {
        app.stripe_webhook(&odd, &sign(SECRET, now(), odd.as_bytes()))
            .await
            .assert_problem(400, "invalid_event");
    }
    assert_eq!(
        session_payment(&app, session).await,
        ("unpaid".into(), "pending".into())
    );

    // During a secret rotation Stripe sends one v1 per secret: one match is enough.
    let old = sign("whsec_old", now(), body.as_bytes());
    let old_v1 = old
        .split_once(",v1=")
        .map(|(_, v)| v.to_owned())
        .expect("v1");
    app.stripe_webhook(&body, &format!("{good},v1={old_v1}"))
        .await
        .assert_status(200);
    assert_eq!(
        session_payment(&app, session).await,
        ("paid".into(), "succeeded".into())
    );
}

#[actix_web::test]
async fn without_a_secret_the_webhook_is_unavailable() {
    let app = spawn_app().await;
    let body = event("evt_5", "payment_intent.succeeded", json!({"id": "pi_1"}));
    app.stripe_webhook(&body, &sign(SECRET, now(), body.as_bytes()))
        .await
        .assert_problem(503, "webhook_not_configured");
}
