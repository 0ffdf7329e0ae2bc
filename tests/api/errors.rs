//! The error model: every failure is an RFC 9457 problem with a stable code.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{read, spawn_app};

#[actix_web::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    app.get("/no/such/route", None)
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    let response = app.request(Method::DELETE, "/health", None, None).await;
    response.assert_problem(405, "method_not_allowed");
    let allow = response.headers.get("allow").and_then(|v| v.to_str().ok());
    assert_eq!(allow, Some("GET"));
}

#[actix_web::test]
async fn malformed_json_is_a_400_problem() {
    let app = spawn_app().await;
    let response = read(
        app.client
            .post(app.url("/auth/register"))
            .header("content-type", "application/json")
            .body("{\"email\": ")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    response.assert_problem(400, "malformed_json");
}

#[actix_web::test]
async fn a_body_of_the_wrong_shape_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/auth/register",
            None,
            &json!({"email": "a@example.com", "password": "12345678", "name": "A", "role": "tutor",
                    "price_per_hour": {"amount_cents": "lots", "currency": "BRL"}}),
        )
        .await;
    response.assert_problem(422, "validation_failed");
    assert_eq!(response.error_fields(), ["price_per_hour.amount_cents"]);

    let missing = app
        .post("/auth/login", None, &json!({"email": "a@example.com"}))
        .await;
    missing.assert_problem(422, "validation_failed");
    assert_eq!(missing.error_fields(), ["password"]);
}

#[actix_web::test]
async fn a_body_over_64_kib_is_a_413_problem() {
    let app = spawn_app().await;
    let name = "x".repeat(70 * 1024);
    let response = app
        .post(
            "/auth/register",
            None,
            &json!({"email": "a@example.com", "password": "12345678", "name": name, "role": "student"}),
        )
        .await;
    response.assert_problem(413, "payload_too_large");

    // Also when streamed without a declared length.
    let chunks = (0..2).map(|_| Ok::<_, std::io::Error>(vec![b' '; 40 * 1024]));
    let streamed = read(
        app.client
            .post(app.url("/auth/login"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    streamed.assert_problem(413, "payload_too_large");
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_a_415_problem() {
    let app = spawn_app().await;
    let response = read(
        app.client
            .post(app.url("/auth/login"))
            .header("content-type", "text/plain")
            .body("email=a")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    response.assert_problem(415, "unsupported_media_type");
}

#[actix_web::test]
async fn an_id_that_is_not_a_uuid_is_a_404_problem() {
    let app = spawn_app().await;
    let student = app.student().await;
    app.get("/user/not-a-uuid", Some(&student.token))
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn error_bodies_leak_no_internals() {
    let app = spawn_app().await;
    let student = app.student().await;
    let taken = app
        .post(
            "/auth/register",
            None,
            &json!({"email": student.email, "password": "12345678", "name": "B", "role": "student"}),
        )
        .await;
    let body = taken
        .assert_problem(409, "email_taken")
        .to_string()
        .to_lowercase();
    for secret in [
        "users_email_key",
        "duplicate key",
        "sqlx",
        "$2b$",
        "constraint",
    ] {
        assert!(!body.contains(secret), "{secret} leaked in {body}");
    }
}
