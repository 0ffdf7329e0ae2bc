//! `contended`: every request asks for a slot that is already taken, so every answer is a `409`
//! that the tutor's actor gives from memory.

use std::sync::Arc;

use crate::Options;
use crate::client::{Api, seed, tomorrow_on_the_hour};
use crate::procstat::Meter;
use crate::scenarios::drive;
use crate::stats::Report;

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    eprintln!(
        "seeding one tutor, its taken slots, and {} students…",
        options.clients
    );
    let tutor = Arc::new(api.open_tutor("contended-tutor".to_owned()).await?);
    let owner = api.account("student", "contended-owner".to_owned()).await?;
    let base = tomorrow_on_the_hour();
    // Four taken hours.
    for hour in 0..4 {
        let (status, body, _) = api
            .book(&owner, &tutor.id, base + chrono::TimeDelta::hours(hour), 60)
            .await;
        anyhow::ensure!(
            status == 201,
            "seeding a booking answered {status}: {}",
            body.json()
        );
    }
    let students = Arc::new(
        seed(options.clients, 32, |i| {
            api.account("student", format!("contended{i}"))
        })
        .await?,
    );

    let driver_api = api.clone();
    let meter = Meter::start(options);
    let (series, elapsed) = drive(
        &api.address,
        options.clients,
        options.duration,
        move |client, n| {
            let start = base + chrono::TimeDelta::minutes(30 * (n as i64 % 8));
            driver_api.booking(&students[client], &tutor.id, start, 30)
        },
    )
    .await?;
    let mut report = Report::new("contended", options, elapsed);
    meter.finish(&mut report);
    report
        .series
        .push(series.summarize("book-taken", elapsed, &[409]));
    Ok(report)
}
