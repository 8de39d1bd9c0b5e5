//! `/projects/{project_id}/sessions/{session_id}`: one session — its state,
//! conversation and runs — with the "Message" form and "Cancel".

use super::{hydrated_marker, ErrorPage, NotFound};
use crate::{
    components::SessionStateBadge,
    error::AppError,
    run::{
        load_conversation, load_session_detail, CancelRun, Conversation, ConversationEntry, Role,
        SendMessage,
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
                                <SessionConsole session_id=detail.session.id.clone() conversation=detail.conversation() />
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
/// send or cancel it reloads the conversation from the server.
#[island]
fn SessionConsole(session_id: String, conversation: Conversation) -> impl IntoView {
    let conversation = RwSignal::new(conversation);
    let send = ServerAction::<SendMessage>::new();
    let cancel = ServerAction::<CancelRun>::new();
    let reload = Action::new(|id: &String| load_conversation(id.clone()));
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
            conversation.set(fresh);
        }
    });

    let state = move || conversation.with(|c| c.state);
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
                    let (state, error_message) = conversation.with(|c| (c.state, c.error_message.clone()));
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
                    when=move || conversation.with(|c| !c.entries.is_empty())
                    fallback=|| view! { <p class="empty">"No messages yet."</p> }
                >
                    <ol class="messages" aria-label="Messages">
                        {move || conversation.with(|c| c.entries.iter().cloned().map(entry_view).collect_view())}
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
