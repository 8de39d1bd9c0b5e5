#!/usr/bin/env bash
# Installs every tool that building and testing agentdeck needs, skipping
# what is already present at the right version. Safe to run again and again;
# with everything installed it takes a few seconds.
#
# Run it directly, or source it from another script to also get PATH set up.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo_leptos_version=0.3.10
# The CLI must match the wasm-bindgen the app is built with: read it from the lock file.
wasm_bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' "$root/Cargo.lock")"

export PATH="$HOME/.cargo/bin:$root/end2end/node_modules/.bin:$PATH"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: Chromium for the browser tests, libpq to link the
# PostgreSQL backend, PostgreSQL (with pg_virtualenv) for its tests.
packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
dpkg -s libpq-dev >/dev/null 2>&1 || packages+=(libpq-dev)
command -v pg_virtualenv >/dev/null 2>&1 && dpkg -s postgresql >/dev/null 2>&1 || packages+=(postgresql)
if [ "${#packages[@]}" -gt 0 ]; then
  step "installing ${packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -qw "$cargo_leptos_version"; then
  step "installing cargo-leptos $cargo_leptos_version (about 11 minutes on 2 cores, once)"
  cargo install cargo-leptos --version "$cargo_leptos_version" --locked
fi

if ! wasm-bindgen --version 2>/dev/null | grep -qw "$wasm_bindgen_version"; then
  step "installing wasm-bindgen-cli $wasm_bindgen_version"
  cargo install wasm-bindgen-cli --version "$wasm_bindgen_version" --force
fi

# npm ci when the lock file changed since the last install (node_modules keeps a copy).
if ! cmp -s "$root/end2end/package-lock.json" "$root/end2end/node_modules/.package-lock.json.installed" 2>/dev/null; then
  step "installing the end-to-end test packages (Playwright, binaryen's wasm-opt)"
  (cd "$root/end2end" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$root/end2end/package-lock.json" "$root/end2end/node_modules/.package-lock.json.installed"
fi

# cargo-leptos looks these up on PATH and would otherwise try to download them.
for tool in cargo-leptos wasm-bindgen wasm-opt chromium; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup: $tool is still missing" >&2; exit 1; }
done
