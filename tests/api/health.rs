use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_without_database};

#[actix_web::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/health", None).await;
    assert_eq!(response.assert_status(200), &json!({"status": "ok"}));
}

#[actix_web::test]
async fn ready_answers_200_when_the_database_answers() {
    let app = spawn_app().await;
    app.get("/ready", None).await.assert_status(200);
}

#[actix_web::test]
async fn without_a_database_health_is_ok_and_everything_else_answers_503() {
    let app = spawn_app_without_database().await;
    app.get("/health", None).await.assert_status(200);
    app.get("/ready", None)
        .await
        .assert_problem(503, "service_unavailable");
    app.post(
        "/auth/login",
        None,
        &json!({"email": "a@example.com", "password": "whatever1"}),
    )
    .await
    .assert_problem(503, "service_unavailable");
    app.post(
        "/auth/register",
        None,
        &json!({"email": "a@example.com", "password": "whatever1", "name": "A", "role": "student"}),
    )
    .await
    .assert_problem(503, "service_unavailable");
}
