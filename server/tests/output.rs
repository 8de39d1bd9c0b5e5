//! A running run's output on the real `agentdeck` binary: a page or stream
//! opened mid-run gets the lines printed so far (the session's detail, its
//! page and its event stream), then the rest live, none missing or doubled.

mod support;

use serde_json::Value;
use std::{
    io::{BufRead, BufReader, Read},
    net::TcpStream,
    time::{Duration, Instant},
};
use support::Server;

/// Prints line-1 … line-30, a tenth of a second apart.
const SLOW_PRINT: &str = "for i in $(seq 1 30); do echo line-$i; sleep 0.1; done";

/// The events of one open stream, read from its body (chunked or not).
struct Events {
    body: BufReader<TcpStream>,
    chunked: bool,
    /// Decoded body text not yet split into lines.
    text: String,
}

impl Events {
    fn open(server: &Server, query: &str) -> Self {
        let (status, head, stream) = server.open_events(query, &[]);
        assert_eq!(status, 200, "{head}");
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        Self {
            body: BufReader::new(stream),
            chunked,
            text: String::new(),
        }
    }

    /// The next event's data, as JSON.
    fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let event: String = self.text.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|line| line.strip_prefix("data: "))
                    .collect();
                if !data.is_empty() {
                    return serde_json::from_str(&data.join("\n")).unwrap();
                }
                continue;
            }
            self.fill();
        }
    }

    /// The next output event's (run id, number, line), skipping others.
    fn next_line(&mut self) -> (String, u64, String) {
        loop {
            let event = self.next();
            if let Some(output) = event.get("output") {
                return (
                    output["run_id"].as_str().unwrap().to_owned(),
                    output["n"].as_u64().unwrap(),
                    output["line"].as_str().unwrap().to_owned(),
                );
            }
        }
    }

    /// Reads the next piece of the body into `text`.
    fn fill(&mut self) {
        let piece = if self.chunked {
            let mut size = String::new();
            self.body
                .read_line(&mut size)
                .expect("the stream went quiet");
            let len = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
            assert!(len > 0, "the stream ended");
            let mut piece = vec![0; len + 2];
            self.body.read_exact(&mut piece).unwrap();
            piece.truncate(len);
            piece
        } else {
            let mut piece = vec![0; 4096];
            let n = self.body.read(&mut piece).expect("the stream went quiet");
            assert!(n > 0, "the stream ended");
            piece.truncate(n);
            piece
        };
        self.text.push_str(&String::from_utf8(piece).unwrap());
    }
}

/// The stream's output lines until line-30, checked to be run `run`'s
/// lines 1 to 30, in order, each once.
fn assert_whole_output(events: &mut Events, run: &str) {
    let mut numbers = Vec::new();
    while numbers.last() != Some(&30) {
        let (run_id, n, line) = events.next_line();
        assert_eq!((run_id.as_str(), line), (run, format!("line-{n}")));
        numbers.push(n);
    }
    assert_eq!(
        numbers,
        (1..=30).collect::<Vec<_>>(),
        "lines missing or doubled"
    );
}

#[test]
fn a_page_opened_mid_run_gets_the_output_so_far_then_the_rest_live() {
    let server = Server::start();
    let project = server.add_project("project");
    let id = server.create_session(project, "printer");
    server.send_message(&id, SLOW_PRINT);

    // The detail carries the lines printed so far, numbered from 1.
    let started = Instant::now();
    let detail = server.wait_for(&id, |d| {
        d["output"]["lines"]
            .as_array()
            .is_some_and(|l| l.len() >= 3)
    });
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the run is nearly over"
    );
    assert_eq!(detail["session"]["state"], "working");
    let output = &detail["output"];
    let run = output["run_id"].as_str().unwrap().to_owned();
    assert_eq!(detail["runs"][0]["id"], run.as_str());
    let lines: Vec<&str> = output["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=lines.len()).map(|n| format!("line-{n}")).collect();
    assert_eq!(lines, expected);
    assert_eq!(output["last"], lines.len());

    // A stream opened now gets them again, then the rest live.
    let seq = detail["seq"].as_i64().unwrap();
    let mut first = Events::open(&server, &format!("session={id}&since={seq}"));

    // So does the page, rendered with them, and a stream opened later still.
    let page = server.get(&format!("/projects/{project}/sessions/{id}"), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    let live_output = page
        .body
        .split_once(r#"class="live-output">"#)
        .map(|(_, rest)| rest.split("</pre>").next().unwrap_or_default())
        .unwrap_or_else(|| panic!("no live output on the page: {}", page.body));
    assert!(
        live_output.starts_with("line-1\nline-2\nline-3"),
        "{live_output}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut later = Events::open(&server, &format!("session={id}&since={seq}"));

    assert_whole_output(&mut first, &run);
    assert_whole_output(&mut later, &run);

    // Once the run has ended, the backlog is gone.
    let ended = server.wait_for(&id, |d| {
        d["session"]["state"] == "idle" && d["output"].is_null()
    });
    assert_eq!(ended["runs"][0]["outcome"], "succeeded");
}
