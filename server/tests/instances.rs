//! Two real `agentdeck serve` processes on one PostgreSQL database (a
//! scratch database on the cluster `AGENTDECK_TEST_PG_URL` names): what one
//! instance does reaches the other's pages live, a cancel on either stops
//! the process group wherever it runs, a new instance leaves a live one's
//! runs alone, and an instance killed with SIGKILL has its runs interrupted
//! by the other. Without PostgreSQL each test says it is skipped and passes.

mod support;

use app::db::scratch::ScratchDatabase;
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use serde_json::Value;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use support::{Events, Server};

/// What a test prints when there is no cluster to run on.
const SKIPPED: &str = "skipped: needs PostgreSQL (AGENTDECK_TEST_PG_URL)";

/// A scratch database on the test cluster, or `None` (the skip printed).
fn scratch() -> Option<ScratchDatabase> {
    let db = ScratchDatabase::on_test_cluster();
    if db.is_none() {
        eprintln!("{SKIPPED}");
    }
    db
}

/// An instance on `db` with a lease of `lease` seconds, on a directory of
/// its own. The per-user data directory (where a PostgreSQL server keeps
/// its token and URL files) points into that directory too, never at the
/// developer's own.
fn instance(db: &ScratchDatabase, lease: &str) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    Server::options()
        .dir(Arc::clone(&dir))
        .default_database()
        .args(&["--database-url", db.url(), "--lease", lease])
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .start()
}

/// A project on `server` with one shell session; returns the session's id.
fn shell_session(server: &Server, name: &str) -> String {
    let project = server.add_project(name);
    server.create_session(project, name)
}

/// The session's current run's process (the leader of its group), once
/// the runner has recorded it.
fn run_pid(server: &Server, session_id: &str) -> i32 {
    let detail = server.wait_for(session_id, |d| d["runs"][0]["pid"].is_i64());
    detail["runs"][0]["pid"].as_i64().unwrap() as i32
}

/// Kills process group `pgid` when dropped (a run whose instance was
/// killed leaves its agent behind; a failed test must not leak one either).
struct KillGroup(i32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if group_alive(self.0) {
            let _ = kill(Pid::from_raw(-self.0), Signal::SIGKILL);
        }
    }
}

/// Whether a live (not zombie) process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp …`: the name may hold spaces and ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// Whether process `pid` is still running (gone or a zombie: not).
fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// Polls `check` every 50 ms for up to `within`; whether it ever held.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Both instances' stderr, for a failure message.
fn logs(a: &Server, b: &Server) -> String {
    format!(
        "--- A's stderr ---\n{}\n--- B's stderr ---\n{}",
        a.stderr(),
        b.stderr()
    )
}

/// The changes of a stream until session `id`'s entry with `reason`
/// (included), checked to come in `seq` order with no `seq` twice.
fn changes_until(events: &mut Events, id: &str, reason: &str) -> Vec<Value> {
    let mut changes: Vec<Value> = Vec::new();
    loop {
        let change = events.next_change();
        let seq = change["seq"].as_i64().expect("a change has a seq");
        if let Some(last) = changes.last() {
            assert!(
                seq > last["seq"].as_i64().unwrap(),
                "seq {seq} after {}: out of order or twice\n{changes:#?}",
                last["seq"]
            );
        }
        let done = change["session_id"] == id && change["reason"] == reason;
        changes.push(change);
        if done {
            return changes;
        }
    }
}

#[test]
fn a_run_started_on_a_is_followed_live_on_b() {
    let Some(db) = scratch() else { return };
    let a = instance(&db, "30");
    let b = instance(&db, "30");
    let id = shell_session(&a, "followed");

    // Both streams open before the run, from the change log's end as B sees it.
    let seq = b.detail(&id)["seq"].as_i64().expect("the detail has a seq");
    let mut on_b = Events::open(&b, &format!("since={seq}"));
    let mut on_a = Events::open(&a, &format!("since={seq}"));

    let sent_at = Instant::now();
    a.send_message(&id, "echo hi; sleep 1");
    let until_sent = changes_until(&mut on_b, &id, "sent");
    eprintln!(
        "B's stream had A's start after {} ms",
        sent_at.elapsed().as_millis()
    );
    let sent = until_sent.last().unwrap();
    assert_eq!(sent["to_state"], "working", "{sent}");
    // B reads the state from the shared database.
    let detail = b.detail(&id);
    assert_eq!(
        detail["session"]["state"],
        "working",
        "{detail}\n{}",
        logs(&a, &b)
    );

    let rest = changes_until(&mut on_b, &id, "succeeded");
    let succeeded = rest.last().unwrap();
    assert_eq!(succeeded["to_state"], "idle", "{succeeded}");
    assert!(
        rest[0]["seq"].as_i64() > sent["seq"].as_i64(),
        "{sent} then {}",
        rest[0]
    );
    let seen_on_b: Vec<Value> = until_sent.into_iter().chain(rest).collect();
    let reasons: Vec<&str> = seen_on_b
        .iter()
        .filter(|c| c["session_id"] == id.as_str())
        .map(|c| c["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["sent", "succeeded"], "{seen_on_b:#?}");

    // A's own page got the very same changes, in the same order.
    let seen_on_a = changes_until(&mut on_a, &id, "succeeded");
    let seqs = |changes: &[Value]| -> Vec<i64> {
        changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect()
    };
    assert_eq!(seqs(&seen_on_b), seqs(&seen_on_a));

    let detail = b.detail(&id);
    assert_eq!(detail["session"]["state"], "idle", "{detail}");
    assert_eq!(detail["runs"][0]["outcome"], "succeeded", "{detail}");
    let contents: Vec<&str> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["echo hi; sleep 1", "hi"], "{detail}");
}

#[test]
fn cancel_on_b_stops_the_process_group_on_a() {
    let Some(db) = scratch() else { return };
    let a = instance(&db, "30");
    let b = instance(&db, "30");
    let id = shell_session(&a, "cancelled");
    a.send_message(&id, "sleep 60");
    let pgid = run_pid(&a, &id);
    let _cleanup = KillGroup(pgid);
    assert!(group_alive(pgid), "the run's process group is not running");

    let asked = Instant::now();
    let (status, session) = b.json("POST", &format!("/api/sessions/{id}/cancel"), None);
    assert_eq!(status, 200, "{session}\n{}", logs(&a, &b));
    assert_eq!(session["state"], "idle", "{session}");
    eprintln!(
        "cancel on B answered after {} ms",
        asked.elapsed().as_millis()
    );

    assert!(
        eventually(Duration::from_secs(5), || !group_alive(pgid)),
        "process group {pgid} still runs after the cancel\n{}",
        logs(&a, &b)
    );
    assert!(!process_alive(pgid));
    for server in [&a, &b] {
        let detail = server.detail(&id);
        assert_eq!(detail["session"]["state"], "idle", "{detail}");
        assert_eq!(detail["runs"][0]["outcome"], "cancelled", "{detail}");
    }
}

#[test]
fn b_starting_while_a_runs_leaves_a_alone() {
    let Some(db) = scratch() else { return };
    // A short lease: B's reaper passes every second, and a heartbeat of A
    // that had stopped would be stale within the wait below.
    let lease = 3;
    let a = instance(&db, &lease.to_string());
    let id = shell_session(&a, "left-alone");
    a.send_message(&id, "sleep 60");
    let pgid = run_pid(&a, &id);
    let _cleanup = KillGroup(pgid);

    // B recovers at startup, before it serves: A's run is not an orphan.
    let b = instance(&db, &lease.to_string());
    let still_running = |when: &str| {
        for (name, server) in [("A", &a), ("B", &b)] {
            let detail = server.detail(&id);
            assert_eq!(
                detail["session"]["state"],
                "working",
                "{when}, {name} sees {detail}\n{}",
                logs(&a, &b)
            );
            assert!(detail["runs"][0]["ended_at"].is_null(), "{detail}");
        }
        assert!(group_alive(pgid), "{when}, the run's process is gone");
    };
    still_running("once B is up");
    std::thread::sleep(Duration::from_secs(lease + 1));
    still_running("after B's reaper ran for longer than a lease");

    let (status, session) = a.json("POST", &format!("/api/sessions/{id}/cancel"), None);
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["state"], "idle", "{session}");
    assert!(
        eventually(Duration::from_secs(5), || !group_alive(pgid)),
        "process group {pgid} still runs after the cancel"
    );
}

#[test]
fn a_killed_with_kill_9_has_its_run_interrupted_by_b() {
    let Some(db) = scratch() else { return };
    let lease = Duration::from_secs(3);
    let mut a = instance(&db, "3");
    let b = instance(&db, "3");
    let id = shell_session(&a, "orphaned");
    a.send_message(&id, "sleep 60");
    let pgid = run_pid(&a, &id);
    // The agent is in a group of its own: it may outlive A's SIGKILL.
    let _cleanup = KillGroup(pgid);
    assert_eq!(b.detail(&id)["session"]["state"], "working");

    let killed = Instant::now();
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let mut detail = Value::Null;
    let interrupted = eventually(Duration::from_secs(20), || {
        detail = b.detail(&id);
        detail["session"]["state"] != "working"
    });
    let failover = killed.elapsed();
    assert!(
        interrupted,
        "B never interrupted the run of the killed A\n{}",
        logs(&a, &b)
    );
    eprintln!("failover after kill -9: {} ms", failover.as_millis());

    assert_eq!(detail["session"]["state"], "error", "{detail}");
    let error = detail["session"]["error_message"].as_str().unwrap_or("");
    assert!(
        error.contains("Interrupted: the instance on") && error.contains("stopped"),
        "{error:?}"
    );
    assert_eq!(detail["runs"][0]["outcome"], "interrupted", "{detail}");
    // The lease, a reaper pass and slack: on the same host the dead pid is
    // noticed at the next pass, without waiting for the lease.
    let bound = lease + lease / 3 + Duration::from_secs(6);
    assert!(
        failover < bound,
        "failover took {failover:?}, over {bound:?}"
    );
    eprintln!(
        "the killed A's agent {} its death",
        if group_alive(pgid) {
            "outlived"
        } else {
            "did not outlive"
        }
    );
}
