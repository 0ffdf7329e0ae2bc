//! Failed logins per e-mail, shared by every node, for throttling.

use sqlx::PgExecutor;

/// The failures counted: at most this many per window.
pub const MAX_FAILURES: i64 = 10;
/// The window, in seconds (15 minutes).
pub const WINDOW_SECS: i64 = 15 * 60;

/// When the e-mail is throttled, the number of seconds until a login may be tried again.
pub async fn retry_after(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<u64>> {
    // The 10th most recent failure in the window: once it leaves the window, fewer than 10 remain.
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
    .fetch_optional(db)
    .await?;
    Ok(seconds_left.map(|secs| u64::try_from(secs).unwrap_or(1)))
}

/// Records one failed login for `email`, and forgets failures older than the window.
pub async fn record(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<()> {
    sqlx::query(
        "WITH pruned AS ( \
             DELETE FROM login_failures \
             WHERE email_key = lower($1) AND failed_at <= now() - make_interval(secs => $2)) \
         INSERT INTO login_failures (email_key) VALUES (lower($1))",
    )
    .bind(email)
    .bind(WINDOW_SECS as f64)
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets the failures of `email` after a successful login.
pub async fn clear(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE email_key = lower($1)")
        .bind(email)
        .execute(db)
        .await?;
    Ok(())
}
