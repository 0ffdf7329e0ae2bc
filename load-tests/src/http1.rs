//! A lean keep-alive HTTP/1.1 client for the measured phase of a scenario.
//!
//! The load generator shares the machine's two cores with the server and PostgreSQL, so every
//! microsecond it spends per request is taken from the server it measures. A general-purpose
//! client (connection pool, header maps, body streams) cost about 28 µs of CPU per request here;
//! this one writes a request built in one buffer to a connection it owns, parses the answer's
//! head with `httparse` and reads the body by its length, for a few microseconds. Seeding and
//! checks, where cost does not matter, keep using `reqwest` (see `client.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Buf as _, Bytes, BytesMut};
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How long one request may take before it counts as failed (status 0).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Response heads longer than this are refused: no answer of the server has more headers.
const MAX_HEADERS: usize = 32;
const READ_CHUNK: usize = 16 * 1024;
/// Chunks of a chunked body larger than this are refused: no answer of the server comes near.
const MAX_CHUNK: usize = 64 * 1024 * 1024;

/// One request, serialized once, ready to be written to any connection to the same server.
#[derive(Debug, Clone)]
pub struct Request {
    bytes: Vec<u8>,
}

impl Request {
    /// A request without a body.
    pub fn new(method: &str, path: &str, host: &str, bearer: Option<&str>) -> Self {
        Self {
            bytes: head(method, path, host, bearer, None),
        }
    }

    /// A request with a JSON body.
    pub fn json(
        method: &str,
        path: &str,
        host: &str,
        bearer: Option<&str>,
        body: &impl Serialize,
    ) -> Self {
        // Serializing a plain `Serialize` value into a Vec cannot fail.
        let body = serde_json::to_vec(body).unwrap_or_default();
        let mut bytes = head(method, path, host, bearer, Some(body.len()));
        bytes.extend_from_slice(&body);
        Self { bytes }
    }
}

fn head(
    method: &str,
    path: &str,
    host: &str,
    bearer: Option<&str>,
    body_len: Option<usize>,
) -> Vec<u8> {
    use std::io::Write as _;
    let mut bytes = Vec::with_capacity(256 + path.len() + bearer.map_or(0, str::len));
    // Writing into a Vec cannot fail.
    let _ = write!(bytes, "{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    if let Some(token) = bearer {
        let _ = write!(bytes, "Authorization: Bearer {token}\r\n");
    }
    if let Some(len) = body_len {
        let _ = write!(
            bytes,
            "Content-Type: application/json\r\nContent-Length: {len}\r\n"
        );
    }
    bytes.extend_from_slice(b"\r\n");
    bytes
}

/// What came back: the status (`0` when the request failed in transport or timed out), the body,
/// and the time from the first byte written to the body's last byte read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
    pub latency: Duration,
}

impl Response {
    /// The body as JSON; `null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One connection to the server, opened on first use and again after the server closes it.
pub struct Conn {
    address: String,
    stream: Option<TcpStream>,
    buffer: BytesMut,
}

impl Conn {
    /// A connection to `host:port` (not opened yet).
    pub fn new(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            stream: None,
            buffer: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    /// Sends `request` and reads its answer whole. Never fails: a failure is status 0, and the
    /// connection is opened afresh for the next request.
    pub async fn send(&mut self, request: &Request) -> Response {
        let started = Instant::now();
        let reused = self.stream.is_some();
        let mut outcome = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request)).await;
        // A kept-alive connection the server closed while it was idle fails before any answer:
        // nothing was processed, so the request is sent once more on a new connection.
        if reused && matches!(&outcome, Ok(Err(Failure::ClosedBeforeAnswer))) {
            self.stream = None;
            outcome = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request)).await;
        }
        let (status, body) = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(failure)) => {
                report_first_failure(&failure);
                self.stream = None;
                self.buffer.clear();
                (0, Bytes::new())
            }
            Err(_) => {
                report_first_failure(&Failure::Other(anyhow::anyhow!(
                    "no answer within {REQUEST_TIMEOUT:?}"
                )));
                self.stream = None;
                self.buffer.clear();
                (0, Bytes::new())
            }
        };
        Response {
            status,
            body,
            latency: started.elapsed(),
        }
    }

    async fn exchange(&mut self, request: &Request) -> Result<(u16, Bytes), Failure> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.address).await?;
                stream.set_nodelay(true)?;
                self.buffer.clear();
                self.stream.insert(stream)
            }
        };
        // A request that could not be written whole was not processed: it may be sent again.
        if stream.write_all(&request.bytes).await.is_err() {
            return Err(Failure::ClosedBeforeAnswer);
        }

        let head = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buffer) {
                Ok(httparse::Status::Complete(len)) => break Head::read(&response, len)?,
                Ok(httparse::Status::Partial) => {}
                Err(err) => return Err(Failure::Other(anyhow::anyhow!("bad response: {err}"))),
            }
            // The connection ending before any byte of the answer is the server closing an idle
            // connection as the request arrived; once a byte has come, the request was seen.
            let nothing_yet = self.buffer.is_empty();
            match read_more(stream, &mut self.buffer).await {
                Ok(0) | Err(_) if nothing_yet => return Err(Failure::ClosedBeforeAnswer),
                Ok(0) => return Err(anyhow::anyhow!("connection closed mid-answer").into()),
                Ok(_) => {}
                Err(err) => return Err(err.into()),
            }
        };
        self.buffer.advance(head.len);

        let body = if head.chunked {
            read_chunked(stream, &mut self.buffer).await?
        } else {
            while self.buffer.len() < head.content_length {
                if read_more(stream, &mut self.buffer).await? == 0 {
                    return Err(Failure::Other(anyhow::anyhow!(
                        "connection closed mid-body"
                    )));
                }
            }
            self.buffer.split_to(head.content_length).freeze()
        };
        if head.close {
            self.stream = None;
        }
        Ok((head.status, body))
    }
}

/// What the answer's head says about reading the rest.
struct Head {
    len: usize,
    status: u16,
    content_length: usize,
    chunked: bool,
    close: bool,
}

impl Head {
    fn read(response: &httparse::Response<'_, '_>, len: usize) -> anyhow::Result<Self> {
        let mut head = Self {
            len,
            status: response.code.context("a status code")?,
            content_length: 0,
            chunked: false,
            close: false,
        };
        for header in response.headers.iter() {
            let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
            if header.name.eq_ignore_ascii_case("content-length") {
                head.content_length = value.parse().context("a numeric Content-Length")?;
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = value.eq_ignore_ascii_case("chunked");
            } else if header.name.eq_ignore_ascii_case("connection") {
                head.close = value.eq_ignore_ascii_case("close");
            }
        }
        Ok(head)
    }
}

#[derive(Debug)]
enum Failure {
    /// The connection ended before a byte of the answer came.
    ClosedBeforeAnswer,
    Other(anyhow::Error),
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Self {
        Self::Other(err.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Self::Other(err)
    }
}

/// Tells the operator why requests fail (status 0), once per run rather than per request.
fn report_first_failure(failure: &Failure) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if !REPORTED.swap(true, Ordering::Relaxed) {
        match failure {
            Failure::ClosedBeforeAnswer => {
                eprintln!("a request failed: the server closed the connection before answering");
            }
            Failure::Other(err) => eprintln!("a request failed: {err:#}"),
        }
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut BytesMut) -> std::io::Result<usize> {
    buffer.reserve(READ_CHUNK);
    stream.read_buf(buffer).await
}

/// Reads a `Transfer-Encoding: chunked` body whole.
async fn read_chunked(stream: &mut TcpStream, buffer: &mut BytesMut) -> Result<Bytes, Failure> {
    let mut body = BytesMut::new();
    loop {
        let line_end = loop {
            if let Some(end) = buffer.windows(2).position(|w| w == b"\r\n") {
                break end;
            }
            if read_more(stream, buffer).await? == 0 {
                return Err(anyhow::anyhow!("connection closed mid-chunk").into());
            }
        };
        let size_field = std::str::from_utf8(&buffer[..line_end]).unwrap_or_default();
        let size_hex = size_field.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).context("a chunk size")?;
        // The size line, the chunk and the CRLF after it (after the last chunk: the final CRLF,
        // trailers being something the server never sends).
        let needed = size
            .checked_add(line_end + 4)
            .filter(|needed| *needed <= MAX_CHUNK)
            .context("a chunk larger than any answer of the server")?;
        while buffer.len() < needed {
            if read_more(stream, buffer).await? == 0 {
                return Err(anyhow::anyhow!("connection closed mid-chunk").into());
            }
        }
        buffer.advance(line_end + 2);
        body.extend_from_slice(&buffer[..size]);
        buffer.advance(size + 2);
        if size == 0 {
            return Ok(body.freeze());
        }
    }
}

/// `host:port` of a base URL such as `http://127.0.0.1:8080`.
pub fn authority(base_url: &str) -> anyhow::Result<String> {
    let Some(rest) = base_url.strip_prefix("http://") else {
        bail!("the load generator speaks plain HTTP only: {base_url}");
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        bail!("no host in {base_url}");
    }
    Ok(if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::AsyncBufReadExt as _;
    use tokio::net::TcpListener;

    /// A server that takes one connection per entry of `connections`; on each it reads every
    /// request (head, and body by length) and writes the next of that entry's answers, then
    /// closes it.
    async fn serve(connections: Vec<Vec<&'static str>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            for answers in connections {
                let (socket, _) = listener.accept().await.expect("accept");
                let mut socket = tokio::io::BufReader::new(socket);
                for answer in answers {
                    let mut content_length = 0;
                    loop {
                        let mut line = String::new();
                        if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            content_length = value.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; content_length];
                    socket.read_exact(&mut body).await.expect("body");
                    socket
                        .get_mut()
                        .write_all(answer.as_bytes())
                        .await
                        .expect("answer");
                }
            }
        });
        address
    }

    #[tokio::test]
    async fn reads_sized_and_chunked_bodies_on_one_connection() {
        let address = serve(vec![vec![
            "HTTP/1.1 201 Created\r\ncontent-length: 7\r\n\r\n{\"a\":1}",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n",
            "HTTP/1.1 409 Conflict\r\ncontent-length: 0\r\n\r\n",
        ]])
        .await;
        let mut conn = Conn::new(&address);
        let body = serde_json::json!({"b": 2});
        let post = Request::json("POST", "/x", &address, Some("t"), &body);
        let first = conn.send(&post).await;
        assert_eq!(
            (first.status, first.json()),
            (201, serde_json::json!({"a": 1}))
        );
        let second = conn.send(&Request::new("GET", "/y", &address, None)).await;
        assert_eq!(
            (second.status, second.json()),
            (200, serde_json::json!([1, 2]))
        );
        let third = conn.send(&post).await;
        assert_eq!((third.status, third.body.len()), (409, 0));
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_opened_again() {
        let address = serve(vec![
            vec!["HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst"],
            vec!["HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond"],
        ])
        .await;
        let mut conn = Conn::new(&address);
        let get = Request::new("GET", "/", &address, None);
        assert_eq!(&conn.send(&get).await.body[..], b"first");
        let again = conn.send(&get).await;
        assert_eq!((again.status, &again.body[..]), (200, &b"second"[..]));
    }

    #[tokio::test]
    async fn a_chunk_size_beyond_any_answer_is_a_failure_not_a_panic() {
        let address = serve(vec![vec![
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\n",
        ]])
        .await;
        let mut conn = Conn::new(&address);
        let failed = conn.send(&Request::new("GET", "/", &address, None)).await;
        assert_eq!(failed.status, 0);
    }

    #[tokio::test]
    async fn a_server_that_is_gone_is_status_0() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        drop(listener);
        let mut conn = Conn::new(&address);
        let failed = conn.send(&Request::new("GET", "/", &address, None)).await;
        assert_eq!(failed.status, 0);
        assert!(conn.stream.is_none());
    }

    #[test]
    fn authority_comes_from_the_base_url() {
        assert_eq!(
            authority("http://127.0.0.1:8080").ok().as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            authority("http://localhost/").ok().as_deref(),
            Some("localhost:80")
        );
        assert!(authority("https://example.test").is_err());
    }
}
