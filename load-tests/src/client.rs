//! The few API calls scenarios use to seed what they need.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The password of every seeded account.
pub const PASSWORD: &str = "load-test-password";

/// A client of one server.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base_url: String,
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
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request and returns its status, body and latency; a transport error is status 0.
    pub async fn timed(&self, request: reqwest::RequestBuilder) -> (u16, Value, Duration) {
        let started = Instant::now();
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.json::<Value>().await.unwrap_or(Value::Null);
                (status, body, started.elapsed())
            }
            Err(_) => (0, Value::Null, started.elapsed()),
        }
    }

    /// Registers a student with a unique e-mail and returns that e-mail.
    pub async fn register_student(&self, label: &str) -> anyhow::Result<String> {
        let email = format!("{label}-{}@load.test", uuid::Uuid::now_v7().simple());
        let response = self
            .http
            .post(self.url("/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD, "name": label, "role": "student"}))
            .send()
            .await
            .context("registering a student")?;
        if response.status() != 201 {
            bail!("registering a student answered {}", response.status());
        }
        Ok(email)
    }
}
