//! Wires the application together: database, authentication services, routes, and the HTTP
//! server bound from configuration (port 0 in tests, read back with [`Application::port`]).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle, Service as _};
use actix_web::middleware::ErrorHandlers;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use sqlx::{ConnectOptions as _, PgPool};

use crate::auth::{Auth, PasswordHasher, RevokedTokens, TokenKeys};
use crate::configuration::Settings;
use crate::error::ApiError;
use crate::payments::webhook::WebhookSecret;
use crate::payments::{Payments, refunds};
use crate::realtime::{self, Hub};
use crate::routes::{self, json};
use crate::scheduling::{Persister, Registry};
use crate::store;

/// Booking writers: each commits one batch at a time on a connection of its own. PostgreSQL
/// serializes the commits of transactions that `NOTIFY`, and a row costs it less in a larger
/// batch, so one writer does as many bookings a second as two, with a lower p99 and less CPU,
/// and three do fewer (load-tests/RESULTS.md).
const PERSISTER_WRITERS: usize = 1;

/// How long a graceful stop waits for requests in flight.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The kernel's send buffer per connection. Left to autotuning it grows to megabytes, which a
/// client that stops reading would hold on the server's behalf; bounded, such a client is found
/// out (its writes block, and it is closed with 1013) after a few hundred kilobytes.
const SEND_BUFFER_BYTES: usize = 128 * 1024;

/// The least time a connection's data may wait on its peer before the kernel drops it.
const MIN_UNACKNOWLEDGED_LIMIT: Duration = Duration::from_secs(1);

/// Connections the kernel queues before the server accepts them. The standard library listens
/// with 128, and a burst larger than that (hundreds of students opening the app as a popular
/// tutor's week opens) had connections dropped, each costing its client a second's retry or a
/// failed request; the `storm` load test saw both.
const LISTEN_BACKLOG: i32 = 1024;

fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // A restarted server binds again at once, while the old connections linger in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Bounds what a peer that stops reading costs: the kernel's send buffer, and how long our data
/// may wait unacknowledged, or untransmitted because the peer's window stays shut, before the
/// kernel drops the connection (`unacknowledged_limit`: a WebSocket's silence limit). Without
/// that limit such a connection would stay open after the server gave up on it, holding its
/// buffers until the peer left.
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn bound_connection(connection: &dyn std::any::Any, unacknowledged_limit: Duration) {
    let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    let socket = socket2::SockRef::from(stream);
    if let Err(err) = socket.set_send_buffer_size(SEND_BUFFER_BYTES) {
        tracing::debug!(error = %err, "could not bound a connection's send buffer");
    }
    // Linux's option; elsewhere such a connection lasts until its peer leaves.
    #[cfg(target_os = "linux")]
    if let Err(err) = socket.set_tcp_user_timeout(Some(unacknowledged_limit)) {
        tracing::debug!(error = %err, "could not bound how long a connection's data waits");
    }
}

/// Installs the process's TLS crypto provider (`ring`), which outbound HTTPS (the Stripe client)
/// needs before any HTTP client is built. Safe to call any number of times.
pub fn install_tls_provider() {
    // Only the first call installs; later ones find it installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Resolves at SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A built, bound, not yet awaited server.
pub struct Application {
    address: SocketAddr,
    server: Server,
    pool: PgPool,
    hub: Hub,
    registry: Registry,
}

impl Application {
    /// Connects to the database (creating and migrating it as configured) and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        install_tls_provider();
        let pool = store::connect_and_migrate(&settings.database).await?;
        Self::build_with_pool(settings, pool).await
    }

    /// Binds a server on an existing, migrated pool.
    pub async fn build_with_pool(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        install_tls_provider();
        let revoked = Arc::new(RevokedTokens::new(
            settings.auth.revocation_max_staleness,
            settings.auth.token_ttl,
        ));
        let poller_options = (*pool.connect_options()).clone();
        // Load revocations before serving when the database answers; otherwise authenticated
        // routes answer 503 until the poller has caught up.
        let initial = tokio::time::timeout(Duration::from_secs(2), async {
            let mut conn = poller_options.connect().await?;
            revoked.refresh(&mut conn, None).await
        })
        .await;
        if !matches!(initial, Ok(Ok(_))) {
            tracing::warn!("could not load revoked tokens at start-up; will keep trying");
        }
        Arc::clone(&revoked).spawn_poller(poller_options, settings.auth.revocation_poll);
        store::spawn_janitor(pool.clone());
        let auth = Auth {
            keys: Arc::new(TokenKeys::new(
                &settings.auth.jwt_secret,
                settings.auth.token_ttl,
            )),
            revoked,
            hasher: PasswordHasher::start(settings.auth.hasher_threads, settings.auth.bcrypt_cost)?,
        };
        auth.hasher.prepare_decoy().await?;

        // Booking writes are cut well inside a request's deadline, so none commits after its
        // caller was told `503` (unless its commit alone outlasts the rest of the deadline).
        let write_limit = settings.request_timeout / 4;
        let writer_pool =
            store::pool_with_statement_timeout(&pool, PERSISTER_WRITERS as u32, write_limit);
        let persister = Persister::start(writer_pool, PERSISTER_WRITERS, write_limit);
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let hub = Hub::new(settings.realtime);
        let registry = Registry::start(
            pool.clone(),
            persister,
            hub.clone(),
            cores,
            settings.scheduling.tutor_idle,
        );
        realtime::spawn_listener(pool.clone(), hub.clone(), registry.clone());
        let scheduler = web::Data::new(registry.clone());
        let hub_data = web::Data::new(hub.clone());

        let payments = web::Data::new(Payments::from_settings(&settings.payments)?);
        refunds::spawn_refunder(
            pool.clone(),
            payments.get_ref().clone(),
            settings.payments.refund_retry,
        );
        let webhook = web::Data::new(WebhookSecret(
            settings.payments.stripe_webhook_secret.clone(),
        ));

        let listener = listen(settings.bind_addr)
            .with_context(|| format!("binding {}", settings.bind_addr))?;
        let address = listener.local_addr()?;
        let db = web::Data::new(pool.clone());
        let auth = web::Data::new(auth);
        let request_timeout = settings.request_timeout;
        // Never so short that a retransmission or two on a lossy network would end a connection.
        let unacknowledged_limit = settings
            .realtime
            .silence_limit
            .max(MIN_UNACKNOWLEDGED_LIMIT);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(db.clone())
                .app_data(auth.clone())
                .app_data(scheduler.clone())
                .app_data(hub_data.clone())
                .app_data(payments.clone())
                .app_data(webhook.clone())
                .app_data(web::PathConfig::default().error_handler(json::path_error))
                .app_data(web::PayloadConfig::new(json::BODY_LIMIT))
                .app_data(web::QueryConfig::default().error_handler(json::query_error))
                .wrap(ErrorHandlers::new().default_handler(routes::problem_for_bare_error))
                .wrap_fn(move |req, srv| {
                    let started = Instant::now();
                    actix_web::HttpMessage::extensions_mut(&req)
                        .insert(routes::Deadline(started + request_timeout));
                    let method = req.method().clone();
                    let path = req.path().to_owned();
                    let call = srv.call(req);
                    async move {
                        // Past the deadline the request is abandoned (its transaction, if any,
                        // rolls back) and the client told to retry; never a hang. The error
                        // becomes the answer (a `503` problem) where the request is answered.
                        let Ok(res) = tokio::time::timeout(request_timeout, call).await else {
                            tracing::warn!(%method, %path, "request timed out");
                            return Err(ApiError::Unavailable(anyhow::anyhow!(
                                "no answer within {request_timeout:?}"
                            ))
                            .into());
                        };
                        if let Ok(res) = &res {
                            let status = res.status().as_u16();
                            let micros = started.elapsed().as_micros();
                            if status >= 500 {
                                tracing::warn!(%method, %path, status, micros, "request");
                            } else {
                                tracing::debug!(%method, %path, status, micros, "request");
                            }
                        }
                        res
                    }
                })
                .configure(routes::configure)
                .configure(realtime::configure)
                .default_service(web::to(routes::unknown_route))
        })
        .on_connect(move |connection, _| bound_connection(connection, unacknowledged_limit))
        // Answers and live pushes are small writes that must leave at once, not wait for the
        // peer's acknowledgement of the previous one (Nagle's algorithm).
        .tcp_nodelay(true)
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
        // Signals are handled below, so live connections can be told first.
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Self {
            address,
            server,
            pool,
            hub,
            registry,
        })
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// This process's live-update hub (tests look at its channel counts).
    pub fn hub(&self) -> Hub {
        self.hub.clone()
    }

    /// This process's tutor actors (tests look at how many run).
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped. On SIGTERM or SIGINT: live connections are closed with 1001, the
    /// server stops accepting and finishes the requests in flight (whose bookings are committed
    /// before they answer), then the database pool closes.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (handle, hub) = (self.server.handle(), self.hub.clone());
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: closing live connections, draining requests");
            hub.go_away();
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.pool.close().await;
        result
    }
}
