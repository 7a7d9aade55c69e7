#!/usr/bin/env bash
# Speed benchmarks, measured in one run on this machine: the Rust side (`native-train bench`,
# `bench-train`) and PyTorch (`scripts/bench_pytorch.py`) with the same thread count.
# Prints a markdown table (scripts/bench_table.py); raw JSON lines go to $OUT_DIR.
# Usage: scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/petl-ast-target}"
THREADS="${THREADS:-2}"
OUT_DIR="${OUT_DIR:-target/bench}"
PYTHON="${PYTHON:-python3}"
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK="--quick"
mkdir -p "$OUT_DIR"
cargo build --release -q -p native-train
BIN="$CARGO_TARGET_DIR/release/native-train"
export RAYON_NUM_THREADS="$THREADS"

"$BIN" bench $QUICK > "$OUT_DIR/rust.jsonl"
"$PYTHON" scripts/bench_pytorch.py --threads "$THREADS" $QUICK > "$OUT_DIR/pytorch.jsonl"

: > "$OUT_DIR/train.jsonl"
LENGTHS="100 500"
[ -n "$QUICK" ] && LENGTHS="100"
for L in $LENGTHS; do
  "$BIN" bench-train --max-length "$L" --method full-FT --label full-FT >> "$OUT_DIR/train.jsonl"
  "$BIN" bench-train --max-length "$L" --method adapter --label "Bottleneck Pfeiffer par RR=64" >> "$OUT_DIR/train.jsonl"
  "$BIN" bench-train --max-length "$L" --method LoRA --label "LoRA RR=128" >> "$OUT_DIR/train.jsonl"
  "$BIN" bench-train --max-length "$L" --method prompt-tuning --deep --label "DPT-25" >> "$OUT_DIR/train.jsonl"
  "$BIN" bench-train --max-length "$L" --method linear --label "linear" >> "$OUT_DIR/train.jsonl"
done
"$PYTHON" scripts/bench_table.py "$OUT_DIR/rust.jsonl" "$OUT_DIR/pytorch.jsonl" "$OUT_DIR/train.jsonl"
