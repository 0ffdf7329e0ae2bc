use std::collections::HashSet;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{PASSWORD, TestApp, spawn_app, unique_email};

async fn create_teacher(app: &TestApp) -> (serde_json::Value, String) {
    let email = unique_email("prof");
    let response = app
        .post(
            "/teachers",
            None,
            &json!({"name": "Prof. Ada", "institution": "UFMG", "email": email, "password": PASSWORD}),
        )
        .await;
    (response.assert_status(201).clone(), email)
}

#[actix_web::test]
async fn creating_a_teacher_returns_201_with_flattened_profile_and_tag() {
    let app = spawn_app().await;
    let (body, email) = create_teacher(&app).await;
    assert!(body["id"].is_string());
    assert_eq!(body["name"], "Prof. Ada");
    assert_eq!(body["institution"], "UFMG");
    assert_eq!(body["email"], email);
    let tag = body["tag"].as_str().expect("tag");
    assert!(tag.len() == 4 && tag.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(body["timezone"], "UTC");
    assert_eq!(body["rating"], json!({"average": null, "count": 0}));

    // The teacher logs in with the Mentoria user type.
    let login = app
        .post(
            "/auth/login",
            None,
            &json!({"email": email, "password": PASSWORD, "user_type": "teacher"}),
        )
        .await;
    assert_eq!(login.assert_status(200)["user_type"], "tutor");
}

#[actix_web::test]
async fn creating_a_teacher_with_a_taken_email_is_409() {
    let app = spawn_app().await;
    let student = app.student().await;
    app.post(
        "/teachers",
        None,
        &json!({"name": "X", "institution": "Y", "email": student.email, "password": PASSWORD}),
    )
    .await
    .assert_problem(409, "email_taken");
}

#[actix_web::test]
async fn teachers_me_returns_the_profile_and_tag() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let me = app.get("/teachers/me", Some(&tutor.token)).await;
    let body = me.assert_status(200);
    assert_eq!(body["id"], tutor.id.to_string());
    assert_eq!(body["email"], tutor.email);
    assert_eq!(body["tag"], tutor.tag.clone().expect("tag"));
    let tag = app.get("/teachers/me/tag", Some(&tutor.token)).await;
    assert_eq!(
        tag.assert_status(200),
        &json!({"tag": tutor.tag.clone().expect("tag")})
    );
}

#[actix_web::test]
async fn teacher_routes_refuse_a_student_token_with_403() {
    let app = spawn_app().await;
    let student = app.student().await;
    for path in ["/teachers/me", "/teachers/me/tag", "/teachers/me/students"] {
        app.get(path, Some(&student.token))
            .await
            .assert_problem(403, "forbidden");
    }
    app.delete("/teachers/me", Some(&student.token))
        .await
        .assert_problem(403, "forbidden");
    app.get("/teachers/me", None)
        .await
        .assert_problem(401, "missing_token");
}

#[actix_web::test]
async fn deactivating_a_teacher_hides_it_and_frees_nothing() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let tag = tutor.tag.clone().expect("tag");
    let response = app.delete("/teachers/me", Some(&tutor.token)).await;
    assert!(response.assert_status(200)["message"].is_string());

    app.delete("/teachers/me", Some(&tutor.token))
        .await
        .assert_problem(404, "account_not_found");
    app.get("/teachers/me", Some(&tutor.token))
        .await
        .assert_problem(404, "account_not_found");
    app.get("/teachers/me/tag", Some(&tutor.token))
        .await
        .assert_problem(404, "account_not_found");
    // Its tag no longer links students.
    app.post(
        "/students/self-register",
        None,
        &json!({"name": "S", "email": unique_email("s"), "password": PASSWORD, "teacher_tag": tag}),
    )
    .await
    .assert_problem(404, "tag_not_found");
    // The data is kept, tag included.
    let kept: String = sqlx::query_scalar("SELECT tag FROM tutors WHERE user_id = $1")
        .bind(tutor.id)
        .fetch_one(&app.db)
        .await
        .expect("kept");
    assert_eq!(kept, tag);
}

#[actix_web::test]
async fn deactivating_a_teacher_cancels_its_future_sessions_only() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let student = app.student().await;
    let insert = |id: Uuid, starts: &'static str| {
        let db = app.db.clone();
        async move {
            sqlx::query(
                "INSERT INTO sessions (id, tutor_id, student_id, scheduled_at, ends_at, \
                                       duration_minutes, price_cents, currency, price_per_hour_cents) \
                 VALUES ($1, $2, $3, now() + $4::interval, now() + $4::interval + interval '1 hour', \
                         60, 12000, 'BRL', 12000)",
            )
            .bind(id)
            .bind(tutor.id)
            .bind(student.id)
            .bind(starts)
            .execute(&db)
            .await
            .expect("session inserted");
        }
    };
    let (past, future) = (Uuid::now_v7(), Uuid::now_v7());
    insert(past, "-3 hours").await;
    insert(future, "2 days").await;

    app.delete("/teachers/me", Some(&tutor.token))
        .await
        .assert_status(200);
    let statuses: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM sessions ORDER BY scheduled_at")
            .fetch_all(&app.db)
            .await
            .expect("sessions");
    assert_eq!(
        statuses,
        vec![
            (past, "scheduled".to_owned()),
            (future, "cancelled".to_owned())
        ]
    );
}

#[actix_web::test]
async fn a_teacher_lists_its_linked_students_page_by_page() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let response = app
            .post(
                "/students",
                Some(&tutor.token),
                &json!({"name": format!("Student {i}"), "email": unique_email("s"), "password": PASSWORD}),
            )
            .await;
        created.push(
            response.assert_status(201)["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    // A student of another teacher is not listed.
    let other = app.tutor().await;
    app.post(
        "/students",
        Some(&other.token),
        &json!({"name": "Elsewhere", "email": unique_email("s"), "password": PASSWORD}),
    )
    .await
    .assert_status(201);

    let mut listed = Vec::new();
    let mut path = "/teachers/me/students?limit=2".to_owned();
    loop {
        let page = app.get(&path, Some(&tutor.token)).await;
        let body = page.assert_status(200).clone();
        let items = body["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        for item in items {
            assert!(item.get("email").is_none());
            assert_eq!(item["role"], "student");
            listed.push(item["id"].as_str().expect("id").to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/teachers/me/students?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(listed, created);

    app.get("/teachers/me/students?limit=0", Some(&tutor.token))
        .await
        .assert_problem(422, "validation_failed");
    app.get("/teachers/me/students?limit=201", Some(&tutor.token))
        .await
        .assert_problem(422, "validation_failed");
    app.get("/teachers/me/students?cursor=bogus", Some(&tutor.token))
        .await
        .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn concurrent_tutor_creation_never_yields_duplicate_tags() {
    let app = spawn_app().await;
    let attempts = (0..40).map(|i| {
        let app = &app;
        async move {
            let response = app
                .post(
                    "/teachers",
                    None,
                    &json!({"name": format!("T{i}"), "institution": "", "email": unique_email("t"), "password": PASSWORD}),
                )
                .await;
            response.assert_status(201)["tag"].as_str().expect("tag").to_owned()
        }
    });
    let tags = futures_util::future::join_all(attempts).await;
    let distinct: HashSet<&String> = tags.iter().collect();
    assert_eq!(distinct.len(), tags.len(), "duplicate tags in {tags:?}");
}

#[actix_web::test]
async fn when_every_tag_is_taken_creating_a_tutor_is_503_tags_exhausted() {
    let app = spawn_app().await;
    // Fill 9,999 of the 10,000 tags directly, leaving "0427" free.
    sqlx::query(
        "WITH filler AS ( \
             INSERT INTO users (id, email, password_hash, name, role) \
             SELECT gen_random_uuid(), 'filler' || n || '@example.com', 'x', 'Filler', 'tutor' \
             FROM generate_series(0, 9999) AS n WHERE n <> 427 \
             RETURNING id, email) \
         INSERT INTO tutors (user_id, tag) \
         SELECT id, lpad(substring(email FROM 'filler([0-9]+)@')::text, 4, '0') FROM filler",
    )
    .execute(&app.db)
    .await
    .expect("tags filled");

    let (last, _) = create_teacher(&app).await;
    assert_eq!(last["tag"], "0427");

    let response = app
        .post(
            "/auth/register",
            None,
            &json!({"email": unique_email("late"), "password": PASSWORD, "name": "Late", "role": "tutor"}),
        )
        .await;
    response.assert_problem(503, "tags_exhausted");
    // Nothing was half-written: the refused account does not exist.
    let late: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email LIKE 'late-%'")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(late, 0);
    // Students are unaffected.
    app.student().await;
}
