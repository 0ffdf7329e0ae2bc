//! Finds the actor of a tutor, activating it on first use: its state is loaded from the database
//! first (so an unknown tutor costs no actor), then it starts on one of a few arbiters (one per
//! core), chosen by tutor. Acts as the actors' supervisor: an actor that stopped (idle, or
//! failed) is forgotten, and the next request starts a fresh one with its state reloaded,
//! without touching other tutors.
//!
//! Requests that only read a running actor's schedule (kept slot lists, bookings its view already
//! refuses) are answered from the view it publishes, on the caller's thread (see `view.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::messages::{ApplyEvent, Book, QuerySlots, Refresh, ScheduleError, SlotsAnswer};
use super::persister::Persister;
use super::tutor::TutorActor;
use super::view::{TutorView, ViewCell};
use crate::realtime::Hub;
use crate::realtime::events::TutorEvent;
use crate::store::availability;
use crate::store::sessions::SessionRecord;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long a request waits for a tutor's actor to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(15);
const SHARDS: usize = 64;

/// A running actor and where it publishes its view.
struct Running {
    addr: Addr<TutorActor>,
    view: Arc<ViewCell>,
}

type Cell = Arc<OnceCell<Running>>;

/// The tutor actors of this process.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Vec<Mutex<HashMap<Uuid, Cell>>>,
    arbiters: Vec<ArbiterHandle>,
    pool: PgPool,
    persister: Persister,
    hub: Hub,
    idle_timeout: Duration,
    /// Actors started so far (restarts included).
    activations: AtomicU64,
    /// Requests answered from a view, without a message to the actor.
    view_answers: AtomicU64,
}

impl Registry {
    /// Starts `arbiters` arbiter threads for tutor actors, which stop after `idle_timeout`
    /// unused. Must run inside the actix system.
    pub fn start(
        pool: PgPool,
        persister: Persister,
        hub: Hub,
        arbiters: usize,
        idle_timeout: Duration,
    ) -> Self {
        let arbiters = (0..arbiters.max(1))
            .map(|_| Arbiter::new().handle())
            .collect();
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                arbiters,
                pool,
                persister,
                hub,
                idle_timeout,
                activations: AtomicU64::new(0),
                view_answers: AtomicU64::new(0),
            }),
        }
    }

    /// How long an actor may go unused before it stops.
    pub(super) fn idle_timeout(&self) -> Duration {
        self.inner.idle_timeout
    }

    fn shard(&self, tutor_id: Uuid) -> &Mutex<HashMap<Uuid, Cell>> {
        &self.inner.shards[(tutor_id.as_u128() % SHARDS as u128) as usize]
    }

    fn cell(&self, tutor_id: Uuid) -> Cell {
        let mut shard = self
            .shard(tutor_id)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(shard.entry(tutor_id).or_default())
    }

    /// The running actor of a tutor, activating it when needed.
    async fn actor(&self, tutor_id: Uuid) -> Result<Addr<TutorActor>, ScheduleError> {
        let cell = self.cell(tutor_id);
        let activated = cell
            .get_or_try_init(|| async {
                let schedule = availability::load_schedule(&self.inner.pool, tutor_id)
                    .await
                    .map_err(|err| {
                        let unavailable = err
                            .downcast_ref::<sqlx::Error>()
                            .is_some_and(crate::error::is_unavailable);
                        if unavailable {
                            ScheduleError::Unavailable(format!("{err:#}"))
                        } else {
                            ScheduleError::Internal(format!("{err:#}"))
                        }
                    })?
                    .filter(|schedule| schedule.active)
                    .ok_or(ScheduleError::TutorNotFound)?;
                let arbiter = &self.inner.arbiters
                    [(tutor_id.as_u128() % self.inner.arbiters.len() as u128) as usize];
                let (pool, persister, registry, hub) = (
                    self.inner.pool.clone(),
                    self.inner.persister.clone(),
                    self.clone(),
                    self.inner.hub.clone(),
                );
                let actor = TutorActor::new(tutor_id, schedule, pool, persister, registry, hub);
                let view = actor.view();
                let addr = TutorActor::start_in_arbiter(arbiter, move |_| actor);
                self.inner.activations.fetch_add(1, Ordering::Relaxed);
                Ok(Running { addr, view })
            })
            .await;
        match activated {
            Ok(running) => Ok(running.addr.clone()),
            Err(err) => {
                // Do not keep an entry for a tutor that could not be activated.
                self.forget_cell(tutor_id, &cell);
                Err(err)
            }
        }
    }

    /// Asks a tutor's actor; if it has died, starts a fresh one (state reloaded) and asks again.
    pub async fn ask<M>(&self, tutor_id: Uuid, msg: M) -> Result<M::Result, ScheduleError>
    where
        M: Message + Send + Clone + 'static,
        M::Result: Send,
        TutorActor: Handler<M>,
    {
        for _ in 0..2 {
            let addr = self.actor(tutor_id).await?;
            match addr.send(msg.clone()).timeout(ASK_TIMEOUT).await {
                Ok(answer) => return Ok(answer),
                Err(MailboxError::Closed) => self.forget(tutor_id, &addr),
                Err(MailboxError::Timeout) => {
                    return Err(ScheduleError::Unavailable(
                        "the tutor's schedule did not answer in time".to_owned(),
                    ));
                }
            }
        }
        Err(ScheduleError::Unavailable(
            "the tutor's schedule could not be started".to_owned(),
        ))
    }

    /// The latest view of a tutor's actor, when one is running and alive; never activates one.
    fn view(&self, tutor_id: Uuid) -> Option<Arc<TutorView>> {
        let view = {
            let shard = lock(self.shard(tutor_id));
            let running = shard.get(&tutor_id)?.get()?;
            // A dead actor's view is stale for good: only the actor (restarted by `ask`) may
            // answer.
            running
                .addr
                .connected()
                .then(|| Arc::clone(&running.view))?
        };
        Some(view.read())
    }

    /// Books through the tutor's actor, unless its view already refuses the booking.
    pub async fn book(&self, tutor_id: Uuid, book: Book) -> Result<SessionRecord, ScheduleError> {
        if let Some(view) = self.view(tutor_id)
            && let Err(refused) = view.precheck(book.start, book.duration_minutes, Utc::now())
        {
            self.inner.view_answers.fetch_add(1, Ordering::Relaxed);
            return Err(refused);
        }
        self.ask(tutor_id, book).await?
    }

    /// Bookable slots, from the tutor's view when it keeps the list, else from its actor.
    pub async fn slots(
        &self,
        tutor_id: Uuid,
        query: QuerySlots,
    ) -> Result<SlotsAnswer, ScheduleError> {
        if let Some(answered) = self.view(tutor_id).and_then(|view| {
            view.kept_slots(query.from, query.to, query.duration_minutes, Utc::now())
        }) {
            self.inner.view_answers.fetch_add(1, Ordering::Relaxed);
            return answered;
        }
        self.ask(tutor_id, query).await?
    }

    /// Tells a tutor's actor, if it is running (or starting), and waits until it has taken the
    /// message in. An actor that is not running needs no telling: it loads fresh state when it
    /// starts.
    pub async fn tell_if_running<M>(&self, tutor_id: Uuid, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        TutorActor: Handler<M>,
    {
        let cell = {
            let shard = self
                .shard(tutor_id)
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            shard.get(&tutor_id).cloned()
        };
        let Some(cell) = cell else { return };
        // A start in progress may have loaded the state before the change: wait for it.
        let Ok(addr) = cell
            .get_or_try_init(|| async { Err::<Running, ()>(()) })
            .await
            .map(|running| running.addr.clone())
        else {
            return;
        };
        match addr.send(msg).timeout(ASK_TIMEOUT).await {
            Ok(()) => {}
            // It died: forget it, so the next request starts afresh.
            Err(MailboxError::Closed) => self.forget(tutor_id, &addr),
            // It is alive but slow (waiting on the database, say). Forgetting it would let a
            // second actor start for the same tutor beside it; the change stays queued for it.
            Err(MailboxError::Timeout) => {
                tracing::warn!(tutor = %tutor_id, "a tutor's actor is slow to take a change");
            }
        }
    }

    /// Forgets the actor `addr` of a tutor (it stopped), unless a newer one has replaced it.
    pub fn forget(&self, tutor_id: Uuid, addr: &Addr<TutorActor>) {
        let mut shard = self
            .shard(tutor_id)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shard
            .get(&tutor_id)
            .and_then(|cell| cell.get())
            .is_some_and(|current| current.addr == *addr)
        {
            shard.remove(&tutor_id);
        }
    }

    fn forget_cell(&self, tutor_id: Uuid, cell: &Cell) {
        let mut shard = self
            .shard(tutor_id)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shard
            .get(&tutor_id)
            .is_some_and(|current| Arc::ptr_eq(current, cell))
        {
            shard.remove(&tutor_id);
        }
    }

    /// Hands a committed event to the tutor's actor, if it runs (or is starting) here. An actor
    /// still loading gets the event once it is up; it orders events by number itself, so a late
    /// hand-over cannot reorder what it publishes.
    pub fn deliver(&self, event: TutorEvent) {
        let cell = lock(self.shard(event.tutor_id))
            .get(&event.tutor_id)
            .cloned();
        let Some(cell) = cell else { return };
        if let Some(running) = cell.get() {
            running.addr.do_send(ApplyEvent(event));
            return;
        }
        // `tokio::spawn`, not actix's `spawn_local`: the caller (the event listener) is a plain
        // tokio task, outside any `LocalSet`, where `spawn_local` panics.
        tokio::spawn(async move {
            let started = cell
                .get_or_try_init(|| async { Err::<Running, ()>(()) })
                .await;
            if let Ok(running) = started {
                running.addr.do_send(ApplyEvent(event));
            }
        });
    }

    /// Every running actor reloads its state (events may have been missed).
    pub fn refresh_all(&self) {
        for shard in &self.inner.shards {
            let addrs: Vec<Addr<TutorActor>> = lock(shard)
                .values()
                .filter_map(|c| c.get().map(|running| running.addr.clone()))
                .collect();
            for addr in addrs {
                addr.do_send(Refresh);
            }
        }
    }

    /// How many tutor actors are running (or starting).
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| lock(shard).len())
            .sum()
    }

    /// How many tutor actors were started since the process began (restarts included).
    pub fn activations(&self) -> u64 {
        self.inner.activations.load(Ordering::Relaxed)
    }

    /// How many requests were answered from a view since the process began.
    pub fn view_answers(&self) -> u64 {
        self.inner.view_answers.load(Ordering::Relaxed)
    }

    /// Whether no tutor actor is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
