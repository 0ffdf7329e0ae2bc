//! SIGTERM on the real binary: live connections are closed with 1001, requests in flight finish,
//! and the process exits 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{DatabaseGuard, create_test_database, test_settings};

#[actix_web::test]
async fn sigterm_closes_live_connections_with_1001_and_exits_0() {
    let database = DatabaseGuard(create_test_database().await);
    let settings = test_settings(&database.0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_tutoring"))
        .env("DATABASE_URL", &settings.database.url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");

    // Wait until it serves.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        poll.tick().await;
        let up = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not come up");
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .expect("upgraded");

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());

    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1001));

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.try_wait().expect("waitable") {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        poll.tick().await;
    };
    assert!(status.success(), "exit status {status:?}");
}
