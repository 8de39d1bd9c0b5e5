//! The change stream on a real SQLite file: a follower gets every change
//! after its `since`, in `seq` order, exactly once — while changes commit
//! concurrently, and when it lags behind the hub — or, when it is too far
//! behind to replay, one reset.

mod common;

use app::{
    agent::AgentKind,
    db::Db,
    live::{
        follow::{follow, Follower, MAX_REPLAY},
        LiveEvent, Scope,
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
        conn.immediate_transaction(|conn| match writer::apply(conn, &id, &event)? {
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
async fn next_event(rx: &mut Follower) -> Arc<LiveEvent> {
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
        if let LiveEvent::Change { change, session } = &*event {
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
        if let LiveEvent::Change { change, session } = &*next_event(&mut replay).await {
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
        fx.db.hub().publish_output(&id, "first");
        let event = next_event(&mut rx).await;
        assert!(
            matches!(&*event, LiveEvent::Change { change, .. } if change.reason == Reason::Sent),
            "round {round}: expected the run start first, got {event:?}"
        );
        let event = next_event(&mut rx).await;
        assert!(
            matches!(&*event, LiveEvent::Output { line, .. } if line == "first"),
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
        conn.immediate_transaction(|conn| {
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
    assert_eq!(*first, LiveEvent::Reset { seq: high_water });
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
            !matches!(*event, LiveEvent::Reset { .. }),
            "reset at the bound"
        );
        seqs.extend(event.seq());
    }
    assert_contiguous(&seqs, since);
}
