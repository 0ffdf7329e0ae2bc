//! The booking invariant under concurrency: however many requests race, through however many
//! server processes, no two active sessions of one tutor or one student overlap.

use std::collections::HashMap;

use futures_util::future::join_all;
use uuid::Uuid;

use crate::helpers::{
    TestApp, TestUser, all_day_rules, assert_no_overlaps, days_ahead_at, spawn_app,
    spawn_second_node, students_direct,
};

async fn statuses(
    attempts: impl IntoIterator<Item = (&TestApp, &TestUser, Uuid, chrono::DateTime<chrono::Utc>)>,
) -> Vec<(u16, String)> {
    join_all(
        attempts
            .into_iter()
            .map(|(app, student, tutor, start)| async move {
                let response = app.book(student, tutor, start, 60).await;
                let code = response.body["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (response.status.as_u16(), code)
            }),
    )
    .await
}

fn tally(results: &[(u16, String)]) -> HashMap<(u16, String), usize> {
    let mut tally = HashMap::new();
    for result in results {
        *tally.entry(result.clone()).or_default() += 1;
    }
    tally
}

#[actix_web::test]
async fn two_hundred_students_racing_for_one_slot_get_exactly_one_booking() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let students = students_direct(&app, 200).await;
    let start = days_ahead_at(3, 15, 0);
    let results = statuses(students.iter().map(|s| (&app, s, tutor.id, start))).await;
    let tally = tally(&results);
    assert_eq!(tally.get(&(201, String::new())), Some(&1), "{tally:?}");
    assert_eq!(
        tally.get(&(409, "slot_taken".to_owned())),
        Some(&199),
        "{tally:?}"
    );
    assert_no_overlaps(&app).await;
}

#[actix_web::test]
async fn many_students_over_many_slots_book_each_slot_once() {
    let app = spawn_app().await;
    let mut tutors = Vec::new();
    for _ in 0..5 {
        tutors.push(app.tutor_with_rules(&all_day_rules()).await);
    }
    let students = students_direct(&app, 120).await;
    // 120 students, each trying one of 5 tutors × 8 half-hour-aligned hours: heavy collisions.
    let attempts: Vec<_> = students
        .iter()
        .enumerate()
        .map(|(i, student)| {
            let tutor = tutors[i % tutors.len()].id;
            let start = days_ahead_at(2, 8 + (i / tutors.len() % 8) as u32, 0);
            (&app, student, tutor, start)
        })
        .collect();
    let results = statuses(attempts).await;
    let booked = results.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(
        booked,
        40,
        "each of the 40 (tutor, hour) slots once: {:?}",
        tally(&results)
    );
    assert!(
        results
            .iter()
            .all(|(status, code)| *status == 201 || (*status == 409 && code == "slot_taken"))
    );
    assert_no_overlaps(&app).await;
}

#[actix_web::test]
async fn two_server_processes_on_one_database_never_double_book() {
    let app = spawn_app().await;
    let other_node = spawn_second_node(&app).await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let students = students_direct(&app, 100).await;
    let start = days_ahead_at(5, 9, 0);
    // Warm both nodes' actors for the tutor, so each refuses from its own memory.
    for node in [&app, &other_node] {
        node.get(
            &format!(
                "/tutors/{}/slots?from={}&to={}",
                tutor.id,
                days_ahead_at(5, 0, 0).to_rfc3339().replace('+', "%2B"),
                days_ahead_at(6, 0, 0).to_rfc3339().replace('+', "%2B"),
            ),
            None,
        )
        .await
        .assert_status(200);
    }
    let results = statuses(students.iter().enumerate().map(|(i, s)| {
        let node = if i % 2 == 0 { &app } else { &other_node };
        (node, s, tutor.id, start)
    }))
    .await;
    let tally = tally(&results);
    assert_eq!(tally.get(&(201, String::new())), Some(&1), "{tally:?}");
    assert_eq!(
        tally.get(&(409, "slot_taken".to_owned())),
        Some(&99),
        "{tally:?}"
    );
    assert_no_overlaps(&app).await;

    // The node that lost learned of the booking: it refuses the slot from then on too.
    let late = students_direct(&app, 1).await;
    for node in [&app, &other_node] {
        node.book(&late[0], tutor.id, start, 60)
            .await
            .assert_problem(409, "slot_taken");
    }
}

#[actix_web::test]
async fn a_student_booking_two_tutors_at_once_gets_one_session() {
    let app = spawn_app().await;
    let first = app.tutor_with_rules(&all_day_rules()).await;
    let second = app.tutor_with_rules(&all_day_rules()).await;
    let students = students_direct(&app, 1).await;
    let start = days_ahead_at(2, 18, 0);
    let results = statuses([
        (&app, &students[0], first.id, start),
        (&app, &students[0], second.id, start),
    ])
    .await;
    let tally = tally(&results);
    assert_eq!(tally.get(&(201, String::new())), Some(&1), "{tally:?}");
    assert_eq!(
        tally.get(&(409, "student_busy".to_owned())),
        Some(&1),
        "{tally:?}"
    );
    assert_no_overlaps(&app).await;
}

#[actix_web::test]
async fn a_booking_written_twice_in_one_batch_with_others_is_the_first_ones_success() {
    use tutoring::store::sessions::{NewSession, insert_batch, refusal_reason};

    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let students = students_direct(&app, 2).await;
    let row = |student: &TestUser, hour| {
        let start = days_ahead_at(2, hour, 0);
        NewSession {
            id: Uuid::now_v7(),
            tutor_id: tutor.id,
            student_id: student.id,
            scheduled_at: start,
            ends_at: start + chrono::TimeDelta::hours(1),
            duration_minutes: 60,
        }
    };
    let first = row(&students[0], 10);
    let mut conn = app.db.acquire().await.expect("a connection");
    let written = insert_batch(&mut conn, std::slice::from_ref(&first))
        .await
        .expect("written");
    assert!(written[0].is_some(), "{written:?}");

    // A retry of the first booking (same id) racing its commit lands in a batch with another:
    // the other is written, and the retry, refused as already there, is the first booking.
    let other = row(&students[1], 12);
    let results = insert_batch(&mut conn, &[first.clone(), other.clone()])
        .await
        .expect("a batch with a row already written");
    assert!(results[0].is_none(), "{results:?}");
    assert_eq!(
        results[1].as_ref().map(|written| written.record.id),
        Some(other.id)
    );
    let retried = refusal_reason(&app.db, &first)
        .await
        .expect("the first booking's success");
    assert_eq!(retried.record.id, first.id);
    assert_no_overlaps(&app).await;
}
