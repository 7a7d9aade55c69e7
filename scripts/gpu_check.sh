#!/usr/bin/env bash
# Every GPU check in one call, for a machine with an NVIDIA GPU (docs/gpu.md):
#   1. backend-check: logits of the built-in backbone and of a random AST-base on each GPU backend
#      against the CPU backend (≤ 1e-3);
#   2. one training step on AST-base, PyTorch on the same GPU (scripts/bench_pytorch_train.py
#      --device cuda) and ours (bench-train) on each GPU backend: the adapter at batch 32 × 500;
#   3. fewshot: the page's personalisation recipe on the held-out FSDD speakers, on the GPU;
#   4. bench-train of each method at batch 8 × 500 and 100 frames;
#   5. bench: the AST-base forward.
# Each step has its own time limit and the whole run a budget (BUDGET seconds): a step that would
# start with under 20 s of it left is skipped and recorded as skipped. Results: JSON lines in $REPORT_DIR/gpu.jsonl,
# logs in $REPORT_DIR/gpu.log, and $REPORT_DIR/gpu-report.json (the lines plus the machine).
#
# Usage: scripts/gpu_check.sh [BIN] [REPORT_DIR]
#   BIN          native-train built with `--features wgpu` (and `tch` for `--backend cuda`);
#                default: $CARGO_TARGET_DIR/release/native-train
#   REPORT_DIR   default: target/gpu-check
#   BACKENDS     GPU backends to check (default: those the binary has, of "wgpu cuda")
#   FSDD         FSDD recordings folder for the few-shot step (default: ../shared/data/fsdd/recordings)
#   PYTHON       Python with torch + transformers (default: python3)
#   BUDGET       seconds for the whole run (default: 540)
#   BIN_FALLBACK a binary to use when BIN does not start (e.g. a wgpu-only build)
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/petl-ast-target}/release/native-train}"
REPORT_DIR="${2:-target/gpu-check}"
FSDD="${FSDD:-../shared/data/fsdd/recordings}"
PYTHON="${PYTHON:-python3}"
BUDGET="${BUDGET:-540}"
mkdir -p "$REPORT_DIR"
JSONL="$REPORT_DIR/gpu.jsonl"
LOG="$REPORT_DIR/gpu.log"
: > "$JSONL"
: > "$LOG"
START=$(date +%s)

# The NVIDIA Vulkan driver where the container mounts it (wgpu finds it through the loader).
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES="$icd"; fi
done
# The NVIDIA EGL vendor file, for wgpu's OpenGL fallback.
for egl in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; do
  if [ -f "$egl" ] && [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
  fi
done
# LibTorch's libraries for the `tch` build: the ones inside the installed PyTorch.
TORCH_LIB="$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null || true)"
[ -n "$TORCH_LIB" ] && export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

BACKENDS="${BACKENDS:-wgpu cuda}"
# A binary that does not start (a LibTorch build whose libraries are missing) is replaced by
# $BIN_FALLBACK (a wgpu-only build), when given.
if ! "$BIN" --version >> "$LOG" 2>&1; then
  echo "{\"step\": \"start $BIN\", \"status\": \"failed\", \"reason\": $("$PYTHON" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$(tail -n 1 "$LOG")")}" >> "$JSONL"
  ldd "$BIN" >> "$LOG" 2>&1
  [ -n "${BIN_FALLBACK:-}" ] && BIN="$BIN_FALLBACK"
fi

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND when the budget allows, its stdout's JSON
# lines go to gpu.jsonl, everything else to gpu.log; one status line per step.
step() {
  local name="$1" limit="$2"
  shift 2
  local elapsed=$(( $(date +%s) - START ))
  (( limit > BUDGET - elapsed )) && limit=$(( BUDGET - elapsed ))
  if (( limit < 20 )); then
    echo "{\"step\": \"$name\", \"status\": \"skipped\", \"reason\": \"budget: ${elapsed}s used of ${BUDGET}s\"}" >> "$JSONL"
    echo "== $name: skipped (budget)" | tee -a "$LOG"
    return
  fi
  echo "== $name ($*)" >> "$LOG"
  local t0=$(date +%s) out rc
  out="$(timeout "$limit" "$@" 2>>"$LOG")"
  rc=$?
  printf '%s\n' "$out" | grep '^{' | while IFS= read -r line; do
    echo "{\"step\": \"$name\", ${line#\{}" >> "$JSONL"
  done
  printf '%s\n' "$out" | grep -v '^{' >> "$LOG"
  local status=ok
  (( rc == 124 )) && status=timeout
  (( rc != 0 && rc != 124 )) && status="exit $rc"
  echo "{\"step\": \"$name\", \"status\": \"$status\", \"seconds\": $(( $(date +%s) - t0 ))}" >> "$JSONL"
  echo "== $name: $status in $(( $(date +%s) - t0 ))s" | tee -a "$LOG"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$LOG" 2>&1

# 1. Parity against the CPU. A backend this binary lacks, or whose driver does not start, is
# reported (one line in gpu.log) and dropped from the later steps.
USABLE=""
for b in $BACKENDS; do
  if "$BIN" backend-check --backend "$b" --no-base --batch 1 > /dev/null 2>> "$LOG"; then
    USABLE="$USABLE $b"
  else
    echo "{\"step\": \"backend $b\", \"status\": \"unavailable\", \"reason\": $("$PYTHON" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$(tail -n 1 "$LOG")")}" >> "$JSONL"
  fi
done
BACKENDS="$USABLE"
for b in $BACKENDS; do
  step "backend-check $b" 150 "$BIN" backend-check --backend "$b"
done

# 2. PyTorch on the same GPU, then ours on each backend: first the headline case (adapter,
# batch 32 × 500 frames), then the page's recipe, then every method at 500 and 100 frames.
declare -A OURS=(
  [adapter]="--method adapter"
  [LoRA]="--method LoRA"
  [DPT]="--method prompt-tuning --deep"
  [linear]="--method linear"
  [full-FT]="--method full-FT"
)
step "pytorch train b8" 150 "$PYTHON" scripts/bench_pytorch_train.py --device cuda \
  --method adapter,LoRA,DPT,linear,full-FT --max-length 500,100 --batch 8 --repeats 5
step "pytorch train b32" 60 "$PYTHON" scripts/bench_pytorch_train.py --device cuda \
  --method adapter --max-length 500 --batch 32 --repeats 5
for b in $BACKENDS; do
  step "bench-train $b adapter b32x500" 90 "$BIN" bench-train --backend "$b" --method adapter \
    --batch 32 --max-length 500 --repeats 5 --label adapter
done

# 3. The page's recipe on the GPU (accuracy comparable with BENCHMARKS.md's CPU numbers).
if [ -d "$FSDD" ]; then
  for b in $BACKENDS; do
    step "fewshot $b" 120 "$BIN" fewshot --backend "$b" --fsdd "$FSDD" --fsdd-shots 1,8 \
      --methods adapter --seeds 1 --json "$REPORT_DIR/fewshot-$b.json"
  done
else
  echo "{\"step\": \"fewshot\", \"status\": \"skipped\", \"reason\": \"no FSDD folder at $FSDD\"}" >> "$JSONL"
fi

# 4. Every method, batch 8.
for L in 500 100; do
  for m in adapter LoRA DPT linear full-FT; do
    for b in $BACKENDS; do
      # shellcheck disable=SC2086
      step "bench-train $b $m $L" 60 "$BIN" bench-train --backend "$b" ${OURS[$m]} \
        --max-length "$L" --repeats 3 --label "$m"
    done
  done
done

# 5. The forward pass alone.
for b in $BACKENDS; do
  step "bench $b" 90 "$BIN" bench --backend "$b" --batch 8 --max-length 500,1024
done

"$PYTHON" - "$JSONL" "$LOG" "$REPORT_DIR/gpu-report.json" <<'EOF'
import json, subprocess, sys
jsonl, log, out = sys.argv[1:]
lines = []
for raw in open(jsonl):
    try:
        lines.append(json.loads(raw))
    except json.JSONDecodeError:
        lines.append({"unparsed": raw.strip()})
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                          "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
except OSError:
    gpu = None
report = {"gpu": gpu, "results": lines}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(report, f, indent=1)
import os
os.replace(tmp, out)
print(f"{len(lines)} results in {out}")
EOF
