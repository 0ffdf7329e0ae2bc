//! `idle`: opens many WebSocket connections (`--clients`, e.g. 10,000), each subscribed to one of
//! a few tutors, and holds them for `--duration`. Reports how many connections were held and the
//! server's resident memory while it held them.

use std::time::Instant;

use anyhow::Context;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::Options;
use crate::client::{Api, seed, tomorrow_on_the_hour};
use crate::procstat::Meter;
use crate::stats::{Report, Series};

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(&options.base_url)?;
    let tutors = seed(10, 10, |i| api.open_tutor(format!("idle-tutor{i}"))).await?;
    let base = tomorrow_on_the_hour();
    let ws_url = format!("{}/ws", options.base_url.replacen("http", "ws", 1));
    let started = Instant::now();
    let mut connects = Series::default();
    let mut sockets = Vec::with_capacity(options.clients);
    for i in 0..options.clients {
        let opened = Instant::now();
        let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url)
            .await
            .with_context(|| format!("opening connection {i}"))?;
        let subscribe = json!({
            "type": "subscribe", "tutor_id": tutors[i % tutors.len()].id,
            "from": base.to_rfc3339(), "to": (base + chrono::TimeDelta::days(7)).to_rfc3339(),
        });
        socket
            .send(Message::Text(subscribe.to_string().into()))
            .await?;
        connects.record(101, opened.elapsed());
        sockets.push(socket);
    }
    eprintln!(
        "holding {} connections for {:?}",
        sockets.len(),
        options.duration
    );
    // What holding them costs: the server's CPU while they idle, and its memory at the end.
    let meter = Meter::start(options);
    tokio::time::sleep(options.duration).await;
    let elapsed = started.elapsed();
    let mut report = Report::new("idle", options, elapsed);
    meter.finish(&mut report);
    report
        .series
        .push(connects.summarize("connect", elapsed, &[101]));
    report.note("connections_held", sockets.len());
    Ok(report)
}
