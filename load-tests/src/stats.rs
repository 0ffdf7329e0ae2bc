//! Latency and outcome records, and their summary as a table and as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// What one kind of request did during a run.
#[derive(Debug, Default, Clone)]
pub struct Series {
    latencies_us: Vec<u64>,
    /// Responses by status code; `0` counts transport errors.
    statuses: BTreeMap<u16, u64>,
}

impl Series {
    pub fn record(&mut self, status: u16, latency: Duration) {
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        *self.statuses.entry(status).or_default() += 1;
    }

    /// How many responses had this status.
    pub fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    pub fn merge(&mut self, other: Self) {
        self.latencies_us.extend(other.latencies_us);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
    }

    pub fn summarize(mut self, name: &str, elapsed: Duration, success: &[u16]) -> Summary {
        self.latencies_us.sort_unstable();
        let requests = self.latencies_us.len() as u64;
        let successes = self
            .statuses
            .iter()
            .filter(|(status, _)| success.contains(status))
            .map(|(_, count)| count)
            .sum();
        let secs = elapsed.as_secs_f64().max(f64::EPSILON);
        Summary {
            name: name.to_owned(),
            requests,
            successes,
            statuses: self
                .statuses
                .iter()
                .map(|(status, count)| (status.to_string(), *count))
                .collect(),
            throughput_per_s: requests as f64 / secs,
            successes_per_s: successes as f64 / secs,
            p50_ms: percentile(&self.latencies_us, 0.50),
            p95_ms: percentile(&self.latencies_us, 0.95),
            p99_ms: percentile(&self.latencies_us, 0.99),
            max_ms: self
                .latencies_us
                .last()
                .map_or(0.0, |us| *us as f64 / 1000.0),
        }
    }
}

fn percentile(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((sorted_us.len() as f64) * q).ceil() as usize;
    let index = rank.clamp(1, sorted_us.len()) - 1;
    sorted_us[index] as f64 / 1000.0
}

/// One series, summarized.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub name: String,
    pub requests: u64,
    pub successes: u64,
    /// Responses by status (`"0"` is a transport error).
    pub statuses: BTreeMap<String, u64>,
    pub throughput_per_s: f64,
    pub successes_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// A whole run: its settings, its series, and any notes the scenario adds (checks, counts).
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub base_url: String,
    pub clients: usize,
    pub duration_s: f64,
    pub series: Vec<Summary>,
    pub notes: BTreeMap<String, serde_json::Value>,
}

impl Report {
    pub fn new(scenario: &str, options: &crate::Options, elapsed: Duration) -> Self {
        Self {
            scenario: scenario.to_owned(),
            base_url: options.base_url.clone(),
            clients: options.clients,
            duration_s: elapsed.as_secs_f64(),
            series: Vec::new(),
            notes: BTreeMap::new(),
        }
    }

    pub fn note(&mut self, key: &str, value: impl Serialize) {
        self.notes.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or_default(),
        );
    }

    pub fn print_table(&self) {
        println!(
            "scenario {} against {} — {} clients, {:.1} s",
            self.scenario, self.base_url, self.clients, self.duration_s
        );
        println!(
            "{:<14} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}  statuses",
            "series", "requests", "ok", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for s in &self.series {
            let statuses: Vec<String> = s
                .statuses
                .iter()
                .map(|(status, count)| format!("{status}:{count}"))
                .collect();
            println!(
                "{:<14} {:>9} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
                s.name,
                s.requests,
                s.successes,
                s.throughput_per_s,
                s.p50_ms,
                s.p95_ms,
                s.p99_ms,
                s.max_ms,
                statuses.join(" ")
            );
        }
        for (key, value) in &self.notes {
            println!("{key}: {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut series = Series::default();
        for ms in 1..=100 {
            series.record(200, Duration::from_millis(ms));
        }
        series.record(500, Duration::from_millis(1000));
        let summary = series.summarize("x", Duration::from_secs(1), &[200]);
        assert_eq!(summary.requests, 101);
        assert_eq!(summary.successes, 100);
        assert_eq!(summary.p50_ms, 51.0);
        assert_eq!(summary.p99_ms, 100.0);
        assert_eq!(summary.max_ms, 1000.0);
    }
}
