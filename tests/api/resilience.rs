//! Losing the database: requests that need it answer 503 promptly, what memory can answer is
//! still answered, and the server recovers by itself when the database returns.

use std::time::{Duration, Instant};

use crate::helpers::{
    admin_connection, all_day_rules, days_ahead_at, execute, spawn_app, spawn_app_with,
    students_direct,
};

#[actix_web::test]
async fn a_lost_database_gives_503_then_the_server_recovers_by_itself() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let students = students_direct(&app, 2).await;
    let slots_path = format!(
        "/tutors/{}/slots?from={}&to={}",
        tutor.id,
        days_ahead_at(2, 0, 0).to_rfc3339().replace('+', "%2B"),
        days_ahead_at(3, 0, 0).to_rfc3339().replace('+', "%2B"),
    );
    app.get(&slots_path, None).await.assert_status(200);

    // Cut the database off: no new connections, existing ones terminated.
    let mut admin = admin_connection().await;
    execute(
        &mut admin,
        format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", app.db_name),
    )
    .await;
    execute(
        &mut admin,
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            app.db_name
        ),
    )
    .await;

    app.get("/ready", None)
        .await
        .assert_problem(503, "service_unavailable");
    app.book(&students[0], tutor.id, days_ahead_at(2, 10, 0), 60)
        .await
        .assert_problem(503, "service_unavailable");
    app.put(
        "/tutors/me/availability",
        Some(&tutor.token),
        &all_day_rules(),
    )
    .await
    .assert_problem(503, "service_unavailable");
    // The tutor's actor still answers slot queries from memory.
    let slots = app.get(&slots_path, None).await;
    assert!(
        !slots.assert_status(200)["items"]
            .as_array()
            .expect("items")
            .is_empty()
    );
    // Nothing was written while the database was away.
    execute(
        &mut admin,
        format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", app.db_name),
    )
    .await;

    // Back: the server recovers without a restart.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut poll = actix_web::rt::time::interval(Duration::from_millis(200));
    loop {
        poll.tick().await;
        let response = app
            .book(&students[1], tutor.id, days_ahead_at(2, 10, 0), 60)
            .await;
        if response.status == 201 {
            break;
        }
        assert_eq!(
            response.status, 503,
            "only 503 while recovering: {}",
            response.body
        );
        assert!(Instant::now() < deadline, "the server did not recover");
    }
    let booked: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(booked, 1);
}

#[actix_web::test]
async fn a_request_the_database_leaves_hanging_is_a_503_at_the_deadline() {
    let app =
        spawn_app_with(|settings| settings.request_timeout = Duration::from_millis(500)).await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let students = students_direct(&app, 1).await;
    let booked = app
        .book(&students[0], tutor.id, days_ahead_at(2, 10, 0), 60)
        .await;
    let id = booked.assert_status(201)["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let path = format!("/sessions/{id}");

    // A lock held for long stands in for a database that stopped answering.
    let mut hold = app.db.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .expect("locked");
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        app.get(&path, Some(&students[0].token)),
    )
    .await
    .expect("an answer while the database still hangs");
    answer.assert_problem(503, "service_unavailable");
    hold.rollback().await.expect("released");

    app.get(&path, Some(&students[0].token))
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn a_booking_that_cannot_be_written_in_time_is_refused_and_never_written() {
    let app = spawn_app_with(|settings| settings.request_timeout = Duration::from_secs(2)).await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let students = students_direct(&app, 2).await;
    let start = days_ahead_at(2, 10, 0);

    // While the sessions table is held, the booking cannot be written; its caller is told so.
    let mut hold = app.db.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .expect("locked");
    app.book(&students[0], tutor.id, start, 60)
        .await
        .assert_problem(503, "service_unavailable");
    hold.rollback().await.expect("released");

    // Once the table is free, the write it gave up on does not land behind the caller's back:
    // the slot is free for another student and the first has no session.
    app.book(&students[1], tutor.id, start, 60)
        .await
        .assert_status(201);
    let first: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE student_id = $1")
        .bind(students[0].id)
        .fetch_one(&app.db)
        .await
        .expect("a count");
    assert_eq!(first, 0);
}
