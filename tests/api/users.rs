use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app, unique_email};

#[actix_web::test]
async fn a_profile_shows_the_email_only_to_its_owner() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let student = app.student().await;

    let own = app
        .get(&format!("/user/{}", tutor.id), Some(&tutor.token))
        .await;
    let body = own.assert_status(200);
    assert_eq!(body["email"], tutor.email);
    assert_eq!(body["role"], "tutor");
    assert_eq!(body["tutor"]["tag"], tutor.tag.clone().expect("tag"));

    let seen = app
        .get(&format!("/user/{}", tutor.id), Some(&student.token))
        .await;
    let body = seen.assert_status(200);
    assert!(body.get("email").is_none(), "{body}");
    assert_eq!(body["name"], "Tia Tutor");
    assert_eq!(body["tutor"]["price_per_hour"]["amount_cents"], 12000);
}

#[actix_web::test]
async fn reading_a_profile_needs_a_token_and_an_existing_user() {
    let app = spawn_app().await;
    let student = app.student().await;
    app.get(&format!("/user/{}", student.id), None)
        .await
        .assert_problem(401, "missing_token");
    app.get(
        &format!("/user/{}", uuid::Uuid::now_v7()),
        Some(&student.token),
    )
    .await
    .assert_problem(404, "user_not_found");
}

#[actix_web::test]
async fn a_tutor_updates_its_name_and_profile() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let response = app
        .put(
            &format!("/user/{}", tutor.id),
            Some(&tutor.token),
            &json!({"name": "Tia B.", "bio": "Calculus", "specialization": ["Calculus"],
                    "price_per_hour": {"amount_cents": 9000, "currency": "USD"},
                    "institution": "UFRJ", "timezone": "Europe/London"}),
        )
        .await;
    let body = response.assert_status(200);
    assert_eq!(body["name"], "Tia B.");
    assert_eq!(body["tutor"]["bio"], "Calculus");
    assert_eq!(body["tutor"]["institution"], "UFRJ");
    assert_eq!(body["tutor"]["timezone"], "Europe/London");
    assert_eq!(
        body["tutor"]["price_per_hour"],
        json!({"amount_cents": 9000, "currency": "USD"})
    );
    // Fields not sent are kept.
    assert_eq!(body["tutor"]["tag"], tutor.tag.clone().expect("tag"));
    let again = app
        .get(&format!("/user/{}", tutor.id), Some(&tutor.token))
        .await;
    assert_eq!(again.assert_status(200)["tutor"]["bio"], "Calculus");
}

#[actix_web::test]
async fn changing_someone_else_is_403() {
    let app = spawn_app().await;
    let one = app.student().await;
    let other = app.student().await;
    app.put(
        &format!("/user/{}", other.id),
        Some(&one.token),
        &json!({"name": "Mallory"}),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn changing_to_a_taken_email_is_409_and_a_free_one_works() {
    let app = spawn_app().await;
    let one = app.student().await;
    let other = app.student().await;
    app.put(
        &format!("/user/{}", one.id),
        Some(&one.token),
        &json!({"email": other.email.to_uppercase()}),
    )
    .await
    .assert_problem(409, "email_taken");

    let fresh = unique_email("renamed");
    app.put(
        &format!("/user/{}", one.id),
        Some(&one.token),
        &json!({"email": fresh}),
    )
    .await
    .assert_status(200);
    app.login(&fresh, PASSWORD).await;
}

#[actix_web::test]
async fn a_new_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let student = app.student().await;
    let other_session = app.login(&student.email, PASSWORD).await;
    let path = format!("/user/{}", student.id);

    let without = app
        .put(
            &path,
            Some(&student.token),
            &json!({"password": "a new password"}),
        )
        .await;
    without.assert_problem(422, "validation_failed");
    assert_eq!(without.error_fields(), ["current_password"]);

    app.put(
        &path,
        Some(&student.token),
        &json!({"password": "a new password", "current_password": "not it at all"}),
    )
    .await
    .assert_problem(422, "invalid_current_password");

    app.put(
        &path,
        Some(&student.token),
        &json!({"password": "a new password", "current_password": PASSWORD}),
    )
    .await
    .assert_status(200);

    app.post(
        "/auth/login",
        None,
        &json!({"email": student.email, "password": PASSWORD}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    app.login(&student.email, "a new password").await;
    // The session that changed the password goes on; the others end.
    app.get("/auth/session", Some(&student.token))
        .await
        .assert_status(200);
    app.get("/auth/session", Some(&other_session))
        .await
        .assert_problem(401, "token_revoked");
}

#[actix_web::test]
async fn a_student_cannot_set_tutor_fields_and_bad_values_are_422() {
    let app = spawn_app().await;
    let student = app.student().await;
    let tutor = app.tutor().await;
    let response = app
        .put(
            &format!("/user/{}", student.id),
            Some(&student.token),
            &json!({"bio": "x"}),
        )
        .await;
    response.assert_problem(422, "validation_failed");
    assert_eq!(response.error_fields(), ["bio"]);

    let response = app
        .put(
            &format!("/user/{}", tutor.id),
            Some(&tutor.token),
            &json!({"timezone": "Nowhere/Land", "name": ""}),
        )
        .await;
    response.assert_problem(422, "validation_failed");
    let mut fields = response.error_fields();
    fields.sort();
    assert_eq!(fields, ["name", "timezone"]);
}

#[actix_web::test]
async fn a_deactivated_user_is_not_found() {
    let app = spawn_app().await;
    let student = app.student().await;
    let viewer = app.student().await;
    app.delete("/students/me", Some(&student.token))
        .await
        .assert_status(200);
    app.get(&format!("/user/{}", student.id), Some(&viewer.token))
        .await
        .assert_problem(404, "user_not_found");
    app.put(
        &format!("/user/{}", student.id),
        Some(&student.token),
        &json!({"name": "Zed"}),
    )
    .await
    .assert_problem(404, "account_not_found");
}
