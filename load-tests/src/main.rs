//! Load scenarios for the tutoring scheduling server.
//!
//! ```sh
//! cargo run --release -p load-tests -- <scenario> --base-url http://127.0.0.1:8080 \
//!     --duration 20s --clients 64
//! ```
//!
//! Each scenario seeds what it needs through the public API, runs for the given time, prints a
//! table and writes the same figures as JSON (`--out`, default `load-tests/results/`). Traffic
//! goes only to `--base-url`.

// A command-line tool: printing its table is its job.
#![allow(clippy::print_stdout)]

mod client;
mod http1;
mod procstat;
mod scenarios;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

/// Settings shared by every scenario.
#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: String,
    pub base_url: String,
    pub duration: Duration,
    pub clients: usize,
    /// How many tutors to seed, where the scenario seeds many.
    pub tutors: Option<usize>,
    /// The page size to ask for, where the scenario reads a list (`slots`); `None`: the API's
    /// default.
    pub limit: Option<u32>,
    /// The server's process, for the CPU split; by default the one process named `tutoring`.
    pub server_pid: Option<u32>,
    pub out: Option<PathBuf>,
}

const USAGE: &str = "usage: load-tests <storm|open|contended|slots|live|mixed|idle|tutors|logins> \
     [--base-url URL] [--duration 20s] [--clients N] [--tutors N] [--limit N] [--server-pid PID] \
     [--out FILE]";

fn parse_duration(raw: &str) -> anyhow::Result<Duration> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = number
        .parse()
        .with_context(|| format!("bad duration `{raw}`"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        _ => bail!("bad duration unit in `{raw}` (use ms, s or m)"),
    })
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let scenario = args.next().context(USAGE)?;
    let mut options = Options {
        scenario,
        base_url: "http://127.0.0.1:8080".to_owned(),
        duration: Duration::from_secs(20),
        clients: 64,
        tutors: None,
        limit: None,
        server_pid: None,
        out: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--base-url" => options.base_url = value,
            "--duration" => options.duration = parse_duration(&value)?,
            "--clients" => options.clients = value.parse().context("--clients takes a number")?,
            "--tutors" => options.tutors = Some(value.parse().context("--tutors takes a number")?),
            "--limit" => options.limit = Some(value.parse().context("--limit takes a number")?),
            "--server-pid" => {
                options.server_pid = Some(value.parse().context("--server-pid takes a number")?);
            }
            "--out" => options.out = Some(PathBuf::from(value)),
            _ => bail!("unknown flag {flag}; {USAGE}"),
        }
    }
    if options.clients == 0 {
        bail!("--clients must be at least 1");
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Built together with the server, reqwest has TLS without a default crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "--help" || arg == "-h")
    {
        println!("{USAGE}");
        return Ok(());
    }
    let options = parse_args(std::env::args().skip(1))?;
    let report = match options.scenario.as_str() {
        "open" => scenarios::open::run(&options).await?,
        "contended" => scenarios::contended::run(&options).await?,
        "storm" => scenarios::storm::run(&options).await?,
        "slots" => scenarios::slots::run(&options).await?,
        "live" => scenarios::live::run(&options).await?,
        "idle" => scenarios::idle::run(&options).await?,
        "mixed" => scenarios::mixed::run(&options).await?,
        "tutors" => scenarios::tutors::run(&options).await?,
        "logins" => scenarios::logins::run(&options).await?,
        other => bail!("unknown scenario `{other}`; {USAGE}"),
    };
    report.print_table();
    let out = options.out.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("results")
            .join(format!("{}.json", options.scenario))
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("20s").ok(), Some(Duration::from_secs(20)));
        assert_eq!(
            parse_duration("1500ms").ok(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn flags_override_defaults() {
        let args = ["logins", "--clients", "16", "--duration", "5s"].map(String::from);
        let options = parse_args(args.into_iter()).expect("valid");
        assert_eq!(options.clients, 16);
        assert_eq!(options.duration, Duration::from_secs(5));
        assert_eq!(options.base_url, "http://127.0.0.1:8080");
    }
}
