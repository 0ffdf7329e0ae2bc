use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{
    PASSWORD, eventually, spawn_app, spawn_app_with, spawn_second_node, unique_email,
};

#[actix_web::test]
async fn registering_a_student_returns_201_with_the_user() {
    let app = spawn_app().await;
    let email = unique_email("ana");
    let response = app
        .post(
            "/auth/register",
            None,
            &json!({"email": email, "password": PASSWORD, "name": "  Ana  ", "role": "student"}),
        )
        .await;
    let body = response.assert_status(201);
    assert_eq!(body["name"], "Ana");
    assert_eq!(body["email"], email);
    assert_eq!(body["role"], "student");
    assert!(body["tutor"].is_null());
    let id: uuid::Uuid = body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("uuid");
    assert_eq!(id.get_version_num(), 7);
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("stored");
    assert!(stored.starts_with("$2") && !stored.contains(PASSWORD));
}

#[actix_web::test]
async fn registering_a_tutor_returns_a_profile_with_a_four_digit_tag() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/auth/register",
            None,
            &json!({
                "email": unique_email("tia"), "password": PASSWORD, "name": "Tia", "role": "tutor",
                "institution": "USP", "bio": "Algebra", "specialization": ["Math", "Physics"],
                "price_per_hour": {"amount_cents": 12000, "currency": "brl"},
                "timezone": "America/Sao_Paulo",
            }),
        )
        .await;
    let tutor = &response.assert_status(201)["tutor"];
    let tag = tutor["tag"].as_str().expect("a tag");
    assert!(
        tag.len() == 4 && tag.bytes().all(|b| b.is_ascii_digit()),
        "{tag}"
    );
    assert_eq!(tutor["institution"], "USP");
    assert_eq!(tutor["specialization"], json!(["Math", "Physics"]));
    assert_eq!(
        tutor["price_per_hour"],
        json!({"amount_cents": 12000, "currency": "BRL"})
    );
    assert_eq!(tutor["timezone"], "America/Sao_Paulo");
    assert_eq!(tutor["rating"], json!({"average": null, "count": 0}));
}

#[actix_web::test]
async fn registering_a_taken_email_in_any_case_returns_409() {
    let app = spawn_app().await;
    let student = app.student().await;
    let response = app
        .post(
            "/auth/register",
            None,
            &json!({"email": student.email.to_uppercase(), "password": PASSWORD, "name": "B", "role": "tutor"}),
        )
        .await;
    response.assert_problem(409, "email_taken");
}

#[actix_web::test]
async fn registering_with_invalid_fields_returns_422_listing_each() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/auth/register",
            None,
            &json!({"email": "not-an-email", "password": "short", "name": " ", "role": "admin"}),
        )
        .await;
    response.assert_problem(422, "validation_failed");
    let mut fields = response.error_fields();
    fields.sort();
    assert_eq!(fields, ["email", "name", "password", "role"]);

    let tutor = app
        .post(
            "/auth/register",
            None,
            &json!({"email": unique_email("t"), "password": PASSWORD, "name": "T", "role": "tutor",
                    "timezone": "Mars/Base", "price_per_hour": {"amount_cents": -1, "currency": "BRL"}}),
        )
        .await;
    tutor.assert_problem(422, "validation_failed");
    let mut fields = tutor.error_fields();
    fields.sort();
    assert_eq!(fields, ["price_per_hour", "timezone"]);
}

#[actix_web::test]
async fn a_password_must_be_8_to_72_bytes() {
    let app = spawn_app().await;
    let register = |password: String| {
        let app = &app;
        async move {
            app.post(
                "/auth/register",
                None,
                &json!({"email": unique_email("p"), "password": password, "name": "P", "role": "student"}),
            )
            .await
        }
    };
    register("1234567".into())
        .await
        .assert_problem(422, "validation_failed");
    register("12345678".into()).await.assert_status(201);
    register("x".repeat(72)).await.assert_status(201);
    // 73 bytes: bcrypt would silently ignore the tail, so it is refused.
    let long = register("x".repeat(73)).await;
    long.assert_problem(422, "validation_failed");
    assert_eq!(long.error_fields(), ["password"]);
    // 25 three-byte characters are 75 bytes, though only 25 characters.
    register("€".repeat(25))
        .await
        .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn a_student_cannot_register_with_tutor_fields() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/auth/register",
            None,
            &json!({"email": unique_email("s"), "password": PASSWORD, "name": "S", "role": "student", "bio": "hi"}),
        )
        .await;
    response.assert_problem(422, "validation_failed");
    assert_eq!(response.error_fields(), ["bio"]);
}

#[actix_web::test]
async fn logging_in_returns_a_token_user_id_type_and_expiry() {
    let app = spawn_app().await;
    let student = app.student().await;
    let response = app
        .post(
            "/auth/login",
            None,
            &json!({"email": student.email.to_uppercase(), "password": PASSWORD}),
        )
        .await;
    let body = response.assert_status(200);
    assert!(
        body["token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    assert_eq!(body["user_id"], student.id.to_string());
    assert_eq!(body["user_type"], "student");
    let expires_at = body["expires_at"].as_str().expect("expiry");
    assert!(chrono::DateTime::parse_from_rfc3339(expires_at).is_ok());
}

#[actix_web::test]
async fn teacher_is_accepted_as_the_user_type_of_a_tutor() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    for user_type in ["teacher", "tutor"] {
        let response = app
            .post(
                "/auth/login",
                None,
                &json!({"email": tutor.email, "password": PASSWORD, "user_type": user_type}),
            )
            .await;
        assert_eq!(response.assert_status(200)["user_type"], "tutor");
    }
}

#[actix_web::test]
async fn a_user_type_that_does_not_match_the_account_is_401() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let student = app.student().await;
    app.post(
        "/auth/login",
        None,
        &json!({"email": tutor.email, "password": PASSWORD, "user_type": "student"}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    app.post(
        "/auth/login",
        None,
        &json!({"email": student.email, "password": PASSWORD, "user_type": "teacher"}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    app.post(
        "/auth/login",
        None,
        &json!({"email": student.email, "password": PASSWORD, "user_type": "admin"}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
}

#[actix_web::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let student = app.student().await;
    let wrong = app
        .post(
            "/auth/login",
            None,
            &json!({"email": student.email, "password": "wrong password"}),
        )
        .await;
    let unknown = app
        .post(
            "/auth/login",
            None,
            &json!({"email": unique_email("nobody"), "password": "wrong password"}),
        )
        .await;
    wrong.assert_problem(401, "invalid_credentials");
    unknown.assert_problem(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
}

#[actix_web::test]
async fn ten_failed_logins_lock_the_email_with_429_and_retry_after() {
    let app = spawn_app().await;
    let student = app.student().await;
    for _ in 0..10 {
        app.post(
            "/auth/login",
            None,
            &json!({"email": student.email, "password": "wrong password"}),
        )
        .await
        .assert_problem(401, "invalid_credentials");
    }
    // Even the right password is refused now, whatever the case of the e-mail.
    let locked = app
        .post(
            "/auth/login",
            None,
            &json!({"email": student.email.to_uppercase(), "password": PASSWORD}),
        )
        .await;
    locked.assert_problem(429, "too_many_requests");
    let retry_after: u64 = locked
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=900).contains(&retry_after), "{retry_after}");

    // Other e-mails are unaffected.
    let other = app.student().await;
    app.login(&other.email, PASSWORD).await;

    // Once the failures leave the 15-minute window, logging in works again.
    sqlx::query("UPDATE login_failures SET failed_at = failed_at - interval '16 minutes'")
        .execute(&app.db)
        .await
        .expect("age the failures");
    app.login(&student.email, PASSWORD).await;
}

#[actix_web::test]
async fn logins_the_server_could_not_finish_do_not_count_towards_the_lock() {
    let app =
        spawn_app_with(|settings| settings.request_timeout = Duration::from_millis(300)).await;
    let student = app.student().await;

    // While tokens cannot be recorded, logins with the right password run out of time.
    let mut hold = app.db.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE auth_sessions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .expect("locked");
    let right = json!({"email": student.email, "password": PASSWORD});
    let attempts = (0..10).map(|_| app.post("/auth/login", None, &right));
    for answer in futures_util::future::join_all(attempts).await {
        answer.assert_problem(503, "service_unavailable");
    }
    hold.rollback().await.expect("released");

    // None of them counts as a failed login, so the e-mail is not locked out.
    eventually("withdrawing every unchecked attempt", || async {
        let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM login_failures")
            .fetch_one(&app.db)
            .await
            .expect("failures");
        counted == 0
    })
    .await;
    app.login(&student.email, PASSWORD).await;
}

#[actix_web::test]
async fn parallel_guesses_cannot_overrun_the_throttle() {
    let app = spawn_app().await;
    let student = app.student().await;
    let guesses = (0..25).map(|i| {
        let app = &app;
        let email = student.email.clone();
        async move {
            app.post(
                "/auth/login",
                None,
                &json!({"email": email, "password": format!("guess number {i}")}),
            )
            .await
            .status
            .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((refused, throttled), (10, 15), "{statuses:?}");
}

#[actix_web::test]
async fn odd_credentials_are_refused_as_credentials_not_errors() {
    let app = spawn_app().await;
    let student = app.student().await;
    for (email, password) in [
        ("x".repeat(3000), PASSWORD.to_owned()),
        ("nul\u{0}@example.com".to_owned(), PASSWORD.to_owned()),
        (String::new(), String::new()),
        // bcrypt would compare only the first 72 bytes: a longer password must not match.
        (
            student.email.clone(),
            format!("{PASSWORD}{}", "x".repeat(72)),
        ),
    ] {
        app.post(
            "/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
        .assert_problem(401, "invalid_credentials");
    }
}

#[actix_web::test]
async fn the_session_route_describes_the_presented_token() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    let response = app.get("/auth/session", Some(&tutor.token)).await;
    let body = response.assert_status(200);
    assert_eq!(body["token"], tutor.token);
    assert_eq!(body["user_id"], tutor.id.to_string());
    assert_eq!(body["user_type"], "tutor");
    let issued = chrono::DateTime::parse_from_rfc3339(body["issued_at"].as_str().expect("iat"))
        .expect("rfc 3339");
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().expect("exp"))
        .expect("rfc 3339");
    assert!(expires > issued);
}

#[actix_web::test]
async fn missing_malformed_tampered_and_expired_tokens_are_401() {
    let app = spawn_app().await;
    let student = app.student().await;
    app.get("/auth/session", None)
        .await
        .assert_problem(401, "missing_token");
    app.get("/auth/session", Some("not-a-jwt"))
        .await
        .assert_problem(401, "invalid_token");

    // Flip one character of the payload: the signature no longer matches.
    let mut parts: Vec<String> = student.token.split('.').map(str::to_owned).collect();
    let payload = parts[1].clone();
    let last = payload.chars().last().expect("payload");
    parts[1] = format!(
        "{}{}",
        &payload[..payload.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    app.get("/auth/session", Some(&parts.join(".")))
        .await
        .assert_problem(401, "invalid_token");

    // A token signed with the right secret but long expired.
    let now = chrono::Utc::now().timestamp();
    let claims = tutoring::auth::Claims {
        sub: student.id,
        role: tutoring::domain::Role::Student,
        jti: uuid::Uuid::now_v7(),
        iat: now - 7200,
        exp: now - 3600,
    };
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"test-secret-that-is-at-least-32-bytes-long"),
    )
    .expect("signs");
    app.get("/auth/session", Some(&expired))
        .await
        .assert_problem(401, "token_expired");

    let response = app
        .request(reqwest::Method::GET, "/auth/session", None, None)
        .await;
    assert_eq!(
        response
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
}

#[actix_web::test]
async fn logging_out_revokes_the_token_and_only_that_token() {
    let app = spawn_app().await;
    let student = app.student().await;
    let other_session = app.login(&student.email, PASSWORD).await;
    app.post("/auth/logout", Some(&student.token), &json!({}))
        .await
        .assert_status(204);
    app.get("/auth/session", Some(&student.token))
        .await
        .assert_problem(401, "token_revoked");
    app.post("/auth/logout", Some(&student.token), &json!({}))
        .await
        .assert_problem(401, "token_revoked");
    app.get("/auth/session", Some(&other_session))
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn a_logout_on_one_node_revokes_the_token_on_another_within_a_second() {
    let app = spawn_app().await;
    let other_node = spawn_second_node(&app).await;
    let student = app.student().await;
    other_node
        .get("/auth/session", Some(&student.token))
        .await
        .assert_status(200);

    app.post("/auth/logout", Some(&student.token), &json!({}))
        .await
        .assert_status(204);
    let logged_out = Instant::now();
    // SPEC: every node refuses the token within 1 s of the logout.
    let deadline = logged_out + Duration::from_secs(1);
    let mut poll = actix_web::rt::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let response = other_node.get("/auth/session", Some(&student.token)).await;
        if response.status == 401 {
            response.assert_problem(401, "token_revoked");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other node still accepts the token"
        );
    }
}

#[actix_web::test]
async fn a_deactivated_account_cannot_log_in() {
    let app = spawn_app().await;
    let tutor = app.tutor().await;
    app.delete("/teachers/me", Some(&tutor.token))
        .await
        .assert_status(200);
    app.post(
        "/auth/login",
        None,
        &json!({"email": tutor.email, "password": PASSWORD}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    // Its earlier token still authenticates, but acts as nobody.
    app.get("/auth/session", Some(&tutor.token))
        .await
        .assert_status(200);
    app.get("/teachers/me", Some(&tutor.token))
        .await
        .assert_problem(404, "account_not_found");
}
