//! `/[?active=working|error|attention]`: the overview. Every session across
//! projects that is working, failed or waiting for the person, newest
//! change first; then the projects, each with its live counts, and the
//! "Add project" form. All of it follows the change stream once hydrated.

use super::{
    hydrated_marker,
    sessions::{clock, last_hook, state_since},
    ErrorPage,
};
use crate::{
    components::{
        attention_marker, coarse, effect, form_error, IslandProp, LiveIndicator, ServerCall,
        SessionStateBadge,
    },
    hook::{load_hook_status, HookStatus},
    live::{use_live, LiveEvent, Scope},
    project::{AddProject, Project},
    session::{
        is_active, load_overview, ActiveFilter, ActiveSession, LoadOverview, Overview,
        ProjectSummary,
    },
};
use leptos::{either::Either, prelude::*, server_fn::ServerFn};
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let can_write = crate::access::current().can_write();
    let filter = use_query_map()
        .with_untracked(|query| query.get("active"))
        .and_then(|text| ActiveFilter::parse(&text));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading projects…"</p> }>
            {move || Suspend::new(async move {
                let hooks = load_hook_status().await.ok();
                match load_overview().await {
                    Ok(overview) => view! {
                        <Title text=format!("{}Projects · agentdeck", overview.totals().title_prefix()) />
                        <h1>"Projects"</h1>
                        {hooks.map(hook_status)}
                        <ProjectsPanel overview=IslandProp(overview) filter can_write />
                    }
                    .into_any(),
                    Err(err) => view! { <ErrorPage err /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Terminal sessions: per agent, whether its hooks are installed and when
/// it last reported, and the one command to run when none are installed.
/// Rendered by the server only (it costs the bundle nothing); current as of
/// the page load.
fn hook_status(status: HookStatus) -> impl IntoView {
    let none_installed = status.installations.iter().all(|i| !i.installed);
    let now = status.now;
    let rows = status
        .installations
        .into_iter()
        .map(|installation| {
            let report = status
                .reports
                .iter()
                .find(|r| r.agent == installation.agent);
            let last = match report {
                None => "no report yet".to_owned(),
                Some(report) => {
                    let mut text = format!(
                        "last report {} ago ({})",
                        coarse(now - report.last_at),
                        report.last_event
                    );
                    if report.outcome == crate::hook::Outcome::NoProject {
                        text.push_str(&format!(
                            ": ignored, {} is in no project",
                            report.last_cwd.as_deref().unwrap_or("its directory")
                        ));
                    }
                    text
                }
            };
            view! {
                <li data-agent=installation.agent.as_str()>
                    <strong>{installation.agent.label()}</strong>
                    ": " {installation.summary} " in " <code>{installation.file}</code> " · " {last}
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="card hooks-status" aria-label="Terminal sessions">
            <h2>"Terminal sessions"</h2>
            {none_installed.then(|| view! {
                <p>
                    "Claude Code and Codex sessions running in your terminals show up here live once their hooks report to agentdeck. Install the hooks once:"
                </p>
                <pre><code>"agentdeck hooks install"</code></pre>
            })}
            <ul class="hook-agents">{rows}</ul>
        </section>
    }
}

/// The overview, kept in step with the change stream: any change reloads
/// it (one small query), applied only if it is not older than what is shown.
/// Without JavaScript the forms post and the filter links load the page.
/// A read-only viewer (`can_write` false) gets no "Add project" form.
#[island]
fn ProjectsPanel(
    overview: IslandProp<Overview>,
    filter: Option<ActiveFilter>,
    can_write: bool,
) -> impl IntoView {
    let IslandProp(overview) = overview;
    let applied = StoredValue::new(overview.seq);
    let overview = RwSignal::new(overview);
    let add = ServerCall::clearing_form();
    let reload = ServerCall::new();
    let now = clock();
    effect(move || {
        if let Some(project) = add.answer::<Project>() {
            overview.update(|o| {
                if !o.projects.iter().any(|p| p.project.id == project.id) {
                    o.projects.push(ProjectSummary {
                        project,
                        counts: Default::default(),
                    });
                    o.projects
                        .sort_by(|a, b| a.project.name.cmp(&b.project.name));
                }
            });
        }
    });
    effect(move || {
        if let Some(fresh) = reload.answer::<Overview>() {
            if fresh.seq >= applied.get_value() {
                overview.set(fresh);
            } else {
                // Read before changes the stream has since delivered: again.
                reload.call(LoadOverview::PATH, &[]);
            }
        }
    });
    effect(move || {
        let title = format!(
            "{}Projects · agentdeck",
            overview.with(|o| o.totals().title_prefix())
        );
        document().set_title(&title);
    });
    let connection = use_live(Scope::All, applied.get_value(), move |event| {
        let Some(seq) = event.seq() else { return };
        if matches!(event, LiveEvent::Change { .. }) && seq > applied.get_value() {
            applied.set_value(seq);
            if !reload.pending() {
                reload.call(LoadOverview::PATH, &[]);
            }
        }
    });

    let active = move || {
        overview.with(|o| {
            o.active
                .iter()
                .filter(|a| is_active(&a.session) && filter.is_none_or(|f| f.matches(&a.session)))
                .cloned()
                .collect::<Vec<_>>()
        })
    };

    view! {
        <div class="panel" data-hydrated=hydrated_marker()>
            <div class="toolbar">
                <LiveIndicator connection />
            </div>
            <section aria-labelledby="active-heading">
                <h2 id="active-heading">"Active sessions"</h2>
                <nav class="filters" aria-label="Filter active sessions">
                    {std::iter::once(None)
                        .chain(ActiveFilter::ALL.into_iter().map(Some))
                        .map(|option| {
                            let href = option.map_or_else(|| "/".to_owned(), |f| format!("/?active={}", f.as_str()));
                            let count = move || overview.with(|o| {
                                o.active.iter().filter(|a| option.is_none_or(|f| f.matches(&a.session))).count()
                            });
                            view! {
                                <a href=href aria-current=(option == filter).then_some("page")>
                                    {option.map_or("All", ActiveFilter::label)} " " <span class="count">{count}</span>
                                </a>
                            }
                        })
                        .collect_view()}
                </nav>
                // Redrawn whole on each change: the overview is reloaded whole
                // anyway, and a keyed list would cost the bundle more.
                <ul class="session-list" aria-label="Active sessions">
                    {move || active().into_iter().map(|active| active_item(active, now)).collect_view()}
                </ul>
                // Closures rather than `<Show>`: its fallback is a type-erased
                // view, which brings a second (async) copy of the hydration code.
                {move || active().is_empty().then(|| view! {
                    <p class="empty">
                        {match filter {
                            None => "Nothing is working, failed or waiting for you.",
                            Some(ActiveFilter::Working) => "Nothing is working.",
                            Some(ActiveFilter::Failed) => "Nothing has failed.",
                            Some(ActiveFilter::NeedsYou) => "Nothing is waiting for you.",
                        }}
                    </p>
                })}
            </section>
            {can_write.then(|| view! {
                <section class="card">
                    <h2>"Add project"</h2>
                    <form method="post" action=AddProject::PATH on:submit=move |event| add.submit(event)>
                        <div class="fields">
                            <label class="field grow">
                                <span>"Project path"</span>
                                <input
                                    name="path"
                                    required
                                    placeholder="/home/me/code/my-app"
                                    autocomplete="off"
                                    spellcheck="false"
                                />
                            </label>
                            <label class="field">
                                <span>"Project name"</span>
                                <input name="name" placeholder="optional" autocomplete="off" />
                            </label>
                            <button type="submit" class="primary" disabled=move || add.pending()>
                                "Add project"
                            </button>
                        </div>
                        {form_error(move || add.error())}
                    </form>
                </section>
            })}
            <section aria-labelledby="projects-heading">
                <h2 id="projects-heading" class="visually-hidden">"All projects"</h2>
                {move || overview.with(|o| {
                    if o.projects.is_empty() {
                        Either::Left(view! {
                            <p class="empty">
                                {if can_write { "No projects yet. Add a directory above to start." } else { "No projects yet." }}
                            </p>
                        })
                    } else {
                        Either::Right(view! {
                            <ul class="project-list" aria-label="Projects">
                                {o.projects.iter().map(project_item).collect_view()}
                            </ul>
                        })
                    }
                })}
            </section>
        </div>
    }
}

/// One project: its link, its counts worth a look, its directory.
fn project_item(summary: &ProjectSummary) -> impl IntoView {
    let counts = summary
        .counts
        .highlights()
        .into_iter()
        .map(|(state, label)| {
            let kind = state.map_or("attention", |s| s.as_str());
            view! { <span class="count" data-kind=kind>{label}</span> }
        })
        .collect_view();
    view! {
        <li>
            <a href=summary.project.sessions_url()>{summary.project.name.clone()}</a>
            <span class="project-counts">{counts}</span>
            <code class="path">{summary.project.path.clone()}</code>
        </li>
    }
}

/// One active session: its link, project, badge, what it waits for, since when.
fn active_item(active: ActiveSession, now: RwSignal<f64>) -> impl IntoView {
    let ActiveSession {
        session,
        project_name,
    } = active;
    let url = session.url();
    view! {
        <li class="session-item">
            <div class="session-main">
                <a class="session-name" href=url>{session.name.clone()}</a>
                <SessionStateBadge state=session.state error_message=session.error_message.clone() />
                {attention_marker(session.attention)}
                {state_since(session.state, session.state_changed_at, now)}
            </div>
            <span class="session-agent">
                <span class="session-project">{project_name}</span>
                " · "
                {session.agent.label()}
                {last_hook(session.state, session.last_hook_at, now)}
            </span>
        </li>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn render(can_write: bool) -> String {
        let overview = Overview {
            projects: Vec::new(),
            active: Vec::new(),
            seq: 0,
        };
        Owner::new().with(|| {
            view! { <ProjectsPanel overview=IslandProp(overview) filter=None can_write /> }
                .to_html()
        })
    }

    #[test]
    fn a_read_only_viewer_gets_no_add_project_form() {
        assert!(render(true).contains("Add project"));
        let read_only = render(false);
        assert!(!read_only.contains("<form"), "{read_only}");
        assert!(read_only.contains("No projects yet."), "{read_only}");
        let status = HookStatus {
            installations: vec![crate::hook::Installation {
                agent: crate::agent::AgentKind::Claude,
                file: "/home/me/.claude/settings.json".into(),
                installed: false,
                summary: "not installed".into(),
            }],
            reports: Vec::new(),
            now: 0,
        };
        let hint = Owner::new().with(|| hook_status(status).to_html());
        assert!(hint.contains("agentdeck hooks install"), "{hint}");
        assert!(hint.contains("not installed"), "{hint}");
    }
}
