//! `live`: many WebSocket subscribers (1,000 by default, `--clients`) on one tutor while one
//! booker books its slots one after another. Measures, at every subscriber, the time from each
//! booking's `201` to its `slot.booked`, and checks that no subscriber sees a `seq` gap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::Options;
use crate::client::{Api, tomorrow_on_the_hour};
use crate::procstat::Meter;
use crate::stats::{Report, Series};

/// When each booking's `201` arrived, by the start it booked.
type Acknowledged = Arc<Mutex<HashMap<String, Instant>>>;

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    let tutor = api.open_tutor("live-tutor".to_owned()).await?;
    let student = api.account("student", "live-booker".to_owned()).await?;
    let base = tomorrow_on_the_hour();
    let ws_url = format!("{}/ws", options.base_url.replacen("http", "ws", 1));

    eprintln!("connecting {} subscribers…", options.clients);
    let subscribe = json!({
        "type": "subscribe", "tutor_id": tutor.id,
        "from": base.to_rfc3339(), "to": (base + chrono::TimeDelta::days(30)).to_rfc3339(),
    })
    .to_string();
    let mut sockets = Vec::with_capacity(options.clients);
    for _ in 0..options.clients {
        let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url)
            .await
            .context("connecting a subscriber")?;
        socket.send(Message::Text(subscribe.clone().into())).await?;
        sockets.push(socket);
    }

    let acknowledged: Acknowledged = Arc::default();
    let deadline = Instant::now() + options.duration;
    let subscribers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            let acknowledged = Arc::clone(&acknowledged);
            tokio::spawn(async move {
                let mut latency = Series::default();
                let mut last_seq: Option<i64> = None;
                let mut gaps = 0u64;
                let mut pending: Vec<(String, Instant)> = Vec::new();
                let stop = deadline + Duration::from_secs(5);
                while let Ok(Some(Ok(frame))) =
                    tokio::time::timeout_at(stop.into(), socket.next()).await
                {
                    let Message::Text(text) = frame else { continue };
                    let Ok(message) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    let seq = message["seq"].as_i64();
                    match message["type"].as_str() {
                        Some("snapshot") => last_seq = seq,
                        Some("slot.booked") => {
                            if let (Some(seq), Some(last)) = (seq, last_seq)
                                && seq != last + 1
                            {
                                gaps += 1;
                            }
                            last_seq = seq.or(last_seq);
                            let start = message["start"].as_str().unwrap_or_default().to_owned();
                            pending.push((start, Instant::now()));
                        }
                        _ => {}
                    }
                }
                // Match receipts with the 201s (an event may arrive before its 201).
                let acknowledged = acknowledged.lock().map(|a| a.clone()).unwrap_or_default();
                for (start, received) in pending {
                    if let Some(acked) = acknowledged.get(&start) {
                        latency.record(200, received.saturating_duration_since(*acked));
                    }
                }
                (latency, gaps)
            })
        })
        .collect();

    // Let every subscription take its snapshot before booking starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let meter = Meter::start(options);
    let started = Instant::now();
    let mut bookings = Series::default();
    let mut n = 0i64;
    while Instant::now() < deadline {
        let start = base + chrono::TimeDelta::minutes(30 * n);
        n += 1;
        let (status, body, took) = api.book(&student, &tutor.id, start, 30).await;
        bookings.record(status, took);
        if status == 201
            && let Some(at) = body.json()["scheduled_at"].as_str()
            && let Ok(mut acknowledged) = acknowledged.lock()
        {
            acknowledged.insert(at.to_owned(), Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let mut report = Report::new("live", options, elapsed);
    meter.finish(&mut report);

    let mut latency = Series::default();
    let mut gaps = 0;
    for subscriber in subscribers {
        let (series, subscriber_gaps) = subscriber.await?;
        latency.merge(series);
        gaps += subscriber_gaps;
    }
    ensure!(
        gaps == 0,
        "SEQ GAPS: subscribers saw {gaps} gaps in the tutor's sequence"
    );
    report
        .series
        .push(bookings.summarize("book", elapsed, &[201]));
    report
        .series
        .push(latency.summarize("201-to-receipt", elapsed, &[200]));
    report.note("subscribers", options.clients);
    report.note("seq_gaps", gaps);
    Ok(report)
}
