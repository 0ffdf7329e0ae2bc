//! Several server processes on one database: each hears the others' changes through its event
//! listener, whatever state its own actors are in.

use std::time::{Duration, Instant};

use crate::helpers::{
    all_day_rules, days_ahead_at, spawn_app, spawn_second_node, students_direct,
    until_a_query_waits_on_a_lock,
};
use crate::live::Client;

#[actix_web::test]
async fn an_event_for_a_tutor_whose_actor_is_still_starting_leaves_the_listener_working() {
    let app = spawn_app().await;
    let other_node = spawn_second_node(&app).await;
    let starting = app.tutor_with_rules(&all_day_rules()).await;
    let watched = app.tutor_with_rules(&all_day_rules()).await;
    let students = students_direct(&app, 2).await;
    let mut client = Client::connect(&other_node, None).await;
    let seq = client.subscribe(watched.id, 3).await["seq"]
        .as_i64()
        .expect("seq");

    // Hold the rules table so that the other node's actor for `starting` stays mid-start.
    let mut hold = app.db.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE availability_rules IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .expect("locked");
    let slots_path = format!(
        "/tutors/{}/slots?from={}&to={}",
        starting.id,
        days_ahead_at(2, 0, 0).to_rfc3339().replace('+', "%2B"),
        days_ahead_at(3, 0, 0).to_rfc3339().replace('+', "%2B"),
    );
    let slots = other_node.get(&slots_path, None);
    let rest = async {
        until_a_query_waits_on_a_lock(&app).await;
        // A booking through the first node announces an event for the starting actor, then one
        // for the watched tutor: the second reaches the other node's subscriber only if the
        // listener survived the first.
        app.book(&students[0], starting.id, days_ahead_at(2, 10, 0), 60)
            .await
            .assert_status(201);
        app.book(&students[1], watched.id, days_ahead_at(2, 10, 0), 60)
            .await
            .assert_status(201);
        let event = client.next().await;
        assert_eq!(
            (&event["type"], &event["seq"]),
            (&"slot.booked".into(), &(seq + 1).into())
        );
        hold.commit().await.expect("released");
    };
    let (slots, ()) = futures_util::join!(slots, rest);
    slots.assert_status(200);

    // The actor, once up, learns of the booking (the event waited for it to start).
    let booked = days_ahead_at(2, 10, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut poll = actix_web::rt::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        let answer = other_node.get(&slots_path, None).await;
        let starts: Vec<chrono::DateTime<chrono::Utc>> = answer.assert_status(200)["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|slot| slot["start"].as_str()?.parse().ok())
            .collect();
        assert!(
            starts.contains(&(booked - chrono::TimeDelta::hours(1))),
            "{starts:?}"
        );
        if !starts.contains(&booked) {
            break;
        }
        assert!(Instant::now() < deadline, "the booked slot stays free");
    }
}
