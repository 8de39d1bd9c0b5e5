//! `/projects/{project_id}/sessions[?state=…]`: a project's sessions, newest
//! first, each with its state badge; per-state counts and filter; the "New
//! session" form. Everything on it follows the change stream once hydrated.

use super::{hydrated_marker, ErrorPage, NotFound};
use crate::{
    agent::{agent_choices, AgentChoice, AgentKind},
    components::{
        attention_marker, coarse, effect, form_error, since_label, IslandProp, LiveIndicator,
        NotifyToggle, ServerCall, SessionStateBadge,
    },
    error::AppError,
    live::{notify_run_end, use_live, LiveEvent, Scope},
    permission::PermissionMode,
    project::{Project, SetProjectApprovals},
    session::{
        project_sessions, CreateSession, DeleteSession, ProjectSessions, ProjectWithSessions,
        RenameSession, Session, StateCounts,
    },
    session_state::SessionState,
    sync::{SyncProject, SyncSummary},
    transition::Reason,
};
use leptos::{prelude::*, server_fn::ServerFn};
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn SessionsPage() -> impl IntoView {
    let project_id = use_params_map().with_untracked(|params| {
        params
            .get("project_id")
            .and_then(|id| id.parse::<i32>().ok())
    });
    let filter = use_query_map().with_untracked(|query| query.get("state"));
    let can_write = crate::access::current().can_write();
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading sessions…"</p> }>
            {move || {
                let filter = filter.clone();
                Suspend::new(async move {
                    let Some(project_id) = project_id else {
                        return view! { <NotFound message="There is no such project." /> }.into_any();
                    };
                    let filter = match filter.map(|f| f.parse::<SessionState>()).transpose() {
                        Ok(filter) => filter,
                        Err(err) => {
                            return view! { <ErrorPage err=AppError::Invalid(err.to_string()) /> }.into_any()
                        }
                    };
                    let (page, agents) = (project_sessions(project_id, filter).await, agent_choices().await);
                    match page.and_then(|page| agents.map(|agents| (page, agents))) {
                        Ok((ProjectWithSessions { project, sessions, counts, seq, unseen }, agents)) => {
                            view! {
                                <Title text=format!("{}{} · agentdeck", counts.title_prefix(), project.name) />
                                <nav class="breadcrumb" aria-label="Breadcrumb">
                                    <a href="/">"Projects"</a>
                                    <span aria-hidden="true">" / "</span>
                                    <span>{project.name.clone()}</span>
                                </nav>
                                <h1>{project.name.clone()}</h1>
                                <p class="project-path">
                                    <code>{project.path.clone()}</code>
                                </p>
                                {terminal_approvals(&project, can_write)}
                                <SessionsPanel
                                    project_id=project.id
                                    project_name=project.name
                                    sessions=IslandProp(sessions)
                                    agents=IslandProp(agents)
                                    counts=IslandProp(counts)
                                    seq
                                    filter
                                    can_write
                                    unseen
                                />
                            }
                                .into_any()
                        }
                        Err(err) => view! { <ErrorPage err /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// "Approve from agentdeck": whether the project's terminal Claude sessions
/// wait for an answer from here when they ask for approval, and how long.
/// Rendered on the server: a plain form that posts and comes back.
fn terminal_approvals(project: &Project, can_write: bool) -> impl IntoView {
    let minutes = (project.approval_wait_secs / 60).max(1);
    let state = if project.approve_from_dashboard {
        format!("Terminal sessions wait up to {minutes} min for an answer here.")
    } else {
        "Terminal sessions ask in the terminal.".to_owned()
    };
    view! {
        <details class="card terminal-approvals">
            <summary>"Approvals from the terminal: " {state}</summary>
            {can_write.then(|| view! {
                <form method="post" action=SetProjectApprovals::PATH>
                    <input type="hidden" name="project_id" value=project.id />
                    <label>
                        <input type="checkbox" name="enabled" checked=project.approve_from_dashboard />
                        " Approve from agentdeck"
                    </label>
                    " "
                    <label>
                        "Wait up to "
                        <input type="number" name="wait_minutes" min="1" max="60" value=minutes aria-label="Minutes to wait" />
                        " minutes"
                    </label>
                    " "
                    <button type="submit">"Save"</button>
                    <p class="muted">
                        "A terminal Claude session's approval prompt then waits for Allow or Deny on its page;                          with no answer in time, the terminal asks as usual."
                    </p>
                </form>
            })}
        </details>
    }
}

/// The "New session" form, the filter, and the list, kept in step with the
/// change stream once hydrated. A read-only viewer (`can_write` false) gets
/// no forms: no "New session", "Sync", rename or delete.
#[island]
#[allow(clippy::too_many_arguments)]
fn SessionsPanel(
    project_id: i32,
    project_name: String,
    sessions: IslandProp<Vec<Session>>,
    agents: IslandProp<Vec<AgentChoice>>,
    counts: IslandProp<StateCounts>,
    seq: i32,
    filter: Option<SessionState>,
    can_write: bool,
    unseen: Vec<String>,
) -> impl IntoView {
    let (IslandProp(sessions), IslandProp(agents), IslandProp(counts)) = (sessions, agents, counts);
    let sessions = RwSignal::new(sessions);
    let unseen = RwSignal::new(unseen);
    let counts = RwSignal::new(counts);
    let create = ServerCall::clearing_form();
    let rename = ServerCall::new();
    let delete = ServerCall::new();
    let reload = ServerCall::new();
    let sync = ServerCall::new();
    let sync_progress = RwSignal::new(None::<(usize, usize)>);
    let now = clock();
    // The change-log position the list and counts reflect: the snapshot's,
    // then each change applied. Changes at or before it are already shown.
    let applied = StoredValue::new(seq);
    let reload_list = move || {
        let project_id = project_id.to_string();
        let mut fields = vec![("project_id", project_id.as_str())];
        fields.extend(filter.map(|state| ("state", state.as_str())));
        reload.call(ProjectSessions::PATH, &fields);
    };

    effect(move || {
        if let Some(page) = reload.answer::<ProjectWithSessions>() {
            if page.seq >= applied.get_value() {
                applied.set_value(page.seq);
                sessions.set(page.sessions);
                counts.set(page.counts);
                unseen.set(page.unseen);
            } else {
                // Read before changes the stream has since applied: ask again.
                reload_list();
            }
        }
    });
    effect(move || {
        let title = format!(
            "{}{project_name} · agentdeck",
            counts.with(StateCounts::title_prefix)
        );
        document().set_title(&title);
    });

    let connection = use_live(Scope::Project(project_id), seq, move |event| {
        let LiveEvent::Change { change, session } = event else {
            return;
        };
        if change.seq <= applied.get_value() {
            return;
        }
        applied.set_value(change.seq);
        let shown = |state: SessionState| filter.is_none_or(|f| f == state);
        match change.reason {
            Reason::Created => {
                counts.update(|c| c.add(change.to_state, 1));
                if let Some(session) = session.filter(|s| shown(s.state)) {
                    sessions.update(|list| {
                        if !list.iter().any(|s| s.id == session.id) {
                            list.insert(0, session);
                        }
                    });
                }
            }
            Reason::Renamed => {
                if let Some(renamed) = session {
                    sessions.update(|list| {
                        if let Some(s) = list.iter_mut().find(|s| s.id == renamed.id) {
                            s.name = renamed.name;
                        }
                    });
                }
            }
            Reason::Attention => {
                let mut known = false;
                sessions.update(|list| {
                    if let Some(s) = list.iter_mut().find(|s| s.id == change.session_id) {
                        known = true;
                        let delta = i64::from(change.attention.is_some())
                            - i64::from(s.attention.is_some());
                        counts.update(|c| c.needs_you = (c.needs_you + delta).max(0));
                        notify_run_end(&s.name, &change);
                        s.attention = change.attention;
                        if s.is_terminal() {
                            s.last_hook_at = Some(change.at);
                        }
                    }
                });
                if !known {
                    // Its row is filtered out: the counts come from a reload.
                    reload_list();
                }
            }
            Reason::Deleted => {
                counts.update(|c| c.add(change.from_state, -1));
                sessions.update(|list| list.retain(|s| s.id != change.session_id));
            }
            _ => {
                counts.update(|c| {
                    c.add(change.from_state, -1);
                    c.add(change.to_state, 1);
                });
                let mut known = false;
                sessions.update(|list| {
                    if let Some(at) = list.iter().position(|s| s.id == change.session_id) {
                        known = true;
                        let mut s = list.remove(at);
                        notify_run_end(&s.name, &change);
                        if s.attention.take().is_some() {
                            counts.update(|c| c.needs_you = (c.needs_you - 1).max(0));
                        }
                        if s.is_terminal() {
                            s.last_hook_at = Some(change.at);
                        }
                        // A run that ended by itself is "done, not seen" until opened.
                        if change.from_state == SessionState::Working
                            && change.to_state != SessionState::Working
                            && change.reason != Reason::Cancelled
                        {
                            unseen.update(|ids| {
                                if !ids.contains(&s.id) {
                                    ids.push(s.id.clone());
                                }
                            });
                        }
                        s.state = change.to_state;
                        s.error_message = change.error_message.clone();
                        s.state_changed_at = change.at;
                        s.updated_at = change.at;
                        if shown(s.state) {
                            list.insert(0, s);
                        }
                    }
                });
                if !known {
                    // Not in the filtered list: it may enter it, and whether
                    // it needed you (for the counts) is not known here.
                    reload_list();
                }
            }
        }
    });

    let list_error = move || rename.error().or_else(|| delete.error());

    view! {
        <div class="panel" data-hydrated=hydrated_marker()>
            <div class="toolbar">
                <LiveIndicator connection />
                <div class="toolbar-actions">
                    {can_write.then(|| view! {
                        <form method="post" action=SyncProject::PATH on:submit=move |event| sync.submit(event)>
                            <input type="hidden" name="project_id" value=project_id />
                            <button type="submit" disabled=move || sync.pending()>
                                "Sync"
                            </button>
                        </form>
                    })}
                    <NotifyToggle />
                </div>
            </div>
            <p class="sync-summary" aria-live="polite">
                {move || {
                    if sync.pending() {
                        Some(match sync_progress.get() {
                            Some((scanned, total)) => format!("Syncing… {scanned} / {total} files scanned"),
                            None => "Syncing…".to_owned(),
                        })
                    } else {
                        sync.reply().map(|reply| match reply {
                            Ok(json) => match serde_json::from_str::<SyncSummary>(&json) {
                                Ok(summary) => format!("Synced: {summary}"),
                                Err(_) => "Synced.".to_owned(),
                            },
                            Err(err) => format!("Sync failed: {err}"),
                        })
                    }
                }}
            </p>
            {can_write.then(|| view! {
                <section class="card">
                    <h2>"New session"</h2>
                    <form method="post" action=CreateSession::PATH on:submit=move |event| create.submit(event)>
                        <input type="hidden" name="project_id" value=project_id />
                        <div class="fields">
                            <label class="field grow">
                                <span>"Session name"</span>
                                <input name="name" required maxlength="200" autocomplete="off" />
                            </label>
                            // A separate <label for>: wrapping a <select> would fold its
                            // options' text into the label.
                            <div class="field">
                                <label for="new-session-agent">"Agent"</label>
                                <select id="new-session-agent" name="agent">
                                    {agents
                                        .into_iter()
                                        .map(|choice| {
                                            let label = match &choice.unavailable {
                                                None => choice.kind.label().to_owned(),
                                                Some(why) => format!("{} (unavailable: {why})", choice.kind.label()),
                                            };
                                            view! {
                                                <option value=choice.kind.as_str() disabled=choice.unavailable.is_some()>
                                                    {label}
                                                </option>
                                            }
                                        })
                                        .collect_view()}
                                </select>
                            </div>
                            <div class="field">
                                <label for="new-session-mode">"Permission mode"</label>
                                <select id="new-session-mode" name="permission_mode">
                                    <option value="">"The agent's default"</option>
                                    {[AgentKind::Claude, AgentKind::Codex]
                                        .into_iter()
                                        .map(|agent| view! {
                                            <optgroup label=agent.label()>
                                                {PermissionMode::choices(agent)
                                                    .iter()
                                                    .map(|mode| view! { <option value=mode.as_str()>{mode.label()}</option> })
                                                    .collect_view()}
                                            </optgroup>
                                        })
                                        .collect_view()}
                                </select>
                            </div>
                            <button type="submit" class="primary" disabled=move || create.pending()>
                                "New session"
                            </button>
                        </div>
                        {form_error(move || create.error())}
                    </form>
                </section>
            })}
            <section>
                <h2 class="visually-hidden">"Sessions"</h2>
                <nav class="filters" aria-label="Filter by state">
                    {[None, Some(SessionState::Idle), Some(SessionState::Working), Some(SessionState::Error)]
                        .into_iter()
                        .map(|option| {
                            let href = match option {
                                None => format!("/projects/{project_id}/sessions"),
                                Some(state) => format!("/projects/{project_id}/sessions?state={state}"),
                            };
                            let label = option.map_or("All", |s| match s {
                                SessionState::Idle => "Idle",
                                SessionState::Working => "Working",
                                SessionState::Error => "Error",
                            });
                            let count = move || counts.with(|c| option.map_or(c.total(), |s| c.get(s)));
                            view! {
                                <a href=href aria-current=(option == filter).then_some("page")>
                                    {label} " " <span class="count">{count}</span>
                                </a>
                            }
                        })
                        .collect_view()}
                </nav>
                {form_error(list_error)}
                <ul class="session-list" aria-label="Sessions">
                    <For
                        each=move || sessions.get()
                        key=|s| (s.id.clone(), s.name.clone(), s.state, s.error_message.clone(), s.attention, s.state_changed_at)
                        let:session
                    >
                        <SessionItem session rename delete now can_write unseen />
                    </For>
                </ul>
                // Not `<Show>`: its fallback is a type-erased view, which brings
                // a second (async) copy of the hydration code.
                {move || sessions.with(Vec::is_empty).then(|| view! {
                    <p class="empty">
                        {match filter {
                            None if can_write => "No sessions yet. Create one above.".to_owned(),
                            None => "No sessions yet.".to_owned(),
                            Some(state) => format!("No {state} sessions."),
                        }}
                    </p>
                })}
            </section>
        </div>
    }
}

/// Milliseconds since the epoch, ticking every second in the browser; 0 on
/// the server (so both render the same markup before hydration).
pub(crate) fn clock() -> RwSignal<f64> {
    let now = RwSignal::new(0.0);
    #[cfg(feature = "hydrate")]
    {
        now.set(js_sys::Date::now());
        let _ = set_interval_with_handle(
            move || now.set(js_sys::Date::now()),
            std::time::Duration::from_secs(1),
        );
    }
    now
}

/// How long a session has been in its state: "working 1m 12s" (`.elapsed`,
/// ticking), "failed 2h ago", "idle 5m ago".
pub(crate) fn state_since(state: SessionState, since: i64, now: RwSignal<f64>) -> impl IntoView {
    let class = if state == SessionState::Working {
        "since elapsed"
    } else {
        "since"
    };
    view! { <span class=class>{move || since_label(state, now.get(), since)}</span> }
}

/// For a working terminal session: how long ago its last hook arrived, so
/// one that went silent (no process to watch) is visibly stale.
pub(crate) fn last_hook(
    state: SessionState,
    last_hook_at: Option<i64>,
    now: RwSignal<f64>,
) -> impl IntoView {
    let at = last_hook_at.filter(|_| state == SessionState::Working)?;
    Some(view! {
        <span class="last-hook">
            {move || {
                let now = now.get();
                if now <= 0.0 {
                    " · reported by hook".to_owned()
                } else {
                    format!(" · last hook {} ago", coarse(now as i64 - at))
                }
            }}
        </span>
    })
}

/// One row: the session's link, its badge, how long it has been working,
/// and (for those who may change it) rename/delete controls that also work
/// before hydration.
#[component]
fn SessionItem(
    session: Session,
    rename: ServerCall,
    delete: ServerCall,
    now: RwSignal<f64>,
    can_write: bool,
    unseen: RwSignal<Vec<String>>,
) -> impl IntoView {
    let url = session.url();
    let unseen_id = session.id.clone();
    let terminal = session.is_terminal();
    let Session {
        id,
        name,
        agent,
        state,
        error_message,
        state_changed_at,
        attention,
        last_hook_at,
        ..
    } = session;
    let (rename_id, rename_value, delete_label) =
        (id.clone(), name.clone(), format!("Delete {name}"));
    view! {
        <li class="session-item">
            <div class="session-main">
                <a class="session-name" href=url>{name}</a>
                <SessionStateBadge state error_message />
                {attention_marker(attention)}
                {state_since(state, state_changed_at, now)}
                {move || {
                    unseen
                        .with(|ids| ids.contains(&unseen_id))
                        .then(|| view! { <span class="unseen" title="It ended since you last opened it">"done, not seen"</span> })
                }}
            </div>
            <span class="session-agent">
                {agent.label()}
                {terminal.then_some(" · terminal")}
                {last_hook(state, last_hook_at, now)}
            </span>
            {can_write.then(|| view! {
                <div class="session-actions">
                    <details>
                        <summary>"Rename"</summary>
                        <form method="post" action=RenameSession::PATH on:submit=move |event| rename.submit(event)>
                            <input type="hidden" name="session_id" value=rename_id />
                            <label class="field">
                                <span>"New name"</span>
                                <input name="name" value=rename_value required maxlength="200" />
                            </label>
                            <button type="submit">"Save"</button>
                        </form>
                    </details>
                    <details>
                        <summary>"Delete"</summary>
                        <form method="post" action=DeleteSession::PATH on:submit=move |event| delete.submit(event)>
                            <input type="hidden" name="session_id" value=id />
                            <button type="submit" class="danger">
                                {delete_label}
                            </button>
                        </form>
                    </details>
                </div>
            })}
        </li>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn render(can_write: bool) -> String {
        let session = Session {
            id: "s1".into(),
            state: SessionState::Working,
            ..Session::new(1, "busy one".into(), AgentKind::Shell, 0)
        };
        let agents = vec![AgentChoice {
            kind: AgentKind::Shell,
            unavailable: None,
        }];
        Owner::new().with(|| {
            view! {
                <SessionsPanel
                    project_id=1
                    project_name="p".to_owned()
                    sessions=IslandProp(vec![session])
                    agents=IslandProp(agents)
                    counts=IslandProp(StateCounts::default())
                    seq=0
                    filter=None
                    can_write
                    unseen=vec!["s1".to_owned()]
                />
            }
            .to_html()
        })
    }

    #[test]
    fn a_read_only_viewer_sees_the_sessions_but_no_form() {
        let full = render(true);
        for control in ["New session", "Sync", "Rename", "Delete busy one"] {
            assert!(full.contains(control), "{control} missing: {full}");
        }
        let read_only = render(false);
        assert!(!read_only.contains("<form"), "{read_only}");
        assert!(read_only.contains("busy one") && read_only.contains("Processing"));
        assert!(read_only.contains("live-indicator"), "live updates stay");
        assert!(read_only.contains("done, not seen"), "{read_only}");
    }
}
