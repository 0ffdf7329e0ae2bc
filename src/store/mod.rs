//! SQL, one module per aggregate. Store functions speak `sqlx` and plain rows; the HTTP edge turns
//! their errors (constraint names included) into client errors in `crate::error`.

pub mod accounts;
pub mod auth_sessions;
pub mod availability;
pub mod idempotency;
pub mod links;
pub mod login_failures;
pub mod payments;
pub mod refunds;
pub mod reviews;
pub mod sessions;
pub mod tutors;

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::configuration::DatabaseSettings;

/// How many times a transaction PostgreSQL rolled back for a transient reason is tried in all.
pub const TRANSIENT_ATTEMPTS: usize = 3;

/// Whether PostgreSQL rolled a transaction back for a reason a retry may clear: a deadlock
/// (`40P01`) or a serialization failure (`40001`). Nothing of the transaction was written.
pub fn is_transient(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

/// Runs `attempt` again while it fails transiently, a few times at most. Two transactions that
/// write overlapping rows of one student through two tutors' actors can deadlock inside
/// PostgreSQL; the loser wrote nothing, so trying it again is safe.
pub async fn retry_transient<T, F, Fut>(mut attempt: F) -> sqlx::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = sqlx::Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(err) if is_transient(&err) && tries < TRANSIENT_ATTEMPTS => tries += 1,
            other => return other,
        }
    }
}

/// The embedded migrations (`migrations/`), applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens the pool, creating the database first when it is missing and allowed to, and brings the
/// schema up to date.
pub async fn connect_and_migrate(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    // A statement stuck on a dead connection must not hold a writer (and its reservations) for
    // ever.
    let options = PgConnectOptions::from_str(&settings.url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .options([("statement_timeout", "15s")]);
    // A database that is still starting (docker compose, a restart) gets some time to answer.
    let deadline = Instant::now() + settings.connect_retry;
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = if settings.create_if_missing {
            create_database_if_missing(&options).await
        } else {
            options
                .connect()
                .await
                .map(drop)
                .map_err(anyhow::Error::from)
        };
        match attempt {
            Ok(()) => break,
            Err(err) if Instant::now() + delay < deadline => {
                tracing::warn!(error = format!("{err:#}"), "database not ready; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(err) => return Err(err),
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .context("connecting to the database")?;
    MIGRATOR
        .run(&pool)
        .await
        .context("running database migrations")?;
    Ok(pool)
}

/// A pool of `connections` to the same database as `pool` whose statements PostgreSQL cuts at
/// `statement_timeout`, connecting when first used.
pub fn pool_with_statement_timeout(
    pool: &PgPool,
    connections: u32,
    statement_timeout: Duration,
) -> PgPool {
    let millis = statement_timeout.as_millis().max(1).to_string();
    let options = (*pool.connect_options())
        .clone()
        .options([("statement_timeout", millis.as_str())]);
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_lazy_with(options)
}

/// Deletes what has expired (throttling records, old token records, idempotency keys) every
/// minute, until the runtime stops.
pub fn spawn_janitor(pool: PgPool) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let pruned = async {
                login_failures::prune(&pool).await?;
                auth_sessions::prune(&pool).await?;
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'",
                )
                .execute(&pool)
                .await?;
                Ok::<_, sqlx::Error>(())
            };
            if let Err(err) = pruned.await {
                tracing::warn!(error = %err, "could not prune expired records");
            }
        }
    });
}

async fn create_database_if_missing(options: &PgConnectOptions) -> anyhow::Result<()> {
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(()); // no database named: the server's default for the user
    };
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .context("connecting to PostgreSQL's `postgres` database to check ours exists")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created the database"),
            // Another process created it between our check and our CREATE.
            Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42P04") => {}
            Err(err) => return Err(err).context("creating the database"),
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// Stores a domain enum as its lowercase name in a `text` column (each column has a CHECK for
/// the allowed names).
macro_rules! text_enum {
    ($($ty:ty),+) => {$(
        impl sqlx::Type<sqlx::Postgres> for $ty {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $ty {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let raw = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                Ok(raw.parse()?)
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }
    )+};
}

text_enum!(
    crate::domain::Role,
    crate::domain::SessionStatus,
    crate::domain::PaymentStatus
);
