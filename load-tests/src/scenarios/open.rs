//! `open`: committed bookings spread over many tutors (1,000 by default). Each client books for
//! its own student, walking forward through time in 30-minute steps, at tutors only it uses,
//! so nearly every request is a booking that commits.

use std::sync::Arc;

use chrono::TimeDelta;

use crate::Options;
use crate::client::{Api, seed, tomorrow_on_the_hour};
use crate::procstat::Meter;
use crate::scenarios::drive;
use crate::stats::Report;

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    let tutor_count = options.tutors.unwrap_or(1_000).max(options.clients);
    eprintln!(
        "seeding {tutor_count} tutors and {} students…",
        options.clients
    );
    let tutors = Arc::new(
        seed(tutor_count, 32, |i| {
            api.open_tutor(format!("open-tutor{i}"))
        })
        .await?,
    );
    let students = Arc::new(
        seed(options.clients, 32, |i| {
            api.account("student", format!("open-student{i}"))
        })
        .await?,
    );
    let base = tomorrow_on_the_hour();
    let clients = options.clients;

    let driver_api = api.clone();
    let meter = Meter::start(options);
    let (series, elapsed) = drive(&api.address, clients, options.duration, move |client, n| {
        // Tutors client, client + clients, client + 2·clients, …: none shared with others.
        let own = (tutors.len() - client - 1) / clients + 1;
        let tutor = &tutors[client + clients * (n as usize % own)];
        let start = base + TimeDelta::minutes(30 * n as i64);
        driver_api.booking(&students[client], &tutor.id, start, 30)
    })
    .await?;
    let mut report = Report::new("open", options, elapsed);
    meter.finish(&mut report);
    report
        .series
        .push(series.summarize("book", elapsed, &[201]));
    report.note("tutors", tutor_count);
    Ok(report)
}
