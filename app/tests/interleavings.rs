//! Property test: random interleavings of send / succeed / fail / cancel /
//! interrupt / sync / rename / delete, from several threads at once, against
//! the real writer on a real SQLite file. Whatever the order, the database
//! stays consistent and the change log tells the whole story.

mod common;

use app::{
    db::Db,
    error::AppError,
    live::{follow::follow, LiveEvent, Scope},
    run::store::{self, Ending, Started},
    session::{self, Session},
    transition::{writer, Reason, TransitionEvent},
};
use common::Fixture;
use diesel::prelude::*;
use proptest::prelude::*;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

const SESSIONS: usize = 3;
const THREADS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Succeed(usize),
    Fail(usize),
    Cancel(usize),
    Interrupt,
    Sync(usize),
    Rename(usize),
    Delete(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let s = 0..SESSIONS;
    prop_oneof![
        4 => s.clone().prop_map(Op::Send),
        3 => s.clone().prop_map(Op::Succeed),
        2 => s.clone().prop_map(Op::Fail),
        2 => s.clone().prop_map(Op::Cancel),
        1 => Just(Op::Interrupt),
        2 => s.clone().prop_map(Op::Sync),
        1 => s.clone().prop_map(Op::Rename),
        1 => s.prop_map(Op::Delete),
    ]
}

/// Runs started so far, per session slot: ends pick one of them, often a
/// stale one, which the run fence must refuse.
type RunLog = Arc<Mutex<HashMap<usize, Vec<Started>>>>;

async fn apply(db: &Db, sessions: &[Session], runs: &RunLog, op: Op, step: usize) {
    let pick = |slot: usize| {
        let runs = runs.lock().unwrap();
        let list = runs.get(&slot).cloned().unwrap_or_default();
        // Mostly the latest run, sometimes an older one.
        match list.len() {
            0 => None,
            n if step.is_multiple_of(3) => Some(list[step % n].clone()),
            n => Some(list[n - 1].clone()),
        }
    };
    let result: Result<(), AppError> = match op {
        Op::Send(slot) => {
            let id = sessions[slot].id.clone();
            let run_id = format!("run-{slot}-{step}-{}", uuid_like(step));
            db.write(move |conn| {
                let started = store::start(conn, &id, &run_id, "work", None, None)?;
                let change = LiveEvent::change(started.transition.clone());
                Ok((started, vec![change]))
            })
            .await
            .map(|started| runs.lock().unwrap().entry(slot).or_default().push(started))
        }
        Op::Succeed(slot) | Op::Fail(slot) => match pick(slot) {
            None => Ok(()),
            Some(started) => {
                let event = match op {
                    Op::Succeed(_) => TransitionEvent::Succeed,
                    _ => TransitionEvent::Fail(format!("failure at step {step}")),
                };
                let ending = Ending {
                    answer: Some(format!("answer {step}")),
                    ..Ending::default()
                };
                db.write(move |conn| {
                    let change = store::finish(conn, &started, &event, &ending)?;
                    Ok(((), change.into_iter().map(LiveEvent::change).collect()))
                })
                .await
            }
        },
        Op::Cancel(slot) => {
            let id = sessions[slot].id.clone();
            db.write(move |conn| {
                let applied = store::cancel_orphan(conn, &id)?;
                Ok(((), changes_of(applied)))
            })
            .await
        }
        Op::Interrupt => {
            db.write(|conn| {
                // Runs recorded with no owner: every one is an orphan.
                let me = app::instance::Instance::new();
                let changes = store::interrupt_orphans(conn, &me, Duration::from_secs(30))?;
                Ok(((), changes.into_iter().map(LiveEvent::change).collect()))
            })
            .await
        }
        Op::Sync(slot) => {
            let id = sessions[slot].id.clone();
            db.write(move |conn| {
                app::db::write_tx(conn, |conn| {
                    let applied = writer::apply(conn, &id, &TransitionEvent::Sync)?;
                    Ok(((), changes_of(applied)))
                })
            })
            .await
        }
        Op::Rename(slot) => {
            session::store::rename(db, &sessions[slot].id, &format!("renamed {step}"))
                .await
                .map(|_| ())
        }
        Op::Delete(slot) => session::store::delete(db, &sessions[slot].id)
            .await
            .map(|_| ()),
    };
    // Refusals (busy, gone, nothing to cancel) are expected outcomes; a
    // database failure is not.
    if let Err(err) = result {
        assert!(
            matches!(err, AppError::Conflict(_) | AppError::NotFound(_)),
            "{err:?}"
        );
    }
}

fn uuid_like(step: usize) -> String {
    format!("{:08x}", step.wrapping_mul(2_654_435_761))
}

fn changes_of(applied: writer::Applied) -> Vec<LiveEvent> {
    match applied {
        writer::Applied::Changed(change) => vec![LiveEvent::change(change)],
        _ => Vec::new(),
    }
}

fn check_invariants(conn: &mut app::db::DbConn, followed: &[i32]) {
    use app::db::schema::{runs, session_transitions, sessions};
    // error_message non-null ⇔ error (the CHECK constraint, and the writer).
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sessions::table
        .select((
            sessions::id,
            sessions::state,
            sessions::error_message,
            sessions::current_run_id,
        ))
        .load(conn)
        .unwrap();
    for (id, state, error, current_run) in &rows {
        assert_eq!(error.is_some(), state == "error", "{id}: {state} {error:?}");
        // A working session has exactly one open run, its current one; any
        // other session has none.
        let open: Vec<String> = runs::table
            .filter(runs::session_id.eq(id))
            .filter(runs::ended_at.is_null())
            .select(runs::id)
            .load(conn)
            .unwrap();
        if state == "working" {
            assert_eq!(open.len(), 1, "{id} working with open runs {open:?}");
            assert_eq!(current_run.as_ref(), Some(&open[0]), "{id}");
        } else {
            assert!(open.is_empty(), "{id} is {state} with open runs {open:?}");
            assert!(current_run.is_none(), "{id} is {state} with a current run");
        }
    }
    // Replaying the change log from 0 reproduces every session's final state.
    let log: Vec<(i32, String, String, String, Option<String>, String)> =
        session_transitions::table
            .order(session_transitions::seq.asc())
            .select((
                session_transitions::seq,
                session_transitions::session_id,
                session_transitions::from_state,
                session_transitions::to_state,
                session_transitions::error_message,
                session_transitions::reason,
            ))
            .load(conn)
            .unwrap();
    let mut replayed: HashMap<String, Option<(String, Option<String>)>> = HashMap::new();
    for (seq, id, from, to, error, reason) in &log {
        let previous = replayed.get(id).cloned().flatten();
        if reason.parse::<Reason>().unwrap().is_state_change() {
            let (state, _) = previous.as_ref().expect("a change of a known session");
            assert_eq!(
                state, from,
                "seq {seq}: {id} changed from {from} but was {state}"
            );
        }
        let entry = (reason != "deleted").then(|| (to.clone(), error.clone()));
        replayed.insert(id.clone(), entry);
    }
    let live: HashMap<String, (String, Option<String>)> = rows
        .into_iter()
        .map(|(id, state, error, _)| (id, (state, error)))
        .collect();
    let replayed: HashMap<String, (String, Option<String>)> = replayed
        .into_iter()
        .filter_map(|(id, entry)| Some((id, entry?)))
        .collect();
    assert_eq!(replayed, live, "replayed change log vs sessions table");
    // A follower from 0 got every seq, in order, without gaps.
    let seqs: Vec<i32> = log.iter().map(|(seq, ..)| *seq).collect();
    assert_eq!(followed, &seqs[..], "followed seqs");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless: {seqs:?}"
    );
}

fn run_case(plans: Vec<Vec<Op>>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let fx = Fixture::new().await;
        let db = fx.db.clone();
        let mut follower = follow(db.clone(), Scope::All, Some(0));
        let sessions = Arc::new(fx.shell_sessions(SESSIONS).await);
        let runs: RunLog = Arc::default();
        let tasks: Vec<_> = plans
            .into_iter()
            .enumerate()
            .map(|(thread, plan)| {
                let (db, sessions, runs) = (db.clone(), Arc::clone(&sessions), Arc::clone(&runs));
                tokio::spawn(async move {
                    for (i, op) in plan.into_iter().enumerate() {
                        apply(&db, &sessions, &runs, op, thread * 1000 + i).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let high_water = db.run(writer::high_water).await.unwrap();
        let mut followed = Vec::new();
        while followed.last().copied().unwrap_or(0) < high_water {
            let event = tokio::time::timeout(Duration::from_secs(5), follower.next())
                .await
                .expect("the follower delivers every change")
                .expect("stream open");
            if let Some(seq) = event.seq() {
                followed.push(seq);
            }
        }
        let mut conn = db.conn().unwrap();
        check_invariants(&mut conn, &followed);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn any_interleaving_keeps_the_database_and_the_change_log_consistent(
        plans in proptest::collection::vec(proptest::collection::vec(op(), 1..25), THREADS)
    ) {
        run_case(plans);
    }
}
