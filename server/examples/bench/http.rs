//! The benchmark's client side: keep-alive HTTP/1.1 requests and event
//! streams over hyper, the same code for agentdeck and its baselines.

use http_body_util::{BodyExt, Full};
use hyper::{
    body::{Bytes, Incoming},
    client::conn::http1,
    Request,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Microseconds since the epoch: the one clock every process here stamps
/// with (the server's commit log uses the same function).
pub use app::db::now_micros as now_us;

/// One kept-alive connection.
pub struct Http {
    sender: http1::SendRequest<Full<Bytes>>,
    addr: String,
}

impl Http {
    pub async fn connect(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(Self {
            sender,
            addr: addr.to_owned(),
        })
    }

    async fn start(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<hyper::Response<Incoming>, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.addr);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        // The server closes a connection idle for longer than its header
        // timeout: start a new one then, as a browser would.
        if self.sender.ready().await.is_err() {
            *self = Self::connect(&self.addr).await?;
            self.sender.ready().await.map_err(|e| e.to_string())?;
        }
        self.sender
            .send_request(request)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), String> {
        let response = self.start(method, path, headers, body).await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }

    /// A JSON request; the answer must have status `want`.
    pub async fn json(
        &mut self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
        want: u16,
    ) -> Result<serde_json::Value, String> {
        let (status, answer) = self
            .send(
                method,
                path,
                &[("content-type", "application/json")],
                body.to_string().into_bytes(),
            )
            .await?;
        if status != want {
            return Err(format!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        serde_json::from_slice(&answer).map_err(|e| format!("{method} {path}: {e}"))
    }

    pub async fn get_json(&mut self, path: &str) -> Result<serde_json::Value, String> {
        let (status, answer) = self.send("GET", path, &[], Vec::new()).await?;
        if status != 200 {
            return Err(format!("GET {path}: {status}"));
        }
        serde_json::from_slice(&answer).map_err(|e| format!("GET {path}: {e}"))
    }
}

/// One event as received: its id, the number at the start of its data (a
/// baseline's send instant), its data's length and when it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub id: i64,
    pub stamp_us: Option<u64>,
    pub data_len: usize,
    pub at_us: u64,
}

/// An open event stream.
pub struct EventStream {
    body: Incoming,
    buf: Vec<u8>,
    id: Option<i64>,
    data: Vec<u8>,
}

impl EventStream {
    /// Opens `path` on a connection of its own; returns once the answer's
    /// head arrived (the server has subscribed by then).
    pub async fn open(addr: &str, path: &str, last_event_id: Option<i64>) -> Result<Self, String> {
        let mut http = Http::connect(addr).await?;
        let last = last_event_id.map(|id| id.to_string());
        let mut headers = vec![("accept", "text/event-stream")];
        if let Some(last) = &last {
            headers.push(("last-event-id", last));
        }
        let response = http.start("GET", path, &headers, Vec::new()).await?;
        if response.status() != 200 {
            return Err(format!("GET {path}: {}", response.status()));
        }
        Ok(Self {
            body: response.into_body(),
            buf: Vec::with_capacity(1024),
            id: None,
            data: Vec::new(),
        })
    }

    /// The next event, stamped when the piece ending it arrived; `None`
    /// when the stream ends.
    pub async fn next(&mut self) -> Option<Received> {
        loop {
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let Some(id) = line.strip_prefix(b"id:") {
                    self.id = std::str::from_utf8(id)
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                } else if let Some(data) = line.strip_prefix(b"data:") {
                    self.data
                        .extend_from_slice(data.strip_prefix(b" ").unwrap_or(data));
                } else if line.is_empty() && !self.data.is_empty() {
                    let at_us = now_us();
                    let stamp_us = self
                        .data
                        .split(|&b| b == b' ')
                        .next()
                        .and_then(|s| std::str::from_utf8(s).ok()?.parse().ok());
                    let event = Received {
                        id: self.id.take().unwrap_or(-1),
                        stamp_us,
                        data_len: self.data.len(),
                        at_us,
                    };
                    self.data.clear();
                    return Some(event);
                }
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}
