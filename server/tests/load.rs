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
    path::PathBuf,
    sync::{
        atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use support::{Reply, Server};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    sync::{watch, Semaphore},
    task::JoinHandle,
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

/// Every entry of the change log in the database, in seq order.
fn change_log(database: &std::path::Path, sessions: &Sessions) -> Vec<Change> {
    use diesel::{
        sql_types::{Integer, Text},
        Connection, QueryableByName, RunQueryDsl, SqliteConnection,
    };
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Integer)]
        seq: i32,
        #[diesel(sql_type = Text)]
        session_id: String,
        #[diesel(sql_type = Text)]
        to_state: String,
    }
    let mut conn = SqliteConnection::establish(database.to_str().unwrap()).unwrap();
    let rows: Vec<Row> =
        diesel::sql_query("SELECT seq, session_id, to_state FROM session_transitions ORDER BY seq")
            .load(&mut conn)
            .unwrap();
    rows.into_iter()
        .map(|row| Change {
            seq: row.seq,
            session: sessions.index[&row.session_id],
            state: state_code(&row.to_state).unwrap(),
        })
        .collect()
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

/// The server under load and what was set up on it.
struct Load {
    addr: Arc<str>,
    pid: u32,
    database: PathBuf,
    project_ids: Vec<i32>,
    sessions: Arc<Sessions>,
    specs: Vec<Spec>,
    setup_seq: i32,
    secs: u64,
}

impl Load {
    /// Ten projects (fewer with fewer senders), one shell session per
    /// sender. One stream in twenty follows everything, the rest one
    /// project; half replay from the start, half from after the setup.
    fn set_up(server: &Server, stream_count: usize, sender_count: usize, secs: u64) -> Self {
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
        let specs = (0..stream_count)
            .map(|i| Spec {
                project: (i % 20 != 0).then(|| project_ids[i % project_ids.len()]),
                since: if i % 2 == 0 { 0 } else { setup_seq },
            })
            .collect();
        Self {
            addr: server.addr.clone().into(),
            pid: server.child.id(),
            database: server.database(),
            project_ids,
            sessions: Arc::new(sessions),
            specs,
            setup_seq,
            secs,
        }
    }

    fn rss_kib(&self) -> u64 {
        support::rss_of(self.pid)
    }
}

/// What the load test measured.
#[derive(Debug, Default)]
struct Figures {
    held: usize,
    runs: usize,
    busy: usize,
    log_len: usize,
    during_load: i32,
    delivered: usize,
    lost: usize,
    wrong: usize,
    views_differ: usize,
    first_problem: Option<String>,
    drain: Duration,
    rss_streams: u64,
    rss_max: u64,
    rss_end: u64,
}

#[test]
fn thousands_of_streams_and_a_hundred_senders_lose_no_change() {
    let stream_count = env_or("AGENTDECK_LOAD_STREAMS", 2000);
    let sender_count = env_or("AGENTDECK_LOAD_SENDERS", 100).max(1);
    let secs = env_or("AGENTDECK_LOAD_SECS", 30) as u64;
    let max_rss_mib = env_or("AGENTDECK_LOAD_MAX_RSS_MB", 400) as u64;
    raise_open_file_limit();
    let server = Server::options()
        .args(&["--max-streams-per-client", "100000", "--max-runs", "200"])
        .start();
    let load = Load::set_up(&server, stream_count, sender_count, secs);
    let rss_before = server.rss_kib();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let f = runtime.block_on(run(load));

    eprintln!(
        "load: {} of {stream_count} streams held, {sender_count} senders for {secs} s: \
         {} runs ({} busy answers), {} changes in the log ({} during the load); \
         {} changes delivered, {} lost, {} wrong, {} views differing from the database; \
         streams caught up {:.1?} after the last run",
        f.held,
        f.runs,
        f.busy,
        f.log_len,
        f.during_load,
        f.delivered,
        f.lost,
        f.wrong,
        f.views_differ,
        f.drain,
    );
    eprintln!(
        "load: server RSS {} MiB before the streams, {} MiB with them open, \
         {} MiB peak, {} MiB at the end",
        rss_before / 1024,
        f.rss_streams / 1024,
        f.rss_max / 1024,
        f.rss_end / 1024
    );
    assert_eq!(f.held, stream_count, "streams that could not open");
    assert_eq!(f.first_problem, None);
    assert_eq!((f.lost, f.wrong, f.views_differ), (0, 0, 0));
    assert!(
        f.rss_max < max_rss_mib * 1024,
        "the server grew to {} MiB (bound {max_rss_mib} MiB)",
        f.rss_max / 1024
    );
}

/// Opens every stream, runs the senders, lets the last runs finish, then
/// checks every stream against the change log and the database.
async fn run(load: Load) -> Figures {
    let mut figures = Figures::default();
    let (stop, stopped) = watch::channel(false);
    let (streams, followers) = open_streams(&load, &stopped).await;
    figures.held = streams.opened.load(Ordering::SeqCst);
    figures.rss_streams = load.rss_kib();
    if figures.held < load.specs.len() {
        stop.send_replace(true);
        for follower in followers {
            if let Some(err) = follower.await.unwrap().error {
                figures.first_problem.get_or_insert(err);
            }
        }
        return figures;
    }

    // The server's memory is sampled throughout.
    let rss_max = Arc::new(AtomicU64::new(figures.rss_streams));
    let sampler = tokio::spawn({
        let (rss_max, mut stopped, pid) = (Arc::clone(&rss_max), stopped.clone(), load.pid);
        async move {
            loop {
                rss_max.fetch_max(support::rss_of(pid), Ordering::SeqCst);
                tokio::select! {
                    _ = stopped.wait_for(|stop| *stop) => return,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        }
    });
    (figures.runs, figures.busy) = run_senders(&load).await;
    let mut client = Client::new(Arc::clone(&load.addr));
    wait_for_idle(&load, &mut client).await;

    // The change log straight from the file: the API may bound long replays.
    let detail = get_json(
        &mut client,
        &format!("/api/sessions/{}", load.sessions.ids[0]),
    )
    .await;
    let high_water = detail["seq"].as_i64().unwrap() as i32;
    let log = tokio::task::spawn_blocking({
        let (database, sessions) = (load.database.clone(), Arc::clone(&load.sessions));
        move || change_log(&database, &sessions)
    })
    .await
    .unwrap();
    assert_eq!(log.last().map(|c| c.seq), Some(high_water));
    figures.log_len = log.len();
    figures.during_load = high_water - load.setup_seq;

    // Every stream must reach the last change in its scope; one that never
    // does is counted as lost below rather than hanging the test.
    let expected_last: Vec<i32> = load
        .specs
        .iter()
        .map(|spec| {
            log.iter()
                .rev()
                .find(|c| spec.contains(c, &load.sessions))
                .map_or(0, |c| c.seq)
        })
        .collect();
    let caught_up = || {
        streams
            .last
            .iter()
            .zip(&expected_last)
            .all(|(last, &want)| last.load(Ordering::SeqCst) >= want)
    };
    let drain_start = Instant::now();
    while drain_start.elapsed() < Duration::from_secs(120)
        && !followers.iter().any(|f| f.is_finished())
        && !caught_up()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    figures.drain = drain_start.elapsed();
    stop.send_replace(true);
    sampler.await.unwrap();
    let mut received = Vec::new();
    for follower in followers {
        received.push(follower.await.unwrap());
    }

    let db_state = database_states(&load, &mut client).await;
    check_streams(&load, &log, &received, &db_state, &mut figures);
    figures.rss_end = load.rss_kib();
    figures.rss_max = rss_max.load(Ordering::SeqCst).max(figures.rss_end);
    figures
}

/// Starts a follower per spec, a few dozen connecting at a time, and waits
/// until each has its stream open (or failed to).
async fn open_streams(
    load: &Load,
    stopped: &watch::Receiver<bool>,
) -> (Arc<Streams>, Vec<JoinHandle<Received>>) {
    let count = load.specs.len();
    let streams = Arc::new(Streams {
        opened: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        last: (0..count).map(|_| AtomicI32::new(0)).collect(),
    });
    let opening = Arc::new(Semaphore::new(64));
    let started = Instant::now();
    let followers = load
        .specs
        .iter()
        .enumerate()
        .map(|(index, &spec)| {
            tokio::spawn(follow_stream(
                Arc::clone(&load.addr),
                spec,
                index,
                Arc::clone(&load.sessions),
                Arc::clone(&streams),
                Arc::clone(&opening),
                stopped.clone(),
            ))
        })
        .collect();
    wait_until("the streams to open", Duration::from_secs(120), || {
        streams.opened.load(Ordering::SeqCst) + streams.failed.load(Ordering::SeqCst) == count
    })
    .await;
    eprintln!(
        "load: {} of {count} streams open in {:.1?}",
        streams.opened.load(Ordering::SeqCst),
        started.elapsed()
    );
    (streams, followers)
}

/// One sender per session for the test's duration; returns the runs
/// started and the busy answers received.
async fn run_senders(load: &Load) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(load.secs);
    let senders: Vec<_> = load
        .sessions
        .ids
        .iter()
        .map(|id| tokio::spawn(send_until(Arc::clone(&load.addr), id.clone(), deadline)))
        .collect();
    let (mut runs, mut busy) = (0, 0);
    for sender in senders {
        let sent = sender.await.unwrap();
        assert!(sent.error.is_none(), "a sender failed: {:?}", sent.error);
        assert!(sent.runs > 0, "a sender never got a run started");
        runs += sent.runs;
        busy += sent.busy;
    }
    (runs, busy)
}

/// Waits for the last runs to finish.
async fn wait_for_idle(load: &Load, client: &mut Client) {
    let start = Instant::now();
    loop {
        let states = database_states(load, client).await;
        let working = states.iter().filter(|(_, &state)| state == 1).count();
        if working == 0 {
            return;
        }
        let waited = start.elapsed();
        assert!(
            waited < Duration::from_secs(60),
            "{working} sessions stay working"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each session's state as the API reads it from the database, by index.
async fn database_states(load: &Load, client: &mut Client) -> HashMap<u16, u8> {
    let mut states = HashMap::new();
    for project in &load.project_ids {
        let list = get_json(client, &format!("/api/projects/{project}/sessions")).await;
        for session in list.as_array().unwrap() {
            let index = load.sessions.index[session["id"].as_str().unwrap()];
            let state = state_code(session["state"].as_str().unwrap()).unwrap();
            states.insert(index, state);
        }
    }
    assert_eq!(states.len(), load.sessions.ids.len());
    states
}

/// Each stream against its part of the change log (nothing lost, nothing
/// extra) and its final view (last state per session) against the database.
fn check_streams(
    load: &Load,
    log: &[Change],
    received: &[Received],
    db_state: &HashMap<u16, u8>,
    figures: &mut Figures,
) {
    for (index, (spec, got)) in load.specs.iter().zip(received).enumerate() {
        if let Some(err) = &got.error {
            figures
                .first_problem
                .get_or_insert_with(|| format!("stream {index}: {err}"));
        }
        figures.delivered += got.changes.len();
        let want: Vec<Change> = log
            .iter()
            .filter(|c| spec.contains(c, &load.sessions))
            .copied()
            .collect();
        let (lost, wrong) = compare(&want, &got.changes);
        figures.lost += lost;
        figures.wrong += wrong;
        let view: HashMap<u16, u8> = got.changes.iter().map(|c| (c.session, c.state)).collect();
        let mut db_view = db_state.clone();
        db_view.retain(|&session, _| {
            spec.project
                .is_none_or(|p| load.sessions.projects[usize::from(session)] == p)
        });
        if view != db_view {
            figures.views_differ += 1;
            figures.first_problem.get_or_insert_with(|| {
                format!(
                    "stream {index} ({spec:?}) ends with {view:?}, the database has {db_view:?}"
                )
            });
        }
    }
}

/// Opens an event stream with a blocking socket; returns it once the server
/// answered 200, so the stream counts against the limits.
fn open_stream(server: &Server) -> std::net::TcpStream {
    let (status, head, stream) = server.open_events("since=0", &[]);
    assert_eq!(status, 200, "{head}");
    stream
}

/// Asks for one more stream than allowed: 503 with `Retry-After` and a JSON error.
fn assert_refused(server: &Server) {
    let Reply { status, head, body } = server.send(
        "GET",
        "/api/events?since=0",
        &["Accept: text/event-stream"],
        "",
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
    let server = Server::options().args(&["--max-streams", "50"]).start();
    let held: Vec<_> = (0..50).map(|_| open_stream(&server)).collect();
    assert_refused(&server);
    drop(held);
}

#[test]
fn the_per_client_stream_limit_answers_503_with_retry_after() {
    let server = Server::options()
        .args(&["--max-streams-per-client", "5"])
        .start();
    let held: Vec<_> = (0..5).map(|_| open_stream(&server)).collect();
    assert_refused(&server);
    drop(held);
}

#[test]
fn the_checker_counts_lost_and_unexpected_changes() {
    let c = |seq, state| Change {
        seq,
        session: 0,
        state,
    };
    let want = [c(1, 0), c(2, 1), c(3, 0)];
    assert_eq!(compare(&want, &want), (0, 0));
    assert_eq!(compare(&want, &[c(1, 0), c(3, 0)]), (1, 0));
    assert_eq!(compare(&want, &[]), (3, 0));
    assert_eq!(
        compare(&want, &[c(1, 0), c(2, 2), c(3, 0), c(4, 1)]),
        (0, 2),
        "a wrong state and a change from outside the scope"
    );
}
