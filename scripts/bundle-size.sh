#!/usr/bin/env bash
# Prints what a browser downloads for the hydrate bundle (the precompressed
# files the server sends) and fails if the WASM and its JS glue together
# exceed the budget: 146 KiB brotli on the wire (175 until the islands lost
# their type-erased views and their browser-side props serialization). The
# aim is 120; most of what is left is Leptos' view and reactive code, and
# serde_json's decoders, one per struct the browser reads.
# Run after `cargo leptos build --release --precompress`.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=target/site/pkg
budget=$((146 * 1024))
total=0
for file in agentdeck.wasm agentdeck.js; do
  raw=$(stat -c %s "$pkg/$file")
  gz=$(stat -c %s "$pkg/$file.gz")
  br=$(stat -c %s "$pkg/$file.br")
  printf '%-16s %9d B raw  %8d B gzip  %8d B brotli\n' "$file" "$raw" "$gz" "$br"
  total=$((total + br))
done
printf 'hydrate bundle: %d B brotli on the wire (%d.%d KiB of the %d KiB budget)\n' \
  "$total" $((total / 1024)) $((total % 1024 * 10 / 1024)) $((budget / 1024))
if ((total > budget)); then
  echo "over budget by $((total - budget)) B" >&2
  exit 1
fi
