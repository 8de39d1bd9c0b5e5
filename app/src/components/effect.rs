//! Effects through one closure type.

use leptos::prelude::*;

/// `Effect::new(f)`, with `f` boxed first. Each closure type given to
/// `Effect::new` brings its own copy of the effect's async task into the
/// WASM bundle; boxed, every effect shares one.
pub fn effect(f: impl Fn() + 'static) {
    boxed_effect(Box::new(f));
}

fn boxed_effect(f: Box<dyn Fn()>) {
    Effect::new(f);
}
