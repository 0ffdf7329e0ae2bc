//! The API calls scenarios use to seed what they need, and to time requests.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::{DateTime, DurationRound as _, Utc};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::http1::{self, Request};

/// The password of every seeded account.
pub const PASSWORD: &str = "load-test-password";

/// How many times a seeding request answered `503` is sent.
const SEED_ATTEMPTS: u32 = 5;

/// A client of one server: `reqwest` for seeding and checks, and the requests the measured
/// phase sends on its own lean connections (see `http1.rs`).
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base_url: String,
    /// `host:port`, where the measured phase connects.
    pub address: String,
}

/// A seeded account.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub token: String,
}

impl Api {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            address: http1::authority(base_url)?,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request and returns its status, body and latency (up to the body's last byte);
    /// a transport error is status 0.
    pub async fn timed(&self, request: reqwest::RequestBuilder) -> (u16, Body, Duration) {
        let started = Instant::now();
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                (status, Body(body), started.elapsed())
            }
            Err(_) => (0, Body::default(), started.elapsed()),
        }
    }

    /// Sends a seeding request and expects `status`. A `503` (the server asks to retry shortly,
    /// as when a burst of seeding meets a slow disk) is retried a few times before giving up.
    async fn expect(
        &self,
        request: reqwest::RequestBuilder,
        status: u16,
        what: &str,
    ) -> anyhow::Result<Value> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let retry = request
                .try_clone()
                .context("a request that can be sent again")?;
            let response = retry.send().await.with_context(|| what.to_owned())?;
            let got = response.status().as_u16();
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            if got == status {
                return Ok(body);
            }
            if got != 503 || attempt == SEED_ATTEMPTS {
                bail!("{what} answered {got}: {body}");
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }

    /// Registers an account of `role` with a unique e-mail.
    pub async fn register(&self, role: &str, label: &str) -> anyhow::Result<(String, String)> {
        let email = format!("{label}-{}@load.test", uuid::Uuid::now_v7().simple());
        let body = self
            .expect(
                self.http.post(self.url("/auth/register")).json(&json!({
                    "email": email, "password": PASSWORD, "name": label, "role": role,
                    "price_per_hour": {"amount_cents": 10000, "currency": "BRL"},
                })),
                201,
                "registering",
            )
            .await?;
        let id = body["id"].as_str().context("an id")?.to_owned();
        Ok((id, email))
    }

    /// Registers a student with a unique e-mail and returns that e-mail.
    pub async fn register_student(&self, label: &str) -> anyhow::Result<String> {
        let email = format!("{label}-{}@load.test", uuid::Uuid::now_v7().simple());
        self.expect(
            self.http.post(self.url("/auth/register")).json(
                &json!({"email": email, "password": PASSWORD, "name": label, "role": "student"}),
            ),
            201,
            "registering a student",
        )
        .await?;
        Ok(email)
    }

    /// Logs in a seeded account.
    pub async fn login(&self, email: &str) -> anyhow::Result<Account> {
        let login = self
            .expect(
                self.http
                    .post(self.url("/auth/login"))
                    .json(&json!({"email": email, "password": PASSWORD})),
                200,
                "logging in",
            )
            .await?;
        Ok(Account {
            id: login["user_id"].as_str().context("a user id")?.to_owned(),
            token: login["token"].as_str().context("a token")?.to_owned(),
        })
    }

    /// Registers and logs in an account of `role`.
    pub async fn account(&self, role: &'static str, label: String) -> anyhow::Result<Account> {
        let email = if role == "student" {
            self.register_student(&label).await?
        } else {
            self.register(role, &label).await?.1
        };
        self.login(&email).await
    }

    /// A tutor available every day, all day, in UTC, two years ahead, 30-minute slots.
    pub async fn open_tutor(&self, label: String) -> anyhow::Result<Account> {
        let tutor = self.account("tutor", label).await?;
        let weekly: Vec<Value> = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ]
        .iter()
        .map(|day| json!({"weekday": day, "start": "00:00", "end": "24:00"}))
        .collect();
        self.expect(
            self.http
                .put(self.url("/tutors/me/availability"))
                .bearer_auth(&tutor.token)
                .json(&json!({
                    "timezone": "UTC", "weekly": weekly, "slot_minutes": 30,
                    "min_duration_minutes": 30, "max_duration_minutes": 180,
                    "min_notice_minutes": 0, "horizon_days": 730, "buffer_minutes": 0,
                })),
            200,
            "setting availability",
        )
        .await?;
        Ok(tutor)
    }

    /// A `GET` of `path`, with a bearer token when given, for a lean connection.
    pub fn get(&self, path: &str, bearer: Option<&str>) -> Request {
        Request::new("GET", path, &self.address, bearer)
    }

    /// A `POST` of `body` to `path` as `account`, for a lean connection.
    pub fn post(&self, path: &str, account: Option<&Account>, body: &Value) -> Request {
        let bearer = account.map(|a| a.token.as_str());
        Request::json("POST", path, &self.address, bearer, body)
    }

    /// The booking of `[start, start + minutes)` for `student`, for a lean connection.
    pub fn booking(
        &self,
        student: &Account,
        tutor_id: &str,
        start: DateTime<Utc>,
        minutes: u32,
    ) -> Request {
        self.post(
            "/sessions",
            Some(student),
            &booking_body(tutor_id, start, minutes),
        )
    }

    /// Books `[start, start + minutes)` through `reqwest` (seeding, and the `live` booker);
    /// returns status, body and latency.
    pub async fn book(
        &self,
        student: &Account,
        tutor_id: &str,
        start: DateTime<Utc>,
        minutes: u32,
    ) -> (u16, Body, Duration) {
        self.timed(
            self.http
                .post(self.url("/sessions"))
                .bearer_auth(&student.token)
                .json(&booking_body(tutor_id, start, minutes)),
        )
        .await
    }
}

fn booking_body(tutor_id: &str, start: DateTime<Utc>, minutes: u32) -> Value {
    json!({
        "tutor_id": tutor_id,
        "scheduled_at": start.to_rfc3339(),
        "duration_minutes": minutes,
    })
}

/// An answer's body, read in full but parsed only when asked: parsing every answer would cost
/// the load generator, on the same cores, more than the server spends producing it.
#[derive(Debug, Default)]
pub struct Body(Bytes);

impl Body {
    /// The body as JSON; `null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.0).unwrap_or(Value::Null)
    }
}

/// Runs `make(i)` for `0..n`, `concurrency` at a time, keeping order.
pub async fn seed<T, F, Fut>(n: usize, concurrency: usize, make: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    futures_util::stream::iter((0..n).map(make))
        .buffered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The next whole hour, a day from now: far enough for any notice, on every slot grid.
pub fn tomorrow_on_the_hour() -> DateTime<Utc> {
    let at = Utc::now() + chrono::TimeDelta::days(1);
    at.duration_trunc(chrono::TimeDelta::hours(1)).unwrap_or(at)
}
