//! `/`: the projects list and the "Add project" form.

use super::{hydrated_marker, ErrorPage};
use crate::{
    components::{form_error, ServerCall},
    project::{list_projects, AddProject, Project},
};
use leptos::{prelude::*, server_fn::ServerFn};
use leptos_meta::Title;

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let can_write = crate::access::current().can_write();
    view! {
        <Title text="Projects · agentdeck" />
        <h1>"Projects"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading projects…"</p> }>
            {move || Suspend::new(async move {
                match list_projects().await {
                    Ok(projects) => view! { <ProjectsPanel projects can_write /> }.into_any(),
                    Err(err) => view! { <ErrorPage err /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The form and the list it adds to. Without JavaScript the form posts and
/// the page reloads; once hydrated, new projects appear in place. A
/// read-only viewer (`can_write` false) sees the list only.
#[island]
fn ProjectsPanel(projects: Vec<Project>, can_write: bool) -> impl IntoView {
    let projects = RwSignal::new(projects);
    let add = ServerCall::clearing_form();
    Effect::new(move || {
        if let Some(project) = add.answer::<Project>() {
            projects.update(|list| {
                if !list.iter().any(|p| p.id == project.id) {
                    list.push(project);
                    list.sort_by(|a, b| a.name.cmp(&b.name));
                }
            });
        }
    });

    view! {
        <div class="panel" data-hydrated=hydrated_marker()>
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
        <section>
            <Show
                when=move || projects.with(|list| !list.is_empty())
                fallback=move || view! {
                    <p class="empty">
                        {if can_write { "No projects yet. Add a directory above to start." } else { "No projects yet." }}
                    </p>
                }
            >
                <ul class="project-list" aria-label="Projects">
                    <For each=move || projects.get() key=|project| project.id let:project>
                        <li>
                            <a href=project.sessions_url()>{project.name.clone()}</a>
                            <code class="path">{project.path.clone()}</code>
                        </li>
                    </For>
                </ul>
            </Show>
        </section>
        </div>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn render(can_write: bool) -> String {
        Owner::new().with(|| view! { <ProjectsPanel projects=Vec::new() can_write /> }.to_html())
    }

    #[test]
    fn a_read_only_viewer_gets_no_add_project_form() {
        assert!(render(true).contains("Add project"));
        let read_only = render(false);
        assert!(!read_only.contains("<form"), "{read_only}");
        assert!(read_only.contains("No projects yet."), "{read_only}");
    }
}
