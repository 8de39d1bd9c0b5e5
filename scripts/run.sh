#!/usr/bin/env bash
# Sets up what is missing, builds the release app, and starts it on its
# defaults (SQLite file in your data directory, loopback, port 3000).
# Extra arguments go to `agentdeck serve`, e.g. scripts/run.sh --port 8080.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo leptos build --release --precompress
exec target/release/agentdeck serve "$@"
