//! Group commit for bookings. Tutor actors hand accepted bookings to the writer task (or tasks);
//! a writer takes whatever has queued up while its previous transaction ran and writes it in one
//! transaction, so under load many bookings share one commit, and at rest a booking waits for
//! nobody. A booking is answered only after its transaction has committed.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::store::{
    self,
    sessions::{self, InsertRefusal, NewSession, Sequenced},
};

/// Bookings one transaction carries at most.
const MAX_BATCH: usize = 256;
/// Bookings waiting per writer; a full queue makes the booking wait (bounded by the callers).
const QUEUE_PER_WRITER: usize = 4_096;

/// What became of one booking.
pub type Outcome = Result<Result<Sequenced, InsertRefusal>, PersistError>;

/// The write could not be made (the database is unreachable, say); nothing was written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PersistError(pub String);

struct Job {
    session: NewSession,
    /// When the caller stops waiting (and is told `503`); `None`: it waits for the outcome.
    deadline: Option<Instant>,
    reply: oneshot::Sender<Outcome>,
}

/// The handle tutor actors use; cloning shares the writers.
#[derive(Clone)]
pub struct Persister {
    writers: Arc<[mpsc::Sender<Job>]>,
}

impl Persister {
    /// Starts `writers` writer tasks on the current runtime. Each runs under a supervisor that
    /// restarts it should it panic, failing only the batch it held.
    ///
    /// `pool` must cut every statement at `write_limit` (PostgreSQL's `statement_timeout`): a
    /// booking is written only when its caller will still be waiting after the longest write
    /// (two statements and a commit, allowed half a `write_limit`), so no booking commits after
    /// its caller was told it failed unless its commit alone takes that long.
    pub fn start(pool: PgPool, writers: usize, write_limit: Duration) -> Self {
        let senders: Vec<mpsc::Sender<Job>> = (0..writers.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::channel(QUEUE_PER_WRITER);
                let receiver = Arc::new(Mutex::new(receiver));
                let pool = pool.clone();
                tokio::spawn(async move {
                    loop {
                        let run = AssertUnwindSafe(write_loop(&pool, &receiver, write_limit))
                            .catch_unwind();
                        match run.await {
                            Ok(()) => return, // every sender is gone: the application stopped
                            Err(_) => tracing::error!("a booking writer panicked; restarting it"),
                        }
                    }
                });
                sender
            })
            .collect();
        Self {
            writers: senders.into(),
        }
    }

    /// Writes one booking and waits for its commit, unless it could not be written before
    /// `deadline`. Bookings of one tutor always go to the same writer, so they commit in the
    /// order the tutor's actor accepted them.
    pub async fn insert(&self, session: NewSession, deadline: Option<Instant>) -> Outcome {
        let index = (session.tutor_id.as_u128() % self.writers.len() as u128) as usize;
        let (reply, answer) = oneshot::channel();
        self.writers[index]
            .send(Job {
                session,
                deadline,
                reply,
            })
            .await
            .map_err(|_| PersistError("the booking writer has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| PersistError("the booking writer dropped the booking".to_owned()))?
    }
}

async fn write_loop(pool: &PgPool, receiver: &Mutex<mpsc::Receiver<Job>>, write_limit: Duration) {
    let mut receiver = receiver.lock().await;
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        write_batch(pool, &mut batch, write_limit).await;
    }
}

/// Writes one batch and answers each of its bookings, leaving `batch` empty.
async fn write_batch(pool: &PgPool, batch: &mut Vec<Job>, write_limit: Duration) {
    let started = Instant::now();
    // The connection first: waiting for one (a reconnect, say) is time the callers lose.
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(err) => return fail(batch, &err),
    };
    let mut tries = 1;
    let written = loop {
        // A write is one statement, or two when a conflict makes it go row by row, each cut at
        // `write_limit`, then its commit: a booking whose caller gives up before that could
        // commit after its caller heard `503`, so it is not written at all.
        let must_last_until = Instant::now() + write_limit * 5 / 2;
        let late = |job: &mut Job| job.deadline.is_some_and(|at| at <= must_last_until);
        for job in batch.extract_if(.., late) {
            let _ = job.reply.send(Err(PersistError(
                "the booking could not be written in time; nothing was written".to_owned(),
            )));
        }
        if batch.is_empty() {
            return;
        }
        let rows: Vec<NewSession> = batch.iter().map(|job| job.session.clone()).collect();
        // Two processes inserting overlapping sessions of one student, or advancing the
        // sequences of the same tutors in different orders, can deadlock inside PostgreSQL; the
        // loser wrote nothing, so its batch is simply retried.
        match sessions::insert_batch(&mut conn, &rows).await {
            Err(err) if store::is_transient(&err) && tries < store::TRANSIENT_ATTEMPTS => {
                tries += 1;
            }
            other => break other,
        }
    };
    drop(conn);
    tracing::debug!(
        rows = batch.len(),
        micros = started.elapsed().as_micros(),
        "booking batch"
    );
    let written = match written {
        Ok(written) => written,
        Err(err) => return fail(batch, &err),
    };
    // The written rows are answered at once; only then is each refusal's reason looked up.
    let mut refused = Vec::new();
    for (job, row) in batch.drain(..).zip(written) {
        match row {
            Some(row) => {
                let _ = job.reply.send(Ok(Ok(row)));
            }
            None => refused.push(job),
        }
    }
    for job in refused {
        let reason = sessions::refusal_reason(pool, &job.session).await;
        let _ = job.reply.send(Ok(reason));
    }
}

/// Answers every booking of a batch that could not be written.
fn fail(batch: &mut Vec<Job>, err: &sqlx::Error) {
    tracing::warn!(error = %err, rows = batch.len(), "a booking batch failed");
    let message = err.to_string();
    for job in batch.drain(..) {
        let _ = job.reply.send(Err(PersistError(message.clone())));
    }
}
