#!/usr/bin/env bash
# The threaded CPU fallback of the web app: the crate compiled to wasm with shared memory and
# atomics (`threads` feature), so that burn-flex and the CPU kernels run on a rayon pool of Web
# Workers (wasm-bindgen-rayon). The page's worker loads it instead of the main build when the
# page is cross-origin isolated and WebGPU is not used (www/worker.js).
#
# Trunk runs this after its own build (a post_build hook in Trunk.toml) into
# $TRUNK_STAGING_DIR/threads/; by hand: OUT=dist/threads bash scripts/build_web_threads.sh.
#
# Stable Rust ships the wasm32 standard library without atomics, and shared memory needs every
# object built with them, so this build recompiles std from the `rust-src` component
# (`-Z build-std`, unlocked on the stable compiler by RUSTC_BOOTSTRAP=1 for this build only).
# It has its own target dir: its RUSTFLAGS differ from the other wasm builds'.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-${TRUNK_STAGING_DIR:?run by trunk, or set OUT}/threads}"
TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/petl-ast-target}-wasm-threads"
PROFILE="${TRUNK_PROFILE:-release}"
PROFILE_FLAG=""
[ "$PROFILE" = release ] && PROFILE_FLAG="--release"
# Every crate with atomics (the target features); the final link with a shared memory, imported
# so that each pool worker instantiates the module on the same one, 4 GiB at most (the most a
# wasm32 memory may declare, and a shared one must declare a maximum), and the thread-local
# storage symbols wasm-bindgen initialises each thread's TLS with.
LINK_ARGS=(--shared-memory --import-memory --max-memory=4294967296
  --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base)
RUSTC_ARGS=()
for arg in "${LINK_ARGS[@]}"; do RUSTC_ARGS+=(-C "link-arg=$arg"); done
RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$TARGET_DIR" \
  RUSTFLAGS="-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals" \
  cargo rustc $PROFILE_FLAG --lib --target wasm32-unknown-unknown --features threads \
  -Z build-std=panic_abort,std -- "${RUSTC_ARGS[@]}"
rm -rf "$OUT.tmp"
wasm-bindgen --target web --out-dir "$OUT.tmp" --out-name petl-ast \
  "$TARGET_DIR/wasm32-unknown-unknown/$PROFILE/petl_ast.wasm"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
