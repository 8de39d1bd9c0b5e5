#!/usr/bin/env bash
# Runs every benchmark against its baseline, in one run on this machine,
# and prints a table and one `RESULT <metric> <measured> <goal> ok|miss`
# line per metric, last. Builds what it needs (release server and bundle,
# the bench and bare_sse examples). A benchmark, not a test: it always
# exits 0. Loopback only; about 5 minutes on 2 cores. With pg_virtualenv
# (scripts/setup.sh installs postgresql), the PostgreSQL rows run too, on a
# throwaway cluster it starts and drops; without it they are skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
step "release build (server + hydrate bundle, bench examples)"
cargo leptos build --release --precompress &&
  cargo build --release -p server --examples ||
  { echo "bench: the build failed" >&2; exit 0; }
step "benchmarks"
bench=(target/release/examples/bench --agentdeck target/release/agentdeck
  --bare target/release/examples/bare_sse "$@")
if command -v pg_virtualenv >/dev/null 2>&1; then
  pg_virtualenv -t -i '--no-locale --encoding=UTF8' -o fsync=off -o max_connections=300 \
    sh -c 'AGENTDECK_BENCH_PG_URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE" "$@"' \
    sh "${bench[@]}" || true
else
  "${bench[@]}" || true
fi
exit 0
