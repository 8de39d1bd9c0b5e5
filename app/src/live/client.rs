//! The browser end of the stream: an `EventSource` on `/api/events` that
//! applies each change once (by `seq`) and reconnects with backoff after a
//! drop (network loss, sleep, server restart), resuming from the last `seq`.
//! A page too far behind to be caught up is told so ([`LiveEvent::Reset`])
//! and reloads.

use super::{Connection, LiveEvent, Scope};
use leptos::prelude::*;
use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    time::Duration,
};
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{EventSource, MessageEvent};

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

type Handler = Closure<dyn FnMut(web_sys::Event)>;

struct Follower {
    query: String,
    last_seq: Cell<i32>,
    attempts: Cell<u32>,
    on_event: Box<dyn Fn(LiveEvent)>,
    status: WriteSignal<Connection>,
    /// The open source and its handlers, kept alive together.
    source: RefCell<Option<(EventSource, [Handler; 3])>>,
}

/// Follows `scope` from just after `since`; `on_event` sees each change once.
pub fn follow(
    scope: Scope,
    since: i32,
    on_event: impl Fn(LiveEvent) + 'static,
    status: WriteSignal<Connection>,
) {
    let follower = Rc::new(Follower {
        query: scope.query(),
        last_seq: Cell::new(since),
        attempts: Cell::new(0),
        on_event: Box::new(on_event),
        status,
        source: RefCell::new(None),
    });
    connect(&follower);
}

fn connect(follower: &Rc<Follower>) {
    let url = format!(
        "/api/events?{}&since={}",
        follower.query,
        follower.last_seq.get()
    );
    let Ok(source) = EventSource::new(&url) else {
        retry(follower);
        return;
    };
    let on_open = {
        let follower = Rc::clone(follower);
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            follower.attempts.set(0);
            follower.status.set(Connection::Live);
        })
    };
    let on_message = {
        let follower = Rc::clone(follower);
        Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            let Some(data) = event
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string())
            else {
                return;
            };
            let Ok(live) = serde_json::from_str::<LiveEvent>(&data) else {
                return;
            };
            if let Some(seq) = live.seq() {
                if seq <= follower.last_seq.get() {
                    return;
                }
                follower.last_seq.set(seq);
            }
            if let LiveEvent::Reset { .. } = live {
                reload_page(&follower);
                return;
            }
            (follower.on_event)(live);
        })
    };
    let on_error = {
        let follower = Rc::clone(follower);
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            // Take over from the browser's own retry: resume from our seq, with backoff.
            if let Some((source, _)) = follower.source.borrow().as_ref() {
                source.close();
            }
            retry(&follower);
        })
    };
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let previous = follower
        .source
        .replace(Some((source, [on_open, on_message, on_error])));
    if let Some((old, handlers)) = previous {
        old.close();
        // Dropping a handler while it runs would be unsound: defer it.
        set_timeout(move || drop(handlers), Duration::ZERO);
    }
}

/// Too much was missed to replay: read the page afresh (its snapshot and
/// its `seq`), which is what every island on it starts from.
fn reload_page(follower: &Follower) {
    if let Some((source, _)) = follower.source.borrow().as_ref() {
        source.close();
    }
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

fn retry(follower: &Rc<Follower>) {
    follower.status.set(Connection::Reconnecting);
    let attempt = follower.attempts.get();
    follower.attempts.set(attempt.saturating_add(1));
    let delay = Duration::from_millis(250u64.saturating_mul(1 << attempt.min(5))).min(MAX_BACKOFF);
    let follower = Rc::clone(follower);
    set_timeout(move || connect(&follower), delay);
}
