//! One module per scenario, and the loop they share.

pub mod contended;
pub mod idle;
pub mod live;
pub mod logins;
pub mod mixed;
pub mod open;
pub mod slots;
pub mod storm;
pub mod tutors;

use std::future::Future;
use std::time::{Duration, Instant};

use crate::stats::Series;

/// Runs `clients` tasks until `duration` has passed; each calls `request(client, n)` back to back
/// (`n` counts that client's requests) and records what it returns. Returns the merged series
/// and the time the run really took.
pub async fn drive<F, Fut>(
    clients: usize,
    duration: Duration,
    request: F,
) -> anyhow::Result<(Series, Duration)>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (u16, Duration)> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut series = Series::default();
                let mut n = 0;
                while Instant::now() < deadline {
                    let (status, latency) = request(client, n).await;
                    series.record(status, latency);
                    n += 1;
                }
                series
            })
        })
        .collect();
    let mut merged = Series::default();
    for task in tasks {
        merged.merge(task.await?);
    }
    Ok((merged, started.elapsed()))
}

/// Like [`drive`], for requests of several kinds: `request` returns the kind's index with the
/// status and latency, and each kind gets its own series.
pub async fn drive_series<F, Fut>(
    clients: usize,
    duration: Duration,
    kinds: usize,
    request: F,
) -> anyhow::Result<(Vec<Series>, Duration)>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (usize, u16, Duration)> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut series = vec![Series::default(); kinds];
                let mut n = 0;
                while Instant::now() < deadline {
                    let (kind, status, latency) = request(client, n).await;
                    if let Some(s) = series.get_mut(kind) {
                        s.record(status, latency);
                    }
                    n += 1;
                }
                series
            })
        })
        .collect();
    let mut merged = vec![Series::default(); kinds];
    for task in tasks {
        for (total, part) in merged.iter_mut().zip(task.await?) {
            total.merge(part);
        }
    }
    Ok((merged, started.elapsed()))
}
