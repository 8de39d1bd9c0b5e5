#!/usr/bin/env bash
# Sets up what is missing, then runs every check and test: formatting,
# clippy (server and browser builds), cargo tests on real SQLite files, on a
# throwaway PostgreSQL cluster and against a real server, and the Playwright suite in Chromium against the release build.
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

# The database, live, run and sync suites again on PostgreSQL, each test on
# a scratch database of a throwaway cluster that pg_virtualenv starts and
# drops, then two real servers sharing one database (server/tests/instances.rs).
# Skipped without PostgreSQL, except under CI.
step "cargo test on PostgreSQL (a throwaway cluster)"
if command -v pg_virtualenv >/dev/null 2>&1; then
  pg_virtualenv -t -i '--no-locale --encoding=UTF8' -o fsync=off -o max_connections=300 \
    sh -c 'export AGENTDECK_TEST_PG_URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE"
           cargo test -p app --features ssr &&
           cargo test -p server --test instances'
elif [ -n "${CI:-}" ]; then
  echo "pg_virtualenv is missing and CI is set: the PostgreSQL half must run (scripts/setup.sh installs it)" >&2
  exit 1
else
  echo "skipped: pg_virtualenv is missing (scripts/setup.sh installs postgresql)"
fi

step "release build (server + hydrate bundle)"
# --precompress also orders the build: cargo-leptos finishes and compresses
# the site before compiling the server, which embeds it (server/build.rs).
cargo leptos build --release --precompress
step "the release binary alone serves its embedded site"
# (At the root, like `cargo test` above: the same features, so nothing rebuilds.)
AGENTDECK_TEST_BIN="$PWD/target/release/agentdeck" cargo test --test embedded_site
step "hydrate bundle budget (146 KiB brotli)"
scripts/bundle-size.sh

step "benchmark smoke run (every page gets every change, in order)"
target/debug/examples/bench --smoke --agentdeck target/release/agentdeck --bare target/debug/examples/bare_sse

step "Playwright in Chromium"
(cd end2end && npx playwright test)

# Two real servers on one scratch PostgreSQL database, with a page on one
# following runs the other owns (end2end/tests/instances.spec.ts; the main
# Playwright step skips it without AGENTDECK_TEST_PG_URL). Skipped without
# PostgreSQL, except under CI.
step "Playwright: two instances on one PostgreSQL"
if command -v pg_virtualenv >/dev/null 2>&1; then
  (cd end2end && pg_virtualenv -t -i '--no-locale --encoding=UTF8' -o fsync=off \
    sh -c 'export AGENTDECK_TEST_PG_URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE"
           npx playwright test instances.spec.ts')
elif [ -n "${CI:-}" ]; then
  echo "pg_virtualenv is missing and CI is set: the two-instance Playwright tests must run (scripts/setup.sh installs it)" >&2
  exit 1
else
  echo "skipped: pg_virtualenv is missing (scripts/setup.sh installs postgresql)"
fi
