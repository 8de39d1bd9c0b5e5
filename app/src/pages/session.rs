//! `/projects/{project_id}/sessions/{session_id}`: one session — its state,
//! conversation and runs — with the "Message" form and "Cancel".

use super::{
    hydrated_marker,
    sessions::{clock, working_for},
    ErrorPage, NotFound,
};
use crate::{
    components::{form_error, LiveIndicator, NotifyToggle, ServerCall, SessionStateBadge},
    live::{notify_run_end, use_live, LiveEvent, Scope},
    run::format_duration,
    run::{
        load_session_detail, CancelRun, Conversation, ConversationEntry, LoadConversation, Role,
        SendMessage,
    },
    session_state::SessionState,
    transition::{Reason, Transition},
};
use leptos::{prelude::*, server_fn::ServerFn};
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn SessionPage() -> impl IntoView {
    let (project_id, session_id) = use_params_map().with_untracked(|params| {
        (
            params
                .get("project_id")
                .and_then(|id| id.parse::<i32>().ok()),
            params.get("session_id").unwrap_or_default(),
        )
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading session…"</p> }>
            {move || {
                let session_id = session_id.clone();
                Suspend::new(async move {
                    match load_session_detail(session_id).await {
                        Ok(detail) if Some(detail.project.id) == project_id => {
                            view! {
                                <Title text=format!("{} · agentdeck", detail.session.name) />
                                <nav class="breadcrumb" aria-label="Breadcrumb">
                                    <a href="/">"Projects"</a>
                                    <span aria-hidden="true">" / "</span>
                                    <a href=detail.project.sessions_url()>{detail.project.name.clone()}</a>
                                    <span aria-hidden="true">" / "</span>
                                    <span>{detail.session.name.clone()}</span>
                                </nav>
                                <h1>{detail.session.name.clone()}</h1>
                                <p class="muted">
                                    {detail.session.agent.label()} " in " <code>{detail.project.path.clone()}</code>
                                </p>
                                <SessionConsole
                                    session_id=detail.session.id.clone()
                                    session_name=detail.session.name.clone()
                                    conversation=detail.conversation()
                                    timeline=detail.transitions.clone()
                                    state_changed_at=detail.session.state_changed_at
                                    seq=detail.seq
                                />
                            }
                                .into_any()
                        }
                        Ok(_) => view! { <NotFound message="There is no such session in this project." /> }.into_any(),
                        Err(err) => view! { <ErrorPage err /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// The live part of the page: state, timeline, live output, conversation
/// and the forms, following the session's change stream once hydrated.
#[island]
fn SessionConsole(
    session_id: String,
    session_name: String,
    conversation: Conversation,
    timeline: Vec<Transition>,
    state_changed_at: i64,
    seq: i32,
) -> impl IntoView {
    let conversation = RwSignal::new(conversation);
    let timeline = RwSignal::new(timeline);
    let since_change = RwSignal::new(state_changed_at);
    let output = RwSignal::new(Vec::<String>::new());
    let deleted = RwSignal::new(false);
    let send = ServerCall::clearing_form();
    let cancel = ServerCall::new();
    let reload = ServerCall::new();
    let now = clock();

    Effect::new(move || {
        if let Some(fresh) = reload.answer::<Conversation>() {
            // An answer read before changes the stream has since applied
            // would put an old state back: keep only snapshots at least as new.
            conversation.update(|shown| {
                if fresh.seq >= shown.seq {
                    *shown = fresh;
                }
            });
        }
    });

    let connection = use_live(Scope::Session(session_id.clone()), seq, {
        let id = session_id.clone();
        move |event| match event {
            LiveEvent::Output { line, .. } => output.update(|lines| {
                lines.push(line);
                let excess = lines.len().saturating_sub(MAX_OUTPUT_LINES);
                lines.drain(..excess);
            }),
            LiveEvent::Change { change, .. } if change.reason == Reason::Deleted => {
                deleted.set(true)
            }
            LiveEvent::Change { change, .. } if change.reason.is_state_change() => {
                if change.reason == Reason::Sent {
                    output.set(Vec::new());
                }
                notify_run_end(&session_name, &change);
                conversation.update(|c| {
                    // A snapshot newer than this change already shows it.
                    if change.seq > c.seq {
                        c.seq = change.seq;
                        c.state = change.to_state;
                        c.error_message = change.error_message.clone();
                    }
                });
                since_change.set(change.at);
                timeline.update(|entries| entries.push(change));
                // The stored messages and run summary changed with it.
                reload.call(LoadConversation::PATH, &[("session_id", id.as_str())]);
            }
            LiveEvent::Change { .. } | LiveEvent::SyncProgress { .. } => {}
        }
    });

    let state = move || conversation.with(|c| c.state);
    let (cancel_id, send_id) = (session_id.clone(), session_id);

    view! {
        <div class="panel" data-hydrated=hydrated_marker()>
            <div class="toolbar">
                <LiveIndicator connection />
                <NotifyToggle />
            </div>
            <Show when=move || deleted.get()>
                <p class="form-error" role="alert">"This session was deleted."</p>
            </Show>
            <section class="session-status" aria-label="Status">
                {move || {
                    let (state, error_message) = conversation.with(|c| (c.state, c.error_message.clone()));
                    view! { <SessionStateBadge state error_message /> }
                }}
                {move || {
                    (state() == SessionState::Working)
                        .then(|| {
                            let id = cancel_id.clone();
                            view! {
                                <span class="elapsed">{move || working_for(now.get(), since_change.get())}</span>
                                <form method="post" action=CancelRun::PATH on:submit=move |event| cancel.submit(event)>
                                    <input type="hidden" name="session_id" value=id />
                                    <button type="submit" class="danger" disabled=move || cancel.pending()>
                                        "Cancel"
                                    </button>
                                </form>
                            }
                        })
                }}
                {form_error(move || cancel.error())}
            </section>
            <Show when=move || state() == SessionState::Working && output.with(|o| !o.is_empty())>
                <pre class="live-output" aria-label="Live output">{move || output.with(|lines| lines.join("\n"))}</pre>
            </Show>
            <section>
                <h2>"Conversation"</h2>
                <Show
                    when=move || conversation.with(|c| !c.entries.is_empty())
                    fallback=|| view! { <p class="empty">"No messages yet."</p> }
                >
                    <ol class="messages" aria-label="Messages">
                        {move || conversation.with(|c| c.entries.iter().cloned().map(entry_view).collect_view())}
                    </ol>
                </Show>
            </section>
            <section class="card">
                <form method="post" action=SendMessage::PATH on:submit=move |event| send.submit(event)>
                    <input type="hidden" name="session_id" value=send_id />
                    <div class="field">
                        <label for="message">"Message"</label>
                        <textarea id="message" name="message" rows="3" required></textarea>
                    </div>
                    <div class="form-actions">
                        <button type="submit" class="primary" disabled=move || send.pending()>
                            "Send"
                        </button>
                    </div>
                    {form_error(move || send.error())}
                </form>
            </section>
            <section>
                <h2>"Timeline"</h2>
                <ol class="timeline" aria-label="Timeline">
                    {move || timeline.with(|entries| timeline_view(entries))}
                </ol>
            </section>
        </div>
    }
}

/// Lines of live output kept on the page.
const MAX_OUTPUT_LINES: usize = 500;

/// The state changes, each with its time, reason, error, and — when it
/// ends a run — how long the session was working.
fn timeline_view(entries: &[Transition]) -> impl IntoView {
    entries
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let worked = (t.from_state == SessionState::Working)
                .then(|| i.checked_sub(1).map(|prev| entries[prev].at))
                .flatten()
                .map(|started| format!(" · worked {}", format_duration(t.at - started)));
            view! {
                <li class="timeline-entry">
                    <time>{utc_time(t.at)}</time>
                    " "
                    <span class="reason">{t.reason.as_str()}</span>
                    {format!(" · {} → {}", t.from_state, t.to_state)}
                    {worked}
                    {t.error_message.clone().map(|e| view! { <span class="timeline-error">{format!(" · {e}")}</span> })}
                </li>
            }
        })
        .collect_view()
}

/// "17:03:12 UTC" from Unix milliseconds.
fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// One message; a user message also shows how its run went.
fn entry_view(entry: ConversationEntry) -> impl IntoView {
    let (class, who) = match entry.role {
        Role::User => ("message message-user", "You"),
        Role::Agent => ("message message-agent", "Agent"),
    };
    view! {
        <li class=class>
            <span class="message-author">{who}</span>
            <pre class="message-content">{entry.content}</pre>
            {entry.run_summary.map(|summary| view! { <span class="run-meta">{summary}</span> })}
        </li>
    }
}
