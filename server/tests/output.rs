//! A running run's output on the real `agentdeck` binary: a page or stream
//! opened mid-run gets the lines printed so far (the session's detail, its
//! page and its event stream), then the rest live, none missing or doubled.

mod support;

use std::time::{Duration, Instant};
use support::{Events, Server};

/// Prints line-1 … line-30, a tenth of a second apart.
const SLOW_PRINT: &str = "for i in $(seq 1 30); do echo line-$i; sleep 0.1; done";

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
