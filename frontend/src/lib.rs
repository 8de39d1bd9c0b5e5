//! The hydrate entry point. Pages are rendered on the server; only the
//! `#[island]` components in `app` are hydrated, which keeps the bundle small.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Linking `app` registers its islands with wasm-bindgen.
    use app as _;
    leptos::mount::hydrate_islands();
}
