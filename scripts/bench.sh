#!/usr/bin/env bash
# Speed benchmarks, measured in one run on this machine: the Rust side (`native-train bench`,
# `bench-train`, `bench-kernels`) and PyTorch (`scripts/bench_pytorch.py`,
# `scripts/bench_pytorch_train.py`) with the same thread count. Prints markdown tables
# (scripts/bench_table.py); raw JSON lines go to $OUT_DIR. PyTorch comes from $PYTHON (a venv with scripts/requirements.txt installed).
#
# Usage: scripts/bench.sh [--quick]
#   BACKENDS="cpu ndarray"  CPU backends of the forward benchmark (cpu = burn-flex)
#   TRAIN_BACKENDS="cpu"    backends of the training-step benchmark
#   THREADS=2               rayon / torch threads
#   ROUNDS=2                rounds of the forward benchmark (ours, then PyTorch, per round)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/petl-ast-target}"
THREADS="${THREADS:-2}"
OUT_DIR="${OUT_DIR:-target/bench}"
PYTHON="${PYTHON:-python3}"
BACKENDS="${BACKENDS:-cpu ndarray}"
TRAIN_BACKENDS="${TRAIN_BACKENDS:-cpu}"
ROUNDS="${ROUNDS:-2}"
QUICK=""
[ "${1:-}" = "--quick" ] && { QUICK="--quick"; ROUNDS=1; }
mkdir -p "$OUT_DIR"
# Both CPU backends in one binary (`cpu` = flex is the default feature).
cargo build --release -q -p native-train --features ndarray
BIN="$CARGO_TARGET_DIR/release/native-train"
export RAYON_NUM_THREADS="$THREADS"

# The forward benchmark in ROUNDS rounds, ours and PyTorch alternating, so that a slow period of
# this shared machine does not land on one side only; the tables take the best run of any round.
: > "$OUT_DIR/rust.jsonl"
: > "$OUT_DIR/pytorch.jsonl"
for _ in $(seq "$ROUNDS"); do
  for backend in $BACKENDS; do
    "$BIN" bench --backend "$backend" $QUICK >> "$OUT_DIR/rust.jsonl"
  done
  "$PYTHON" scripts/bench_pytorch.py --threads "$THREADS" $QUICK >> "$OUT_DIR/pytorch.jsonl"
done
# This crate's CPU kernels against the burn ops they replace (burn-flex only).
KERNEL_CASES="1x1024,8x500"
[ -n "$QUICK" ] && KERNEL_CASES="1x100"
"$BIN" bench-kernels --cases "$KERNEL_CASES" > "$OUT_DIR/kernels.jsonl"

# One process per case, so each peak RSS is the case's own.
: > "$OUT_DIR/train.jsonl"
LENGTHS="100 500"
REPEATS=3
[ -n "$QUICK" ] && { LENGTHS="100"; REPEATS=1; }
declare -A OURS=(
  [full-FT]="--method full-FT"
  [adapter]="--method adapter"
  [LoRA]="--method LoRA"
  [DPT]="--method prompt-tuning --deep"
  [linear]="--method linear"
)
for L in $LENGTHS; do
  [ "$L" = 500 ] && REPEATS=$(( REPEATS < 2 ? REPEATS : 2 ))
  for m in full-FT adapter LoRA DPT linear; do
    for backend in $TRAIN_BACKENDS; do
      # shellcheck disable=SC2086
      "$BIN" bench-train --backend "$backend" --max-length "$L" --repeats "$REPEATS" ${OURS[$m]} \
        --label "$m" >> "$OUT_DIR/train.jsonl"
    done
    "$PYTHON" scripts/bench_pytorch_train.py --threads "$THREADS" --max-length "$L" \
      --repeats "$REPEATS" --method "$m" >> "$OUT_DIR/train.jsonl"
  done
  # Gradient checkpointing: the adapter step's memory.
  "$BIN" bench-train --max-length "$L" --repeats "$REPEATS" --method adapter \
    --gradient-checkpointing --label "adapter, gradient checkpointing" >> "$OUT_DIR/train.jsonl"
done
"$PYTHON" scripts/bench_table.py "$OUT_DIR/rust.jsonl" "$OUT_DIR/pytorch.jsonl" "$OUT_DIR/train.jsonl" \
  "$OUT_DIR/kernels.jsonl"
