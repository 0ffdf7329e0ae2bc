//! Tutor actors: they stop when unused and come back with their schedule reloaded; reads
//! answered from an actor's published view count as use; refusals answered from the view carry
//! the same codes as the actor's.

use std::time::{Duration, Instant};

use chrono::SecondsFormat;
use serde_json::json;

use crate::helpers::{TestApp, all_day_rules, days_ahead_at, id_of, spawn_app_with};

/// How long a test waits for an actor to stop before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

async fn wait_until_no_actor_runs(app: &TestApp) {
    let deadline = Instant::now() + PATIENCE;
    let mut poll = actix_web::rt::time::interval(Duration::from_millis(50));
    while !app.registry.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} tutor actors still run after {PATIENCE:?}",
            app.registry.len()
        );
        poll.tick().await;
    }
}

fn slots_path(tutor_id: uuid::Uuid, day: i64) -> String {
    let from = days_ahead_at(day, 0, 0);
    let to = days_ahead_at(day + 1, 0, 0);
    format!(
        "/tutors/{tutor_id}/slots?from={}&to={}&duration_minutes=60&limit=200",
        from.to_rfc3339_opts(SecondsFormat::Secs, true),
        to.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

fn starts(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|slot| slot["start"].as_str().expect("a start").to_owned())
        .collect()
}

#[actix_web::test]
async fn an_unused_tutor_actor_stops_and_its_next_request_reloads_its_schedule() {
    let app = spawn_app_with(|s| s.scheduling.tutor_idle = Duration::from_millis(300)).await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let start = days_ahead_at(2, 10, 0);
    app.book(&student, tutor.id, start, 60)
        .await
        .assert_status(201);
    assert_eq!(app.registry.len(), 1);

    wait_until_no_actor_runs(&app).await;

    // A fresh actor, loaded from the database: the booking is still busy time.
    let slots = app.get(&slots_path(tutor.id, 2), None).await;
    let listed = starts(slots.assert_status(200));
    let taken = start.to_rfc3339_opts(SecondsFormat::Secs, true);
    assert!(!listed.contains(&taken), "{taken} listed again: {listed:?}");
    assert_eq!(
        listed.len(),
        45,
        "48 half-hour starts, less the three an hour from 10:00 overlaps"
    );
    let other = app.student().await;
    app.book(&other, tutor.id, start, 60)
        .await
        .assert_problem(409, "slot_taken");
    assert_eq!(app.registry.len(), 1);
    assert_eq!(app.registry.activations(), 2);
}

#[actix_web::test]
async fn slot_reads_answered_from_the_view_keep_the_actor_running() {
    let app = spawn_app_with(|s| s.scheduling.tutor_idle = Duration::from_secs(2)).await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let path = slots_path(tutor.id, 3);
    // Asked twice, the list is kept and published; later reads never reach the actor.
    for _ in 0..2 {
        app.get(&path, None).await.assert_status(200);
    }
    let activations = app.registry.activations();
    let answered_from_view = app.registry.view_answers();
    let reading_until = Instant::now() + Duration::from_secs(5);
    let mut poll = actix_web::rt::time::interval(Duration::from_millis(100));
    let mut reads = 0;
    while Instant::now() < reading_until {
        poll.tick().await;
        app.get(&path, None).await.assert_status(200);
        reads += 1;
    }
    assert_eq!(
        app.registry.view_answers() - answered_from_view,
        reads,
        "every read after the list was kept comes from the view"
    );
    assert_eq!(
        app.registry.activations(),
        activations,
        "the actor stopped while its view was being read"
    );

    // Once nobody reads, it stops.
    wait_until_no_actor_runs(&app).await;
}

#[actix_web::test]
async fn a_taken_slot_asked_too_soon_or_with_a_bad_duration_gets_that_code_not_slot_taken() {
    let app = spawn_app_with(|_| {}).await;
    let mut rules = all_day_rules();
    rules["min_notice_minutes"] = json!(0);
    let tutor = app.tutor_with_rules(&rules).await;
    let (first, second) = (app.student().await, app.student().await);
    let soon = days_ahead_at(0, 0, 0)
        + chrono::TimeDelta::hours(i64::from(chrono::Timelike::hour(&chrono::Utc::now())) + 3);
    app.book(&first, tutor.id, soon, 60)
        .await
        .assert_status(201);
    let answered_from_view = app.registry.view_answers();
    app.book(&second, tutor.id, soon, 60)
        .await
        .assert_problem(409, "slot_taken");
    app.book(&second, tutor.id, soon, 45)
        .await
        .assert_problem(422, "bad_duration");
    assert_eq!(
        app.registry.view_answers() - answered_from_view,
        2,
        "both refusals come from the view"
    );

    // Now a day's notice: the taken hour is also too soon, and too soon comes first.
    rules["min_notice_minutes"] = json!(24 * 60);
    app.put("/tutors/me/availability", Some(&tutor.token), &rules)
        .await
        .assert_status(200);
    app.book(&second, tutor.id, soon, 60)
        .await
        .assert_problem(422, "too_soon");
    assert_eq!(app.registry.view_answers() - answered_from_view, 3);
}

#[actix_web::test]
async fn an_actor_kept_running_through_its_idle_checks_keeps_every_change_to_its_sessions() {
    // Idle checks every 100 ms, which also forget what memory no longer needs; a live
    // subscriber keeps the actor running through them.
    let app = spawn_app_with(|s| s.scheduling.tutor_idle = Duration::from_millis(200)).await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let mut live = crate::live::Client::connect(&app, None).await;
    live.subscribe(tutor.id, 7).await;
    let student = app.student().await;
    let (mut taken, mut freed) = (Vec::new(), Vec::new());
    let mut poll = actix_web::rt::time::interval(Duration::from_millis(100));
    for hour in 0..15 {
        poll.tick().await;
        let start = days_ahead_at(2, hour, 0);
        let booked = app.book(&student, tutor.id, start, 60).await;
        let id = id_of(booked.assert_status(201));
        match hour % 3 {
            0 => taken.push(start),
            1 => {
                app.post(
                    &format!("/sessions/{id}/cancel"),
                    Some(&student.token),
                    &json!({}),
                )
                .await
                .assert_status(200);
                freed.push(start);
            }
            _ => {
                let moved_to = days_ahead_at(3, hour, 0);
                app.post(
                    &format!("/sessions/{id}/reschedule"),
                    Some(&student.token),
                    &json!({"scheduled_at": moved_to.to_rfc3339()}),
                )
                .await
                .assert_status(200);
                freed.push(start);
                taken.push(moved_to);
            }
        }
    }
    assert_eq!(app.registry.activations(), 1, "one actor all along");
    // Its memory agrees with every change: the slots it lists (from memory alone) leave out
    // the taken times and offer the freed ones; and another student's bookings agree.
    let mut listed = Vec::new();
    for day in [2, 3] {
        let slots = app.get(&slots_path(tutor.id, day), None).await;
        listed.extend(starts(slots.assert_status(200)));
    }
    let at =
        |start: &chrono::DateTime<chrono::Utc>| start.to_rfc3339_opts(SecondsFormat::Secs, true);
    for start in &taken {
        assert!(
            !listed.contains(&at(start)),
            "{} listed, but taken",
            at(start)
        );
    }
    for start in &freed {
        assert!(
            listed.contains(&at(start)),
            "{} not listed, but freed",
            at(start)
        );
    }
    let other = app.student().await;
    for start in taken {
        app.book(&other, tutor.id, start, 60)
            .await
            .assert_problem(409, "slot_taken");
    }
    for start in freed {
        app.book(&other, tutor.id, start, 60)
            .await
            .assert_status(201);
    }
}
