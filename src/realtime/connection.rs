//! `GET /ws`: one task per connection. It reads the client's messages, runs one forwarder task
//! per subscription (snapshot, then the tutor's events in order), writes through one bounded
//! queue, pings every 10 s and closes a connection silent for 30 s (configurable). A client that
//! cannot keep up (its queue full, or its subscription fallen behind the tutor's feed) is closed
//! with 1013 rather than buffered without bound; one whose token is revoked or expires, or whose
//! account is deactivated, with 1008.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::Hub;
use super::forward::{Credentials, Outgoing, spawn_tutor_forwarder, spawn_user_forwarder};
use crate::auth::{Auth, AuthUser};
use crate::domain::parse_instant;
use crate::error::ApiError;
use crate::scheduling::Registry;

/// Largest frame and largest (reassembled) message a client may send.
const MAX_FRAME_BYTES: usize = 64 * 1024;
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Messages waiting to be written to one client (a snapshot can be a few kilobytes).
const OUTGOING_CAPACITY: usize = 64;
/// How long one write may wait for a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_SUBSCRIPTIONS: usize = 50;
const MAX_RANGE: TimeDelta = TimeDelta::days(31);

/// Registers `GET /ws`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ws").route(web::get().to(upgrade)));
}

#[derive(Debug, Deserialize)]
struct WsQuery {
    token: Option<String>,
}

/// Upgrades to a WebSocket; an optional `?token=` authenticates the connection (a bad one is
/// refused with `401` before the upgrade, one of a deactivated account with `404`) until it is
/// revoked or expires, or its account is deactivated.
async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<WsQuery>,
    auth: web::Data<Auth>,
    hub: web::Data<Hub>,
    scheduler: web::Data<Registry>,
) -> Result<HttpResponse, ApiError> {
    let credentials = match query.token.as_deref() {
        Some(token) => {
            let claims = AuthUser::from_token(&auth, token)?.claims;
            if auth.revoked.is_deactivated(claims.sub) {
                return Err(ApiError::account_not_found());
            }
            Some(Credentials {
                user_id: claims.sub,
                jti: claims.jti,
                expires_at: claims.exp,
                revoked: Arc::clone(&auth.revoked),
            })
        }
        None => None,
    };
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(|_| {
        ApiError::bad_request(
            "websocket_required",
            "this route speaks WebSocket: send an Upgrade request",
        )
    })?;
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE_BYTES);
    let connection = Connection::new(
        hub.get_ref().clone(),
        scheduler.get_ref().clone(),
        credentials,
    );
    actix_web::rt::spawn(connection.run(session, stream));
    Ok(response)
}

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Subscribe {
        tutor_id: Uuid,
        from: String,
        to: String,
    },
    Unsubscribe {
        tutor_id: Uuid,
    },
}

/// A task feeding the connection, stopped when the connection lets go of it, however the
/// connection ends (even by a panic).
struct Forwarder(JoinHandle<()>);

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Connection {
    hub: Hub,
    scheduler: Registry,
    credentials: Option<Credentials>,
    subscriptions: HashMap<Uuid, Forwarder>,
}

impl Connection {
    fn new(hub: Hub, scheduler: Registry, credentials: Option<Credentials>) -> Self {
        Self {
            hub,
            scheduler,
            credentials,
            subscriptions: HashMap::new(),
        }
    }

    async fn run(mut self, mut session: Session, mut stream: actix_ws::AggregatedMessageStream) {
        let _counted = self.hub.connection_opened();
        let (queue, mut written) = mpsc::channel::<Arc<str>>(OUTGOING_CAPACITY);
        let out = Outgoing {
            queue,
            ending: Arc::default(),
        };
        let user_feed = self.credentials.clone().map(|credentials| {
            Forwarder(spawn_user_forwarder(&self.hub, credentials, out.clone()))
        });
        let mut going_away = self.hub.going_away();
        let timing = self.hub.heartbeat();
        let mut heartbeat = tokio::time::interval(timing.ping_every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Fires once the client has been silent for the limit; anything heard from it resets it.
        let silence = tokio::time::sleep(timing.silence_limit);
        tokio::pin!(silence);

        let close: Option<CloseReason> = loop {
            tokio::select! {
                incoming = stream.recv() => {
                    if let Some(Ok(_)) = &incoming {
                        silence.as_mut().reset(tokio::time::Instant::now() + timing.silence_limit);
                    }
                    match incoming {
                        None => break None,
                        Some(Ok(AggregatedMessage::Text(text))) => self.handle_text(&text, &out),
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            out.error("bad_message", "messages are JSON text frames");
                        }
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            match tokio::time::timeout(WRITE_TIMEOUT, session.pong(&bytes)).await {
                                Ok(Ok(())) => {}
                                Ok(Err(_)) => break None,
                                Err(_) => break Some(reason(CloseCode::Again, "too slow to read")),
                            }
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Close(_))) => break Some(CloseCode::Normal.into()),
                        Some(Err(err)) => break Some(protocol_error(&err)),
                    }
                },
                () = &mut silence => {
                    // A client with output still waiting has stopped reading: too slow.
                    break Some(if written.is_empty() {
                        reason(CloseCode::Normal, "silent for too long")
                    } else {
                        reason(CloseCode::Again, "too slow to read")
                    });
                }
                Some(json) = written.recv() => {
                    match tokio::time::timeout(WRITE_TIMEOUT, session.text(&*json)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => break Some(reason(CloseCode::Again, "too slow to read")),
                    }
                }
                ending = out.ending.raised() => break Some(ending),
                _ = going_away.wait_for(|away| *away) => {
                    break Some(reason(CloseCode::Away, "the server is shutting down"));
                }
                _ = heartbeat.tick() => {
                    if let Some(why) = self.credentials.as_ref().and_then(Credentials::lapsed) {
                        break Some(reason(CloseCode::Policy, why));
                    }
                    match tokio::time::timeout(WRITE_TIMEOUT, session.ping(b"")).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => break Some(reason(CloseCode::Again, "too slow to read")),
                    }
                }
            }
        };

        // Whichever way the connection ends, its subscriptions end with it.
        self.subscriptions.clear();
        drop(user_feed);
        tracing::debug!(close = ?close, "live connection ends");
        if let Some(close) = close {
            let _ = tokio::time::timeout(WRITE_TIMEOUT, session.close(Some(close))).await;
        }
    }

    fn handle_text(&mut self, text: &str, out: &Outgoing) {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(err) => {
                out.error(
                    "bad_message",
                    format!("not a message this server understands: {err}"),
                );
                return;
            }
        };
        match message {
            ClientMessage::Subscribe { tutor_id, from, to } => {
                let range = match parse_range(&from, &to) {
                    Ok(range) => range,
                    Err(message) => return out.error("bad_range", message),
                };
                // One that is replaced stops; those that ended on their own (an unknown tutor)
                // free their place.
                self.subscriptions.remove(&tutor_id);
                self.subscriptions
                    .retain(|_, forwarder| !forwarder.0.is_finished());
                if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
                    return out.error(
                        "too_many_subscriptions",
                        format!("at most {MAX_SUBSCRIPTIONS} tutors per connection"),
                    );
                }
                let forwarder = spawn_tutor_forwarder(
                    self.hub.clone(),
                    self.scheduler.clone(),
                    tutor_id,
                    range,
                    out.clone(),
                );
                self.subscriptions.insert(tutor_id, Forwarder(forwarder));
            }
            ClientMessage::Unsubscribe { tutor_id } => match self.subscriptions.remove(&tutor_id) {
                Some(forwarder) => drop(forwarder),
                None => out.error(
                    "not_subscribed",
                    "this connection is not subscribed to that tutor",
                ),
            },
        }
    }
}

fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}

/// The close for a message that broke the protocol. actix-ws reports a reassembled message over
/// the limit, and text that is not UTF-8, as I/O errors, told apart by their kind and message.
fn protocol_error(err: &ProtocolError) -> CloseReason {
    match err {
        ProtocolError::Overflow => reason(CloseCode::Size, "message too big"),
        ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            reason(CloseCode::Invalid, "text must be UTF-8")
        }
        ProtocolError::Io(io) if io.to_string().contains("continuation size") => {
            reason(CloseCode::Size, "message too big")
        }
        _ => reason(CloseCode::Protocol, "protocol error"),
    }
}

fn parse_range(from: &str, to: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let from = parse_instant(from).map_err(|e| format!("from {e}"))?;
    let to = parse_instant(to).map_err(|e| format!("to {e}"))?;
    if to <= from {
        return Err("to must be after from".to_owned());
    }
    if to - from > MAX_RANGE {
        return Err("the range may cover at most 31 days".to_owned());
    }
    Ok((from, to))
}
