//! Live updates over a real WebSocket client (`tokio-tungstenite`).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{
    TestApp, WEEKDAYS, all_day_rules, days_ahead_at, eventually, id_of, spawn_app, spawn_app_with,
    spawn_second_node, students_direct,
};

/// How long a test waits for a message that should come.
const PATIENCE: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Client {
    socket: Socket,
}

impl Client {
    pub async fn connect(app: &TestApp, token: Option<&str>) -> Self {
        let base = app.address.replace("http://", "ws://");
        let url = match token {
            Some(token) => format!("{base}/ws?token={token}"),
            None => format!("{base}/ws"),
        };
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the WebSocket upgrade succeeds");
        Self { socket }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("sent");
    }

    pub async fn subscribe(&mut self, tutor: Uuid, days: i64) -> Value {
        self.send(json!({
            "type": "subscribe", "tutor_id": tutor,
            "from": days_ahead_at(1, 0, 0).to_rfc3339(),
            "to": days_ahead_at(1 + days, 0, 0).to_rfc3339(),
        }))
        .await;
        let snapshot = self.next().await;
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        snapshot
    }

    /// The next JSON message, skipping pings.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a message in time")
                .expect("the connection is open")
                .expect("a valid frame");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next message of this type, skipping others (session updates, say).
    async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let message = self.next().await;
            if message["type"] == kind {
                return message;
            }
        }
    }
}

#[actix_web::test]
async fn a_subscriber_gets_a_snapshot_then_each_booking_and_release_in_sequence() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let mut client = Client::connect(&app, None).await;
    let snapshot = client.subscribe(tutor.id, 3).await;
    let seq = snapshot["seq"].as_i64().expect("seq");
    assert_eq!(snapshot["tutor_id"], tutor.id.to_string());
    // All day, every day: one free stretch over the whole range.
    assert_eq!(
        snapshot["free"].as_array().map(Vec::len),
        Some(1),
        "{snapshot}"
    );

    let start = days_ahead_at(2, 10, 0);
    let booked = app.book(&student, tutor.id, start, 60).await;
    let id = id_of(booked.assert_status(201));
    let event = client.next().await;
    assert_eq!(event["type"], "slot.booked");
    assert_eq!(event["seq"], seq + 1);
    assert_eq!(event["tutor_id"], tutor.id.to_string());
    assert_eq!(event["start"], booked.body["scheduled_at"]);
    assert_eq!(event["end"], booked.body["ends_at"]);

    app.post(
        &format!("/sessions/{id}/cancel"),
        Some(&student.token),
        &json!({}),
    )
    .await
    .assert_status(200);
    let event = client.next().await;
    assert_eq!(event["type"], "slot.released");
    assert_eq!(event["seq"], seq + 2);
    assert_eq!(event["start"], booked.body["scheduled_at"]);

    // A fresh subscription reflects both: the slot is free again, at the latest number.
    let mut late = Client::connect(&app, None).await;
    let snapshot = late.subscribe(tutor.id, 3).await;
    assert_eq!(snapshot["seq"], seq + 2);
    assert_eq!(snapshot["free"].as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn every_subscriber_receives_the_events_and_snapshots_show_booked_time() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let start = days_ahead_at(2, 10, 0);
    app.book(&student, tutor.id, start, 60)
        .await
        .assert_status(201);

    let mut first = Client::connect(&app, None).await;
    let mut second = Client::connect(&app, None).await;
    for client in [&mut first, &mut second] {
        let snapshot = client.subscribe(tutor.id, 3).await;
        // The booked hour splits the free time in two.
        let free = snapshot["free"].as_array().expect("free");
        assert_eq!(free.len(), 2, "{snapshot}");
        assert_eq!(free[0]["end"], start.to_rfc3339().replace("+00:00", "Z"));
    }
    let other = app.student().await;
    app.book(&other, tutor.id, days_ahead_at(2, 14, 0), 30)
        .await
        .assert_status(201);
    for client in [&mut first, &mut second] {
        assert_eq!(client.next().await["type"], "slot.booked");
    }
}

#[actix_web::test]
async fn session_updates_reach_the_two_participants_and_no_one_else() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let outsider = app.student().await;
    let mut tutor_socket = Client::connect(&app, Some(&tutor.token)).await;
    let mut student_socket = Client::connect(&app, Some(&student.token)).await;
    let mut outsider_socket = Client::connect(&app, Some(&outsider.token)).await;

    let booked = app
        .book(&student, tutor.id, days_ahead_at(2, 9, 0), 60)
        .await;
    let id = id_of(booked.assert_status(201));
    for socket in [&mut tutor_socket, &mut student_socket] {
        let update = socket.next_of("session.updated").await;
        assert_eq!(update["session"]["id"], id.to_string());
        assert_eq!(update["session"]["status"], "scheduled");
    }
    app.post(
        &format!("/sessions/{id}/cancel"),
        Some(&tutor.token),
        &json!({"reason": "ill"}),
    )
    .await
    .assert_status(200);
    for socket in [&mut tutor_socket, &mut student_socket] {
        let update = socket.next_of("session.updated").await;
        assert_eq!(update["session"]["status"], "cancelled");
    }
    // Both updates were published before now; the outsider's first message is the answer to
    // this bad request, so nothing about the session was sent to it.
    outsider_socket.send(json!({"type": "dance"})).await;
    let first = outsider_socket.next().await;
    assert_eq!(first["type"], "error", "{first}");
}

#[actix_web::test]
async fn a_bad_message_gets_an_error_and_the_connection_stays_usable() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let mut client = Client::connect(&app, None).await;
    client
        .send(json!({"type": "subscribe", "tutor_id": "nope"}))
        .await;
    assert_eq!(client.next().await["code"], "bad_message");
    client
        .socket
        .send(Message::Text("not json".into()))
        .await
        .expect("sent");
    assert_eq!(client.next().await["code"], "bad_message");
    client
        .send(json!({"type": "subscribe", "tutor_id": tutor.id,
                     "from": days_ahead_at(1, 0, 0).to_rfc3339(),
                     "to": days_ahead_at(40, 0, 0).to_rfc3339()}))
        .await;
    assert_eq!(client.next().await["code"], "bad_range");
    let unknown = Uuid::now_v7();
    client
        .send(json!({"type": "subscribe", "tutor_id": unknown,
                     "from": days_ahead_at(1, 0, 0).to_rfc3339(),
                     "to": days_ahead_at(2, 0, 0).to_rfc3339()}))
        .await;
    // An error that ends a subscription says which one.
    let ended = client.next().await;
    assert_eq!(ended["code"], "tutor_not_found");
    assert_eq!(ended["tutor_id"], unknown.to_string());
    client
        .send(json!({"type": "unsubscribe", "tutor_id": tutor.id}))
        .await;
    assert_eq!(client.next().await["code"], "not_subscribed");
    // Still usable.
    let snapshot = client.subscribe(tutor.id, 2).await;
    assert!(snapshot["seq"].is_i64());
}

#[actix_web::test]
async fn a_deactivated_accounts_connection_closes_with_1008_and_its_token_cannot_open_another() {
    let app = spawn_app_with(|settings| {
        settings.realtime.ping_every = Duration::from_millis(200);
    })
    .await;
    let student = app.student().await;
    let mut socket = Client::connect(&app, Some(&student.token)).await;
    app.delete("/students/me", Some(&student.token))
        .await
        .assert_status(200);
    assert_eq!(socket.close_code().await, Some(1008));
    let base = app.address.replace("http://", "ws://");
    let refused = tokio_tungstenite::connect_async(format!("{base}/ws?token={}", student.token))
        .await
        .expect_err("the upgrade is refused");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 404);
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[actix_web::test]
async fn a_bad_token_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let base = app.address.replace("http://", "ws://");
    let refused = tokio_tungstenite::connect_async(format!("{base}/ws?token=forged")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[actix_web::test]
async fn new_availability_is_announced_then_a_fresh_snapshot_follows() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let mut client = Client::connect(&app, None).await;
    let before = client.subscribe(tutor.id, 3).await;
    let seq = before["seq"].as_i64().expect("seq");
    let mut rules = all_day_rules();
    rules["weekly"] = json!([]);
    app.put("/tutors/me/availability", Some(&tutor.token), &rules)
        .await
        .assert_status(200);
    let changed = client.next().await;
    assert_eq!(changed["type"], "availability.changed");
    assert_eq!(changed["seq"], seq + 1);
    let snapshot = client.next().await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["seq"], seq + 1);
    assert_eq!(snapshot["free"], json!([]));
}

#[actix_web::test]
async fn a_booking_through_one_server_reaches_subscribers_of_another() {
    let app = spawn_app().await;
    let other_node = spawn_second_node(&app).await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let students = students_direct(&app, 2).await;
    let mut client = Client::connect(&other_node, None).await;
    let seq = client.subscribe(tutor.id, 3).await["seq"]
        .as_i64()
        .expect("seq");

    app.book(&students[0], tutor.id, days_ahead_at(2, 11, 0), 60)
        .await
        .assert_status(201);
    let event = client.next().await;
    assert_eq!(event["type"], "slot.booked");
    assert_eq!(event["seq"], seq + 1);
    // The other node's memory followed: it refuses the same slot itself.
    other_node
        .book(&students[1], tutor.id, days_ahead_at(2, 11, 0), 60)
        .await
        .assert_problem(409, "slot_taken");
}

#[actix_web::test]
async fn connections_leave_no_subscriptions_behind() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    for round in 0..1000 {
        let token = (round % 2 == 0).then_some(student.token.as_str());
        let mut client = Client::connect(&app, token).await;
        client.subscribe(tutor.id, 1).await;
        if round % 3 == 0 {
            client.socket.close(None).await.expect("closed");
        }
        // Otherwise the client just goes away.
    }
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        poll.tick().await;
        if app.hub.channel_counts() == (0, 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "channels left: {:?}",
            app.hub.channel_counts()
        );
    }
}

/// Rules whose 31-day snapshot is large (about 9 KB): four one-hour windows a day.
fn fragmented_rules() -> Value {
    let mut rules = all_day_rules();
    rules["weekly"] = WEEKDAYS
        .iter()
        .flat_map(|day| {
            (0..4).map(move |h| {
                json!({"weekday": day, "start": format!("{:02}:00", 6 + 3 * h),
                       "end": format!("{:02}:00", 7 + 3 * h)})
            })
        })
        .collect();
    rules
}

/// A WebSocket client with a small receive window, subscribed to `tutor` for 31 days, that will
/// never read; and its own address.
async fn a_client_that_will_not_read(
    app: &TestApp,
    tutor: Uuid,
) -> (
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    std::net::SocketAddr,
) {
    let address = app.address.replace("http://", "");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let stream = socket
        .connect(address.parse().expect("address"))
        .await
        .expect("connected");
    let local = stream.local_addr().expect("local address");
    let (mut slow, _) = tokio_tungstenite::client_async(format!("ws://{address}/ws"), stream)
        .await
        .expect("upgraded");
    slow.send(Message::Text(
        json!({"type": "subscribe", "tutor_id": tutor,
               "from": days_ahead_at(1, 0, 0).to_rfc3339(),
               "to": days_ahead_at(32, 0, 0).to_rfc3339()})
        .to_string()
        .into(),
    ))
    .await
    .expect("sent");
    (slow, local)
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_closed_while_others_keep_receiving() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let mut fast = Client::connect(&app, None).await;
    fast.subscribe(tutor.id, 31).await;
    // A client with a small receive window that, once subscribed, never reads again.
    let (mut slow, _) = a_client_that_will_not_read(&app, tutor.id).await;

    // Each change of availability sends every subscriber an event and a 31-day snapshot of
    // fragmented free time (about 9 KB), far more than the slow client's buffers hold.
    let mut rules = fragmented_rules();
    let mut closed = None;
    for round in 0..200 {
        rules["buffer_minutes"] = json!(round % 2 * 30);
        app.put("/tutors/me/availability", Some(&tutor.token), &rules)
            .await
            .assert_status(200);
        assert_eq!(fast.next().await["type"], "availability.changed");
        assert_eq!(fast.next().await["type"], "snapshot");
        // Cutting the slow client off ends its subscription: one subscriber is left.
        if app.hub.tutor_receivers(tutor.id) < 2 {
            closed = Some(round);
            break;
        }
    }
    assert!(closed.is_some(), "the slow client was never cut off");

    // Reading now, the slow client finds its stream ends with 1013 (when the close frame could
    // be written) rather than going on.
    loop {
        match tokio::time::timeout(PATIENCE, slow.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                if let Some(frame) = frame {
                    assert_eq!(u16::from(frame.code), 1013);
                }
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => break,
            Err(_) => panic!("the slow client's stream did not end"),
        }
    }
    // The fast client is still served.
    let student = app.student().await;
    app.book(&student, tutor.id, days_ahead_at(2, 6, 0), 60)
        .await
        .assert_status(201);
    assert_eq!(fast.next_of("slot.booked").await["type"], "slot.booked");
}

#[actix_web::test]
async fn a_client_that_never_reads_again_loses_its_tcp_connection_too() {
    let app = spawn_app_with(|settings| {
        settings.realtime.ping_every = Duration::from_millis(200);
        settings.realtime.silence_limit = Duration::from_secs(3);
    })
    .await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let (_slow, client) = a_client_that_will_not_read(&app, tutor.id).await;
    let server_port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("the server's port");
    // The server's end of the slow client's TCP connection, from the kernel's table of TCP
    // sockets (ports in hexadecimal): its state (01 = established) and the bytes it has queued
    // to send, when it exists in any state.
    let server_end = || {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("the TCP table");
        let (local, remote) = (
            format!(":{server_port:04X}"),
            format!(":{:04X}", client.port()),
        );
        table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let ours =
                fields.len() > 4 && fields[1].ends_with(&local) && fields[2].ends_with(&remote);
            let queued = fields.get(4)?.split(':').next()?;
            ours.then(|| {
                (
                    fields[3].to_owned(),
                    u64::from_str_radix(queued, 16).unwrap_or(0),
                )
            })
        })
    };
    // Fill every buffer between the two (9 KB a change) until the server's end holds tens of
    // kilobytes the client will not take (within the silence limit, after which the server
    // stops sending).
    let mut rules = fragmented_rules();
    let mut round = 0;
    while !matches!(server_end(), Some((state, queued)) if state == "01" && queued >= 32 * 1024) {
        assert!(
            round < 200,
            "the server never had data waiting on the client"
        );
        rules["buffer_minutes"] = json!(round % 2 * 30);
        app.put("/tutors/me/availability", Some(&tutor.token), &rules)
            .await
            .assert_status(200);
        round += 1;
    }
    // The server gives up on the client, and the kernel drops the connection, in whatever state
    // it was left, once its data has waited a silence limit.
    eventually(
        "the server drops the TCP connection of a client that never reads",
        || {
            let gone = server_end().is_none();
            async move { gone }
        },
    )
    .await;
}

#[actix_web::test]
async fn the_server_pings_and_closes_a_connection_that_stays_silent() {
    let app = spawn_app_with(|settings| {
        settings.realtime.ping_every = Duration::from_millis(200);
        settings.realtime.silence_limit = Duration::from_millis(1000);
    })
    .await;
    let base = app.address.replace("http://", "ws://");
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{base}/ws"))
        .await
        .expect("upgraded");
    // Reading answers pings (the client library replies with pongs): the connection lives on.
    let mut pings = 0;
    while pings < 8 {
        match tokio::time::timeout(PATIENCE, socket.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(_))) => {}
            other => panic!("the connection ended while answering pings: {other:?}"),
        }
    }
    // Silent now (not even reading, so no pongs): closed after the silence limit. The client
    // may fail to send its late pongs before it reads the close frame; either way the
    // connection has ended, and a close frame, when read, says 1000.
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    while app.hub.open_connections() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the silent connection lives on"
        );
        poll.tick().await;
    }
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the silent connection lives on"
        );
        match tokio::time::timeout(PATIENCE, socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the silent connection was not closed"),
        }
    }
}

#[actix_web::test]
async fn after_the_database_connection_drops_subscribers_get_a_fresh_snapshot() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let mut client = Client::connect(&app, None).await;
    client.subscribe(tutor.id, 3).await;
    // Kill the server's LISTEN connection: notifications sent meanwhile would be lost. On a busy
    // machine the listener may not have connected yet: try until one connection was ended.
    eventually("ending a LISTEN connection", || async {
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(&app.db)
        .await
        .expect("terminated");
        ended > 0
    })
    .await;
    let fresh = client.next_of("snapshot").await;
    assert_eq!(fresh["tutor_id"], tutor.id.to_string());
    // And events flow again on the new connection. The actor's reload (also part of starting
    // over) may send one more snapshot, which then already holds the booking: either way the
    // client learns of it, in sequence.
    let booked_at = days_ahead_at(2, 9, 0);
    app.book(&student, tutor.id, booked_at, 60)
        .await
        .assert_status(201);
    let mut seq = fresh["seq"].as_i64().expect("seq");
    loop {
        let message = client.next().await;
        let n = message["seq"].as_i64().expect("seq");
        match message["type"].as_str() {
            Some("slot.booked") => {
                assert_eq!(n, seq + 1, "{message}");
                break;
            }
            Some("snapshot") => {
                assert!(n >= seq, "{message}");
                seq = n;
                let holds_booking = message["free"].as_array().expect("free").iter().all(|f| {
                    let start: chrono::DateTime<chrono::Utc> = f["start"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .expect("start");
                    let end: chrono::DateTime<chrono::Utc> =
                        f["end"].as_str().and_then(|s| s.parse().ok()).expect("end");
                    booked_at < start || end <= booked_at
                });
                if holds_booking {
                    break;
                }
            }
            _ => panic!("unexpected {message}"),
        }
    }
}

#[actix_web::test]
async fn unsubscribing_stops_the_events_and_subscriptions_are_capped() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let mut leaver = Client::connect(&app, None).await;
    let mut witness = Client::connect(&app, None).await;
    leaver.subscribe(tutor.id, 2).await;
    witness.subscribe(tutor.id, 2).await;
    leaver
        .send(json!({"type": "unsubscribe", "tutor_id": tutor.id}))
        .await;
    // Once the unsubscription is taken in, the hub has one receiver left.
    let deadline = std::time::Instant::now() + PATIENCE;
    while app.hub.tutor_receivers(tutor.id) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription did not end"
        );
        tokio::task::yield_now().await;
    }
    app.book(&student, tutor.id, days_ahead_at(2, 9, 0), 60)
        .await
        .assert_status(201);
    assert_eq!(witness.next().await["type"], "slot.booked");
    leaver.send(json!({"type": "dance"})).await;
    assert_eq!(
        leaver.next().await["type"],
        "error",
        "no event after unsubscribing"
    );

    // At most 50 tutors per connection.
    let mut busy = Client::connect(&app, None).await;
    for _ in 0..50 {
        let other = app.tutor_with_rules(&all_day_rules()).await;
        busy.subscribe(other.id, 1).await;
    }
    busy.send(json!({"type": "subscribe", "tutor_id": tutor.id,
                     "from": days_ahead_at(1, 0, 0).to_rfc3339(),
                     "to": days_ahead_at(2, 0, 0).to_rfc3339()}))
        .await;
    assert_eq!(busy.next().await["code"], "too_many_subscriptions");
}

impl Client {
    /// The close frame's code, skipping what comes before it.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(PATIENCE, self.socket.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

#[actix_web::test]
async fn a_message_too_big_closes_with_1009_and_text_not_utf8_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let app = spawn_app().await;
    let padded = |kib: usize| {
        format!(
            "{{\"type\": \"subscribe\", \"pad\": \"{}\"}}",
            "x".repeat(kib * 1024)
        )
    };
    // In one frame.
    let mut client = Client::connect(&app, None).await;
    let huge = Message::Text(padded(100).into());
    client.socket.send(huge).await.expect("sent");
    assert_eq!(client.close_code().await, Some(1009));

    // In two frames, each under the limit.
    let mut client = Client::connect(&app, None).await;
    let text = padded(80).into_bytes();
    let (first, second) = text.split_at(text.len() / 2);
    let frames = [
        Frame::message(first.to_vec(), OpCode::Data(Data::Text), false),
        Frame::message(second.to_vec(), OpCode::Data(Data::Continue), true),
    ];
    for frame in frames {
        client
            .socket
            .send(Message::Frame(frame))
            .await
            .expect("sent");
    }
    assert_eq!(client.close_code().await, Some(1009));

    let mut client = Client::connect(&app, None).await;
    let not_utf8 = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    client
        .socket
        .send(Message::Frame(not_utf8))
        .await
        .expect("sent");
    assert_eq!(client.close_code().await, Some(1007));
}

#[actix_web::test]
async fn a_connection_whose_token_is_revoked_gets_no_more_session_updates_and_closes_with_1008() {
    // Heartbeats far apart: the update itself finds the token revoked.
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let mut socket = Client::connect(&app, Some(&student.token)).await;
    app.book(&student, tutor.id, days_ahead_at(2, 9, 0), 60)
        .await
        .assert_status(201);
    assert_eq!(socket.next().await["type"], "session.updated");

    app.post("/auth/logout", Some(&student.token), &json!({}))
        .await
        .assert_status(204);
    // The student books again with a new token: the old token's connection hears nothing of it.
    let fresh = app.login(&student.email, crate::helpers::PASSWORD).await;
    let again = crate::helpers::TestUser {
        token: fresh,
        ..student.clone()
    };
    app.book(&again, tutor.id, days_ahead_at(3, 9, 0), 60)
        .await
        .assert_status(201);
    assert_eq!(socket.close_code().await, Some(1008));
}

#[actix_web::test]
async fn a_payment_reaches_the_participants_as_a_session_update() {
    let app = spawn_app().await;
    let tutor = app.tutor_with_rules(&all_day_rules()).await;
    let student = app.student().await;
    let booked = app
        .book(&student, tutor.id, days_ahead_at(2, 9, 0), 60)
        .await;
    let id = id_of(booked.assert_status(201));
    let mut tutor_socket = Client::connect(&app, Some(&tutor.token)).await;
    let mut student_socket = Client::connect(&app, Some(&student.token)).await;
    app.post(
        "/payment/charge",
        Some(&student.token),
        &json!({"session_id": id}),
    )
    .await
    .assert_status(201);
    // The booking's own update may still be on its way (it was announced just before these
    // connections opened); the payment's follows it.
    for socket in [&mut tutor_socket, &mut student_socket] {
        loop {
            let update = socket.next_of("session.updated").await;
            assert_eq!(update["session"]["id"], id.to_string());
            if update["session"]["payment_status"] == "paid" {
                break;
            }
            assert_eq!(update["session"]["payment_status"], "unpaid", "{update}");
        }
    }
}
