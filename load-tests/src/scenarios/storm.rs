//! `storm`: many clients (500 by default) all try to book the same few slots (10) of one tutor,
//! each slot once per client, in a different order each. Afterwards the tutor's sessions are read
//! back through the API: each slot must be booked exactly once, or the run fails.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::ensure;

use crate::Options;
use crate::client::{Api, seed, tomorrow_on_the_hour};
use crate::http1::Conn;
use crate::procstat::Meter;
use crate::stats::{Report, Series};

const SLOTS: i64 = 10;

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    eprintln!("seeding one tutor and {} students…", options.clients);
    let tutor = Arc::new(api.open_tutor("storm-tutor".to_owned()).await?);
    let students = seed(options.clients, 32, |i| {
        api.account("student", format!("storm{i}"))
    })
    .await?;
    let base = tomorrow_on_the_hour();
    let starts: Vec<_> = (0..SLOTS)
        .map(|i| base + chrono::TimeDelta::hours(i))
        .collect();

    // Every client opens its connection first, then all start at the same instant: the storm
    // hits the server at once rather than as connections happen to be accepted.
    let start_line = Arc::new(tokio::sync::Barrier::new(students.len() + 1));
    let tasks: Vec<_> = students
        .into_iter()
        .enumerate()
        .map(|(client, student)| {
            let (api, tutor, starts) = (api.clone(), Arc::clone(&tutor), starts.clone());
            let start_line = Arc::clone(&start_line);
            tokio::spawn(async move {
                let mut conn = Conn::new(&api.address);
                let warm = conn.send(&api.get("/health", None)).await;
                start_line.wait().await;
                let mut series = Series::default();
                if warm.status != 200 {
                    series.record(warm.status, warm.latency);
                    return series;
                }
                for k in 0..starts.len() {
                    let start = starts[(client + k) % starts.len()];
                    let booking = api.booking(&student, &tutor.id, start, 60);
                    let response = conn.send(&booking).await;
                    series.record(response.status, response.latency);
                }
                series
            })
        })
        .collect();
    start_line.wait().await;
    let meter = Meter::start(options);
    let started = std::time::Instant::now();
    let mut series = Series::default();
    for task in tasks {
        series.merge(task.await?);
    }
    let elapsed = started.elapsed();
    let mut report = Report::new("storm", options, elapsed);
    meter.finish(&mut report);

    // Verify through the API: the tutor's scheduled sessions, one per slot.
    let (status, body, _) = api
        .timed(
            api.http
                .get(api.url(&format!(
                    "/sessions/user/{}?status=scheduled&limit=200",
                    tutor.id
                )))
                .bearer_auth(&tutor.token),
        )
        .await;
    ensure!(
        status == 200,
        "listing the tutor's sessions answered {status}"
    );
    let mut per_slot: BTreeMap<String, usize> = BTreeMap::new();
    for session in body.json()["items"].as_array().into_iter().flatten() {
        *per_slot
            .entry(
                session["scheduled_at"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    let booked = series.count(201);
    ensure!(
        per_slot.len() == SLOTS as usize
            && per_slot.values().all(|n| *n == 1)
            && booked == SLOTS as u64,
        "DOUBLE BOOKING OR LOST SLOT: {booked} bookings answered 201; sessions per slot: {per_slot:?}"
    );

    report
        .series
        .push(series.summarize("book", elapsed, &[201, 409]));
    report.note("slots", SLOTS);
    report.note("bookings_committed", booked);
    report.note("verified", "each slot booked exactly once");
    Ok(report)
}
