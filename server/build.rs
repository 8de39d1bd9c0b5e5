//! Embeds the built site in release builds, so the binary alone is a
//! deployment: `target/site` (the WASM, JS and CSS under `pkg/`, each with
//! the `.br` and `.gz` copies cargo-leptos precompressed) goes into the
//! binary when it is complete, and `cfg(embedded_site)` tells `src/site.rs`
//! it is there.
//!
//! `cargo leptos build --release --precompress` (what `scripts/*.sh` run)
//! finishes and compresses the site before it starts compiling the server,
//! so its binary always carries the site it was built with. Without
//! `--precompress`, cargo-leptos compiles the server while the WASM is still
//! being built: that site is never complete here (no `.br`), so nothing is
//! embedded rather than half a site, and the binary serves `target/site`
//! from disk as before. Debug builds (`cargo test`, `cargo clippy`) never
//! embed: they serve the site directory given or found at run time.

use std::path::{Path, PathBuf};

/// What a complete site has: every file a page loads, each precompressed.
const REQUIRED: [&str; 3] = [
    "pkg/agentdeck.wasm",
    "pkg/agentdeck.js",
    "pkg/agentdeck.css",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(embedded_site)");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    // `site-root` in the workspace's [package.metadata.leptos]; src/site.rs
    // embeds the same directory.
    let site = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../target/site");
    // The whole directory (cargo scans it for changes), so a new or rebuilt
    // site re-embeds. While it is missing this reruns on every release build.
    println!("cargo::rerun-if-changed={}", site.display());
    match missing(&site) {
        None => println!("cargo::rustc-cfg=embedded_site"),
        Some(file) => println!(
            "cargo::warning=the binary does not carry its site: {} is missing, so it serves \
             target/site from disk; `cargo leptos build --release --precompress` embeds it",
            file.display()
        ),
    }
}

/// The first file a complete site would have that `site` lacks.
fn missing(site: &Path) -> Option<PathBuf> {
    REQUIRED
        .iter()
        .flat_map(|file| ["", ".br", ".gz"].map(|ext| site.join(format!("{file}{ext}"))))
        .find(|path| !path.is_file())
}
