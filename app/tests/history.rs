//! A long session's history on a real SQLite file: the session page and the
//! API get one bounded page of it (the newest, or the one before a cursor),
//! and paging back with each page's first id reaches everything, once.

mod common;

use app::{
    agent::AgentKind,
    db::{
        schema::{messages, runs},
        Db,
    },
    error::AppError,
    run::{store, Before, Outcome, Role, SessionDetail, MESSAGES_PER_PAGE, TRANSITIONS_PER_PAGE},
    session::{self, Session},
    transition::{
        writer::{self, Applied},
        Reason, TransitionEvent,
    },
};
use common::Fixture;
use diesel::prelude::*;

/// Messages in the long session: far more than a page, as the issue asks
/// of a session's props.
const MESSAGES: usize = 10_000;
/// Send/cancel rounds recorded for it: 600 timeline entries.
const ROUNDS: usize = 300;

/// What was written for the long session, in order.
struct Written {
    message_ids: Vec<i32>,
    run_ids: Vec<String>,
    transition_seqs: Vec<i32>,
}

/// Writes `MESSAGES` messages for `long` — user messages each with a run,
/// each answered — interleaved with messages of `other` (so the long
/// session's ids have gaps), and `ROUNDS` send/cancel rounds plus a rename,
/// all in one transaction.
async fn write_history(db: &Db, long: &Session, other: &Session) -> Written {
    let (long, other) = (long.id.clone(), other.id.clone());
    db.run(move |conn| {
        app::db::write_tx(conn, |conn| {
            let mut written = Written {
                message_ids: Vec::new(),
                run_ids: Vec::new(),
                transition_seqs: Vec::new(),
            };
            for i in 0..MESSAGES {
                let (role, run_id) = if i % 2 == 0 {
                    let run_id = format!("run-{i:05}");
                    diesel::insert_into(runs::table)
                        .values((
                            runs::id.eq(&run_id),
                            runs::session_id.eq(&long),
                            runs::started_at.eq(i as i64),
                            runs::ended_at.eq(i as i64 + 1),
                            runs::outcome.eq(Outcome::Succeeded),
                            runs::duration_ms.eq(1),
                        ))
                        .execute(conn)?;
                    written.run_ids.push(run_id.clone());
                    (Role::User, run_id)
                } else {
                    (Role::Agent, format!("run-{:05}", i - 1))
                };
                let id: i32 = diesel::insert_into(messages::table)
                    .values((
                        messages::session_id.eq(&long),
                        messages::run_id.eq(&run_id),
                        messages::role.eq(role),
                        messages::content.eq(format!("message {i}")),
                        messages::created_at.eq(i as i64),
                    ))
                    .returning(messages::id)
                    .get_result(conn)?;
                written.message_ids.push(id);
                if i % 3 == 0 {
                    diesel::insert_into(messages::table)
                        .values((
                            messages::session_id.eq(&other),
                            messages::role.eq(Role::User),
                            messages::content.eq("elsewhere"),
                            messages::created_at.eq(i as i64),
                        ))
                        .execute(conn)?;
                }
            }
            for round in 0..ROUNDS {
                for event in [TransitionEvent::Send, TransitionEvent::Cancel] {
                    match writer::apply(conn, &long, &event)? {
                        Applied::Changed(change) => written.transition_seqs.push(change.seq),
                        other => panic!("{event:?}: {other:?}"),
                    }
                }
                if round == ROUNDS / 2 {
                    let session = session::store::find(conn, &long)?;
                    writer::record_lifecycle(conn, &session, Reason::Renamed)?;
                }
            }
            Ok::<_, AppError>(written)
        })
    })
    .await
    .unwrap()
}

fn message_ids(detail: &SessionDetail) -> Vec<i32> {
    detail.messages.iter().map(|m| m.id).collect()
}

#[tokio::test]
async fn a_long_history_comes_in_bounded_pages_that_page_back_without_gaps_or_repeats() {
    let fx = Fixture::new().await;
    let long = fx.named_session("long", AgentKind::Shell).await;
    let other = fx.named_session("other", AgentKind::Shell).await;
    let written = write_history(&fx.db, &long, &other).await;

    // The newest page: the last messages, their runs, the last transitions.
    let newest = store::detail(&fx.db, &long.id).await.unwrap();
    assert_eq!(
        message_ids(&newest),
        written.message_ids[MESSAGES - MESSAGES_PER_PAGE..]
    );
    assert!(newest.has_earlier);
    let page_runs: Vec<&str> = newest.runs.iter().map(|r| r.id.as_str()).collect();
    let expected_runs: Vec<&str> = written.run_ids[(MESSAGES - MESSAGES_PER_PAGE) / 2..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(page_runs, expected_runs);
    let seqs: Vec<i32> = newest.transitions.iter().map(|t| t.seq).collect();
    assert_eq!(
        seqs,
        written.transition_seqs[2 * ROUNDS - TRANSITIONS_PER_PAGE..]
    );
    assert!(newest.has_earlier_transitions);
    assert_eq!(newest.seq, fx.db.run(writer::high_water).await.unwrap());

    // Paging back by messages reaches every message and every run once.
    let (mut pages, mut all_ids, mut all_runs) = (1, message_ids(&newest), Vec::new());
    all_runs.extend(newest.runs.iter().map(|r| r.id.clone()));
    let mut page = newest.clone();
    while page.has_earlier {
        let before = Before {
            message: Some(page.messages[0].id),
            transition: None,
        };
        page = store::history(&fx.db, &long.id, before).await.unwrap();
        assert!(page.messages.len() <= MESSAGES_PER_PAGE);
        assert!(page.messages.iter().all(|m| m.session_id == long.id));
        all_ids.splice(0..0, message_ids(&page));
        all_runs.splice(0..0, page.runs.iter().map(|r| r.id.clone()));
        pages += 1;
    }
    assert_eq!(pages, MESSAGES / MESSAGES_PER_PAGE);
    assert_eq!(
        all_ids, written.message_ids,
        "a message was skipped or repeated"
    );
    assert_eq!(all_runs, written.run_ids, "a run was skipped or repeated");

    // Paging back by the timeline reaches every state change once (and no rename).
    let (mut all_seqs, mut page) = (seqs, newest.clone());
    while page.has_earlier_transitions {
        let before = Before {
            message: None,
            transition: Some(page.transitions[0].seq),
        };
        page = store::history(&fx.db, &long.id, before).await.unwrap();
        assert!(page.transitions.len() <= TRANSITIONS_PER_PAGE);
        all_seqs.splice(0..0, page.transitions.iter().map(|t| t.seq));
    }
    assert_eq!(all_seqs, written.transition_seqs);
}

#[tokio::test]
async fn the_islands_pages_are_small_and_follow_the_same_cursors() {
    let fx = Fixture::new().await;
    let long = fx.named_session("long", AgentKind::Shell).await;
    let other = fx.named_session("other", AgentKind::Shell).await;
    let written = write_history(&fx.db, &long, &other).await;

    let newest = store::conversation(&fx.db, &long.id, None).await.unwrap();
    assert_eq!(newest.entries.len(), MESSAGES_PER_PAGE);
    assert_eq!(newest.state, app::SessionState::Idle);
    let json = serde_json::to_string(&newest).unwrap();
    assert!(
        json.len() < 16 * 1024,
        "{} bytes of props for one page",
        json.len()
    );
    let cursor = newest.earlier_cursor().expect("there is more");
    assert_eq!(cursor, written.message_ids[MESSAGES - MESSAGES_PER_PAGE]);
    let before = store::conversation(&fx.db, &long.id, Some(cursor))
        .await
        .unwrap();
    let ids: Vec<i32> = before.entries.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        written.message_ids[MESSAGES - 2 * MESSAGES_PER_PAGE..MESSAGES - MESSAGES_PER_PAGE]
    );
    assert!(
        before.entries[0].run_summary.is_some(),
        "user messages show their run"
    );

    let timeline = store::timeline(&fx.db, &long.id, None).await.unwrap();
    assert_eq!(timeline.transitions.len(), TRANSITIONS_PER_PAGE);
    assert!(timeline.has_earlier);
    let earlier = store::timeline(&fx.db, &long.id, Some(timeline.transitions[0].seq))
        .await
        .unwrap();
    assert_eq!(
        earlier.transitions.last().unwrap().seq,
        written.transition_seqs[2 * ROUNDS - TRANSITIONS_PER_PAGE - 1]
    );

    // A session without history has nothing earlier.
    let empty = store::detail(&fx.db, &fx.named_session("new", AgentKind::Shell).await.id)
        .await
        .unwrap();
    assert!(empty.messages.is_empty() && empty.transitions.is_empty());
    assert!(!empty.has_earlier && !empty.has_earlier_transitions);

    assert!(matches!(
        store::timeline(&fx.db, "no-such-session", None).await,
        Err(AppError::NotFound(_))
    ));
}
