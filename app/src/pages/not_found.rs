//! Pages for things that do not exist or failed to load, with the matching
//! HTTP status.

use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;

/// A 404 page. Sets the response status when rendered on the server.
#[component]
pub fn NotFound(
    #[prop(into, default = "There is nothing at this address.".into())] message: String,
) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::error::set_response_status(404);
    view! {
        <Title text="Not found · agentdeck" />
        <section class="not-found">
            <h1>"Not found"</h1>
            <p>{message}</p>
            <p>
                <a href="/">"Back to projects"</a>
            </p>
        </section>
    }
}

/// A page for a request that failed, with the error's status; a missing
/// project or session gets the 404 page.
#[component]
pub fn ErrorPage(err: AppError) -> impl IntoView {
    if let AppError::NotFound(message) = err {
        return view! { <NotFound message /> }.into_any();
    }
    #[cfg(feature = "ssr")]
    crate::error::set_response_status(err.status());
    view! {
        <Title text="Error · agentdeck" />
        <section class="not-found">
            <h1>"Something went wrong"</h1>
            <p role="alert">{err.to_string()}</p>
            <p>
                <a href="/">"Back to projects"</a>
            </p>
        </section>
    }
    .into_any()
}
