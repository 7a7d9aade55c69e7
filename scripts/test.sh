#!/usr/bin/env bash
# Runs every test: the native test suite (parity against transformers/torchaudio fixtures, CLI,
# error handling) and the same numbers in wasm inside headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/petl-ast-target}"
# cargo-installed tools, and wasm-opt from npm (scripts/setup.sh).
export PATH="$HOME/.cache/petl-ast-tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

echo "== native tests"
cargo test --release --workspace

echo "== wasm tests in headless Chromium (same features as the web app, so the build is shared)"
CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}" \
  WASM_BINDGEN_TEST_TIMEOUT=600 \
  cargo test --release --target wasm32-unknown-unknown --features wgpu --test wasm

echo "== web app: trunk build (its hook adds the threaded CPU build), then end-to-end in headless Chromium (WebGPU on SwiftShader, CPU fallback with and without threads)"
trunk build --release
node tests/e2e/web.test.mjs
