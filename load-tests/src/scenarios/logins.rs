//! `logins`: N clients log in back to back (bcrypt at the server's cost) while a prober calls
//! `GET /health` without pause; shows whether hashing stays off the request-serving threads.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::Options;
use crate::client::{Api, PASSWORD};
use crate::procstat::Meter;
use crate::stats::{Report, Series};

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    let mut emails = Vec::with_capacity(options.clients);
    for i in 0..options.clients {
        emails.push(api.register_student(&format!("login{i}")).await?);
    }
    let deadline = Instant::now() + options.duration;
    let meter = Meter::start(options);
    let started = Instant::now();

    let mut loggers = Vec::new();
    for email in emails {
        let api = api.clone();
        loggers.push(tokio::spawn(async move {
            let mut series = Series::default();
            while Instant::now() < deadline {
                let request = api
                    .http
                    .post(api.url("/auth/login"))
                    .json(&json!({"email": email, "password": PASSWORD}));
                let (status, _, latency) = api.timed(request).await;
                series.record(status, latency);
            }
            series
        }));
    }
    let prober = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut series = Series::default();
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            while Instant::now() < deadline {
                tick.tick().await;
                let (status, _, latency) = api.timed(api.http.get(api.url("/health"))).await;
                series.record(status, latency);
            }
            series
        })
    };

    let mut logins = Series::default();
    for logger in loggers {
        logins.merge(logger.await?);
    }
    let health = prober.await?;
    let elapsed = started.elapsed();
    let mut report = Report::new("logins", options, elapsed);
    meter.finish(&mut report);
    report
        .series
        .push(logins.summarize("login", elapsed, &[200]));
    report
        .series
        .push(health.summarize("health", elapsed, &[200]));
    Ok(report)
}
