//! `mixed`: a realistic blend for soak runs. Each client, in a loop: browses the catalogue,
//! looks at a tutor's slots, books one of them, and now and then cancels a booking or logs in
//! again. Every request kind gets its own row.

use std::sync::Arc;

use rand::RngExt;
use serde_json::json;

use crate::Options;
use crate::client::{Api, PASSWORD, seed, tomorrow_on_the_hour};
use crate::procstat::Meter;
use crate::scenarios::{Outcome, drive_series};
use crate::stats::Report;

/// The request kinds, in the order of their rows.
const KINDS: [&str; 5] = ["browse", "slots", "book", "cancel", "login"];

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    let tutor_count = options.tutors.unwrap_or(50).max(1);
    eprintln!(
        "seeding {tutor_count} tutors and {} students…",
        options.clients
    );
    let tutors = Arc::new(
        seed(tutor_count, 16, |i| {
            api.open_tutor(format!("mixed-tutor{i}"))
        })
        .await?,
    );
    let students = Arc::new(
        seed(options.clients, 16, |i| {
            let api = api.clone();
            async move {
                let email = api.register_student(&format!("mixed-student{i}")).await?;
                let account = api.login(&email).await?;
                Ok((email, account))
            }
        })
        .await?,
    );
    let base = tomorrow_on_the_hour();
    let from = base.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (base + chrono::TimeDelta::days(7)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let driver_api = api.clone();
    let meter = Meter::start(options);
    let (series, elapsed) = drive_series(
        &api.address,
        options.clients,
        options.duration,
        KINDS.len(),
        move |mut conn, client, n| {
            let api = driver_api.clone();
            let (tutors, students) = (Arc::clone(&tutors), Arc::clone(&students));
            let (from, to) = (from.clone(), to.clone());
            async move {
                let (email, student) = &students[client];
                let tutor = &tutors[rand::rng().random_range(0..tutors.len())];
                let outcome = match n % 10 {
                    0..=2 => Outcome::of(0, &conn.send(&api.get("/tutors?limit=20", None)).await),
                    3..=5 => {
                        let path =
                            format!("/tutors/{}/slots?from={from}&to={to}&limit=20", tutor.id);
                        Outcome::of(1, &conn.send(&api.get(&path, None)).await)
                    }
                    6..=7 => {
                        // A random half hour of the coming week: taken ones answer 409, as in life.
                        let start = base
                            + chrono::TimeDelta::minutes(30 * rand::rng().random_range(0..336));
                        let booking = api.booking(student, &tutor.id, start, 30);
                        Outcome::of(2, &conn.send(&booking).await)
                    }
                    8 => {
                        let path =
                            format!("/sessions/user/{}?status=scheduled&limit=1", student.id);
                        let listed = conn.send(&api.get(&path, Some(&student.token))).await;
                        match listed.json()["items"][0]["id"].as_str() {
                            Some(id) => {
                                let cancel = api.post(
                                    &format!("/sessions/{id}/cancel"),
                                    Some(student),
                                    &json!({"reason": "soak"}),
                                );
                                Outcome::of(3, &conn.send(&cancel).await)
                            }
                            None => Outcome {
                                kind: 3,
                                status: 204,
                                latency: std::time::Duration::ZERO,
                            },
                        }
                    }
                    _ => {
                        let body = json!({"email": email, "password": PASSWORD});
                        Outcome::of(4, &conn.send(&api.post("/auth/login", None, &body)).await)
                    }
                };
                (conn, outcome)
            }
        },
    )
    .await?;
    let mut report = Report::new("mixed", options, elapsed);
    meter.finish(&mut report);
    let ok: [&[u16]; 5] = [&[200], &[200], &[201, 409], &[200, 204], &[200]];
    for ((kind, series), ok) in KINDS.iter().zip(series).zip(ok) {
        report.series.push(series.summarize(kind, elapsed, ok));
    }
    report.note("tutors", tutor_count);
    Ok(report)
}
