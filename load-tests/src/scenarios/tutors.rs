//! `tutors`: registers many tutors (`--tutors`, 10,000 by default: every tag SPEC allows, since
//! each tutor takes one of 10,000 four-digit tags for good) and asks each one's slots once, so
//! that every tutor's actor is activated. Reports the server's resident memory once all are
//! active.

use std::sync::Arc;
use std::time::Instant;

use chrono::SecondsFormat;
use futures_util::StreamExt as _;

use crate::Options;
use crate::client::{Api, tomorrow_on_the_hour};
use crate::procstat::Meter;
use crate::stats::{Report, Series};

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    let count = options.tutors.unwrap_or(10_000);
    let concurrency = options.clients.max(1);
    let started = Instant::now();

    eprintln!("registering {count} tutors…");
    let registered: Vec<(u16, String, std::time::Duration)> = futures_util::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let email = format!("many-{i}-{}@load.test", uuid::Uuid::now_v7().simple());
                let request = api
                    .http
                    .post(api.url("/auth/register"))
                    .json(&serde_json::json!({
                        "email": email, "password": crate::client::PASSWORD,
                        "name": "Many", "role": "tutor",
                    }));
                let (status, body, took) = api.timed(request).await;
                (
                    status,
                    body.json()["id"].as_str().unwrap_or_default().to_owned(),
                    took,
                )
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut registering = Series::default();
    let mut ids = Vec::with_capacity(count);
    for (status, id, took) in registered {
        registering.record(status, took);
        if status == 201 {
            ids.push(id);
        }
    }
    let registered_in = started.elapsed();

    eprintln!("activating {} tutors' actors…", ids.len());
    let meter = Meter::start(options);
    let from = tomorrow_on_the_hour();
    let query = Arc::new(format!(
        "?from={}&to={}",
        from.to_rfc3339_opts(SecondsFormat::Secs, true),
        (from + chrono::TimeDelta::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true)
    ));
    let activating_started = Instant::now();
    let activated: Vec<(u16, std::time::Duration)> = futures_util::stream::iter(ids)
        .map(|id| {
            let (api, query) = (api.clone(), Arc::clone(&query));
            async move {
                let (status, _, took) = api
                    .timed(api.http.get(api.url(&format!("/tutors/{id}/slots{query}"))))
                    .await;
                (status, took)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut activating = Series::default();
    for (status, took) in activated {
        activating.record(status, took);
    }
    let activated_in = activating_started.elapsed();

    let mut report = Report::new("tutors", options, started.elapsed());
    meter.finish(&mut report);
    report
        .series
        .push(registering.summarize("register", registered_in, &[201]));
    report
        .series
        .push(activating.summarize("activate", activated_in, &[200]));
    report.note("tutors", count);
    Ok(report)
}
