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

use crate::http1::{Conn, Request, Response};
use crate::stats::Series;

/// One request of a run: the series it counts in, its status and its latency.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub kind: usize,
    pub status: u16,
    pub latency: Duration,
}

impl Outcome {
    /// A response, counted in series `kind`.
    pub fn of(kind: usize, response: &Response) -> Self {
        Self {
            kind,
            status: response.status,
            latency: response.latency,
        }
    }
}

/// Runs `clients` tasks until `duration` has passed, each with its own keep-alive connection to
/// `address`, sending `request(client, n)` back to back (`n` counts that client's requests) and
/// recording every response. Returns the series and the time the run really took.
pub async fn drive<F>(
    address: &str,
    clients: usize,
    duration: Duration,
    request: F,
) -> anyhow::Result<(Series, Duration)>
where
    F: Fn(usize, u64) -> Request + Clone + Send + 'static,
{
    let (mut series, elapsed) =
        drive_series(address, clients, duration, 1, move |mut conn, c, n| {
            let request = request(c, n);
            async move {
                let response = conn.send(&request).await;
                (conn, Outcome::of(0, &response))
            }
        })
        .await?;
    Ok((series.pop().unwrap_or_default(), elapsed))
}

/// Like [`drive`], for steps of several kinds, each made of one request or more: `request(conn,
/// client, n)` gives the connection back with the step's outcome, and each kind gets its own
/// series.
pub async fn drive_series<F, Fut>(
    address: &str,
    clients: usize,
    duration: Duration,
    kinds: usize,
    request: F,
) -> anyhow::Result<(Vec<Series>, Duration)>
where
    F: Fn(Conn, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Conn, Outcome)> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let request = request.clone();
            let mut conn = Conn::new(address);
            tokio::spawn(async move {
                let mut series = vec![Series::default(); kinds];
                let mut n = 0;
                while Instant::now() < deadline {
                    let (returned, outcome) = request(conn, client, n).await;
                    conn = returned;
                    if let Some(s) = series.get_mut(outcome.kind) {
                        s.record(outcome.status, outcome.latency);
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
