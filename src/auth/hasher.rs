use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

use crate::domain::Password;

/// How many hashing jobs may wait for a thread; later callers are refused ([`HasherBusy`]).
const QUEUE_CAPACITY: usize = 256;

type Job = Box<dyn FnOnce() + Send>;

/// bcrypt on a few dedicated threads, so hashing (about a quarter of a second at cost 12) never
/// runs on, nor starves, the threads that serve requests. Cloning shares the same threads; they
/// end when the last clone is dropped.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: SyncSender<Job>,
    /// One permit per queue place, held by the job itself until it has run (or been skipped),
    /// so the channel can never be full.
    places: Arc<Semaphore>,
    cost: u32,
    /// A hash of a random password, checked when a login names an unknown e-mail so that the
    /// answer takes as long as for a known one.
    decoy: OnceCell<String>,
}

impl PasswordHasher {
    /// Starts `threads` hashing threads for bcrypt `cost`.
    pub fn start(threads: usize, cost: u32) -> anyhow::Result<Self> {
        let (jobs, receiver) = sync_channel::<Job>(QUEUE_CAPACITY);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("bcrypt-{n}"))
                .spawn(move || work(&receiver))
                .context("starting a hashing thread")?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                places: Arc::new(Semaphore::new(QUEUE_CAPACITY)),
                cost,
                decoy: OnceCell::new(),
            }),
        })
    }

    /// Hashes a new password with the configured cost.
    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.expose().to_owned();
        let cost = self.inner.cost;
        self.run(move || bcrypt::hash(password, cost))
            .await?
            .context("hashing a password")
    }

    /// Checks `password` against a stored hash. A malformed stored hash counts as a mismatch.
    pub async fn verify(&self, password: &str, hash: &str) -> anyhow::Result<bool> {
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.run(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
    }

    /// Spends the same time as [`verify`](Self::verify) against a real hash, and fails.
    pub async fn verify_decoy(&self, password: &str) -> anyhow::Result<bool> {
        let decoy = self
            .inner
            .decoy
            .get_or_try_init(|| async {
                let mut bytes = [0u8; 24];
                rand::fill(&mut bytes[..]);
                let random = Password::parse(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    bytes,
                ))
                .map_err(|e| anyhow!(e))?;
                self.hash(&random).await
            })
            .await?;
        self.verify(password, &decoy.clone()).await.map(|_| false)
    }

    /// Prepares the decoy hash now, so the first unknown-e-mail login is not slower than others.
    pub async fn prepare_decoy(&self) -> anyhow::Result<()> {
        self.verify_decoy("").await.map(|_| ())
    }

    async fn run<T: Send + 'static>(
        &self,
        task: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let place = match Arc::clone(&self.inner.places).try_acquire_owned() {
            Ok(place) => place,
            Err(TryAcquireError::NoPermits) => return Err(HasherBusy.into()),
            Err(TryAcquireError::Closed) => return Err(anyhow!("hashing threads stopped")),
        };
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _place: OwnedSemaphorePermit = place;
            // A caller that went away (request cancelled) needs no answer: skip the work.
            if !reply.is_closed() {
                let _ = reply.send(task());
            }
        });
        match self.inner.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(anyhow!("hashing queue unexpectedly full")),
            Err(TrySendError::Disconnected(_)) => return Err(anyhow!("hashing threads stopped")),
        }
        answer.await.context("a hashing thread dropped its job")
    }
}

/// Every place in the hashing queue is taken: the caller should answer `503` rather than wait.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many passwords are being hashed; retry shortly")]
pub struct HasherBusy;

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return, // every sender is gone: the application has stopped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::start(1, 4).expect("starts");
        let password = Password::parse("correct horse".into()).expect("valid");
        let hash = hasher.hash(&password).await.expect("hashes");
        assert!(hasher.verify("correct horse", &hash).await.expect("runs"));
        assert!(!hasher.verify("wrong horse", &hash).await.expect("runs"));
        assert!(
            !hasher
                .verify("correct horse", "not a hash")
                .await
                .expect("runs")
        );
        assert!(!hasher.verify_decoy("correct horse").await.expect("runs"));
    }
}
