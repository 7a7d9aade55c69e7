#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian machine with rustup
# (run as root, or with sudo available). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# System packages: headless Chromium + its WebDriver for the wasm tests in a browser,
# espeak-ng and sox for generated speech, node + npm for the web
# end-to-end test, a TrueType font for the PNG figures of `native-train report`, OpenBLAS for the
# CPU matmuls (the `blas` feature, on by default in native-train).
APT_PACKAGES="chromium chromium-driver espeak-ng sox pkg-config fonts-dejavu-core libopenblas-dev"
missing=""
for p in $APT_PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
# node and npm: Debian's packages unless a node distribution (e.g. NodeSource, which bundles npm)
# already provides the commands; Debian's npm conflicts with NodeSource's nodejs.
command -v node >/dev/null || missing="$missing nodejs"
command -v npm >/dev/null || missing="$missing npm"
if [ -n "$missing" ]; then
  echo "setup: installing apt packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# Rust: the wasm target, and the standard library's sources for the threaded web build
# (scripts/build_web_threads.sh recompiles std with atomics).
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' \
  || rustup target add wasm32-unknown-unknown
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src

# wasm-bindgen-cli at exactly the version in Cargo.lock (the test runner must match the crate).
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WB_VERSION" ]; then
  echo "setup: installing wasm-bindgen-cli $WB_VERSION"
  cargo install -q wasm-bindgen-cli --version "$WB_VERSION"
fi

# trunk builds the web app (0.22 needs a newer rustc than this project's 1.95).
TRUNK_VERSION=0.21.14
if ! command -v trunk >/dev/null || [ "$(trunk --version | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  echo "setup: installing trunk $TRUNK_VERSION"
  cargo install -q trunk --version "$TRUNK_VERSION" --locked
fi

# wasm-opt for trunk: binaryen from npm at the version Trunk.toml pins (Debian's 108 miscompiles
# the reference-types tables rustc 1.95 emits).
TOOLS="$HOME/.cache/petl-ast-tools"
BINARYEN_VERSION=$(awk -F'"' '/^wasm_opt/{sub("version_", "", $2); print $2}' Trunk.toml)
if [ "$("$TOOLS/node_modules/.bin/wasm-opt" --version 2>/dev/null | awk '{print $3}')" != "$BINARYEN_VERSION" ]; then
  echo "setup: installing binaryen $BINARYEN_VERSION (wasm-opt)"
  npm install --prefix "$TOOLS" --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION.0.0"
fi

# playwright-core drives the Debian chromium in the web end-to-end test (no browser download).
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  echo "setup: installing the e2e test's npm packages"
  npm ci --prefix tests/e2e --no-audit --no-fund --silent
fi

cargo fetch -q
echo "setup: done"
