use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use uuid::Uuid;

use crate::store;

/// How far back each poll looks before the previous one, so a revocation whose commit became
/// visible after a poll is still seen by the next. Revocations and deactivations are stamped by
/// the database's clock in the last statement of their transaction, so only the commit lies
/// between a stamp and its visibility: a WAL flush, and for a deactivation (which sends
/// `NOTIFY`) a turn at the notification queue's lock. Both take milliseconds, not seconds.
const POLL_OVERLAP: TimeDelta = TimeDelta::seconds(5);

/// How long past its expiry a revoked token is remembered: longer than the clock leeway with
/// which expiry is checked, so a revoked token never comes back to life.
pub const EXPIRY_MARGIN: TimeDelta = TimeDelta::seconds(60);

/// The ids of revoked, unexpired tokens, held in memory by every node so that checking a token
/// costs no database round trip. A logout inserts here at once and into the database; the other
/// nodes learn of it by polling the database every few hundred milliseconds on a connection of
/// their own. A node whose last successful poll is older than the allowed staleness cannot vouch
/// for any token, and says so (`503`) rather than accept a revoked one.
///
/// The same way, every node knows the accounts deactivated while tokens issued to them may
/// still be unexpired: those tokens authenticate, but a route acting as the account (booking)
/// can refuse them from memory.
#[derive(Debug)]
pub struct RevokedTokens {
    by_jti: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    /// Deactivated accounts, by when they were deactivated.
    deactivated: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    last_refresh: Mutex<Option<Instant>>,
    max_staleness: Duration,
    token_ttl: TimeDelta,
}

impl RevokedTokens {
    pub fn new(max_staleness: Duration, token_ttl: Duration) -> Self {
        Self {
            by_jti: RwLock::default(),
            deactivated: RwLock::default(),
            last_refresh: Mutex::new(None),
            max_staleness,
            token_ttl: TimeDelta::from_std(token_ttl).unwrap_or(TimeDelta::MAX),
        }
    }

    /// Whether the account was deactivated (as far as this node has heard).
    pub fn is_deactivated(&self, account: Uuid) -> bool {
        self.deactivated
            .read()
            .map(|set| set.contains_key(&account))
            .unwrap_or(false)
    }

    /// Notes an account deactivated by this node.
    pub fn insert_deactivated(&self, account: Uuid, at: DateTime<Utc>) {
        if let Ok(mut set) = self.deactivated.write() {
            set.insert(account, at);
        }
    }

    /// Whether the set reflects the database as of at most `max_staleness` ago.
    pub fn is_current(&self) -> bool {
        self.last_refresh
            .lock()
            .ok()
            .and_then(|last| *last)
            .is_some_and(|at| at.elapsed() <= self.max_staleness)
    }

    pub fn is_revoked(&self, jti: Uuid) -> bool {
        self.by_jti
            .read()
            .map(|set| set.contains_key(&jti))
            // A poisoned lock means a writer panicked mid-update: refuse rather than trust it.
            .unwrap_or(true)
    }

    pub fn insert(&self, jti: Uuid, expires_at: DateTime<Utc>) {
        if let Ok(mut set) = self.by_jti.write() {
            set.insert(jti, expires_at);
        }
    }

    fn extend(&self, revoked: impl IntoIterator<Item = (Uuid, DateTime<Utc>)>, now: DateTime<Utc>) {
        if let Ok(mut set) = self.by_jti.write() {
            set.extend(revoked);
            set.retain(|_, expires_at| *expires_at + EXPIRY_MARGIN > now);
        }
    }

    fn extend_deactivated(
        &self,
        deactivated: impl IntoIterator<Item = (Uuid, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) {
        if let Ok(mut set) = self.deactivated.write() {
            set.extend(deactivated);
            // Every token issued before the deactivation has expired by then.
            let ttl = self.token_ttl;
            set.retain(|_, at| {
                at.checked_add_signed(ttl + EXPIRY_MARGIN)
                    .is_none_or(|end| end > now)
            });
        }
    }

    /// Loads revocations made since `since` (all remembered ones when `None`); returns the
    /// database's clock, from which the next call should start.
    pub async fn refresh(
        &self,
        conn: &mut PgConnection,
        since: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, sqlx::Error> {
        let started = Instant::now();
        let batch =
            store::auth_sessions::revoked_since(conn, since, EXPIRY_MARGIN, self.token_ttl).await?;
        self.extend(batch.revoked, batch.db_now);
        self.extend_deactivated(batch.deactivated, batch.db_now);
        if let Ok(mut last) = self.last_refresh.lock() {
            *last = Some(started);
        }
        Ok(batch.db_now)
    }

    /// Keeps this node's set in step with the database until the runtime stops.
    pub fn spawn_poller(self: Arc<Self>, options: PgConnectOptions, every: Duration) {
        tokio::spawn(async move {
            let mut conn: Option<PgConnection> = None;
            let mut since: Option<DateTime<Utc>> = None;
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if conn.is_none() {
                    match tokio::time::timeout(Duration::from_secs(2), options.connect()).await {
                        Ok(Ok(fresh)) => conn = Some(fresh),
                        Ok(Err(err)) => {
                            tracing::warn!(error = %err, "revocation poller cannot connect")
                        }
                        Err(_) => tracing::warn!("revocation poller timed out connecting"),
                    }
                }
                let Some(connection) = conn.as_mut() else {
                    continue;
                };
                let polled =
                    tokio::time::timeout(Duration::from_secs(2), self.refresh(connection, since))
                        .await;
                match polled {
                    Ok(Ok(db_now)) => since = Some(db_now - POLL_OVERLAP),
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "could not refresh revoked tokens");
                        conn = None;
                    }
                    Err(_) => {
                        tracing::warn!("refreshing revoked tokens timed out");
                        conn = None;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_past_expiry_by_the_margin_then_pruned() {
        let revoked = RevokedTokens::new(Duration::from_secs(1), Duration::from_secs(3600));
        let now = Utc::now();
        let (old, recent, fresh) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        revoked.insert(old, now - EXPIRY_MARGIN - TimeDelta::seconds(1));
        revoked.insert(recent, now - TimeDelta::seconds(1));
        revoked.extend([(fresh, now + TimeDelta::hours(1))], now);
        assert!(!revoked.is_revoked(old));
        assert!(revoked.is_revoked(recent));
        assert!(revoked.is_revoked(fresh));
    }

    #[test]
    fn deactivations_are_kept_while_tokens_issued_before_them_may_live() {
        let ttl = TimeDelta::hours(1);
        let revoked = RevokedTokens::new(Duration::from_secs(1), Duration::from_secs(3600));
        let now = Utc::now();
        let (old, recent) = (Uuid::now_v7(), Uuid::now_v7());
        revoked.insert_deactivated(old, now - ttl - EXPIRY_MARGIN - TimeDelta::seconds(1));
        revoked.extend_deactivated([(recent, now - ttl)], now);
        assert!(!revoked.is_deactivated(old));
        assert!(revoked.is_deactivated(recent));
        assert!(!revoked.is_deactivated(Uuid::now_v7()));
    }

    #[test]
    fn a_set_never_refreshed_is_not_current() {
        assert!(
            !RevokedTokens::new(Duration::from_secs(1), Duration::from_secs(3600)).is_current()
        );
    }
}
