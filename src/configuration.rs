//! Configuration, read from environment variables. Every variable has a documented default (see the
//! README), so a machine with a local PostgreSQL needs no set-up at all.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::RngExt;

/// The database a bare `cargo run` talks to.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tutoring";

/// Where the server runs: production refuses to start without an explicit JWT secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Everything the application needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    /// Address to listen on; port 0 picks a free port (tests).
    pub bind_addr: SocketAddr,
    /// The longest a request may take before it is answered `503`: a database that stops
    /// answering (a network partition, a lock held for long) must not hang clients.
    pub request_timeout: Duration,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub realtime: RealtimeSettings,
    pub scheduling: SchedulingSettings,
    pub payments: PaymentSettings,
}

/// Tutor actors.
#[derive(Debug, Clone, Copy)]
pub struct SchedulingSettings {
    /// How long a tutor's actor may go unused (no request, no reader of its view, no live
    /// subscriber) before it stops and frees its memory; the next request reloads it.
    pub tutor_idle: Duration,
}

/// Which payment provider, and Stripe's keys.
#[derive(Clone)]
pub struct PaymentSettings {
    /// `fake` (the default) or `stripe`.
    pub provider: String,
    pub stripe_secret_key: Option<String>,
    /// Stripe's API address (tests use a local server).
    pub stripe_api_base: Option<String>,
    /// The signing secret of Stripe webhooks; without it the webhook route answers 503.
    pub stripe_webhook_secret: Option<String>,
    /// How often refunds owed (a failed refund, a charge that succeeded after its session was
    /// cancelled) are tried again.
    pub refund_retry: Duration,
}

impl std::fmt::Debug for PaymentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSettings")
            .field("provider", &self.provider)
            .field("stripe_api_base", &self.stripe_api_base)
            .field(
                "stripe_secret_key",
                &self.stripe_secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "stripe_webhook_secret",
                &self.stripe_webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("refund_retry", &self.refund_retry)
            .finish()
    }
}

/// WebSocket heartbeats.
#[derive(Debug, Clone, Copy)]
pub struct RealtimeSettings {
    /// How often the server pings each connection (SPEC: 10 s).
    pub ping_every: Duration,
    /// How long a connection may stay silent before it is closed (SPEC: 30 s).
    pub silence_limit: Duration,
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a connection before it answers `503`.
    pub acquire_timeout: Duration,
    /// Create the database when it does not exist yet, then run the migrations.
    pub create_if_missing: bool,
    /// How long start-up keeps retrying a database that does not answer.
    pub connect_retry: Duration,
}

/// Token and password settings.
#[derive(Clone)]
pub struct AuthSettings {
    pub jwt_secret: Vec<u8>,
    /// True when the secret was made up at start-up (tokens die with the process).
    pub jwt_secret_is_ephemeral: bool,
    pub token_ttl: Duration,
    pub bcrypt_cost: u32,
    /// Threads dedicated to bcrypt, off the request-serving threads.
    pub hasher_threads: usize,
    /// How often each node reloads revoked tokens from the database.
    pub revocation_poll: Duration,
    /// How old this node's view of revoked tokens may get before it refuses to vouch for any
    /// token (`503`): the bound on how late a logout can reach this node.
    pub revocation_max_staleness: Duration,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &"<redacted>")
            .field("jwt_secret_is_ephemeral", &self.jwt_secret_is_ephemeral)
            .field("token_ttl", &self.token_ttl)
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("hasher_threads", &self.hasher_threads)
            .field("revocation_poll", &self.revocation_poll)
            .field("revocation_max_staleness", &self.revocation_max_staleness)
            .finish()
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests can supply their own variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let environment = match get("APP_ENV").as_deref().map(str::to_ascii_lowercase) {
            None => Environment::Development,
            Some(v) if v == "development" || v == "dev" || v == "local" => Environment::Development,
            Some(v) if v == "production" || v == "prod" => Environment::Production,
            Some(other) => bail!("APP_ENV must be `development` or `production`, not `{other}`"),
        };
        let bind_addr = get("BIND_ADDR")
            .unwrap_or_else(|| "0.0.0.0:8080".to_owned())
            .parse()
            .context("BIND_ADDR must be an address such as 0.0.0.0:8080")?;

        let database = DatabaseSettings {
            url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            max_connections: parse_or(&get, "DATABASE_MAX_CONNECTIONS", 20)?,
            acquire_timeout: Duration::from_millis(parse_or(
                &get,
                "DATABASE_ACQUIRE_TIMEOUT_MS",
                2_000,
            )?),
            create_if_missing: true,
            connect_retry: Duration::from_secs(parse_or(&get, "DATABASE_CONNECT_RETRY_SECS", 30)?),
        };
        if database.max_connections == 0 {
            bail!("DATABASE_MAX_CONNECTIONS must be at least 1");
        }

        let (jwt_secret, jwt_secret_is_ephemeral) = match get("JWT_SECRET") {
            Some(secret) if secret.len() < 32 => {
                bail!("JWT_SECRET must be at least 32 bytes long")
            }
            Some(secret) => (secret.into_bytes(), false),
            None if environment == Environment::Production => {
                bail!("JWT_SECRET is required when APP_ENV=production")
            }
            None => (random_secret(), true),
        };
        let bcrypt_cost = parse_or(&get, "BCRYPT_COST", 12)?;
        if !(4..=31).contains(&bcrypt_cost) {
            bail!("BCRYPT_COST must be between 4 and 31");
        }
        let default_threads = std::thread::available_parallelism().map_or(2, usize::from);
        let auth = AuthSettings {
            jwt_secret,
            jwt_secret_is_ephemeral,
            token_ttl: Duration::from_secs(parse_or(&get, "JWT_TTL_SECONDS", 86_400)?),
            bcrypt_cost,
            hasher_threads: parse_or(&get, "HASHER_THREADS", default_threads)?,
            revocation_poll: Duration::from_millis(parse_or(&get, "REVOCATION_POLL_MS", 250)?),
            revocation_max_staleness: Duration::from_millis(parse_or(
                &get,
                "REVOCATION_MAX_STALENESS_MS",
                1_000,
            )?),
        };
        if !(60..=30 * 86_400).contains(&auth.token_ttl.as_secs()) {
            bail!("JWT_TTL_SECONDS must be between 60 and 2592000 (30 days)");
        }
        if !(1..=64).contains(&auth.hasher_threads) {
            bail!("HASHER_THREADS must be between 1 and 64");
        }
        if auth.revocation_poll < Duration::from_millis(10)
            || auth.revocation_poll * 2 > auth.revocation_max_staleness
        {
            bail!(
                "REVOCATION_POLL_MS must be at least 10 and at most half of \
                 REVOCATION_MAX_STALENESS_MS"
            );
        }

        let realtime = RealtimeSettings {
            ping_every: Duration::from_millis(parse_or(&get, "WS_PING_MS", 10_000)?),
            silence_limit: Duration::from_millis(parse_or(&get, "WS_SILENCE_MS", 30_000)?),
        };
        if realtime.ping_every.is_zero() || realtime.silence_limit < realtime.ping_every {
            bail!("WS_PING_MS must be positive and at most WS_SILENCE_MS");
        }

        let scheduling = SchedulingSettings {
            tutor_idle: Duration::from_millis(parse_or(&get, "TUTOR_IDLE_MS", 600_000)?),
        };
        // Below this an actor would mostly check whether it is idle, and reads of its view (noted
        // every 100 ms) could miss the check.
        if scheduling.tutor_idle < Duration::from_millis(200) {
            bail!("TUTOR_IDLE_MS must be at least 200");
        }

        let refund_retry = Duration::from_millis(parse_or(&get, "REFUND_RETRY_MS", 60_000)?);
        if refund_retry < Duration::from_millis(100) {
            bail!("REFUND_RETRY_MS must be at least 100");
        }

        let request_timeout = Duration::from_millis(parse_or(&get, "REQUEST_TIMEOUT_MS", 10_000)?);
        // A quarter of it is PostgreSQL's statement timeout for booking writes, which must be
        // under PostgreSQL's own limit (2^31 - 1 ms): one hour is far below.
        if !(Duration::from_millis(100)..=Duration::from_secs(3_600)).contains(&request_timeout) {
            bail!("REQUEST_TIMEOUT_MS must be between 100 and 3600000");
        }

        let payments = PaymentSettings {
            provider: get("PAYMENT_PROVIDER").unwrap_or_else(|| "fake".to_owned()),
            stripe_secret_key: get("STRIPE_SECRET_KEY"),
            stripe_api_base: get("STRIPE_API_BASE"),
            stripe_webhook_secret: get("STRIPE_WEBHOOK_SECRET"),
            refund_retry,
        };
        // Only Stripe's webhooks settle a charge the student confirms (3-D Secure) or one whose
        // answer was lost: without them such a session would stay unpaid for good.
        if payments.provider == "stripe" && payments.stripe_webhook_secret.is_none() {
            bail!("PAYMENT_PROVIDER=stripe needs STRIPE_WEBHOOK_SECRET");
        }

        Ok(Self {
            environment,
            bind_addr,
            request_timeout,
            database,
            auth,
            realtime,
            scheduling,
            payments,
        })
    }
}

fn parse_or<T>(get: &impl Fn(&str) -> Option<String>, key: &str, default: T) -> anyhow::Result<T>
where
    T: std::str::FromStr,
{
    match get(key) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{key} has an invalid value `{raw}`")),
    }
}

fn random_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 64];
    rand::rng().fill(&mut secret[..]);
    secret
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|key| vars.get(key).cloned())
    }

    #[test]
    fn defaults_serve_on_8080_against_the_local_database() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(s.bind_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(s.database.url, DEFAULT_DATABASE_URL);
        assert_eq!(s.auth.bcrypt_cost, 12);
        assert!(s.auth.jwt_secret_is_ephemeral);
        assert_eq!(s.auth.jwt_secret.len(), 64);
    }

    #[test]
    fn production_without_a_jwt_secret_is_refused() {
        let err = settings(&[("APP_ENV", "production")]).expect_err("must fail");
        assert!(err.to_string().contains("JWT_SECRET"));
    }

    #[test]
    fn a_short_jwt_secret_is_refused() {
        assert!(settings(&[("JWT_SECRET", "short")]).is_err());
    }

    #[test]
    fn values_that_would_break_the_server_are_refused() {
        assert!(settings(&[("REVOCATION_POLL_MS", "0")]).is_err());
        assert!(settings(&[("REVOCATION_POLL_MS", "800")]).is_err());
        assert!(settings(&[("JWT_TTL_SECONDS", "0")]).is_err());
        assert!(settings(&[("HASHER_THREADS", "0")]).is_err());
        assert!(settings(&[("DATABASE_MAX_CONNECTIONS", "0")]).is_err());
        assert!(settings(&[("BIND_ADDR", "nowhere")]).is_err());
        assert!(settings(&[("REQUEST_TIMEOUT_MS", "99")]).is_err());
        assert!(settings(&[("REQUEST_TIMEOUT_MS", "3600001")]).is_err());
        assert!(settings(&[("REQUEST_TIMEOUT_MS", "3600000")]).is_ok());
        assert!(settings(&[("PAYMENT_PROVIDER", "stripe"), ("STRIPE_SECRET_KEY", "sk")]).is_err());
        assert!(
            settings(&[
                ("PAYMENT_PROVIDER", "stripe"),
                ("STRIPE_SECRET_KEY", "sk"),
                ("STRIPE_WEBHOOK_SECRET", "whsec")
            ])
            .is_ok()
        );
    }

    #[test]
    fn an_out_of_range_bcrypt_cost_is_refused() {
        assert!(settings(&[("BCRYPT_COST", "3")]).is_err());
        assert!(settings(&[("BCRYPT_COST", "ten")]).is_err());
        assert_eq!(
            settings(&[("BCRYPT_COST", "4")])
                .expect("valid")
                .auth
                .bcrypt_cost,
            4
        );
    }
}
