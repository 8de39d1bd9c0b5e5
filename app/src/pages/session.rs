//! `/projects/{project_id}/sessions/{session_id}`: one session — its state,
//! conversation and runs — with the "Message" form and "Cancel". It shows
//! the newest page of a long history; "Show earlier" loads the page before
//! (in place once hydrated; without JavaScript it is a link to
//! `?before=ID` or `?transitions_before=SEQ`, which renders that page).

use super::{
    hydrated_marker,
    sessions::{clock, last_hook, state_since},
    ErrorPage, NotFound,
};
use crate::{
    agent::AgentKind,
    approval::{AnswerApproval, Approval},
    components::{
        attention_marker, effect, form_error, IslandProp, LiveIndicator, NotifyToggle, ServerCall,
        SessionStateBadge,
    },
    live::{notify_run_end, use_live, LiveEvent, OutputBacklog, Scope},
    permission::PermissionMode,
    run::format_duration,
    run::{
        load_session_detail, CancelRun, Conversation, ConversationEntry, LoadConversation,
        LoadTimeline, Role, SendMessage, TimelinePage,
    },
    session::{MarkSeen, SetPermissionMode},
    session_state::SessionState,
    transition::{Reason, Transition},
};
use leptos::{either::Either, prelude::*, server_fn::ServerFn};
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

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
    // Cursors that do not parse are ignored: the page shows the newest history.
    let (before, transitions_before) = use_query_map().with_untracked(|query| {
        let cursor = |name: &str| query.get(name).and_then(|v| v.parse::<i32>().ok());
        (cursor("before"), cursor("transitions_before"))
    });
    let can_write = crate::access::current().can_write();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading session…"</p> }>
            {move || {
                let session_id = session_id.clone();
                Suspend::new(async move {
                    let detail = load_session_detail(session_id.clone(), before, transitions_before).await;
                    // Opening the session is seeing how its last run ended.
                    #[cfg(feature = "ssr")]
                    if detail.is_ok() {
                        if let Some(db) = use_context::<crate::db::Db>() {
                            let _ = crate::session::store::mark_seen(&db, &session_id).await;
                        }
                    }
                    match detail {
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
                                    session_url=detail.session.url()
                                    conversation=IslandProp(detail.conversation())
                                    timeline=IslandProp(TimelinePage {
                                        transitions: detail.transitions,
                                        has_earlier: detail.has_earlier_transitions,
                                    })
                                    before
                                    transitions_before
                                    state_changed_at=detail.session.state_changed_at
                                    seq=detail.seq
                                    can_write
                                    output=IslandProp(detail.output.unwrap_or_default())
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
/// `before` / `transitions_before` are set when the page shows an earlier
/// part of the history (opened from a "Show earlier" link without
/// JavaScript); reloads keep to that part. `can_write` is false for a
/// read-only viewer: the page then shows no forms. `output` is what the
/// running run has printed so far.
#[island]
#[allow(clippy::too_many_arguments)]
fn SessionConsole(
    session_id: String,
    session_name: String,
    session_url: String,
    conversation: IslandProp<Conversation>,
    timeline: IslandProp<TimelinePage>,
    before: Option<i32>,
    transitions_before: Option<i32>,
    state_changed_at: i64,
    seq: i32,
    can_write: bool,
    output: IslandProp<OutputBacklog>,
) -> impl IntoView {
    let (IslandProp(conversation), IslandProp(timeline), IslandProp(output)) =
        (conversation, timeline, output);
    let conversation = RwSignal::new(conversation);
    let timeline_has_earlier = RwSignal::new(timeline.has_earlier);
    let timeline = RwSignal::new(timeline.transitions);
    let since_change = RwSignal::new(state_changed_at);
    let output = RwSignal::new(output);
    let deleted = RwSignal::new(false);
    let send = ServerCall::clearing_form();
    let cancel = ServerCall::new();
    let reload = ServerCall::new();
    let earlier = ServerCall::new();
    let earlier_timeline = ServerCall::new();
    let answer = ServerCall::new();
    let set_mode = ServerCall::new();
    let seen = ServerCall::new();
    let now = clock();

    // The tab says when the session waits for the person.
    let title_name = session_name.clone();
    effect(move || {
        let prefix = match conversation.with(|c| c.attention) {
            Some(_) => "(needs you) ",
            None => "",
        };
        document().set_title(&format!("{prefix}{title_name} · agentdeck"));
    });
    effect(move || {
        if let Some(session) = set_mode.answer::<crate::session::Session>() {
            conversation.update(|c| c.permission_mode = session.permission_mode);
        }
    });

    effect(move || {
        if let Some(fresh) = reload.answer::<Conversation>() {
            conversation.update(|shown| shown.apply_reload(fresh));
        }
    });
    effect(move || {
        if let Some(page) = earlier.answer::<Conversation>() {
            conversation.update(|shown| shown.prepend(page));
        }
    });
    effect(move || {
        if let Some(page) = earlier_timeline.answer::<TimelinePage>() {
            let first = timeline.with_untracked(|t| t.first().map_or(i32::MAX, |t| t.seq));
            let mut entries: Vec<_> = page
                .transitions
                .into_iter()
                .filter(|t| t.seq < first)
                .collect();
            if !entries.is_empty() {
                timeline.update(|shown| {
                    entries.append(shown);
                    *shown = entries;
                });
                timeline_has_earlier.set(page.has_earlier);
            }
        }
    });

    // Reloads the page of the conversation shown (the newest, or the
    // earlier part the page was opened on).
    let reload_conversation = {
        let id = session_id.clone();
        move || {
            let before = before.map(|id| id.to_string());
            let mut fields = vec![("session_id", id.as_str())];
            fields.extend(before.as_deref().map(|b| ("before", b)));
            reload.call(LoadConversation::PATH, &fields);
        }
    };
    let connection = use_live(Scope::Session(session_id.clone()), seq, {
        let id = session_id.clone();
        move |event| match event {
            LiveEvent::Output {
                run_id, n, line, ..
            } => output.update(|shown| shown.push(run_id, n, line)),
            LiveEvent::Change { change, .. } if change.reason == Reason::Deleted => {
                deleted.set(true)
            }
            LiveEvent::Change { change, .. } if change.reason == Reason::Attention => {
                notify_run_end(&session_name, &change);
                conversation.update(|c| {
                    if change.seq > c.seq {
                        c.seq = change.seq;
                        c.attention = change.attention;
                        if c.last_hook_at.is_some() {
                            c.last_hook_at = Some(change.at);
                        }
                    }
                });
                // A request was opened, answered or closed: reload them.
                reload_conversation();
            }
            LiveEvent::Change { change, .. } if change.reason.is_state_change() => {
                if change.reason == Reason::Sent {
                    output.set(OutputBacklog::default());
                }
                notify_run_end(&session_name, &change);
                // Watched ending here: no "done, not seen" marker for it.
                if can_write && change.from_state == SessionState::Working {
                    seen.call(MarkSeen::PATH, &[("session_id", id.as_str())]);
                }
                conversation.update(|c| {
                    // A snapshot newer than this change already shows it.
                    if change.seq > c.seq {
                        c.seq = change.seq;
                        c.state = change.to_state;
                        c.error_message = change.error_message.clone();
                        c.attention = None;
                        if c.last_hook_at.is_some() {
                            c.last_hook_at = Some(change.at);
                        }
                    }
                });
                since_change.set(change.at);
                // An earlier part of the timeline does not end where live changes begin.
                if transitions_before.is_none() {
                    timeline.update(|entries| entries.push(change));
                }
                // The stored messages and run summary changed with it.
                reload_conversation();
            }
            // Resets never get here: the stream reloads the page for them.
            LiveEvent::Change { .. } | LiveEvent::SyncProgress { .. } | LiveEvent::Reset { .. } => {
            }
        }
    });

    let state = move || conversation.with(|c| c.state);
    let (cancel_id, send_id, earlier_id, timeline_id, mode_id) = (
        session_id.clone(),
        session_id.clone(),
        session_id.clone(),
        session_id.clone(),
        session_id,
    );
    let latest = (before.is_some() || transitions_before.is_some()).then(|| {
        view! {
            <p class="history-more">
                "This is an earlier part of the history. " <a href=session_url>"Show latest"</a>
            </p>
        }
    });

    view! {
        <div class="panel" data-hydrated=hydrated_marker()>
            <div class="toolbar">
                <LiveIndicator connection />
                <NotifyToggle />
            </div>
            // Plain closures rather than `<Show>`: its fallback is a type-erased
            // view, which brings a second (async) copy of the hydration code.
            {move || deleted.get().then(|| view! { <p class="form-error" role="alert">"This session was deleted."</p> })}
            <section class="session-status" aria-label="Status">
                {move || {
                    let (state, error_message, attention, last_hook_at) = conversation
                        .with(|c| (c.state, c.error_message.clone(), c.attention, c.last_hook_at));
                    view! {
                        <SessionStateBadge state error_message />
                        {attention_marker(attention)}
                        {state_since(state, since_change.get(), now)}
                        {last_hook(state, last_hook_at, now)}
                    }
                }}
                {move || {
                    conversation
                        .with(|c| c.ended_at.is_some() && c.state != SessionState::Working)
                        .then(|| view! { <span class="ended">"ended in its terminal"</span> })
                }}
                {move || {
                    (can_write && state() == SessionState::Working)
                        .then(|| {
                            let id = cancel_id.clone();
                            view! {
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
            {move || {
                let approvals = conversation.with(|c| c.approvals.clone());
                approvals_view(approvals, can_write, answer)
            }}
            {form_error(move || answer.error())}
            {move || {
                let (agent, mode) = conversation.with(|c| (c.agent, c.permission_mode));
                let working = state() == SessionState::Working;
                mode_view(agent, mode, can_write, working, set_mode, mode_id.clone())
            }}
            {move || {
                (state() == SessionState::Working && output.with(|o| !o.lines.is_empty())).then(|| {
                    view! { <pre class="live-output" aria-label="Live output">{move || output.with(|o| o.lines.join("\n"))}</pre> }
                })
            }}
            {latest}
            <section>
                <h2>"Conversation"</h2>
                {move || {
                    conversation
                        .with(Conversation::earlier_cursor)
                        .map(|cursor| {
                            show_earlier(
                                "Show earlier messages",
                                "before",
                                earlier,
                                LoadConversation::PATH,
                                earlier_id.clone(),
                                cursor,
                            )
                        })
                }}
                {form_error(move || earlier.error())}
                {move || {
                    let entries = conversation.with(|c| c.entries.clone());
                    if entries.is_empty() {
                        Either::Left(view! { <p class="empty">"No messages yet."</p> })
                    } else {
                        Either::Right(view! {
                            <ol class="messages" aria-label="Messages">
                                {entries.into_iter().map(entry_view).collect_view()}
                            </ol>
                        })
                    }
                }}
            </section>
            {can_write.then(|| view! {
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
            })}
            <section>
                <h2>"Timeline"</h2>
                {move || {
                    timeline_has_earlier
                        .get()
                        .then(|| timeline.with(|t| t.first().map(|t| t.seq)))
                        .flatten()
                        .map(|cursor| {
                            show_earlier(
                                "Show earlier",
                                "transitions_before",
                                earlier_timeline,
                                LoadTimeline::PATH,
                                timeline_id.clone(),
                                cursor,
                            )
                        })
                }}
                {form_error(move || earlier_timeline.error())}
                <ol class="timeline" aria-label="Timeline">
                    {move || timeline.with(|entries| timeline_view(entries))}
                </ol>
            </section>
        </div>
    }
}

/// The session's approval requests: each pending one with Allow / Deny
/// (and "Allow always" where the agent suggests a rule), the answered
/// ones with their outcome.
fn approvals_view(approvals: Vec<Approval>, can_write: bool, answer: ServerCall) -> impl IntoView {
    if approvals.is_empty() {
        return None;
    }
    let pending = approvals.iter().any(Approval::is_pending);
    let items = approvals
        .into_iter()
        .rev()
        .map(|approval| {
            let status = approval.status.as_str();
            let actions = (can_write && approval.is_pending()).then(|| {
                let decide = |decision: &'static str, label: &'static str, class: &'static str| {
                    let id = approval.id.clone();
                    view! {
                        <form method="post" action=AnswerApproval::PATH on:submit=move |event| answer.submit(event)>
                            <input type="hidden" name="approval_id" value=id />
                            <input type="hidden" name="decision" value=decision />
                            <button type="submit" class=class disabled=move || answer.pending()>{label}</button>
                        </form>
                    }
                };
                let always = approval
                    .can_allow_always()
                    .then(|| decide("allow_always", "Allow always for this session", "secondary"));
                let id = approval.id.clone();
                view! {
                    <div class="approval-actions">
                        {decide("allow", "Allow", "primary")}
                        {always}
                        <form class="deny-form" method="post" action=AnswerApproval::PATH on:submit=move |event| answer.submit(event)>
                            <input type="hidden" name="approval_id" value=id />
                            <input type="hidden" name="decision" value="deny" />
                            <input type="text" name="message" maxlength="2000" aria-label="Reason for denying (optional)" placeholder="Reason for denying (optional)" />
                            <button type="submit" class="danger" disabled=move || answer.pending()>"Deny"</button>
                        </form>
                    </div>
                }
            });
            let outcome = (!approval.is_pending())
                .then(|| view! { <span class="approval-outcome">{approval.outcome()}</span> });
            view! {
                <li class="approval" data-status=status>
                    <p class="approval-what">
                        <span class="approval-tool">{approval.tool.clone()}</span>
                        " "
                        <code>{approval.summary.clone()}</code>
                    </p>
                    {approval.detail.clone().map(|detail| view! { <pre class="approval-detail">{detail}</pre> })}
                    {approval.reason.clone().map(|reason| view! { <p class="muted">{reason}</p> })}
                    {outcome}
                    {actions}
                </li>
            }
        })
        .collect_view();
    let heading = if pending {
        "Needs your approval"
    } else {
        "Approval requests"
    };
    Some(view! {
        <section class="approvals card" aria-label="Approval requests">
            <h2>{heading}</h2>
            <ul class="approval-list">{items}</ul>
        </section>
    })
}

/// The session's permission mode, and (while it is not working) the form
/// that changes it. The shell has none.
fn mode_view(
    agent: AgentKind,
    mode: PermissionMode,
    can_write: bool,
    working: bool,
    set_mode: ServerCall,
    session_id: String,
) -> impl IntoView {
    let choices = PermissionMode::choices(agent);
    if choices.is_empty() {
        return None;
    }
    let warning = mode
        .warning()
        .map(|text| view! { <p class="mode-warning" role="note">{text}</p> });
    // `Either`, not `into_any`: a type-erased view carries a second (async)
    // copy of its hydration code into the bundle.
    if !can_write {
        return Some(Either::Left(view! {
            <section class="mode card" aria-label="Permission mode">
                <p>"Permission mode: " <strong>{mode.label()}</strong></p>
                {warning}
            </section>
        }));
    }
    let options = choices
        .iter()
        .map(|choice| {
            let label = match choice.warning() {
                Some(_) => format!("{} (no approvals)", choice.label()),
                None => choice.label().to_owned(),
            };
            view! { <option value=choice.as_str() selected=*choice == mode>{label}</option> }
        })
        .collect_view();
    Some(Either::Right(view! {
        <section class="mode card" aria-label="Permission mode">
            <form method="post" action=SetPermissionMode::PATH on:submit=move |event| set_mode.submit(event)>
                <input type="hidden" name="session_id" value=session_id />
                <label for="permission-mode">"Permission mode"</label>
                " "
                <select id="permission-mode" name="mode" disabled=working>{options}</select>
                " "
                <button type="submit" disabled=move || working || set_mode.pending()>"Change mode"</button>
                {working.then(|| view! { <span class="muted">" Changeable once the run ends."</span> })}
            </form>
            {warning}
            {form_error(move || set_mode.error())}
        </section>
    }))
}

/// A "Show earlier" link: without JavaScript a plain link to the page with
/// `?{param}={cursor}`; once hydrated it loads that part in place through
/// `call` (the server function at `path`).
fn show_earlier(
    label: &'static str,
    param: &'static str,
    call: ServerCall,
    path: &'static str,
    session_id: String,
    cursor: i32,
) -> impl IntoView {
    let cursor = cursor.to_string();
    view! {
        <p class="history-more">
            <a
                href=format!("?{param}={cursor}")
                on:click=move |event| {
                    event.prevent_default();
                    if !call.pending() {
                        call.call(path, &[("session_id", &session_id), ("before", &cursor)]);
                    }
                }
            >
                {label}
            </a>
        </p>
    }
}

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

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn render(can_write: bool, has_earlier: bool) -> String {
        render_with(can_write, has_earlier, OutputBacklog::default())
    }

    fn render_with(can_write: bool, has_earlier: bool, output: OutputBacklog) -> String {
        let conversation = Conversation {
            seq: 7,
            state: SessionState::Working,
            error_message: None,
            attention: None,
            last_hook_at: None,
            ended_at: None,
            agent: AgentKind::Claude,
            permission_mode: PermissionMode::Ask,
            approvals: Vec::new(),
            entries: vec![ConversationEntry {
                id: 42,
                role: Role::User,
                content: "make test".into(),
                run_summary: Some("running".into()),
            }],
            has_earlier,
        };
        let timeline = TimelinePage {
            transitions: Vec::new(),
            has_earlier: false,
        };
        Owner::new().with(|| {
            view! {
                <SessionConsole
                    session_id="s1".to_owned()
                    session_name="s".to_owned()
                    session_url="/projects/1/sessions/s1".to_owned()
                    conversation=IslandProp(conversation)
                    timeline=IslandProp(timeline)
                    before=None
                    transitions_before=None
                    state_changed_at=0
                    seq=7
                    can_write
                    output=IslandProp(output)
                />
            }
            .to_html()
        })
    }

    #[test]
    fn a_read_only_viewer_gets_neither_send_nor_cancel() {
        let full = render(true, false);
        assert!(full.contains("Send") && full.contains("Cancel"), "{full}");
        let read_only = render(false, false);
        assert!(!read_only.contains("<form"), "{read_only}");
        assert!(read_only.contains("make test") && read_only.contains("Processing"));
    }

    #[test]
    fn show_earlier_is_a_link_to_the_page_before_the_first_message() {
        assert!(!render(false, false).contains("Show earlier"));
        let html = render(false, true);
        assert!(html.contains(r#"href="?before=42""#), "{html}");
    }

    #[test]
    fn a_page_opened_mid_run_shows_the_output_so_far() {
        assert!(!render(false, false).contains("live-output"));
        let output = OutputBacklog {
            run_id: "r".into(),
            last: 2,
            lines: vec!["line-1".into(), "<line-2>".into()],
        };
        let html = render_with(false, false, output);
        assert!(
            html.contains("class=\"live-output\">line-1\n&lt;line-2&gt;</pre>"),
            "{html}"
        );
    }
}
