use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::store;

/// How far back each poll looks before the previous one, so a revocation whose transaction
/// committed late is still seen.
const POLL_OVERLAP: TimeDelta = TimeDelta::seconds(5);

/// The ids of revoked, unexpired tokens, held in memory by every node so that checking a token
/// costs no database round trip. A logout inserts here at once and into the database; the other
/// nodes learn of it by polling the database every few hundred milliseconds.
#[derive(Debug, Default)]
pub struct RevokedTokens {
    by_jti: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    /// False until the set has been loaded once: until then no token can be trusted.
    loaded: AtomicBool,
}

impl RevokedTokens {
    /// Whether the set has been loaded from the database at least once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
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
            // An expired token is refused for its expiry anyway.
            set.retain(|_, expires_at| *expires_at > now);
        }
    }

    /// Loads revocations made since `since` (all unexpired ones when `None`); returns the
    /// database's clock, from which the next call should start.
    pub async fn refresh(
        &self,
        pool: &PgPool,
        since: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, sqlx::Error> {
        let batch = store::auth_sessions::revoked_since(pool, since).await?;
        self.extend(batch.revoked, batch.db_now);
        self.loaded.store(true, Ordering::Release);
        Ok(batch.db_now)
    }

    /// Keeps this node's set in step with the database until the runtime stops, starting from
    /// `since` (the database clock of a load already done, or `None` to load everything).
    pub fn spawn_poller(
        self: Arc<Self>,
        pool: PgPool,
        every: Duration,
        since: Option<DateTime<Utc>>,
    ) {
        tokio::spawn(async move {
            let mut since = since.map(|at| at - POLL_OVERLAP);
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match self.refresh(&pool, since).await {
                    Ok(db_now) => since = Some(db_now - POLL_OVERLAP),
                    Err(err) => {
                        tracing::warn!(error = %err, "could not refresh revoked tokens");
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
    fn expired_entries_are_pruned_on_refresh() {
        let revoked = RevokedTokens::default();
        let now = Utc::now();
        let (old, fresh) = (Uuid::now_v7(), Uuid::now_v7());
        revoked.insert(old, now - TimeDelta::seconds(1));
        revoked.extend([(fresh, now + TimeDelta::hours(1))], now);
        assert!(!revoked.is_revoked(old));
        assert!(revoked.is_revoked(fresh));
    }
}
