//! Forms that call server functions. Before hydration (or without
//! JavaScript) such a form is a plain `<form method="post">` to the server
//! function's URL, which redirects back to the page. Once hydrated,
//! [`ServerCall::submit`] posts the same fields with `fetch` and keeps the page.
//!
//! Why not `ActionForm`/`ServerAction`: they are generic over each server
//! function, so every form adds its own copy of the request, encoding and
//! decoding code (and `serde_qs`) to the WASM bundle. Here one non-generic
//! path serves every form, and a caller decodes only the answers it reads.
//! The form stays inline markup, not a component taking `Children`: those
//! would be type-erased views, each with its own copy of the view machinery.

use leptos::prelude::*;

/// How a call ended: the server function's JSON answer, or a message to show.
pub type Reply = Result<String, String>;

/// The state of one kind of call from a page: whether it is in flight, and
/// its last reply. Cheap to copy into views and event handlers.
#[derive(Debug, Clone, Copy)]
pub struct ServerCall {
    pending: RwSignal<bool>,
    reply: RwSignal<Option<Reply>>,
    /// Whether a form submitted through this call is cleared once it
    /// succeeds (read only in the browser: on the server nothing submits).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    clears_form: bool,
}

impl Default for ServerCall {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCall {
    pub fn new() -> Self {
        Self {
            pending: RwSignal::new(false),
            reply: RwSignal::new(None),
            clears_form: false,
        }
    }

    /// A call whose form is cleared after it succeeds (a form that adds
    /// something); after a failure the typed text stays for another try.
    pub fn clearing_form() -> Self {
        Self {
            clears_form: true,
            ..Self::new()
        }
    }

    /// Whether a call is in flight (tracked).
    pub fn pending(&self) -> bool {
        self.pending.get()
    }

    /// The last reply (tracked); `None` before the first call ends.
    pub fn reply(&self) -> Option<Reply> {
        self.reply.get()
    }

    /// The last call's error message, if it failed (tracked).
    pub fn error(&self) -> Option<String> {
        self.reply
            .with(|reply| reply.as_ref().and_then(|r| r.as_ref().err().cloned()))
    }

    /// The last successful answer decoded as `T` (tracked).
    pub fn answer<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        self.reply.with(|reply| match reply {
            Some(Ok(json)) => serde_json::from_str(json).ok(),
            _ => None,
        })
    }

    /// Calls the server function at `url` with these arguments, as its
    /// form would send them. Does nothing on the server.
    pub fn call(self, url: &'static str, fields: &[(&str, &str)]) {
        #[cfg(feature = "hydrate")]
        if let Ok(params) = web_sys::UrlSearchParams::new() {
            for (name, value) in fields {
                params.append(name, value);
            }
            self.start(url.to_owned(), String::from(params.to_string()), None);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (url, fields);
    }

    /// The `on:submit` handler of a `<form method="post" action=…>` whose
    /// action is a server function: posts it with `fetch` instead of
    /// navigating once hydrated. Without JavaScript the form posts itself.
    pub fn submit(self, event: leptos::ev::SubmitEvent) {
        #[cfg(feature = "hydrate")]
        self.submit_with_fetch(event);
        #[cfg(not(feature = "hydrate"))]
        let _ = event;
    }

    #[cfg(feature = "hydrate")]
    fn submit_with_fetch(self, event: web_sys::SubmitEvent) {
        use wasm_bindgen::JsCast;
        let Some(form) = event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::HtmlFormElement>().ok())
        else {
            return;
        };
        let Ok(body) = web_sys::FormData::new_with_form(&form)
            .and_then(|data| web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data))
        else {
            return; // Let the browser post it the plain way.
        };
        event.prevent_default();
        let clear = self.clears_form.then_some(form.clone());
        self.start(form.action(), String::from(body.to_string()), clear);
    }

    #[cfg(feature = "hydrate")]
    fn start(self, url: String, body: String, clear: Option<web_sys::HtmlFormElement>) {
        self.pending.set(true);
        leptos::task::spawn_local(async move {
            let reply = fetch::post(&url, body).await;
            if let (Ok(_), Some(form)) = (&reply, clear) {
                form.reset();
            }
            self.pending.set(false);
            self.reply.set(Some(reply));
        });
    }
}

/// A form's error message, announced as an alert; nothing while there is none.
pub fn form_error(message: impl Fn() -> Option<String> + Send + Sync + 'static) -> impl IntoView {
    move || message().map(|msg| view! { <p class="form-error" role="alert">{msg}</p> })
}

#[cfg(feature = "hydrate")]
mod fetch {
    use super::Reply;
    use crate::error::AppError;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Headers, RequestInit, Response};

    const UNREACHABLE: &str = "request failed: the server could not be reached";

    /// POSTs a urlencoded body to a server function and reads its reply.
    pub async fn post(url: &str, body: String) -> Reply {
        let response = send(url, body).await.map_err(|_| UNREACHABLE.to_owned())?;
        let text = match response.text() {
            Ok(promise) => JsFuture::from(promise)
                .await
                .ok()
                .and_then(|t| t.as_string()),
            Err(_) => None,
        }
        .unwrap_or_default();
        if response.ok() {
            Ok(text)
        } else {
            // Server functions answer errors with the `AppError` as JSON.
            Err(AppError::from_json(&text)
                .map(|err| err.to_string())
                .unwrap_or_else(|| format!("request failed: HTTP {}", response.status())))
        }
    }

    async fn send(url: &str, body: String) -> Result<Response, JsValue> {
        let headers = Headers::new()?;
        // JSON, not the redirect a plain form post gets.
        headers.set("Accept", "application/json")?;
        headers.set("Content-Type", "application/x-www-form-urlencoded")?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(&body));
        let window = web_sys::window().ok_or(JsValue::NULL)?;
        let response = JsFuture::from(window.fetch_with_str_and_init(url, &init)).await?;
        response.dyn_into()
    }
}
