use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app, unique_email};

#[actix_web::test]
async fn self_registering_with_a_tag_links_the_student_to_that_teacher() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let email = unique_email("s");
    let response = app
        .post(
            "/students/self-register",
            None,
            &json!({"name": "Sol", "email": email, "password": PASSWORD, "teacher_tag": tutor.tag}),
        )
        .await;
    let body = response.assert_status(201);
    assert_eq!(body["role"], "student");
    assert_eq!(body["email"], email);
    let teachers = body["teachers"].as_array().expect("teachers");
    assert_eq!(teachers.len(), 1);
    assert_eq!(teachers[0]["id"], tutor.id.to_string());
    assert_eq!(teachers[0]["tag"], tutor.tag.clone().expect("tag"));

    let listed = app.get("/teachers/me/students", Some(&tutor.token)).await;
    assert_eq!(listed.assert_status(200)["items"][0]["id"], body["id"]);
}

#[actix_web::test]
async fn self_registering_with_an_unknown_or_malformed_tag_fails() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let unknown = if tutor.tag.as_deref() == Some("9999") {
        "9998"
    } else {
        "9999"
    };
    app.post(
        "/students/self-register",
        None,
        &json!({"name": "S", "email": unique_email("s"), "password": PASSWORD, "teacher_tag": unknown}),
    )
    .await
    .assert_problem(404, "tag_not_found");
    let malformed = app
        .post(
            "/students/self-register",
            None,
            &json!({"name": "S", "email": unique_email("s"), "password": PASSWORD, "teacher_tag": "12a"}),
        )
        .await;
    malformed.assert_problem(422, "validation_failed");
    assert_eq!(malformed.error_fields(), ["teacher_tag"]);
    let taken = app.student().await;
    app.post(
        "/students/self-register",
        None,
        &json!({"name": "S", "email": taken.email, "password": PASSWORD, "teacher_tag": tutor.tag}),
    )
    .await
    .assert_problem(409, "email_taken");
}

#[actix_web::test]
async fn a_teacher_creates_a_student_linked_to_itself() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let email = unique_email("s");
    let response = app
        .post(
            "/students",
            Some(&tutor.token),
            &json!({"name": "Lia", "email": email, "password": PASSWORD}),
        )
        .await;
    let body = response.assert_status(201);
    assert_eq!(body["teachers"][0]["id"], tutor.id.to_string());
    // An e-mail is shown to its own account only, not to the teacher who typed it.
    assert!(body.get("email").is_none());
    // The student can log in with the password the teacher chose.
    let token = app.login(&email, PASSWORD).await;
    let me = app.get("/students/me", Some(&token)).await;
    assert_eq!(
        me.assert_status(200)["teachers"][0]["tag"],
        tutor.tag.clone().expect("tag")
    );

    app.post(
        "/students",
        Some(&tutor.token),
        &json!({"name": "Lia", "email": email, "password": PASSWORD}),
    )
    .await
    .assert_problem(409, "email_taken");
    app.post(
        "/students",
        Some(&token),
        &json!({"name": "X", "email": unique_email("x"), "password": PASSWORD}),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn a_deactivated_teacher_cannot_create_students() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    app.delete("/teachers/me", Some(&tutor.token))
        .await
        .assert_status(200);
    app.post(
        "/students",
        Some(&tutor.token),
        &json!({"name": "X", "email": unique_email("x"), "password": PASSWORD}),
    )
    .await
    .assert_problem(404, "account_not_found");
    // Whatever it sends: an e-mail in use is not worth checking for it.
    app.post(
        "/students",
        Some(&tutor.token),
        &json!({"name": "X", "email": tutor.email, "password": PASSWORD}),
    )
    .await
    .assert_problem(404, "account_not_found");
}

#[actix_web::test]
async fn a_student_links_to_more_teachers_by_tag_once_each() {
    let app = spawn_app().await;
    let student = app.student().await;
    let first = app.tutor().await;
    let second = app.tutor().await;
    for tutor in [&first, &second] {
        let response = app
            .post(
                "/students/me/tags",
                Some(&student.token),
                &json!({"teacher_tag": tutor.tag}),
            )
            .await;
        assert!(response.assert_status(200)["message"].is_string());
    }
    app.post(
        "/students/me/tags",
        Some(&student.token),
        &json!({"teacher_tag": first.tag}),
    )
    .await
    .assert_problem(409, "tag_already_linked");

    let me = app.get("/students/me", Some(&student.token)).await;
    let teachers: Vec<String> = me.assert_status(200)["teachers"]
        .as_array()
        .expect("teachers")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(teachers, [first.id.to_string(), second.id.to_string()]);

    // A deactivated teacher's tag no longer links, and it drops out of the list.
    app.delete("/teachers/me", Some(&second.token))
        .await
        .assert_status(200);
    let late = app.student().await;
    app.post(
        "/students/me/tags",
        Some(&late.token),
        &json!({"teacher_tag": second.tag}),
    )
    .await
    .assert_problem(404, "tag_not_found");
    let me = app.get("/students/me", Some(&student.token)).await;
    assert_eq!(
        me.assert_status(200)["teachers"].as_array().map(Vec::len),
        Some(1)
    );

    app.post(
        "/students/me/tags",
        Some(&first.token),
        &json!({"teacher_tag": second.tag}),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn students_me_refuses_a_tutor_and_forgets_a_deactivated_student() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let student = app.student().await;
    app.get("/students/me", Some(&tutor.token))
        .await
        .assert_problem(403, "forbidden");
    let me = app.get("/students/me", Some(&student.token)).await;
    let body = me.assert_status(200);
    assert_eq!(body["email"], student.email);
    assert_eq!(body["teachers"], json!([]));

    let response = app.delete("/students/me", Some(&student.token)).await;
    assert!(response.assert_status(200)["message"].is_string());
    app.get("/students/me", Some(&student.token))
        .await
        .assert_problem(404, "account_not_found");
    app.delete("/students/me", Some(&student.token))
        .await
        .assert_problem(404, "account_not_found");
    app.post(
        "/auth/login",
        None,
        &json!({"email": student.email, "password": PASSWORD}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
}
