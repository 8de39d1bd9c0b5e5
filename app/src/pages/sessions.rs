//! `/projects/{project_id}/sessions`: a project's sessions, newest first,
//! each with its state badge, and the "New session" form.

use super::{hydrated_marker, ErrorPage, NotFound};
use crate::{
    agent::{agent_choices, AgentChoice},
    components::SessionStateBadge,
    error::AppError,
    session::{
        project_sessions, CreateSession, DeleteSession, ProjectWithSessions, RenameSession, Session,
    },
};
use leptos::{html, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn SessionsPage() -> impl IntoView {
    let project_id = use_params_map().with_untracked(|params| {
        params
            .get("project_id")
            .and_then(|id| id.parse::<i32>().ok())
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading sessions…"</p> }>
            {move || Suspend::new(async move {
                let Some(project_id) = project_id else {
                    return view! { <NotFound message="There is no such project." /> }.into_any();
                };
                let (page, agents) = (project_sessions(project_id).await, agent_choices().await);
                match page.and_then(|page| agents.map(|agents| (page, agents))) {
                    Ok((ProjectWithSessions { project, sessions }, agents)) => {
                        view! {
                            <Title text=format!("{} · agentdeck", project.name) />
                            <nav class="breadcrumb" aria-label="Breadcrumb">
                                <a href="/">"Projects"</a>
                                <span aria-hidden="true">" / "</span>
                                <span>{project.name.clone()}</span>
                            </nav>
                            <h1>{project.name.clone()}</h1>
                            <p class="project-path">
                                <code>{project.path.clone()}</code>
                            </p>
                            <SessionsPanel project_id=project.id sessions agents />
                        }
                            .into_any()
                    }
                    Err(AppError::NotFound(message)) => view! { <NotFound message /> }.into_any(),
                    Err(err) => view! { <ErrorPage err /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The "New session" form and the list, kept in step once hydrated.
#[island]
fn SessionsPanel(
    project_id: i32,
    sessions: Vec<Session>,
    agents: Vec<AgentChoice>,
) -> impl IntoView {
    let sessions = RwSignal::new(sessions);
    let create = ServerAction::<CreateSession>::new();
    let rename = ServerAction::<RenameSession>::new();
    let delete = ServerAction::<DeleteSession>::new();
    let form = NodeRef::<html::Form>::new();

    Effect::new(move || {
        if let Some(Ok(session)) = create.value().get() {
            sessions.update(|list| {
                if !list.iter().any(|s| s.id == session.id) {
                    list.insert(0, session);
                }
            });
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
    });
    Effect::new(move || {
        if let Some(Ok(renamed)) = rename.value().get() {
            sessions.update(|list| {
                list.retain(|s| s.id != renamed.id);
                list.insert(0, renamed);
            });
        }
    });
    Effect::new(move || {
        if let Some(Ok(deleted)) = delete.value().get() {
            sessions.update(|list| list.retain(|s| s.id != deleted));
        }
    });

    let create_error = move || {
        create
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    let list_error = move || {
        let renamed = rename.value().get().and_then(Result::err);
        let deleted = delete.value().get().and_then(Result::err);
        renamed.or(deleted).map(|e| e.to_string())
    };

    view! {
        <div class="panel" data-hydrated=hydrated_marker()>
        <section class="card">
            <h2>"New session"</h2>
            <ActionForm action=create node_ref=form>
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
                                        <option
                                            value=choice.kind.as_str()
                                            disabled=choice.unavailable.is_some()
                                        >
                                            {label}
                                        </option>
                                    }
                                })
                                .collect_view()}
                        </select>
                    </div>
                    <button type="submit" class="primary" disabled=move || create.pending().get()>
                        "New session"
                    </button>
                </div>
                {move || create_error().map(|msg| view! { <p class="form-error" role="alert">{msg}</p> })}
            </ActionForm>
        </section>
        <section>
            <h2 class="visually-hidden">"Sessions"</h2>
            {move || list_error().map(|msg| view! { <p class="form-error" role="alert">{msg}</p> })}
            <ul class="session-list" aria-label="Sessions">
                <For
                    each=move || sessions.get()
                    key=|s| (s.id.clone(), s.name.clone(), s.state, s.error_message.clone())
                    let:session
                >
                    <SessionItem session rename delete />
                </For>
            </ul>
            <Show when=move || sessions.with(Vec::is_empty)>
                <p class="empty">"No sessions yet. Create one above."</p>
            </Show>
        </section>
        </div>
    }
}

/// One row: the session's link, its badge, and rename/delete controls that
/// also work before hydration.
#[component]
fn SessionItem(
    session: Session,
    rename: ServerAction<RenameSession>,
    delete: ServerAction<DeleteSession>,
) -> impl IntoView {
    let url = session.url();
    let Session {
        id,
        name,
        agent,
        state,
        error_message,
        ..
    } = session;
    let (rename_id, rename_value, delete_label) =
        (id.clone(), name.clone(), format!("Delete {name}"));
    view! {
        <li class="session-item">
            <div class="session-main">
                <a class="session-name" href=url>{name}</a>
                <SessionStateBadge state error_message />
            </div>
            <span class="session-agent">{agent.label()}</span>
            <div class="session-actions">
                <details>
                    <summary>"Rename"</summary>
                    <ActionForm action=rename>
                        <input type="hidden" name="session_id" value=rename_id />
                        <label class="field">
                            <span>"New name"</span>
                            <input name="name" value=rename_value required maxlength="200" />
                        </label>
                        <button type="submit">"Save"</button>
                    </ActionForm>
                </details>
                <details>
                    <summary>"Delete"</summary>
                    <ActionForm action=delete>
                        <input type="hidden" name="session_id" value=id />
                        <button type="submit" class="danger">
                            {delete_label}
                        </button>
                    </ActionForm>
                </details>
            </div>
        </li>
    }
}
