//! `/notifications`: where notifications go when no tab is open. Rendered
//! on the server only, with plain forms that post to the server functions
//! and come back to the page: it costs the browser bundle nothing and works
//! without JavaScript. A read-only viewer sees the targets without forms.

use super::ErrorPage;
use crate::{
    components::coarse,
    notify::{
        list_notify_targets, AddNotifyTarget, RemoveNotifyTarget, SendTestNotification,
        SetNotifyEvents, Target, TargetKind,
    },
};
use leptos::{prelude::*, server_fn::ServerFn};
use leptos_meta::Title;

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let can_write = crate::access::current().can_write();
    view! {
        <Title text="Notifications · agentdeck" />
        <h1>"Notifications"</h1>
        <p class="muted">
            "Runs that fail, finish or need you are also sent here, so they reach you with no tab open."
        </p>
        <Suspense fallback=|| view! { <p class="loading">"Loading targets…"</p> }>
            {move || Suspend::new(async move {
                match list_notify_targets().await {
                    Ok(targets) => targets_panel(targets, can_write, now()).into_any(),
                    Err(err) => view! { <ErrorPage err /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Milliseconds since the epoch where the page renders (the server).
fn now() -> i64 {
    #[cfg(feature = "ssr")]
    return crate::db::now_millis();
    #[cfg(not(feature = "ssr"))]
    0
}

/// The targets and, for a writer, the forms that change them.
fn targets_panel(targets: Vec<Target>, can_write: bool, now: i64) -> impl IntoView {
    let empty = targets.is_empty();
    let items = targets
        .into_iter()
        .map(|target| target_item(target, can_write, now))
        .collect_view();
    view! {
        <section aria-labelledby="targets-heading">
            <h2 id="targets-heading">"Targets"</h2>
            {empty.then(|| view! { <p class="empty">"No notification targets yet."</p> })}
            <ul class="notify-targets" aria-label="Notification targets">{items}</ul>
        </section>
        {can_write.then(add_form)}
    }
}

/// The three events, as a form's checkboxes or as text.
const EVENTS: [(&str, &str); 3] = [
    ("on_failed", "Run failed"),
    ("on_needs_you", "Needs you"),
    ("on_finished", "Run finished"),
];

fn target_item(target: Target, can_write: bool, now: i64) -> impl IntoView {
    let on = [target.on_failed, target.on_needs_you, target.on_finished];
    let id = target.id.to_string();
    let last = match (target.last_at, &target.last_result) {
        (Some(at), Some(result)) => format!("Last delivery {} ago: {result}", coarse(now - at)),
        _ => "Nothing sent yet".to_owned(),
    };
    let status = match target.last_ok {
        Some(true) => "ok",
        Some(false) => "failed",
        None => "none",
    };
    let label = format!("{} {}", target.kind.label(), target.url);
    let events = if can_write {
        let boxes = EVENTS
            .iter()
            .zip(on)
            .map(|((name, text), checked)| {
                view! {
                    <label class="check">
                        <input type="checkbox" name=*name value="true" checked=checked />
                        {*text}
                    </label>
                }
            })
            .collect_view();
        view! {
            <form method="post" action=SetNotifyEvents::PATH class="notify-events">
                <input type="hidden" name="id" value=id.clone() />
                {boxes}
                <button type="submit">"Save"</button>
            </form>
            <div class="notify-actions">
                <form method="post" action=SendTestNotification::PATH>
                    <input type="hidden" name="id" value=id.clone() />
                    <button type="submit">"Send test"</button>
                </form>
                {(!target.from_flag).then(|| view! {
                    <form method="post" action=RemoveNotifyTarget::PATH>
                        <input type="hidden" name="id" value=id.clone() />
                        <button type="submit" class="danger">"Remove"</button>
                    </form>
                })}
            </div>
        }
        .into_any()
    } else {
        let chosen: Vec<&str> = EVENTS
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|((_, text), _)| *text)
            .collect();
        let text = if chosen.is_empty() {
            "No events".to_owned()
        } else {
            chosen.join(", ")
        };
        view! { <p class="notify-events">{text}</p> }.into_any()
    };
    view! {
        <li class="card notify-target" data-kind=target.kind.as_str() aria-label=label>
            <div class="notify-head">
                <strong>{target.kind.label()}</strong>
                " "
                <code class="path">{target.url.clone()}</code>
                {target.from_flag.then(|| view! { <span class="muted">" · set by --notify"</span> })}
            </div>
            <p class="last-delivery" data-status=status>{last}</p>
            {events}
        </li>
    }
}

fn add_form() -> impl IntoView {
    let options = TargetKind::ALL
        .into_iter()
        .map(|kind| view! { <option value=kind.as_str()>{kind.label()}</option> })
        .collect_view();
    view! {
        <section class="card">
            <h2>"Add target"</h2>
            <form method="post" action=AddNotifyTarget::PATH>
                <div class="fields">
                    <label class="field">
                        <span>"Kind"</span>
                        <select name="kind">
                            <option value="">"Tell from the URL"</option>
                            {options}
                        </select>
                    </label>
                    <label class="field grow">
                        <span>"URL"</span>
                        <input
                            name="url"
                            type="url"
                            required
                            placeholder="https://ntfy.sh/my-topic"
                            autocomplete="off"
                            spellcheck="false"
                        />
                    </label>
                    <button type="submit" class="primary">"Add target"</button>
                </div>
            </form>
            <p class="muted">
                "Slack and Discord incoming-webhook URLs, ntfy topic URLs and any other URL (sent JSON) work. The URL is shown masked once added."
            </p>
        </section>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn target(from_flag: bool) -> Target {
        Target {
            id: 3,
            kind: TargetKind::Slack,
            url: "https://hooks.slack.com/…cret".into(),
            on_failed: true,
            on_needs_you: false,
            on_finished: true,
            from_flag,
            created_at: 0,
            last_at: Some(1_000),
            last_ok: Some(true),
            last_result: Some("200 OK after 2 attempts".into()),
        }
    }

    #[test]
    fn writers_get_forms_and_readers_the_list_alone() {
        let html = Owner::new().with(|| targets_panel(vec![target(false)], true, 61_000).to_html());
        for expected in [
            "Send test",
            "Remove",
            "Save",
            "Add target",
            "Last delivery 1m ago: 200 OK after 2 attempts",
            "/rpc/set_notify_events",
        ] {
            assert!(html.contains(expected), "{expected}: {html}");
        }
        let flagged =
            Owner::new().with(|| targets_panel(vec![target(true)], true, 61_000).to_html());
        assert!(!flagged.contains("Remove"), "{flagged}");
        assert!(flagged.contains("set by --notify"), "{flagged}");
        let read_only =
            Owner::new().with(|| targets_panel(vec![target(false)], false, 61_000).to_html());
        assert!(!read_only.contains("<form"), "{read_only}");
        assert!(
            read_only.contains("Run failed, Run finished"),
            "{read_only}"
        );
    }
}
