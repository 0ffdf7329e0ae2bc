use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    TestApp, TestUser, all_day_rules, days_ahead_at, id_of, spawn_app, spawn_second_node,
    spawn_second_node_with,
};

/// A tutor available all day (price 120.00 BRL per hour) and a student.
async fn tutor_and_student(app: &TestApp) -> (TestUser, TestUser) {
    (
        app.tutor_with_rules(&all_day_rules()).await,
        app.student().await,
    )
}

#[actix_web::test]
async fn booking_a_free_slot_returns_201_with_the_session_and_its_price() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let start = days_ahead_at(2, 14, 0);
    let response = app.book(&student, tutor.id, start, 90).await;
    let body = response.assert_status(201);
    assert_eq!(body["tutor_id"], tutor.id.to_string());
    assert_eq!(body["student_id"], student.id.to_string());
    assert_eq!(
        body["scheduled_at"],
        start.to_rfc3339().replace("+00:00", "Z")
    );
    assert_eq!(body["duration_minutes"], 90);
    assert_eq!(body["status"], "scheduled");
    assert_eq!(body["payment_status"], "unpaid");
    assert_eq!(
        body["price"],
        json!({"amount_cents": 18000, "currency": "BRL"})
    );
    let ends: chrono::DateTime<chrono::Utc> = body["ends_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("ends_at");
    assert_eq!(ends - start, chrono::TimeDelta::minutes(90));
    assert_eq!(id_of(body).get_version_num(), 7);

    // It is durable: the database holds it.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE id = $1")
        .bind(id_of(body))
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(stored, 1);
}

#[actix_web::test]
async fn a_booking_without_a_duration_lasts_an_hour() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let response = app
        .post(
            "/sessions",
            Some(&student.token),
            &json!({"tutor_id": tutor.id, "scheduled_at": days_ahead_at(3, 9, 30).to_rfc3339()}),
        )
        .await;
    let body = response.assert_status(201);
    assert_eq!(body["duration_minutes"], 60);
    assert_eq!(body["price"]["amount_cents"], 12000);
}

#[actix_web::test]
async fn an_overlapping_booking_of_the_tutor_is_409_slot_taken() {
    let app = spawn_app().await;
    let (tutor, first) = tutor_and_student(&app).await;
    let second = app.student().await;
    app.book(&first, tutor.id, days_ahead_at(2, 10, 0), 60)
        .await
        .assert_status(201);
    app.book(&second, tutor.id, days_ahead_at(2, 10, 30), 60)
        .await
        .assert_problem(409, "slot_taken");
    // Touching is not overlapping.
    app.book(&second, tutor.id, days_ahead_at(2, 11, 0), 60)
        .await
        .assert_status(201);
}

#[actix_web::test]
async fn a_student_cannot_be_in_two_sessions_at_once() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let other_tutor = app.tutor_with_rules(&all_day_rules()).await;
    app.book(&student, tutor.id, days_ahead_at(2, 10, 0), 60)
        .await
        .assert_status(201);
    app.book(&student, other_tutor.id, days_ahead_at(2, 10, 30), 30)
        .await
        .assert_problem(409, "student_busy");
}

#[actix_web::test]
async fn bookings_outside_the_rules_get_their_specific_422() {
    let app = spawn_app().await;
    let mut rules = all_day_rules();
    rules["weekly"] = json!([
        {"weekday": "monday", "start": "09:00", "end": "12:00"},
        {"weekday": "tuesday", "start": "09:00", "end": "12:00"},
        {"weekday": "wednesday", "start": "09:00", "end": "12:00"},
        {"weekday": "thursday", "start": "09:00", "end": "12:00"},
        {"weekday": "friday", "start": "09:00", "end": "12:00"},
        {"weekday": "saturday", "start": "09:00", "end": "12:00"},
        {"weekday": "sunday", "start": "09:00", "end": "12:00"},
    ]);
    let tutor = app.tutor_with_rules(&rules).await;
    let student = app.student().await;
    let book = |start, minutes| app.book(&student, tutor.id, start, minutes);

    book(days_ahead_at(2, 13, 0), 60)
        .await
        .assert_problem(422, "outside_availability");
    // Inside the window, but it does not fit before 12:00.
    book(days_ahead_at(2, 11, 30), 60)
        .await
        .assert_problem(422, "outside_availability");
    // Off the 30-minute grid.
    book(days_ahead_at(2, 9, 15), 60)
        .await
        .assert_problem(422, "outside_availability");
    let bad = book(days_ahead_at(2, 9, 0), 45).await;
    bad.assert_problem(422, "bad_duration");
    assert_eq!(bad.error_fields(), ["duration_minutes"]);
    book(days_ahead_at(2, 9, 0), 240)
        .await
        .assert_problem(422, "bad_duration");
    // No tutor allows none, more than a day, or less than nothing.
    for minutes in [json!(0), json!(2000), json!(-30)] {
        let body = json!({"tutor_id": tutor.id, "scheduled_at": days_ahead_at(2, 9, 0).to_rfc3339(),
                          "duration_minutes": minutes});
        let odd = app.post("/sessions", Some(&student.token), &body).await;
        odd.assert_problem(422, "bad_duration");
        assert_eq!(odd.error_fields(), ["duration_minutes"], "{minutes}");
    }
    book(days_ahead_at(-1, 9, 0), 60)
        .await
        .assert_problem(422, "in_the_past");
    book(days_ahead_at(120, 9, 0), 60)
        .await
        .assert_problem(422, "too_far");
    book(days_ahead_at(2, 9, 0), 60).await.assert_status(201);

    // Minimum notice: with all-day hours, the next half hour is too soon.
    let open = app.tutor_with_rules(&all_day_rules()).await;
    let soon = chrono::Utc::now() + chrono::TimeDelta::minutes(30);
    let soon = soon.duration_trunc_to_half_hour();
    app.book(&student, open.id, soon, 30)
        .await
        .assert_problem(422, "too_soon");
}

trait HalfHour {
    fn duration_trunc_to_half_hour(self) -> Self;
}

impl HalfHour for chrono::DateTime<chrono::Utc> {
    fn duration_trunc_to_half_hour(self) -> Self {
        use chrono::DurationRound;
        self.duration_trunc(chrono::TimeDelta::minutes(30))
            .expect("in range")
    }
}

#[actix_web::test]
async fn malformed_booking_requests_are_refused_clearly() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let naive = app
        .post(
            "/sessions",
            Some(&student.token),
            &json!({"tutor_id": tutor.id, "scheduled_at": "2030-01-01T10:00:00"}),
        )
        .await;
    naive.assert_problem(422, "validation_failed");
    assert_eq!(naive.error_fields(), ["scheduled_at"]);
    let no_tutor = app
        .post(
            "/sessions",
            Some(&student.token),
            &json!({"scheduled_at": "2030-01-01T10:00:00Z"}),
        )
        .await;
    no_tutor.assert_problem(422, "validation_failed");
    assert_eq!(no_tutor.error_fields(), ["tutor_id"]);
    app.post(
        "/sessions",
        Some(&student.token),
        &json!({"tutor_id": "not-a-uuid", "scheduled_at": "2030-01-01T10:00:00Z"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.book(&student, Uuid::now_v7(), days_ahead_at(2, 10, 0), 60)
        .await
        .assert_problem(404, "tutor_not_found");
    app.book(&tutor, tutor.id, days_ahead_at(2, 10, 0), 60)
        .await
        .assert_problem(403, "forbidden");
    app.post("/sessions", None, &json!({}))
        .await
        .assert_problem(401, "missing_token");
}

#[actix_web::test]
async fn the_same_idempotency_key_and_body_never_book_twice() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let body = json!({"tutor_id": tutor.id, "scheduled_at": days_ahead_at(4, 15, 0).to_rfc3339(), "duration_minutes": 60});
    let send = |key: &'static str, body: serde_json::Value| {
        let (app, student) = (&app, &student);
        async move { app.book_with_key(student, key, &body).await }
    };
    let first = send("booking-1", body.clone()).await;
    let again = send("booking-1", body.clone()).await;
    assert_eq!(first.assert_status(201), again.assert_status(201));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(count, 1);

    let mut other_body = body.clone();
    other_body["duration_minutes"] = json!(90);
    send("booking-1", other_body)
        .await
        .assert_problem(422, "idempotency_key_reused");

    // A refusal is the key's answer too: the same key and body get it again, even once the
    // slot is free; a new key books it.
    let taken = send("booking-2", body.clone()).await;
    taken.assert_problem(409, "slot_taken");
    let first_id = first.assert_status(201)["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.post(
        &format!("/sessions/{first_id}/cancel"),
        Some(&student.token),
        &json!({}),
    )
    .await
    .assert_status(200);
    let replayed = send("booking-2", body.clone()).await;
    replayed.assert_problem(409, "slot_taken");
    assert_eq!(replayed.body, taken.body);
    send("booking-3", body.clone()).await.assert_status(201);
}

#[actix_web::test]
async fn a_session_is_visible_to_its_participants_only() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let outsider = app.student().await;
    let booked = app
        .book(&student, tutor.id, days_ahead_at(2, 16, 0), 60)
        .await;
    let id = id_of(booked.assert_status(201));
    for who in [&student, &tutor] {
        let seen = app.get(&format!("/sessions/{id}"), Some(&who.token)).await;
        assert_eq!(seen.assert_status(200)["id"], id.to_string());
    }
    app.get(&format!("/sessions/{id}"), Some(&outsider.token))
        .await
        .assert_problem(404, "session_not_found");
    app.get(
        &format!("/sessions/{}", Uuid::now_v7()),
        Some(&student.token),
    )
    .await
    .assert_problem(404, "session_not_found");
}

#[actix_web::test]
async fn a_users_sessions_are_listed_latest_first_with_filters() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let mut ids = Vec::new();
    for day in [2, 4, 3] {
        let booked = app
            .book(&student, tutor.id, days_ahead_at(day, 10, 0), 60)
            .await;
        ids.push(id_of(booked.assert_status(201)));
    }
    app.post(
        &format!("/sessions/{}/cancel", ids[2]),
        Some(&student.token),
        &json!({}),
    )
    .await
    .assert_status(200);

    let list = |query: &str, who: &TestUser| {
        let path = format!("/sessions/user/{}{query}", who.id);
        let token = who.token.clone();
        let app = &app;
        async move { app.get(&path, Some(&token)).await }
    };
    let all = list("", &student).await;
    let order: Vec<String> = all.assert_status(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        order,
        [ids[1].to_string(), ids[2].to_string(), ids[0].to_string()]
    );
    assert!(all.body["next_cursor"].is_null());

    let tutor_view = list("?status=scheduled", &tutor).await;
    assert_eq!(
        tutor_view.assert_status(200)["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let paged = list("?limit=1", &student).await;
    assert!(paged.assert_status(200)["next_cursor"].is_string());
    let from = days_ahead_at(3, 0, 0).to_rfc3339().replace('+', "%2B");
    let ranged = list(&format!("?from={from}"), &student).await;
    assert_eq!(
        ranged.assert_status(200)["items"].as_array().map(Vec::len),
        Some(2)
    );
    list("?status=done", &student)
        .await
        .assert_problem(422, "validation_failed");
    let backwards = list(&format!("?from={from}&to={from}"), &student).await;
    backwards.assert_problem(422, "validation_failed");
    assert_eq!(backwards.error_fields(), ["to"]);

    let outsider = app.student().await;
    app.get(
        &format!("/sessions/user/{}", student.id),
        Some(&outsider.token),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn cancelling_frees_the_slot_at_once_and_only_once() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let other = app.student().await;
    let start = days_ahead_at(2, 12, 0);
    let id = id_of(
        app.book(&student, tutor.id, start, 60)
            .await
            .assert_status(201),
    );
    app.book(&other, tutor.id, start, 60)
        .await
        .assert_problem(409, "slot_taken");

    app.post(
        &format!("/sessions/{id}/cancel"),
        Some(&other.token),
        &json!({}),
    )
    .await
    .assert_problem(404, "session_not_found");
    // A reason PostgreSQL could not store is refused at the edge, and nothing changes.
    for reason in ["sick\u{0}".to_owned(), "x".repeat(2001)] {
        let refused = app
            .post(
                &format!("/sessions/{id}/cancel"),
                Some(&tutor.token),
                &json!({ "reason": reason }),
            )
            .await;
        refused.assert_problem(422, "validation_failed");
        assert_eq!(refused.error_fields(), ["reason"]);
    }
    let cancelled = app
        .post(
            &format!("/sessions/{id}/cancel"),
            Some(&tutor.token),
            &json!({"reason": "sick"}),
        )
        .await;
    let body = cancelled.assert_status(200);
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["cancelled_reason"], "sick");

    app.book(&other, tutor.id, start, 60)
        .await
        .assert_status(201);
    app.post(
        &format!("/sessions/{id}/cancel"),
        Some(&student.token),
        &json!({}),
    )
    .await
    .assert_problem(409, "already_cancelled");
}

#[actix_web::test]
async fn completing_needs_the_tutor_a_payment_and_a_started_session() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let id = id_of(
        app.book(&student, tutor.id, days_ahead_at(2, 8, 0), 60)
            .await
            .assert_status(201),
    );
    let complete = |who: &TestUser| {
        let path = format!("/sessions/{id}/complete");
        let token = who.token.clone();
        let app = &app;
        async move { app.post(&path, Some(&token), &json!({})).await }
    };
    complete(&student).await.assert_problem(403, "forbidden");
    complete(&tutor)
        .await
        .assert_problem(409, "payment_required");

    sqlx::query("UPDATE sessions SET payment_status = 'paid' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .expect("paid");
    complete(&tutor).await.assert_problem(409, "not_started");

    // Move it into the past, as if it had started.
    sqlx::query(
        "UPDATE sessions SET scheduled_at = now() - interval '30 minutes', \
                             ends_at = now() + interval '30 minutes' WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .expect("started");
    let done = complete(&tutor).await;
    assert_eq!(done.assert_status(200)["status"], "completed");
    complete(&tutor)
        .await
        .assert_problem(409, "already_completed");
    app.post(
        &format!("/sessions/{id}/cancel"),
        Some(&student.token),
        &json!({}),
    )
    .await
    .assert_problem(409, "already_completed");
}

#[actix_web::test]
async fn rescheduling_moves_the_session_or_keeps_the_old_time() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let other = app.student().await;
    let old = days_ahead_at(2, 10, 0);
    let id = id_of(
        app.book(&student, tutor.id, old, 60)
            .await
            .assert_status(201),
    );
    let blocker = days_ahead_at(2, 14, 0);
    app.book(&other, tutor.id, blocker, 60)
        .await
        .assert_status(201);

    let path = format!("/sessions/{id}/reschedule");
    // Refused: the new time is taken, or outside the rules; the old time stays booked.
    app.post(
        &path,
        Some(&student.token),
        &json!({"scheduled_at": blocker.to_rfc3339()}),
    )
    .await
    .assert_problem(409, "slot_taken");
    app.post(
        &path,
        Some(&student.token),
        &json!({"scheduled_at": days_ahead_at(2, 10, 10).to_rfc3339()}),
    )
    .await
    .assert_problem(422, "outside_availability");
    app.book(&other, tutor.id, old, 60)
        .await
        .assert_problem(409, "slot_taken");

    // The tutor's new rate, in another currency, is for new bookings: the session keeps the
    // rate and currency it was booked at.
    app.put(
        &format!("/user/{}", tutor.id),
        Some(&tutor.token),
        &json!({"price_per_hour": {"amount_cents": 3000, "currency": "USD"}}),
    )
    .await
    .assert_status(200);
    // Moving by half an hour overlaps its own old time, which is fine.
    let new = days_ahead_at(2, 10, 30);
    let moved = app
        .post(
            &path,
            Some(&tutor.token),
            &json!({"scheduled_at": new.to_rfc3339(), "duration_minutes": 90}),
        )
        .await;
    let body = moved.assert_status(200);
    assert_eq!(body["duration_minutes"], 90);
    assert_eq!(
        body["price"],
        json!({"amount_cents": 18000, "currency": "BRL"})
    );
    assert_eq!(body["id"], id.to_string());
    // The old start is free again once the session no longer covers it.
    let third = app.student().await;
    app.book(&third, tutor.id, days_ahead_at(2, 9, 30), 60)
        .await
        .assert_status(201);
    app.post(
        &path,
        Some(&app.student().await.token),
        &json!({"scheduled_at": new.to_rfc3339()}),
    )
    .await
    .assert_problem(404, "session_not_found");
}

#[actix_web::test]
async fn deactivated_accounts_cannot_book_or_be_booked() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    let start = days_ahead_at(3, 10, 0);
    let id = id_of(
        app.book(&student, tutor.id, start, 60)
            .await
            .assert_status(201),
    );

    app.delete("/teachers/me", Some(&tutor.token))
        .await
        .assert_status(200);
    let cancelled = app
        .get(&format!("/sessions/{id}"), Some(&student.token))
        .await;
    assert_eq!(cancelled.assert_status(200)["status"], "cancelled");
    app.book(&student, tutor.id, days_ahead_at(4, 10, 0), 60)
        .await
        .assert_problem(404, "tutor_not_found");

    let open = app.tutor_with_rules(&all_day_rules()).await;
    let other = app.student().await;
    app.book(&other, open.id, days_ahead_at(5, 10, 0), 60)
        .await
        .assert_status(201);
    app.delete("/students/me", Some(&student.token))
        .await
        .assert_status(200);
    // Whatever the booking: free, taken, or in the past.
    for start in [start, days_ahead_at(5, 10, 0), days_ahead_at(-1, 10, 0)] {
        app.book(&student, open.id, start, 60)
            .await
            .assert_problem(404, "account_not_found");
    }
    // Another node, which learns of the deactivation from the database, answers the same.
    let other_node = spawn_second_node(&app).await;
    other_node
        .book(&student, open.id, days_ahead_at(5, 10, 0), 60)
        .await
        .assert_problem(404, "account_not_found");
}

#[actix_web::test]
async fn a_deactivated_account_can_no_longer_act_on_its_sessions() {
    let app = spawn_app().await;
    let (tutor, student) = tutor_and_student(&app).await;
    // Deactivation cancels future sessions only: one that has started stays scheduled.
    let started = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO sessions (id, tutor_id, student_id, scheduled_at, ends_at, \
                               duration_minutes, price_cents, currency, price_per_hour_cents) \
         VALUES ($1, $2, $3, now() - interval '30 minutes', now() + interval '30 minutes', \
                 60, 12000, 'BRL', 12000)",
    )
    .bind(started)
    .bind(tutor.id)
    .bind(student.id)
    .execute(&app.db)
    .await
    .expect("a started session");
    app.delete("/students/me", Some(&student.token))
        .await
        .assert_status(200);

    // The student's token still authenticates, but nothing acts as the account any more.
    let path = |action: &str| format!("/sessions/{started}/{action}");
    let later = json!({"scheduled_at": days_ahead_at(3, 10, 0).to_rfc3339()});
    app.post(&path("reschedule"), Some(&student.token), &later)
        .await
        .assert_problem(404, "account_not_found");
    app.post(&path("cancel"), Some(&student.token), &json!({}))
        .await
        .assert_problem(404, "account_not_found");
    app.post(
        "/payment/charge",
        Some(&student.token),
        &json!({"session_id": started}),
    )
    .await
    .assert_problem(404, "account_not_found");
    app.post(
        "/reviews",
        Some(&student.token),
        &json!({"session_id": started, "rating": 1}),
    )
    .await
    .assert_problem(404, "account_not_found");
    // Nor read as it: its sessions, one or all.
    app.get(&format!("/sessions/{started}"), Some(&student.token))
        .await
        .assert_problem(404, "account_not_found");
    app.get(
        &format!("/sessions/user/{}", student.id),
        Some(&student.token),
    )
    .await
    .assert_problem(404, "account_not_found");

    // Nor may the tutor move the session into the future of a deactivated student.
    app.post(&path("reschedule"), Some(&tutor.token), &later)
        .await
        .assert_problem(409, "student_inactive");
    let kept = app
        .get(&format!("/sessions/{started}"), Some(&tutor.token))
        .await;
    let kept = kept.assert_status(200);
    assert_eq!(kept["status"], "scheduled");
    assert!(
        chrono::DateTime::parse_from_rfc3339(kept["scheduled_at"].as_str().expect("a time"))
            .expect("RFC 3339")
            < chrono::Utc::now()
    );

    // Once the tutor is deactivated too, it cannot complete the session.
    app.delete("/teachers/me", Some(&tutor.token))
        .await
        .assert_status(200);
    app.post(&path("complete"), Some(&tutor.token), &json!({}))
        .await
        .assert_problem(404, "account_not_found");
}

#[actix_web::test]
async fn a_refusal_kept_for_a_key_is_the_deactivated_accounts_404_on_a_node_not_told_yet() {
    let app = spawn_app().await;
    // This node polls for revocations and deactivations too rarely to hear of this one.
    let unaware = spawn_second_node_with(&app, |settings| {
        settings.auth.revocation_poll = std::time::Duration::from_secs(60);
        settings.auth.revocation_max_staleness = std::time::Duration::from_secs(120);
    })
    .await;
    let (tutor, student) = tutor_and_student(&app).await;
    let start = days_ahead_at(3, 10, 0);
    app.book(&app.student().await, tutor.id, start, 60)
        .await
        .assert_status(201);
    app.delete("/students/me", Some(&student.token))
        .await
        .assert_status(200);

    // The node refuses the taken slot from memory; with a key, that answer is kept, so it must
    // be the account's 404, now and on every retry.
    let body =
        json!({"tutor_id": tutor.id, "scheduled_at": start.to_rfc3339(), "duration_minutes": 60});
    for _ in 0..2 {
        unaware
            .book_with_key(&student, "after-deactivation", &body)
            .await
            .assert_problem(404, "account_not_found");
    }
}
