#!/usr/bin/env bash
# Sets up what is missing, then runs every check and test: formatting,
# clippy (server and browser builds), cargo tests on real SQLite files and a
# real server, and the Playwright suite in Chromium against the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (server build)"
cargo clippy --all-targets -- -D warnings
step "clippy (browser build)"
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

step "cargo test"
cargo test

step "release build (server + hydrate bundle)"
cargo leptos build --release --precompress
step "hydrate bundle budget (146 KiB brotli)"
scripts/bundle-size.sh

step "benchmark smoke run (every page gets every change, in order)"
target/debug/examples/bench --smoke --agentdeck target/release/agentdeck --bare target/debug/examples/bare_sse

step "Playwright in Chromium"
(cd end2end && npx playwright test)
