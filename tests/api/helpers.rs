//! Spawns the application for one test: a fresh database cloned from a migrated template, the
//! real server on port 0, and a typed client. The database is dropped when the test ends.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::str::FromStr;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;
use uuid::Uuid;

use tutoring::configuration::{DatabaseSettings, Settings};
use tutoring::startup::Application;
use tutoring::store::MIGRATOR;

/// The PostgreSQL server tests create their databases on (`TEST_DATABASE_URL` overrides it).
fn server_options() -> PgConnectOptions {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    PgConnectOptions::from_str(&url).expect("TEST_DATABASE_URL is a PostgreSQL URL")
}

pub async fn admin_connection() -> PgConnection {
    server_options()
        .database("postgres")
        .connect()
        .await
        .expect("PostgreSQL is running on 127.0.0.1:5432 (see README)")
}

/// A migrated database that each test clones, named after the migrations it holds so a schema
/// change gets a new one.
async fn template_database() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let mut hasher = DefaultHasher::new();
            for migration in MIGRATOR.iter() {
                migration.version.hash(&mut hasher);
                migration.checksum.hash(&mut hasher);
            }
            let name = format!("tutoring_template_{:016x}", hasher.finish());
            let mut admin = admin_connection().await;
            // Test binaries running at once must not build the same template together.
            sqlx::query("SELECT pg_advisory_lock(727274)")
                .execute(&mut admin)
                .await
                .expect("advisory lock");
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut admin)
                    .await
                    .expect("look up template");
            if !exists {
                let building = format!("{name}_building");
                execute(&mut admin, format!("DROP DATABASE IF EXISTS {building}")).await;
                execute(&mut admin, format!("CREATE DATABASE {building}")).await;
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(server_options().database(&building))
                    .await
                    .expect("connect to template");
                MIGRATOR.run(&pool).await.expect("migrate template");
                pool.close().await;
                execute(
                    &mut admin,
                    format!("ALTER DATABASE {building} RENAME TO {name}"),
                )
                .await;
            }
            sqlx::query("SELECT pg_advisory_unlock(727274)")
                .execute(&mut admin)
                .await
                .expect("advisory unlock");
            admin.close().await.ok();
            name
        })
        .await
}

pub async fn execute(conn: &mut PgConnection, statement: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(conn)
        .await
        .expect("admin statement");
}

/// Creates a fresh database for one test and returns its name.
pub async fn create_test_database() -> String {
    // Every test starts here: HTTP clients need the TLS provider installed first.
    tutoring::startup::install_tls_provider();
    let template = template_database().await;
    let name = format!("test_{}", Uuid::now_v7().simple());
    let mut admin = admin_connection().await;
    execute(
        &mut admin,
        format!("CREATE DATABASE {name} TEMPLATE {template}"),
    )
    .await;
    admin.close().await.ok();
    name
}

/// Drops its test database when dropped (for tests that run the server as a separate process).
pub struct DatabaseGuard(pub String);

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        drop_database_blocking(self.0.clone());
    }
}

fn drop_database_blocking(name: String) {
    // Drop runs inside the test's runtime, which cannot be blocked on; use a runtime of our own.
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut admin = admin_connection().await;
            execute(
                &mut admin,
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        });
    })
    .join();
    if dropped.is_err() {
        eprintln!("could not drop a test database");
    }
}

/// The JWT secret every test server uses.
pub const TEST_JWT_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// Settings for a test server on `database`: port 0, cheap bcrypt, a fixed JWT secret shared
/// by every node of the test.
pub fn test_settings(database: &str) -> Settings {
    let mut settings = Settings::from_lookup(|key| match key {
        "BIND_ADDR" => Some("127.0.0.1:0".to_owned()),
        "BCRYPT_COST" => Some("4".to_owned()),
        "JWT_SECRET" => Some(TEST_JWT_SECRET.to_owned()),
        // Many servers share two cores during the suite: allow a late poll now and then.
        "REVOCATION_MAX_STALENESS_MS" => Some("5000".to_owned()),
        _ => None,
    })
    .expect("test settings are valid");
    let url = server_options()
        .database(database)
        .to_url_lossy()
        .to_string();
    settings.database = DatabaseSettings {
        url,
        max_connections: 5,
        acquire_timeout: Duration::from_secs(5),
        create_if_missing: false,
        connect_retry: Duration::ZERO,
    };
    settings
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// A pool on the test's database, for setting up and checking state directly.
    pub db: PgPool,
    pub db_name: String,
    /// The server's live-update hub.
    pub hub: tutoring::realtime::Hub,
    /// The server's tutor actors.
    pub registry: tutoring::scheduling::Registry,
    handle: ServerHandle,
    /// Only the first node of a database drops it.
    owns_database: bool,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Ask the server to stop; the test's runtime ends right after anyway.
        drop(self.handle.stop(false));
        if self.owns_database {
            drop_database_blocking(self.db_name.clone());
        }
    }
}

/// A server on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server on a fresh database, with adjusted settings.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let database = create_test_database().await;
    spawn_node(&database, true, customize).await
}

/// A server whose database cannot be reached (nothing listens on port 1).
pub async fn spawn_app_without_database() -> TestApp {
    tutoring::startup::install_tls_provider();
    tutoring::telemetry::init_for_tests();
    let mut settings = test_settings("nowhere");
    settings.database.url = "postgres://postgres@127.0.0.1:1/nowhere".to_owned();
    settings.database.acquire_timeout = Duration::from_millis(300);
    let pool = PgPoolOptions::new()
        .acquire_timeout(settings.database.acquire_timeout)
        .connect_lazy(&settings.database.url)
        .expect("a lazy pool");
    let application = Application::build_with_pool(settings, pool.clone())
        .await
        .expect("the application builds without its database");
    running(application, pool, "nowhere", false)
}

/// Another server process's twin: a second node on the same database as `app`.
pub async fn spawn_second_node(app: &TestApp) -> TestApp {
    spawn_node(&app.db_name, false, |_| {}).await
}

/// Another server on the same database, with some settings changed.
pub async fn spawn_second_node_with(
    app: &TestApp,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_node(&app.db_name, false, customize).await
}

async fn spawn_node(
    database: &str,
    owns_database: bool,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    tutoring::telemetry::init_for_tests();
    let mut settings = test_settings(database);
    customize(&mut settings);
    let application = Application::build(settings.clone())
        .await
        .expect("the application builds");
    let db = PgPoolOptions::new()
        .max_connections(2)
        .connect(&settings.database.url)
        .await
        .expect("test pool");
    running(application, db, database, owns_database)
}

fn running(application: Application, db: PgPool, database: &str, owns_database: bool) -> TestApp {
    let address = format!("http://{}", application.address());
    let handle = application.handle();
    let hub = application.hub();
    let registry = application.registry();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address,
        // A server that hangs fails the test instead of stalling the suite.
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client"),
        db,
        db_name: database.to_owned(),
        hub,
        registry,
        handle,
        owns_database,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    /// Asserts an RFC 9457 problem with this status and code, and returns the body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "problem content type; body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "problem code; body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["type"].is_string());
        assert!(self.body["detail"].is_string());
        &self.body
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        &self.body
    }

    /// The fields named in a `422` body.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An account created through the API, logged in.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub token: String,
    /// The tag, for tutors.
    pub tag: Option<String>,
}

/// A unique e-mail address for this test run.
pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", Uuid::now_v7().simple())
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> TestResponse {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        read(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Logs in and returns the token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let response = self
            .post(
                "/auth/login",
                None,
                &json!({"email": email, "password": password}),
            )
            .await;
        response.assert_status(200)["token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// Registers a tutor through `/auth/register` and logs in.
    pub async fn tutor(&self) -> TestUser {
        let email = unique_email("tutor");
        let response = self
            .post(
                "/auth/register",
                None,
                &json!({
                    "email": email, "password": PASSWORD, "name": "Tia Tutor", "role": "tutor",
                    "price_per_hour": {"amount_cents": 12000, "currency": "BRL"},
                    "timezone": "America/Sao_Paulo",
                }),
            )
            .await;
        let body = response.assert_status(201);
        let id = body["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("an id");
        let tag = body["tutor"]["tag"].as_str().map(str::to_owned);
        let token = self.login(&email, PASSWORD).await;
        TestUser {
            id,
            email,
            token,
            tag,
        }
    }

    /// Registers a student through `/auth/register` and logs in.
    pub async fn student(&self) -> TestUser {
        let email = unique_email("student");
        let response = self
            .post(
                "/auth/register",
                None,
                &json!({"email": email, "password": PASSWORD, "name": "Sam Student", "role": "student"}),
            )
            .await;
        let id = response.assert_status(201)["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("an id");
        let token = self.login(&email, PASSWORD).await;
        TestUser {
            id,
            email,
            token,
            tag: None,
        }
    }
}

/// `n` students inserted straight into the database, with tokens signed by the test secret: a
/// fast way to get many bookers for the concurrency tests (logins are tested elsewhere).
pub async fn students_direct(app: &TestApp, n: usize) -> Vec<TestUser> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, name, role) \
         SELECT id, 'direct-' || id || '@example.com', 'not a hash', 'Direct Student', 'student' \
         FROM unnest($1::uuid[]) AS id",
    )
    .bind(&ids)
    .execute(&app.db)
    .await
    .expect("students inserted");
    let keys =
        tutoring::auth::TokenKeys::new(TEST_JWT_SECRET.as_bytes(), Duration::from_secs(3600));
    ids.into_iter()
        .map(|id| TestUser {
            id,
            email: format!("direct-{id}@example.com"),
            token: keys
                .issue(id, tutoring::domain::Role::Student)
                .expect("a token")
                .token,
            tag: None,
        })
        .collect()
}

/// Asserts that no two active sessions of one tutor, nor of one student, overlap.
pub async fn assert_no_overlaps(app: &TestApp) {
    let overlaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sessions a JOIN sessions b \
           ON a.id < b.id AND a.period && b.period \
          AND (a.tutor_id = b.tutor_id OR a.student_id = b.student_id) \
         WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'",
    )
    .fetch_one(&app.db)
    .await
    .expect("overlap count");
    assert_eq!(overlaps, 0, "active sessions overlap");
}

/// Polls `check` until it holds; fails the test, saying `what` never happened, after 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut poll = actix_web::rt::time::interval(std::time::Duration::from_millis(20));
    loop {
        poll.tick().await;
        if check().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened"
        );
    }
}

/// Waits until a query of the app's database waits on a lock (one the test holds, say).
pub async fn until_a_query_waits_on_a_lock(app: &TestApp) {
    eventually("a query waiting on the lock", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND wait_event_type = 'Lock'",
        )
        .bind(&app.db_name)
        .fetch_one(&app.db)
        .await
        .expect("activity");
        waiting > 0
    })
    .await;
}

/// The days of the week as availability rules name them.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The `id` of a created thing.
pub fn id_of(body: &Value) -> Uuid {
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an id")
}

/// Every day, all day, in UTC: 30-minute slots, 30 to 180 minutes, an hour's notice.
pub fn all_day_rules() -> Value {
    let weekly: Vec<Value> = WEEKDAYS
        .iter()
        .map(|day| json!({"weekday": day, "start": "00:00", "end": "24:00"}))
        .collect();
    json!({
        "timezone": "UTC", "weekly": weekly, "exceptions": [],
        "slot_minutes": 30, "min_duration_minutes": 30, "max_duration_minutes": 180,
        "min_notice_minutes": 60, "horizon_days": 90, "buffer_minutes": 0,
    })
}

/// `hour:minute` UTC, `days` days from today.
pub fn days_ahead_at(days: i64, hour: u32, minute: u32) -> chrono::DateTime<chrono::Utc> {
    let date = (chrono::Utc::now() + chrono::TimeDelta::days(days)).date_naive();
    date.and_hms_opt(hour, minute, 0)
        .expect("a valid time")
        .and_utc()
}

impl TestApp {
    /// A tutor whose availability is `rules`.
    pub async fn tutor_with_rules(&self, rules: &Value) -> TestUser {
        let tutor = self.tutor().await;
        self.put("/tutors/me/availability", Some(&tutor.token), rules)
            .await
            .assert_status(200);
        tutor
    }

    /// Sends `body` to the Stripe webhook with a `Stripe-Signature` header.
    pub async fn stripe_webhook(&self, body: &str, signature: &str) -> TestResponse {
        read(
            self.client
                .post(self.url("/payment/webhook/stripe"))
                .header("content-type", "application/json")
                .header("stripe-signature", signature)
                .body(body.to_owned())
                .send()
                .await
                .expect("sent"),
        )
        .await
    }

    /// Books a session as `student`.
    /// `POST /sessions` with an `Idempotency-Key`.
    pub async fn book_with_key(&self, student: &TestUser, key: &str, body: &Value) -> TestResponse {
        read(
            self.client
                .post(self.url("/sessions"))
                .bearer_auth(&student.token)
                .header("Idempotency-Key", key)
                .json(body)
                .send()
                .await
                .expect("sent"),
        )
        .await
    }

    pub async fn book(
        &self,
        student: &TestUser,
        tutor_id: Uuid,
        start: chrono::DateTime<chrono::Utc>,
        minutes: u32,
    ) -> TestResponse {
        self.post(
            "/sessions",
            Some(&student.token),
            &json!({"tutor_id": tutor_id, "scheduled_at": start.to_rfc3339(), "duration_minutes": minutes}),
        )
        .await
    }
}

pub async fn read(response: reqwest::Response) -> TestResponse {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    TestResponse {
        status,
        headers,
        body,
    }
}
