//! The change stream on a real SQLite file: a follower gets every change
//! after its `since`, in `seq` order, exactly once — while changes commit
//! concurrently, and when it lags behind the hub — or, when it is too far
//! behind to replay, one reset. A session's follower gets the running
//! run's output: the lines printed before it opened, then live, each once.

mod common;

use app::{
    agent::AgentKind,
    db::Db,
    live::{
        follow::{follow, Follower, MAX_REPLAY},
        hub::Published,
        LiveEvent, Scope, BACKLOG_LINES,
    },
    project, session,
    transition::{
        writer::{self, Applied},
        Reason, TransitionEvent,
    },
};
use common::Fixture;
use std::{sync::Arc, time::Duration};

impl Fixture {
    /// The ids of `count` new shell sessions.
    async fn sessions(&self, count: usize) -> Vec<String> {
        let sessions = self.shell_sessions(count).await;
        sessions.into_iter().map(|s| s.id).collect()
    }

    async fn high_water(&self) -> i32 {
        self.db.run(writer::high_water).await.unwrap()
    }
}

/// Commits one state transition through the single writer and publishes it.
async fn transition(db: &Db, session_id: &str, event: TransitionEvent) -> i32 {
    let id = session_id.to_owned();
    db.write(move |conn| {
        app::db::write_tx(conn, |conn| match writer::apply(conn, &id, &event)? {
            Applied::Changed(change) => Ok((change.seq, vec![LiveEvent::change(change)])),
            other => panic!("{event:?} on {id}: {other:?}"),
        })
    })
    .await
    .unwrap()
}

/// Sends then cancels, `rounds` times: two transitions per round.
async fn churn(db: Db, session_id: String, rounds: usize) {
    for _ in 0..rounds {
        transition(&db, &session_id, TransitionEvent::Send).await;
        transition(&db, &session_id, TransitionEvent::Cancel).await;
    }
}

/// The follower's next event, whatever it is.
async fn next_event(rx: &mut Follower) -> Arc<Published> {
    tokio::time::timeout(Duration::from_secs(10), rx.next())
        .await
        .expect("the follower went quiet")
        .expect("the follower stopped")
}

/// The next `count` change seqs from the follower.
async fn take_seqs(rx: &mut Follower, count: usize) -> Vec<i32> {
    let mut seqs = Vec::new();
    while seqs.len() < count {
        if let Some(seq) = next_event(rx).await.seq() {
            seqs.push(seq);
        }
    }
    seqs
}

fn assert_contiguous(seqs: &[i32], after: i32) {
    let expected: Vec<i32> = (after + 1..=after + seqs.len() as i32).collect();
    assert_eq!(seqs, expected, "changes lost, duplicated or out of order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_gets_exactly_the_changes_after_since_while_writes_continue() {
    let fx = Fixture::new().await;
    let ids = fx.sessions(4).await;
    churn(fx.db.clone(), ids[0].clone(), 5).await;
    let since = fx.high_water().await;

    // Writers start before the follower subscribes, and keep going.
    let writers: Vec<_> = ids
        .iter()
        .map(|id| tokio::spawn(churn(fx.db.clone(), id.clone(), 25)))
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut rx = follow(fx.db.clone(), Scope::Project(fx.project.id), Some(since));
    for writer in writers {
        writer.await.unwrap();
    }
    let seqs = take_seqs(&mut rx, 4 * 25 * 2).await;
    assert_contiguous(&seqs, since);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.next())
            .await
            .is_err(),
        "a change was sent twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_is_caught_up_from_the_database() {
    let fx = Fixture::new().await;
    let ids = fx.sessions(2).await;
    let mut rx = follow(fx.db.clone(), Scope::All, Some(fx.high_water().await));
    // Past its replay and following live first.
    transition(&fx.db, &ids[1], TransitionEvent::Send).await;
    take_seqs(&mut rx, 1).await;
    let since = fx.high_water().await;
    // Far more than the hub buffers (1024) while nobody reads.
    churn(fx.db.clone(), ids[0].clone(), 1000).await;
    let seqs = take_seqs(&mut rx, 2000).await;
    assert_contiguous(&seqs, since);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_transitions_across_twenty_sessions_arrive_in_order() {
    let fx = Fixture::new().await;
    let since = fx.high_water().await;
    let mut rx = follow(fx.db.clone(), Scope::Project(fx.project.id), Some(since));
    let ids = fx.sessions(20).await;
    let writers: Vec<_> = ids
        .iter()
        .map(|id| tokio::spawn(churn(fx.db.clone(), id.clone(), 5)))
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    // 20 "created" entries, then 200 transitions.
    let seqs = take_seqs(&mut rx, 220).await;
    assert_contiguous(&seqs, since);
}

#[tokio::test]
async fn lifecycle_changes_are_streamed_with_the_session_and_scoped() {
    let fx = Fixture::new().await;
    let other_dir = fx.dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = project::store::add(&fx.db, other_dir.to_str().unwrap(), None)
        .await
        .unwrap();
    let mut rx = follow(fx.db.clone(), Scope::Project(fx.project.id), Some(0));
    // Once the follower has sent a first change it is subscribed, so what
    // follows comes live, each with the session as it was at that change.
    fx.sessions(1).await;
    take_seqs(&mut rx, 1).await;

    session::store::create(&fx.db, other.id, "elsewhere", AgentKind::Shell)
        .await
        .unwrap();
    let mine = session::store::create(&fx.db, fx.project.id, "mine", AgentKind::Shell)
        .await
        .unwrap();
    session::store::rename(&fx.db, &mine.id, "renamed")
        .await
        .unwrap();
    session::store::delete(&fx.db, &mine.id).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(5), rx.next())
            .await
            .unwrap()
            .unwrap();
        if let LiveEvent::Change { change, session } = &**event {
            assert_eq!(
                change.project_id, fx.project.id,
                "another project's change leaked in"
            );
            seen.push((change.reason, session.as_ref().map(|s| s.name.clone())));
        }
    }
    assert_eq!(
        seen,
        [
            (Reason::Created, Some("mine".to_owned())),
            (Reason::Renamed, Some("renamed".to_owned())),
            (Reason::Deleted, None),
        ]
    );

    // A page that replays the same changes later gets the session as it is
    // now: here gone, so the created entry carries nothing to show.
    let mut replay = follow(fx.db.clone(), Scope::Project(fx.project.id), Some(0));
    let mut replayed = Vec::new();
    while replayed.len() < 4 {
        if let LiveEvent::Change { change, session } = &**next_event(&mut replay).await {
            replayed.push((change.reason, session.as_ref().map(|s| s.name.clone())));
        }
    }
    assert_eq!(
        replayed[1..],
        [
            (Reason::Created, None),
            (Reason::Renamed, None),
            (Reason::Deleted, None),
        ]
    );
}

#[tokio::test]
async fn a_run_start_reaches_the_page_before_the_runs_first_output_line() {
    let fx = Fixture::new().await;
    let id = fx.sessions(1).await.remove(0);
    let since = fx.high_water().await;
    let mut rx = follow(fx.db.clone(), Scope::Session(id.clone()), Some(since));
    // One round trip first, so the follower is past its replay and live.
    transition(&fx.db, &id, TransitionEvent::Send).await;
    transition(&fx.db, &id, TransitionEvent::Cancel).await;
    take_seqs(&mut rx, 2).await;

    // Both are ready when the follower next runs; the change must win every time.
    for round in 0..40 {
        transition(&fx.db, &id, TransitionEvent::Send).await;
        fx.db.hub().publish_output(&id, "r", "first");
        let event = next_event(&mut rx).await;
        assert!(
            matches!(&**event, LiveEvent::Change { change, .. } if change.reason == Reason::Sent),
            "round {round}: expected the run start first, got {event:?}"
        );
        let event = next_event(&mut rx).await;
        assert!(
            matches!(&**event, LiveEvent::Output { line, .. } if line == "first"),
            "round {round}: expected the output line, got {event:?}"
        );
        transition(&fx.db, &id, TransitionEvent::Cancel).await;
        take_seqs(&mut rx, 1).await;
    }
}

/// Records `count` renames of `session_id` in one transaction, through the
/// real lifecycle writer, without publishing them (as if they were made by
/// another process, or long ago): followers can only learn of them from
/// the database.
async fn backlog(db: &Db, session_id: &str, count: usize) {
    let id = session_id.to_owned();
    db.run(move |conn| {
        app::db::write_tx(conn, |conn| {
            let session = session::store::find(conn, &id)?;
            for _ in 0..count {
                writer::record_lifecycle(conn, &session, Reason::Renamed)?;
            }
            Ok::<_, app::error::AppError>(())
        })
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_more_than_the_replay_bound_behind_gets_one_reset_then_live_changes() {
    let fx = Fixture::new().await;
    let ids = fx.sessions(2).await;
    backlog(&fx.db, &ids[0], MAX_REPLAY as usize + 1).await;
    let high_water = fx.high_water().await;
    assert!(high_water > MAX_REPLAY as i32);

    let mut rx = follow(fx.db.clone(), Scope::Project(fx.project.id), Some(0));
    let first = next_event(&mut rx).await;
    assert_eq!(**first, LiveEvent::Reset { seq: high_water });
    // From there on it is live, from the mark on, and nothing else is replayed.
    let sent = transition(&fx.db, &ids[1], TransitionEvent::Send).await;
    assert_eq!(sent, high_water + 1);
    assert_eq!(take_seqs(&mut rx, 1).await, [sent]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.next())
            .await
            .is_err(),
        "more came after the reset than the live change"
    );

    // The bound is per scope: the other session's two entries (created,
    // sent) are replayed, however long the project's backlog.
    let mut other = follow(fx.db.clone(), Scope::Session(ids[1].clone()), Some(0));
    let created = take_seqs(&mut other, 1).await[0];
    assert!(created < high_water);
    assert_eq!(take_seqs(&mut other, 1).await, [sent]);

    // Exactly at the bound, the backlog is replayed (in chunks), not reset.
    let since = fx.high_water().await;
    backlog(&fx.db, &ids[1], MAX_REPLAY as usize).await;
    let mut rx = follow(fx.db.clone(), Scope::All, Some(since));
    let mut seqs = Vec::new();
    while seqs.len() < MAX_REPLAY as usize {
        let event = next_event(&mut rx).await;
        assert!(
            !matches!(**event, LiveEvent::Reset { .. }),
            "reset at the bound"
        );
        seqs.extend(event.seq());
    }
    assert_contiguous(&seqs, since);
}

/// The next output line from the follower as (run, number, text), skipping changes.
async fn next_line(rx: &mut Follower) -> (String, u64, String) {
    loop {
        if let LiveEvent::Output {
            run_id, n, line, ..
        } = &**next_event(rx).await
        {
            return (run_id.clone(), *n, line.clone());
        }
    }
}

/// The numbers of the next `count` output lines, each checked to be run
/// `run`'s line with that number.
async fn take_lines(rx: &mut Follower, run: &str, count: usize) -> Vec<u64> {
    let mut numbers = Vec::new();
    while numbers.len() < count {
        let (run_id, n, line) = next_line(rx).await;
        assert_eq!((run_id.as_str(), line), (run, format!("line-{n}")));
        numbers.push(n);
    }
    numbers
}

/// Publishes lines `numbers` of run `run` as the runner does.
fn print(db: &Db, session_id: &str, run: &str, numbers: std::ops::RangeInclusive<u64>) {
    for n in numbers {
        db.hub()
            .publish_output(session_id, run, &format!("line-{n}"));
    }
}

/// Asserts the follower's next line is the sentinel: nothing was sent twice before it.
async fn expect_sentinel(db: &Db, rx: &mut Follower, session_id: &str, run: &str, n: u64) {
    print(db, session_id, run, n..=n);
    assert_eq!(take_lines(rx, run, 1).await, [n], "a line came twice");
}

#[tokio::test]
async fn a_follower_opened_mid_run_gets_the_backlog_then_live_lines_each_once_at_any_split() {
    let fx = Fixture::new().await;
    let id = fx.sessions(1).await.remove(0);
    const LINES: u64 = 40;
    for split in 0..=LINES {
        let run = format!("run-{split}");
        print(&fx.db, &id, &run, 1..=split);
        let mut rx = follow(
            fx.db.clone(),
            Scope::Session(id.clone()),
            Some(fx.high_water().await),
        );
        print(&fx.db, &id, &run, split + 1..=LINES);
        let numbers = take_lines(&mut rx, &run, LINES as usize).await;
        assert_eq!(numbers, (1..=LINES).collect::<Vec<_>>(), "split at {split}");
        expect_sentinel(&fx.db, &mut rx, &id, &run, LINES + 1).await;
        fx.db.hub().end_output(&id, &run);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_opened_while_a_run_prints_each_get_every_line_once_in_order() {
    let fx = Fixture::new().await;
    let id = fx.sessions(1).await.remove(0);
    const LINES: u64 = 400;
    let printer = {
        let (db, id) = (fx.db.clone(), id.clone());
        tokio::spawn(async move {
            for n in 1..=LINES {
                print(&db, &id, "run", n..=n);
                if n % 4 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    // Followers open all along the run (each once the run is past its
    // point, while it goes on printing); the backlog holds every line so far.
    let printed = |db: &Db| db.hub().output_backlog(&id).map_or(0, |o| o.last);
    let mut readers = Vec::new();
    for point in (0..LINES).step_by(20) {
        while printed(&fx.db) < point {
            tokio::task::yield_now().await;
        }
        let mut rx = follow(fx.db.clone(), Scope::Session(id.clone()), None);
        readers.push(tokio::spawn(async move {
            take_lines(&mut rx, "run", LINES as usize).await
        }));
    }
    printer.await.unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), (1..=LINES).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_follower_that_lags_behind_the_output_is_caught_up_from_the_backlog() {
    let fx = Fixture::new().await;
    let id = fx.sessions(1).await.remove(0);
    let mut rx = follow(
        fx.db.clone(),
        Scope::Session(id.clone()),
        Some(fx.high_water().await),
    );
    print(&fx.db, &id, "run", 1..=1);
    assert_eq!(take_lines(&mut rx, "run", 1).await, [1]);
    // More than the hub buffers (256) while nobody reads, fewer than the backlog keeps.
    print(&fx.db, &id, "run", 2..=450);
    let numbers = take_lines(&mut rx, "run", 449).await;
    assert_eq!(numbers, (2..=450).collect::<Vec<_>>());
    expect_sentinel(&fx.db, &mut rx, &id, "run", 451).await;
}

#[tokio::test]
async fn the_backlog_keeps_the_last_500_lines() {
    let fx = Fixture::new().await;
    let id = fx.sessions(1).await.remove(0);
    print(&fx.db, &id, "run", 1..=600);
    let output = fx.detail(&id).await.output.expect("the backlog");
    assert_eq!(output.lines.len(), BACKLOG_LINES);
    assert_eq!((output.run_id.as_str(), output.last), ("run", 600));
    assert_eq!(output.lines[0], "line-101");

    let mut rx = follow(fx.db.clone(), Scope::Session(id.clone()), None);
    let numbers = take_lines(&mut rx, "run", BACKLOG_LINES).await;
    assert_eq!(numbers, (101..=600).collect::<Vec<_>>());
    expect_sentinel(&fx.db, &mut rx, &id, "run", 601).await;
}

#[tokio::test]
async fn a_running_runs_output_is_in_the_snapshot_and_the_stream_until_it_ends() {
    let fx = Fixture::new().await;
    let id = fx.sessions(1).await.remove(0);
    fx.runner
        .send(&id, "echo one; echo two; sleep 30")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let detail = loop {
        let detail = fx.detail(&id).await;
        if detail.output.as_ref().is_some_and(|o| o.lines.len() == 2) {
            break detail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no output: {detail:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let output = detail.output.unwrap();
    assert_eq!(output.lines, ["one", "two"]);
    assert_eq!(Some(&output.run_id), detail.runs.last().map(|run| &run.id));
    let mut rx = follow(fx.db.clone(), Scope::Session(id.clone()), Some(detail.seq));
    assert_eq!(
        next_line(&mut rx).await,
        (output.run_id.clone(), 1, "one".into())
    );
    assert_eq!(
        next_line(&mut rx).await,
        (output.run_id.clone(), 2, "two".into())
    );

    // Cancelling returns once the end is recorded and the backlog dropped.
    fx.runner.cancel(&id).await.unwrap();
    assert_eq!(fx.detail(&id).await.output, None);

    // A run that ends by itself drops its backlog too.
    fx.runner.send(&id, "echo done").await.unwrap();
    fx.settled(&id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fx.detail(&id).await.output.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backlog outlived its run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
