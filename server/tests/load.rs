//! Load on the real binary: thousands of open event streams while a hundred
//! senders keep shell sessions busy. No stream may lose, repeat or reorder a
//! change, every stream's final view must equal the database, and the
//! server's memory must stay bounded. The stream limits answer 503.
//!
//! Sizes default to the issue's figures and can be shrunk for a quick run:
//! `AGENTDECK_LOAD_STREAMS` (2000), `AGENTDECK_LOAD_SENDERS` (100),
//! `AGENTDECK_LOAD_SECS` (30), `AGENTDECK_LOAD_MAX_RSS_MB` (400).

mod support;

use serde::{de::IgnoredAny, Deserialize};
use std::{
    collections::HashMap,
    io::{Read, Write},
    sync::{
        atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use support::Server;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    sync::{watch, Semaphore},
};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

/// Thousands of sockets need more than the usual soft limit of 1024 open
/// files; the server started afterwards inherits the raised limit too.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
}

/// A session's state as a byte, so millions of received changes stay cheap.
fn state_code(state: &str) -> Result<u8, String> {
    match state {
        "idle" => Ok(0),
        "working" => Ok(1),
        "error" => Ok(2),
        other => Err(format!("unknown state {other:?}")),
    }
}

/// One change as a stream delivered it: `session` indexes [`Sessions::ids`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    seq: i32,
    session: u16,
    state: u8,
}

/// The sessions under load, and which project each belongs to.
struct Sessions {
    ids: Vec<String>,
    projects: Vec<i32>,
    index: HashMap<String, u16>,
}

/// What one stream follows: everything, or one project, after `since`.
#[derive(Debug, Clone, Copy)]
struct Spec {
    project: Option<i32>,
    since: i32,
}

impl Spec {
    fn query(self) -> String {
        match self.project {
            Some(project) => format!("project={}&since={}", project, self.since),
            None => format!("since={}", self.since),
        }
    }

    fn contains(self, change: &Change, sessions: &Sessions) -> bool {
        change.seq > self.since
            && self
                .project
                .is_none_or(|p| sessions.projects[usize::from(change.session)] == p)
    }
}

/// The wire form of a stream message (`LiveEvent`): a change is
/// `{"change": {"change": {seq, session_id, to_state, ...}, "session": ...}}`.
/// Anything else the stream might send (a "reset") fails to parse.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    change: Option<Envelope<'a>>,
    #[serde(rename = "output")]
    _output: Option<IgnoredAny>,
    #[serde(rename = "sync_progress")]
    _sync_progress: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    change: WireChange<'a>,
}

#[derive(Deserialize)]
struct WireChange<'a> {
    seq: i32,
    session_id: &'a str,
    to_state: &'a str,
}

/// A minimal SSE client on raw TCP: HTTP/1.1 chunked decoding, `id:` and
/// `data:` lines, events ended by a blank line.
struct SseReader {
    conn: BufReader<TcpStream>,
    chunked: bool,
    /// Decoded body bytes not yet split into lines.
    buf: Vec<u8>,
    id: Option<String>,
    data: String,
}

impl SseReader {
    /// Opens `/api/events?query`; `Err` holds the status and answer when it is not 200.
    async fn open(addr: &str, query: &str) -> Result<Self, String> {
        let mut conn = BufReader::new(TcpStream::connect(addr).await.map_err(|e| e.to_string())?);
        let request = format!(
            "GET /api/events?{query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        );
        conn.get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = String::new();
        loop {
            let before = head.len();
            let n = conn.read_line(&mut head).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!(
                    "connection closed during the answer's head: {head:?}"
                ));
            }
            if head[before..].trim().is_empty() {
                break;
            }
        }
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("answered {head:?}"));
        }
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        Ok(Self {
            conn,
            chunked,
            buf: Vec::new(),
            id: None,
            data: String::new(),
        })
    }

    /// Appends the next piece of the body to `buf`.
    async fn fill(&mut self) -> Result<(), String> {
        let io = |e: std::io::Error| e.to_string();
        if !self.chunked {
            let mut piece = [0u8; 4096];
            let n = self.conn.read(&mut piece).await.map_err(io)?;
            if n == 0 {
                return Err("the stream ended".into());
            }
            self.buf.extend_from_slice(&piece[..n]);
            return Ok(());
        }
        let mut size = String::new();
        if self.conn.read_line(&mut size).await.map_err(io)? == 0 {
            return Err("the stream ended".into());
        }
        let hex = size.trim().split(';').next().unwrap_or("");
        let len = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        if len == 0 {
            return Err("the stream ended".into());
        }
        let start = self.buf.len();
        self.buf.resize(start + len + 2, 0);
        self.conn
            .read_exact(&mut self.buf[start..])
            .await
            .map_err(io)?;
        if &self.buf[start + len..] != b"\r\n" {
            return Err("a chunk did not end with CRLF".into());
        }
        self.buf.truncate(start + len);
        Ok(())
    }

    /// The next change on the stream (output lines and comments skipped).
    async fn next_change(&mut self, sessions: &Sessions) -> Result<Change, String> {
        loop {
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = std::str::from_utf8(&line)
                    .map_err(|_| "a line is not UTF-8".to_owned())?
                    .trim_end_matches(['\n', '\r']);
                if let Some(id) = line.strip_prefix("id:") {
                    self.id = Some(id.trim_start().to_owned());
                } else if let Some(data) = line.strip_prefix("data:") {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(data.strip_prefix(' ').unwrap_or(data));
                } else if line.is_empty() && !self.data.is_empty() {
                    let data = std::mem::take(&mut self.data);
                    let id = self.id.take();
                    if let Some(change) = Self::decode(&data, id.as_deref(), sessions)? {
                        return Ok(change);
                    }
                }
            }
            self.fill().await?;
        }
    }

    fn decode(data: &str, id: Option<&str>, sessions: &Sessions) -> Result<Option<Change>, String> {
        let wire: Wire = serde_json::from_str(data).map_err(|e| format!("{e}: {data}"))?;
        let Some(Envelope { change }) = wire.change else {
            return Ok(None);
        };
        if id != Some(change.seq.to_string().as_str()) {
            return Err(format!("event id {id:?} is not its seq {}", change.seq));
        }
        let session = *sessions
            .index
            .get(change.session_id)
            .ok_or_else(|| format!("change {} for an unknown session", change.seq))?;
        Ok(Some(Change {
            seq: change.seq,
            session,
            state: state_code(change.to_state)?,
        }))
    }
}

/// What one stream received, and why it stopped early if it did.
struct Received {
    changes: Vec<Change>,
    error: Option<String>,
}

/// Shared counters of the open streams.
struct Streams {
    opened: AtomicUsize,
    failed: AtomicUsize,
    /// The last seq each stream received.
    last: Vec<AtomicI32>,
}

/// Follows one stream until `stop`, checking that seqs strictly increase.
async fn follow_stream(
    addr: Arc<str>,
    spec: Spec,
    index: usize,
    sessions: Arc<Sessions>,
    streams: Arc<Streams>,
    opening: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Received {
    let mut received = Received {
        changes: Vec::new(),
        error: None,
    };
    let permit = opening.acquire().await.unwrap();
    let mut reader = match SseReader::open(&addr, &spec.query()).await {
        Ok(reader) => reader,
        Err(err) => {
            streams.failed.fetch_add(1, Ordering::SeqCst);
            received.error = Some(format!("could not open: {err}"));
            return received;
        }
    };
    drop(permit);
    streams.opened.fetch_add(1, Ordering::SeqCst);
    loop {
        let change = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return received,
            change = reader.next_change(&sessions) => change,
        };
        match change {
            Ok(change) => {
                let last = received.changes.last().map_or(spec.since, |c| c.seq);
                if change.seq <= last {
                    received.error = Some(format!("seq {} after {last}", change.seq));
                    return received;
                }
                received.changes.push(change);
                streams.last[index].store(change.seq, Ordering::SeqCst);
            }
            Err(err) => {
                received.error = Some(err);
                return received;
            }
        }
    }
}

/// A keep-alive HTTP/1.1 client for JSON requests (one per sender).
struct Client {
    addr: Arc<str>,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    fn new(addr: Arc<str>) -> Self {
        Self { addr, conn: None }
    }

    /// Sends a request, reconnecting once if the kept-alive connection was closed.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, String), String> {
        let mut last_error = String::new();
        for _ in 0..2 {
            match self.try_request(method, path, body).await {
                Ok(answer) => return Ok(answer),
                Err(err) => {
                    self.conn = None;
                    last_error = err.to_string();
                }
            }
        }
        Err(format!("{method} {path}: {last_error}"))
    }

    async fn try_request(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self
                .conn
                .insert(BufReader::new(TcpStream::connect(&*self.addr).await?)),
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        conn.get_mut().write_all(request.as_bytes()).await?;
        let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("status line {line:?}")))?;
        let (mut length, mut close) = (0, false);
        loop {
            line.clear();
            if conn.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length:") {
                length = value.trim().parse().map_err(|_| bad(header.clone()))?;
            }
            if header.starts_with("transfer-encoding:") {
                return Err(bad(format!("unexpected {header}")));
            }
            close |= header == "connection: close";
        }
        let mut answer = vec![0; length];
        conn.read_exact(&mut answer).await?;
        if close {
            self.conn = None;
        }
        Ok((status, String::from_utf8_lossy(&answer).into_owned()))
    }
}

/// What one sender did.
struct Sent {
    runs: usize,
    busy: usize,
    error: Option<String>,
}

/// Sends `true` to the session over and over until `deadline`: each 202
/// starts a run; 409 (still working) and 429 (run limit) mean try again.
async fn send_until(addr: Arc<str>, session_id: String, deadline: Instant) -> Sent {
    let mut client = Client::new(addr);
    let path = format!("/api/sessions/{session_id}/messages");
    let mut sent = Sent {
        runs: 0,
        busy: 0,
        error: None,
    };
    while Instant::now() < deadline {
        match client.request("POST", &path, r#"{"message":"true"}"#).await {
            Ok((202, _)) => sent.runs += 1,
            Ok((409 | 429, _)) => {
                sent.busy += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            Ok((status, body)) => {
                sent.error = Some(format!("{status}: {body}"));
                break;
            }
            Err(err) => {
                sent.error = Some(err);
                break;
            }
        }
    }
    sent
}

/// How many of the `want`ed changes a stream lacks, and how many it has
/// that it should not (another scope's, a wrong state, a repeat); both are
/// in strictly increasing seq order.
fn compare(want: &[Change], got: &[Change]) -> (usize, usize) {
    let (mut lost, mut wrong) = (0, 0);
    let (mut want, mut got) = (want.iter().peekable(), got.iter().peekable());
    loop {
        match (want.peek(), got.peek()) {
            (Some(w), Some(g)) if w.seq == g.seq => {
                wrong += usize::from(w != g);
                want.next();
                got.next();
            }
            (Some(w), Some(g)) if w.seq < g.seq => {
                lost += 1;
                want.next();
            }
            (_, Some(_)) => {
                wrong += 1;
                got.next();
            }
            (Some(_), None) => {
                lost += 1;
                want.next();
            }
            (None, None) => return (lost, wrong),
        }
    }
}

/// GET returning parsed JSON, or panics naming the request.
async fn get_json(client: &mut Client, path: &str) -> serde_json::Value {
    let (status, body) = client.request("GET", path, "").await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until `done` holds, polling every 100 ms; panics after `limit`.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

#[test]
fn thousands_of_streams_and_a_hundred_senders_lose_no_change() {
    let stream_count = env_or("AGENTDECK_LOAD_STREAMS", 2000);
    let sender_count = env_or("AGENTDECK_LOAD_SENDERS", 100).max(1);
    let secs = env_or("AGENTDECK_LOAD_SECS", 30) as u64;
    let max_rss_mib = env_or("AGENTDECK_LOAD_MAX_RSS_MB", 400) as u64;
    raise_open_file_limit();
    let server = Server::start_with(&["--max-streams-per-client", "100000", "--max-runs", "200"]);

    // Ten projects (fewer with fewer senders), one shell session per sender.
    let project_ids: Vec<i32> = (0..sender_count.min(10))
        .map(|p| server.add_project(&format!("p{p}")))
        .collect();
    let mut sessions = Sessions {
        ids: Vec::new(),
        projects: Vec::new(),
        index: HashMap::new(),
    };
    for i in 0..sender_count {
        let project = project_ids[i % project_ids.len()];
        let id = server.create_session(project, &format!("s{i}"));
        sessions.index.insert(id.clone(), i as u16);
        sessions.ids.push(id);
        sessions.projects.push(project);
    }
    let setup_seq = server.detail(&sessions.ids[0])["seq"].as_i64().unwrap() as i32;
    // One stream in twenty follows everything, the rest one project; half
    // replay from the start, half from after the setup.
    let specs: Vec<Spec> = (0..stream_count)
        .map(|i| Spec {
            project: (i % 20 != 0).then(|| project_ids[i % project_ids.len()]),
            since: if i % 2 == 0 { 0 } else { setup_seq },
        })
        .collect();
    let rss_before = server.rss_kib();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr: Arc<str> = server.addr.clone().into();
    let sessions = Arc::new(sessions);
    let pid = server.child.id();
    let rss_kib = move || support::rss_of(pid);

    runtime.block_on(async move {
        // 1. Open every stream, a few dozen at a time.
        let streams = Arc::new(Streams {
            opened: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            last: (0..stream_count).map(|_| AtomicI32::new(0)).collect(),
        });
        let (stop, stopped) = watch::channel(false);
        let opening = Arc::new(Semaphore::new(64));
        let started = Instant::now();
        let followers: Vec<_> = specs
            .iter()
            .enumerate()
            .map(|(index, &spec)| {
                tokio::spawn(follow_stream(
                    Arc::clone(&addr),
                    spec,
                    index,
                    Arc::clone(&sessions),
                    Arc::clone(&streams),
                    Arc::clone(&opening),
                    stopped.clone(),
                ))
            })
            .collect();
        wait_until("the streams to open", Duration::from_secs(120), || {
            streams.opened.load(Ordering::SeqCst) + streams.failed.load(Ordering::SeqCst)
                == stream_count
        })
        .await;
        let held = streams.opened.load(Ordering::SeqCst);
        let rss_streams = rss_kib();
        eprintln!(
            "load: {held} of {stream_count} streams open in {:.1?}",
            started.elapsed()
        );
        if held < stream_count {
            stop.send_replace(true);
            let mut errors = Vec::new();
            for follower in followers {
                errors.extend(follower.await.unwrap().error);
            }
            panic!(
                "{} of {stream_count} streams failed to open, e.g. {:?}",
                stream_count - held,
                errors.first()
            );
        }

        // 2. The senders, with the server's memory sampled throughout.
        let rss_max = Arc::new(AtomicU64::new(rss_streams));
        let sampler = tokio::spawn({
            let (rss_max, mut stopped) = (Arc::clone(&rss_max), stopped.clone());
            async move {
                loop {
                    rss_max.fetch_max(rss_kib(), Ordering::SeqCst);
                    tokio::select! {
                        _ = stopped.wait_for(|stop| *stop) => return,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(secs);
        let senders: Vec<_> = sessions
            .ids
            .iter()
            .map(|id| tokio::spawn(send_until(Arc::clone(&addr), id.clone(), deadline)))
            .collect();
        let (mut runs, mut busy) = (0, 0);
        for sender in senders {
            let sent = sender.await.unwrap();
            assert!(sent.error.is_none(), "a sender failed: {:?}", sent.error);
            assert!(sent.runs > 0, "a sender never got a run started");
            runs += sent.runs;
            busy += sent.busy;
        }

        // 3. Let the last runs finish, then read the whole change log.
        let mut client = Client::new(Arc::clone(&addr));
        let finish = Instant::now();
        loop {
            let mut working = 0;
            for project in &project_ids {
                let list = get_json(&mut client, &format!("/api/projects/{project}/sessions")).await;
                working += list
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["state"] == "working")
                    .count();
            }
            if working == 0 {
                break;
            }
            assert!(finish.elapsed() < Duration::from_secs(60), "{working} sessions stay working");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let high_water = get_json(&mut client, &format!("/api/sessions/{}", sessions.ids[0])).await
            ["seq"]
            .as_i64()
            .unwrap() as i32;
        let mut log_reader = SseReader::open(&addr, "since=0").await.unwrap();
        let mut log: Vec<Change> = Vec::new();
        while log.last().is_none_or(|c| c.seq < high_water) {
            let change = tokio::time::timeout(Duration::from_secs(30), log_reader.next_change(&sessions))
                .await
                .expect("the change log replay went quiet")
                .unwrap();
            assert!(log.last().is_none_or(|c| c.seq < change.seq), "log out of order");
            log.push(change);
        }
        drop(log_reader);

        // 4. Every stream must reach the last change in its scope.
        let expected_last: Vec<i32> = specs
            .iter()
            .map(|spec| {
                log.iter()
                    .rev()
                    .find(|c| spec.contains(c, &sessions))
                    .map_or(0, |c| c.seq)
            })
            .collect();
        // A stream that never gets there is counted as lost below, not a hang.
        let drain_start = Instant::now();
        while drain_start.elapsed() < Duration::from_secs(120)
            && !followers.iter().any(|f| f.is_finished())
            && !streams
                .last
                .iter()
                .zip(&expected_last)
                .all(|(last, &want)| last.load(Ordering::SeqCst) >= want)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let drain = drain_start.elapsed();
        stop.send_replace(true);
        sampler.await.unwrap();
        let mut received = Vec::new();
        for follower in followers {
            received.push(follower.await.unwrap());
        }

        // 5. The database's view, and each stream's against the log and it.
        let mut db_state: HashMap<&str, u8> = HashMap::new();
        for project in &project_ids {
            for session in get_json(&mut client, &format!("/api/projects/{project}/sessions"))
                .await
                .as_array()
                .unwrap()
            {
                let id = session["id"].as_str().unwrap();
                let id = sessions.ids.iter().find(|s| *s == id).unwrap();
                db_state.insert(id, state_code(session["state"].as_str().unwrap()).unwrap());
            }
        }
        assert_eq!(db_state.len(), sessions.ids.len());
        let (mut delivered, mut lost, mut wrong, mut views_differ) = (0usize, 0usize, 0usize, 0usize);
        let mut first_problem: Option<String> = None;
        for (index, (spec, got)) in specs.iter().zip(&received).enumerate() {
            if let Some(err) = &got.error {
                first_problem.get_or_insert_with(|| format!("stream {index}: {err}"));
            }
            delivered += got.changes.len();
            let want: Vec<Change> = log
                .iter()
                .filter(|c| spec.contains(c, &sessions))
                .copied()
                .collect();
            let (missing, unexpected) = compare(&want, &got.changes);
            lost += missing;
            wrong += unexpected;
            let mut view: HashMap<&str, u8> = HashMap::new();
            for change in &got.changes {
                view.insert(&sessions.ids[usize::from(change.session)], change.state);
            }
            let mut db_view: HashMap<&str, u8> = db_state.clone();
            db_view.retain(|id, _| spec.project.is_none_or(|p| sessions.projects[usize::from(sessions.index[*id])] == p));
            if view != db_view {
                views_differ += 1;
                first_problem.get_or_insert_with(|| {
                    format!("stream {index} ({spec:?}) ends with {view:?}, the database has {db_view:?}")
                });
            }
        }
        let rss_end = rss_kib();
        let rss_max = rss_max.load(Ordering::SeqCst).max(rss_end);
        eprintln!(
            "load: {held} streams held, {sender_count} senders for {secs} s: {runs} runs \
             ({busy} busy answers), {} changes in the log ({} during the load); \
             {delivered} changes delivered, {lost} lost, {wrong} wrong, {views_differ} views \
             differing from the database; streams caught up {drain:.1?} after the last run",
            log.len(),
            high_water - setup_seq,
        );
        eprintln!(
            "load: server RSS {} MiB before the streams, {} MiB with them open, {} MiB peak, {} MiB at the end",
            rss_before / 1024,
            rss_streams / 1024,
            rss_max / 1024,
            rss_end / 1024
        );
        assert_eq!(held, stream_count, "streams that could not open");
        assert_eq!(first_problem, None);
        assert_eq!((lost, wrong, views_differ), (0, 0, 0));
        assert!(
            rss_max < max_rss_mib * 1024,
            "the server grew to {} MiB (bound {max_rss_mib} MiB)",
            rss_max / 1024
        );
    });
}

/// Opens an event stream with a blocking socket; returns it once the server
/// answered 200, so the stream counts against the limits.
fn open_stream(server: &Server) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /api/events?since=0 HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

/// Asks for one more stream than allowed: 503 with `Retry-After` and a JSON error.
fn assert_refused(server: &Server) {
    let (status, head, body) = server.send(
        "GET",
        "/api/events?since=0",
        "Accept: text/event-stream\r\n",
        b"",
    );
    assert_eq!(status, 503, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: "),
        "no Retry-After: {head}"
    );
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("stream")),
        "{body}"
    );
    // Everything but new streams is still served.
    let (status, _) = server.json("GET", "/api/projects", None);
    assert_eq!(status, 200);
}

#[test]
fn the_stream_limit_answers_503_with_retry_after() {
    let server = Server::start_with(&["--max-streams", "50"]);
    let held: Vec<_> = (0..50).map(|_| open_stream(&server)).collect();
    assert_refused(&server);
    drop(held);
}

#[test]
fn the_per_client_stream_limit_answers_503_with_retry_after() {
    let server = Server::start_with(&["--max-streams-per-client", "5"]);
    let held: Vec<_> = (0..5).map(|_| open_stream(&server)).collect();
    assert_refused(&server);
    drop(held);
}
