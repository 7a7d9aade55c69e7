#!/usr/bin/env bash
# Runs every test: the native test suite (parity against transformers/torchaudio fixtures, CLI,
# error handling) and the same numbers in wasm inside headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/petl-ast-target}"
# cargo-installed tools, and wasm-opt from npm (scripts/setup.sh).
export PATH="$HOME/.cache/petl-ast-tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

# The threaded web build (its own target dir) compiles in the background, filling the cores the
# other builds leave idle; trunk's post-build hook below then finds it built.
THREADS_OUT="$CARGO_TARGET_DIR/web-threads"
mkdir -p "$THREADS_OUT"
OUT="$THREADS_OUT/pkg" bash scripts/build_web_threads.sh > "$THREADS_OUT/build.log" 2>&1 &
threads_build=$!

echo "== native tests"
cargo test --release --workspace

echo "== the GPU (wgpu) code compiles natively (no GPU here: checked, not run; scripts/gpu_check.sh runs it)"
cargo check --workspace --features native-train/wgpu --all-targets

echo "== wasm tests in headless Chromium (same features as the web app, so the build is shared)"
CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}" \
  WASM_BINDGEN_TEST_TIMEOUT=600 \
  cargo test --release --target wasm32-unknown-unknown --features wgpu --test wasm

if ! wait "$threads_build"; then
  cat "$THREADS_OUT/build.log"
  echo "the threaded web build failed" >&2
  exit 1
fi

echo "== web app: trunk build (its hook adds the threaded CPU build), then end-to-end in headless Chromium (WebGPU on SwiftShader, CPU fallback with and without threads)"
trunk build --release
node tests/e2e/web.test.mjs
