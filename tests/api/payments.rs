//! Paying for sessions through the fake provider.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    TestApp, TestUser, all_day_rules, days_ahead_at, read, spawn_app, until_a_query_waits_on_a_lock,
};

async fn booked(app: &TestApp, tutor: &TestUser, student: &TestUser, day: i64) -> Uuid {
    let response = app
        .book(student, tutor.id, days_ahead_at(day, 10, 0), 60)
        .await;
    response.assert_status(201)["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an id")
}

async fn charge(
    app: &TestApp,
    who: &TestUser,
    body: Value,
    key: Option<&str>,
) -> crate::helpers::TestResponse {
    let mut request = app
        .client
        .post(app.url("/payment/charge"))
        .bearer_auth(&who.token)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    read(request.send().await.expect("sent")).await
}

async fn payment_status(app: &TestApp, who: &TestUser, session: Uuid) -> Value {
    let response = app
        .get(&format!("/sessions/{session}"), Some(&who.token))
        .await;
    response.assert_status(200)["payment_status"].clone()
}

#[actix_web::test]
async fn a_session_is_booked_paid_completed_and_reviewed() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let session = booked(&app, &tutor, &student, 2).await;

    let paid = charge(
        &app,
        &student,
        json!({"session_id": session}),
        Some("pay-1"),
    )
    .await;
    let body = paid.assert_status(201);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["session_id"], session.to_string());
    assert_eq!(
        body["amount"],
        json!({"amount_cents": 12000, "currency": "BRL"})
    );
    assert!(body["payment_id"].is_string());
    assert_eq!(payment_status(&app, &student, session).await, "paid");

    // As if the session had started: the tutor completes it, the student reviews it.
    sqlx::query(
        "UPDATE sessions SET scheduled_at = now() - interval '2 hours', \
                             ends_at = now() - interval '1 hour' WHERE id = $1",
    )
    .bind(session)
    .execute(&app.db)
    .await
    .expect("started");
    let done = app
        .post(
            &format!("/sessions/{session}/complete"),
            Some(&tutor.token),
            &json!({}),
        )
        .await;
    assert_eq!(done.assert_status(200)["status"], "completed");
    app.post(
        "/reviews",
        Some(&student.token),
        &json!({"session_id": session, "rating": 5}),
    )
    .await
    .assert_status(201);
}

#[actix_web::test]
async fn a_declined_charge_leaves_the_session_unpaid_and_may_be_retried() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let session = booked(&app, &tutor, &student, 2).await;

    let declined = charge(
        &app,
        &student,
        json!({"session_id": session, "payment_method": "fail"}),
        None,
    )
    .await;
    assert_eq!(declined.assert_status(201)["status"], "failed");
    assert_eq!(payment_status(&app, &student, session).await, "unpaid");
    let waiting = charge(
        &app,
        &student,
        json!({"session_id": session, "payment_method": "requires_action"}),
        None,
    )
    .await;
    let body = waiting.assert_status(201);
    assert_eq!(body["status"], "requires_action");
    assert!(body["client_secret"].is_string());
    assert_eq!(payment_status(&app, &student, session).await, "unpaid");
    // A charge waiting for the client blocks another one.
    charge(&app, &student, json!({"session_id": session}), None)
        .await
        .assert_problem(409, "payment_in_progress");
}

#[actix_web::test]
async fn a_paid_session_is_never_charged_twice() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let session = booked(&app, &tutor, &student, 2).await;

    let first = charge(
        &app,
        &student,
        json!({"session_id": session}),
        Some("same-key"),
    )
    .await;
    let again = charge(
        &app,
        &student,
        json!({"session_id": session}),
        Some("same-key"),
    )
    .await;
    assert_eq!(first.assert_status(201), again.assert_status(201));
    charge(
        &app,
        &student,
        json!({"session_id": session}),
        Some("other-key"),
    )
    .await
    .assert_problem(409, "already_paid");

    // Concurrent charges of another session: one payment, whatever the keys.
    let second = booked(&app, &tutor, &student, 3).await;
    let attempts = (0..10).map(|i| {
        let app = &app;
        let student = &student;
        async move {
            let key = format!("race-{i}");
            charge(app, student, json!({"session_id": second}), Some(&key))
                .await
                .status
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let succeeded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payments WHERE session_id = $1 AND status = 'succeeded'",
    )
    .bind(second)
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert_eq!(succeeded, 1);
}

#[actix_web::test]
async fn cancelling_a_paid_session_refunds_it_and_a_cancelled_one_cannot_be_paid() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let session = booked(&app, &tutor, &student, 2).await;
    charge(&app, &student, json!({"session_id": session}), None)
        .await
        .assert_status(201);
    let cancelled = app
        .post(
            &format!("/sessions/{session}/cancel"),
            Some(&tutor.token),
            &json!({}),
        )
        .await;
    let body = cancelled.assert_status(200);
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["payment_status"], "refunded");
    let refunded: String = sqlx::query_scalar("SELECT status FROM payments WHERE session_id = $1")
        .bind(session)
        .fetch_one(&app.db)
        .await
        .expect("payment");
    assert_eq!(refunded, "refunded");

    let other = booked(&app, &tutor, &student, 3).await;
    app.post(
        &format!("/sessions/{other}/cancel"),
        Some(&student.token),
        &json!({}),
    )
    .await
    .assert_status(200);
    charge(&app, &student, json!({"session_id": other}), None)
        .await
        .assert_problem(409, "session_cancelled");
}

#[actix_web::test]
async fn only_the_sessions_student_pays() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let outsider = app.student().await;
    let session = booked(&app, &tutor, &student, 2).await;
    charge(&app, &tutor, json!({"session_id": session}), None)
        .await
        .assert_problem(403, "forbidden");
    charge(&app, &outsider, json!({"session_id": session}), None)
        .await
        .assert_problem(404, "session_not_found");
    charge(&app, &student, json!({"session_id": Uuid::now_v7()}), None)
        .await
        .assert_problem(404, "session_not_found");
    charge(&app, &student, json!({"session": session}), None)
        .await
        .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn a_session_being_charged_keeps_its_price_when_rescheduled() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let session = booked(&app, &tutor, &student, 2).await;
    let path = format!("/sessions/{session}/reschedule");
    let longer = |hour| json!({"scheduled_at": days_ahead_at(2, hour, 0).to_rfc3339(), "duration_minutes": 120});

    // Unpaid and not being charged: the price follows the new duration.
    let moved = app.post(&path, Some(&student.token), &longer(12)).await;
    let price = moved.assert_status(200)["price"].clone();
    assert_eq!(price["amount_cents"], 24_000, "{price}");

    // A charge of that price waits on the student; moving the session again keeps the price
    // the charge is for.
    let waiting = charge(
        &app,
        &student,
        json!({"session_id": session, "payment_method": "requires_action"}),
        None,
    )
    .await;
    assert_eq!(waiting.assert_status(201)["amount"], price);
    let shorter =
        json!({"scheduled_at": days_ahead_at(2, 15, 0).to_rfc3339(), "duration_minutes": 60});
    let moved = app.post(&path, Some(&student.token), &shorter).await;
    let body = moved.assert_status(200);
    assert_eq!(body["duration_minutes"], 60);
    assert_eq!(body["price"], price);
}

#[actix_web::test]
async fn a_charge_begun_while_the_session_is_being_moved_is_for_the_price_the_move_sets() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let session = booked(&app, &tutor, &student, 2).await;

    // Hold the session's row as a reschedule does, and give it a new price inside that hold.
    let mut moving = app.db.begin().await.expect("a transaction");
    let price: i64 =
        sqlx::query_scalar("SELECT price_cents FROM sessions WHERE id = $1 FOR UPDATE")
            .bind(session)
            .fetch_one(&mut *moving)
            .await
            .expect("the session");
    let new_price = price + 1_234;
    let paying = charge(
        &app,
        &student,
        json!({"session_id": session}),
        Some("mid-move"),
    );
    let move_ends = async {
        until_a_query_waits_on_a_lock(&app).await;
        sqlx::query("UPDATE sessions SET price_cents = $2 WHERE id = $1")
            .bind(session)
            .bind(new_price)
            .execute(&mut *moving)
            .await
            .expect("repriced");
        moving.commit().await.expect("committed");
    };
    let (paid, ()) = futures_util::join!(paying, move_ends);

    // The charge waited for the move and is for the session's price as it now stands.
    let body = paid.assert_status(201);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["amount"]["amount_cents"], new_price);
    let now = app
        .get(&format!("/sessions/{session}"), Some(&student.token))
        .await;
    let now = now.assert_status(200);
    assert_eq!(now["price"]["amount_cents"], new_price);
    assert_eq!(now["payment_status"], "paid");
}

#[actix_web::test]
async fn a_charge_begins_only_on_a_session_still_scheduled_and_unpaid() {
    use tutoring::store::payments::{BeginError, NewCharge, begin};

    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let cancelled = booked(&app, &tutor, &student, 2).await;
    let paid = booked(&app, &tutor, &student, 3).await;
    // Changed after the route read them: a cancellation, a payment settled by another charge.
    app.post(
        &format!("/sessions/{cancelled}/cancel"),
        Some(&student.token),
        &json!({}),
    )
    .await
    .assert_status(200);
    sqlx::query("UPDATE sessions SET payment_status = 'paid' WHERE id = $1")
        .bind(paid)
        .execute(&app.db)
        .await
        .expect("paid");
    let charge = |session_id, key| NewCharge {
        session_id,
        student_id: student.id,
        provider: "fake",
        key,
        payment_method: None,
    };
    let refused = begin(&app.db, charge(cancelled, "late-1")).await;
    assert!(
        matches!(refused, Err(BeginError::SessionCancelled)),
        "{refused:?}"
    );
    let refused = begin(&app.db, charge(paid, "late-2")).await;
    assert!(
        matches!(refused, Err(BeginError::AlreadyPaid)),
        "{refused:?}"
    );
    let charges: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(charges, 0);
}

#[actix_web::test]
async fn an_idempotency_key_is_the_students_own() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let (first, second) = (app.student().await, app.student().await);
    let sessions = [
        booked(&app, &tutor, &first, 2).await,
        booked(&app, &tutor, &second, 3).await,
    ];
    // Both use the key "1": each pays for their own session.
    for (student, session) in [(&first, sessions[0]), (&second, sessions[1])] {
        let paid = charge(&app, student, json!({"session_id": session}), Some("1")).await;
        assert_eq!(paid.assert_status(201)["session_id"], session.to_string());
    }
    // One student's key is still one charge.
    let other = booked(&app, &tutor, &first, 4).await;
    charge(&app, &first, json!({"session_id": other}), Some("1"))
        .await
        .assert_problem(422, "idempotency_key_reused");
}
