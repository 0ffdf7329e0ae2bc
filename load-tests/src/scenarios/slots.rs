//! `slots`: `GET /tutors/{id}/slots` for one week, over many tutors (100 by default), answered
//! from the tutors' actors.

use std::sync::Arc;

use chrono::{SecondsFormat, TimeDelta};

use crate::Options;
use crate::client::{Api, seed, tomorrow_on_the_hour};
use crate::procstat::Meter;
use crate::scenarios::drive;
use crate::stats::Report;

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    let tutor_count = options.tutors.unwrap_or(100).max(1);
    eprintln!("seeding {tutor_count} tutors…");
    let tutors = Arc::new(
        seed(tutor_count, 32, |i| {
            api.open_tutor(format!("slots-tutor{i}"))
        })
        .await?,
    );
    let from = tomorrow_on_the_hour();
    let limit = options
        .limit
        .map(|limit| format!("&limit={limit}"))
        .unwrap_or_default();
    let query = format!(
        "?from={}&to={}&duration_minutes=60{limit}",
        from.to_rfc3339_opts(SecondsFormat::Secs, true),
        (from + TimeDelta::days(7)).to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    let driver_api = api.clone();
    let meter = Meter::start(options);
    let (series, elapsed) = drive(
        &api.address,
        options.clients,
        options.duration,
        move |client, n| {
            let tutor = &tutors[(client + n as usize * 7) % tutors.len()];
            driver_api.get(&format!("/tutors/{}/slots{query}", tutor.id), None)
        },
    )
    .await?;
    let mut report = Report::new("slots", options, elapsed);
    meter.finish(&mut report);
    report
        .series
        .push(series.summarize("slots", elapsed, &[200]));
    report.note("tutors", tutor_count);
    report.note(
        "limit",
        options
            .limit
            .map_or("default (50)".to_owned(), |l| l.to_string()),
    );
    Ok(report)
}
