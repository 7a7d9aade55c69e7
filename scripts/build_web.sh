#!/usr/bin/env bash
# Builds the web app for deployment: `trunk build --release` into dist/, then shrinks each wasm
# with wasm-opt -Os (binaryen from npm, installed by scripts/setup.sh; ≈ 40 → 22 MB, about 10 min
# on 2 cores, which is why the test build skips it). The result is written atomically.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/petl-ast-target}"
export PATH="$HOME/.cache/petl-ast-tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
trunk build --release
# Both builds: the page's and the threaded CPU fallback's (dist/threads/); wasm-opt takes the
# wasm features (SIMD, atomics, bulk memory) from each module's target_features section.
for wasm in dist/petl-ast_bg.wasm dist/threads/petl-ast_bg.wasm; do
  before=$(stat -c %s "$wasm")
  wasm-opt -Os --enable-reference-types --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-multivalue "$wasm" -o "$wasm.tmp"
  mv "$wasm.tmp" "$wasm"
  echo "dist/: $wasm $before → $(stat -c %s "$wasm") bytes ($(gzip -c "$wasm" | wc -c) gzipped)"
done
