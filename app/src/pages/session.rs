//! `/projects/{project_id}/sessions/{session_id}`: one session — its state,
//! conversation and runs — with the "Message" form and "Cancel".

use super::{hydrated_marker, ErrorPage, NotFound};
use crate::{
    components::SessionStateBadge,
    error::AppError,
    run::{
        load_session_detail, CancelRun, Message, Outcome, Role, Run, SendMessage, SessionDetail,
    },
    session_state::SessionState,
};
use leptos::{html, prelude::*};
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
                                <SessionConsole detail />
                            }
                                .into_any()
                        }
                        Ok(_) => view! { <NotFound message="There is no such session in this project." /> }.into_any(),
                        Err(AppError::NotFound(message)) => view! { <NotFound message /> }.into_any(),
                        Err(err) => view! { <ErrorPage err /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// The live part of the page: state, conversation, and the forms. After a
/// send or cancel it reloads the session's data from the server.
#[island]
fn SessionConsole(detail: SessionDetail) -> impl IntoView {
    let session_id = detail.session.id.clone();
    let detail = RwSignal::new(detail);
    let send = ServerAction::<SendMessage>::new();
    let cancel = ServerAction::<CancelRun>::new();
    let reload = Action::new(|id: &String| load_session_detail(id.clone()));
    let form = NodeRef::<html::Form>::new();

    Effect::new({
        let id = session_id.clone();
        move || {
            if let Some(Ok(_)) = send.value().get() {
                if let Some(form) = form.get_untracked() {
                    form.reset();
                }
                reload.dispatch(id.clone());
            }
        }
    });
    Effect::new({
        let id = session_id.clone();
        move || {
            if let Some(Ok(_)) = cancel.value().get() {
                reload.dispatch(id.clone());
            }
        }
    });
    Effect::new(move || {
        if let Some(Ok(fresh)) = reload.value().get() {
            detail.set(fresh);
        }
    });

    let state = move || detail.with(|d| d.session.state);
    let send_error = move || {
        send.value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    let cancel_error = move || {
        cancel
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    let (cancel_id, send_id) = (session_id.clone(), session_id);

    view! {
        <div class="panel" data-hydrated=hydrated_marker()>
            <section class="session-status" aria-label="Status">
                {move || {
                    let (state, error_message) = detail
                        .with(|d| (d.session.state, d.session.error_message.clone()));
                    view! { <SessionStateBadge state error_message /> }
                }}
                {move || {
                    (state() == SessionState::Working)
                        .then(|| {
                            let id = cancel_id.clone();
                            view! {
                                <ActionForm action=cancel>
                                    <input type="hidden" name="session_id" value=id />
                                    <button type="submit" class="danger" disabled=move || cancel.pending().get()>
                                        "Cancel"
                                    </button>
                                </ActionForm>
                            }
                        })
                }}
                {move || cancel_error().map(|msg| view! { <p class="form-error" role="alert">{msg}</p> })}
            </section>
            <section>
                <h2>"Conversation"</h2>
                <Show
                    when=move || detail.with(|d| !d.messages.is_empty())
                    fallback=|| view! { <p class="empty">"No messages yet."</p> }
                >
                    <ol class="messages" aria-label="Messages">
                        {move || {
                            detail.with(|d| {
                                d.messages
                                    .iter()
                                    .map(|message| {
                                        let run = message
                                            .run_id
                                            .as_ref()
                                            .and_then(|id| d.runs.iter().find(|r| &r.id == id))
                                            .cloned();
                                        view! { <MessageItem message=message.clone() run /> }
                                    })
                                    .collect_view()
                            })
                        }}
                    </ol>
                </Show>
            </section>
            <section class="card">
                <ActionForm action=send node_ref=form>
                    <input type="hidden" name="session_id" value=send_id />
                    <div class="field">
                        <label for="message">"Message"</label>
                        <textarea id="message" name="message" rows="3" required></textarea>
                    </div>
                    <div class="form-actions">
                        <button type="submit" class="primary" disabled=move || send.pending().get()>
                            "Send"
                        </button>
                    </div>
                    {move || send_error().map(|msg| view! { <p class="form-error" role="alert">{msg}</p> })}
                </ActionForm>
            </section>
        </div>
    }
}

/// One message; a user message also shows how its run went.
#[component]
fn MessageItem(message: Message, run: Option<Run>) -> impl IntoView {
    let (class, who) = match message.role {
        Role::User => ("message message-user", "You"),
        Role::Agent => ("message message-agent", "Agent"),
    };
    let run_summary = (message.role == Role::User)
        .then_some(run)
        .flatten()
        .map(|run| {
            let outcome = run.outcome.map_or("running", Outcome::as_str);
            match run.duration_ms {
                Some(ms) => format!("{outcome} · {}", format_duration(ms)),
                None => outcome.to_owned(),
            }
        });
    view! {
        <li class=class>
            <span class="message-author">{who}</span>
            <pre class="message-content">{message.content}</pre>
            {run_summary.map(|summary| view! { <span class="run-meta">{summary}</span> })}
        </li>
    }
}

/// "850 ms", "2.4 s", "1m 12s", "2h 5m".
pub fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let secs = ms / 1000;
    match secs {
        0 => format!("{ms} ms"),
        1..60 => format!("{:.1} s", ms as f64 / 1000.0),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, (secs % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::format_duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(850), "850 ms");
        assert_eq!(format_duration(2_400), "2.4 s");
        assert_eq!(format_duration(72_000), "1m 12s");
        assert_eq!(format_duration(7_500_000), "2h 5m");
        assert_eq!(format_duration(-5), "0 ms");
    }
}
