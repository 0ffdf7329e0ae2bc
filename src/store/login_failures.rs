//! Failed password checks per e-mail, shared by every node, for throttling: 10 per 15 minutes.
//!
//! An attempt is counted as a failure *before* the password is checked and forgiven only when it
//! succeeds, so a burst of parallel guesses cannot all slip past the count.

use sqlx::PgPool;

/// The failures allowed per window.
pub const MAX_FAILURES: i64 = 10;
/// The window, in seconds (15 minutes).
pub const WINDOW_SECS: i64 = 15 * 60;

/// The outcome of asking to check a password for an e-mail.
#[derive(Debug)]
pub enum Attempt {
    /// Go ahead; the attempt already counts as a failure until [`forgive`] is called, unless
    /// the password could not be checked ([`Unchecked`]).
    Allowed(Unchecked),
    /// Throttled: retry after this many seconds.
    Throttled { retry_after_secs: u64 },
}

/// A counted attempt whose password has not been checked yet. Unless marked [`checked`], it is
/// withdrawn from the count when dropped (in the background): a check the server could not make
/// (the database failed, the hashing queue was full, the request ran out of time) must not count
/// towards locking the e-mail out.
///
/// [`checked`]: Unchecked::checked
#[derive(Debug)]
pub struct Unchecked {
    pool: PgPool,
    id: i64,
    checked: bool,
}

impl Unchecked {
    /// The password was checked: the attempt stays counted (until [`forgive`]).
    pub fn checked(mut self) {
        self.checked = true;
    }

    /// The password could not be checked: the attempt no longer counts. Done here rather than
    /// left to the drop, whose background task a stopping server may never run.
    pub async fn withdraw(mut self) {
        self.checked = true;
        if let Err(err) = delete(&self.pool, self.id).await {
            tracing::warn!(error = %err, "could not withdraw an unchecked login attempt");
        }
    }
}

async fn delete(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

impl Drop for Unchecked {
    fn drop(&mut self) {
        if self.checked {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pool, id) = (self.pool.clone(), self.id);
        // Its request was abandoned (past its deadline): withdrawn in the background.
        runtime.spawn(async move {
            if let Err(err) = delete(&pool, id).await {
                tracing::warn!(error = %err, "could not withdraw an unchecked login attempt");
            }
        });
    }
}

/// Counts an attempt for `email` unless it is throttled. Attempts for one e-mail are serialized
/// by an advisory lock, so the count cannot be overrun by parallel requests.
pub async fn begin_attempt(pool: &PgPool, email: &str) -> sqlx::Result<Attempt> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('login:' || lower($1)))")
        .bind(email)
        .execute(&mut *tx)
        .await?;
    // The 10th most recent failure in the window: once it leaves, fewer than 10 remain.
    let seconds_left: Option<i64> = sqlx::query_scalar(
        "SELECT GREATEST(1, ceil(extract(epoch FROM \
                    failed_at + make_interval(secs => $2) - now())))::bigint \
         FROM login_failures \
         WHERE email_key = lower($1) AND failed_at > now() - make_interval(secs => $2) \
         ORDER BY failed_at DESC OFFSET $3 - 1 LIMIT 1",
    )
    .bind(email)
    .bind(WINDOW_SECS as f64)
    .bind(MAX_FAILURES)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(secs) = seconds_left {
        tx.commit().await?;
        return Ok(Attempt::Throttled {
            retry_after_secs: u64::try_from(secs).unwrap_or(1),
        });
    }
    let id = sqlx::query_scalar(
        "INSERT INTO login_failures (email_key) VALUES (lower($1)) RETURNING id",
    )
    .bind(email)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Attempt::Allowed(Unchecked {
        pool: pool.clone(),
        id,
        checked: false,
    }))
}

/// Forgets the failures of `email` after a successful check.
pub async fn forgive(pool: &PgPool, email: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE email_key = lower($1)")
        .bind(email)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes failures older than the window, whatever their e-mail (run periodically).
pub async fn prune(pool: &PgPool) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM login_failures WHERE failed_at <= now() - make_interval(secs => $1)",
    )
    .bind(WINDOW_SECS as f64)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}
