use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, all_day_rules, days_ahead_at, spawn_app};

/// A session of `student` with `tutor` that has been paid, has started and was completed.
async fn completed_session(app: &TestApp, tutor: &TestUser, student: &TestUser, day: i64) -> Uuid {
    let booked = app
        .book(student, tutor.id, days_ahead_at(day, 10, 0), 60)
        .await;
    let id: Uuid = booked.assert_status(201)["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an id");
    // A session cannot be booked in the past: mark it paid and started directly.
    sqlx::query(
        "UPDATE sessions SET payment_status = 'paid', \
                scheduled_at = now() - interval '2 hours' - make_interval(days => $2), \
                ends_at = now() - interval '1 hour' - make_interval(days => $2) \
         WHERE id = $1",
    )
    .bind(id)
    .bind(i32::try_from(day).expect("small"))
    .execute(&app.db)
    .await
    .expect("paid and started");
    app.post(
        &format!("/sessions/{id}/complete"),
        Some(&tutor.token),
        &json!({}),
    )
    .await
    .assert_status(200);
    id
}

#[actix_web::test]
async fn a_completed_session_is_reviewed_once_and_the_tutors_rating_follows() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let first = completed_session(&app, &tutor, &student, 2).await;
    let second = completed_session(&app, &tutor, &student, 3).await;

    let review = app
        .post(
            "/reviews",
            Some(&student.token),
            &json!({"session_id": first, "rating": 5, "comment": "  Clear and patient  "}),
        )
        .await;
    let body = review.assert_status(201);
    assert_eq!(body["rating"], 5);
    assert_eq!(body["comment"], "Clear and patient");
    assert_eq!(body["tutor_id"], tutor.id.to_string());
    app.post(
        "/reviews",
        Some(&student.token),
        &json!({"session_id": first, "rating": 1}),
    )
    .await
    .assert_problem(409, "already_reviewed");
    app.post(
        "/reviews",
        Some(&student.token),
        &json!({"session_id": second, "rating": 4}),
    )
    .await
    .assert_status(201);

    let of_session = app.get(&format!("/reviews/session/{first}"), None).await;
    let items = of_session.assert_status(200)["items"]
        .as_array()
        .expect("items")
        .clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["rating"], 5);
    assert!(of_session.body["next_cursor"].is_null());
    // Its paging is checked like every list's.
    for bad in ["limit=0", "cursor=garbage"] {
        app.get(&format!("/reviews/session/{first}?{bad}"), None)
            .await
            .assert_problem(422, "validation_failed");
    }

    let of_tutor = app.get(&format!("/reviews/tutor/{}", tutor.id), None).await;
    let body = of_tutor.assert_status(200);
    assert_eq!(body["average"], 4.5);
    assert_eq!(body["count"], 2);
    // Newest first.
    assert_eq!(body["items"][0]["session_id"], second.to_string());
    assert!(body["next_cursor"].is_null());

    let profile = app.get(&format!("/tutors/{}", tutor.id), None).await;
    assert_eq!(
        profile.assert_status(200)["tutor"]["rating"],
        json!({"average": 4.5, "count": 2})
    );
}

#[actix_web::test]
async fn only_the_sessions_student_reviews_and_only_once_it_is_completed() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let other = app.student().await;
    let scheduled = app
        .book(&student, tutor.id, days_ahead_at(5, 10, 0), 60)
        .await;
    let scheduled = scheduled.assert_status(201)["id"].clone();
    app.post(
        "/reviews",
        Some(&student.token),
        &json!({"session_id": scheduled, "rating": 3}),
    )
    .await
    .assert_problem(409, "not_completed");

    let done = completed_session(&app, &tutor, &student, 2).await;
    app.post(
        "/reviews",
        Some(&other.token),
        &json!({"session_id": done, "rating": 3}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post(
        "/reviews",
        Some(&tutor.token),
        &json!({"session_id": done, "rating": 3}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post(
        "/reviews",
        Some(&student.token),
        &json!({"session_id": Uuid::now_v7(), "rating": 3}),
    )
    .await
    .assert_problem(404, "session_not_found");
    for rating in [0, 6, -1] {
        let refused = app
            .post(
                "/reviews",
                Some(&student.token),
                &json!({"session_id": done, "rating": rating}),
            )
            .await;
        refused.assert_problem(422, "validation_failed");
        assert_eq!(refused.error_fields(), ["rating"]);
    }
    for comment in ["x".repeat(2001), "great\u{0}".to_owned()] {
        let refused = app
            .post(
                "/reviews",
                Some(&student.token),
                &json!({"session_id": done, "rating": 4, "comment": comment}),
            )
            .await;
        refused.assert_problem(422, "validation_failed");
        assert_eq!(refused.error_fields(), ["comment"]);
    }
    app.get(&format!("/reviews/tutor/{}", Uuid::now_v7()), None)
        .await
        .assert_problem(404, "tutor_not_found");
    let none = app.get(&format!("/reviews/tutor/{}", tutor.id), None).await;
    assert_eq!(none.assert_status(200)["average"], json!(null));
}
