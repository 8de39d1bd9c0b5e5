//! Small controls every live page shows: the connection indicator and the
//! opt-in for browser notifications when runs end.

use crate::live::Connection;
use leptos::{either::Either, prelude::*};

/// "Live" / "Reconnecting…", announced politely to screen readers.
#[component]
pub fn LiveIndicator(connection: ReadSignal<Connection>) -> impl IntoView {
    view! {
        <span
            class="live-indicator"
            data-state=move || connection.get().as_str()
            aria-live="polite"
        >
            {move || connection.get().label()}
        </span>
    }
}

/// A button that asks for notification permission (browsers only allow
/// asking from a click); shows when notifications are on.
#[component]
pub fn NotifyToggle() -> impl IntoView {
    let granted = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        let check = move || {
            granted.set(
                web_sys::Notification::permission() == web_sys::NotificationPermission::Granted,
            )
        };
        super::effect(check);
        let _ = set_interval_with_handle(check, std::time::Duration::from_secs(2));
    }
    let ask = move |_| {
        #[cfg(feature = "hydrate")]
        let _ = web_sys::Notification::request_permission();
    };
    // A closure rather than `<Show>`: its fallback is a type-erased view,
    // which brings a second (async) copy of the hydration code.
    move || {
        if granted.get() {
            Either::Left(view! { <span class="notify-on">"Notifications on"</span> })
        } else {
            Either::Right(
                view! { <button type="button" class="notify" on:click=ask>"Notify me when runs end"</button> },
            )
        }
    }
}
