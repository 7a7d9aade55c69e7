#!/usr/bin/env bash
# Few-shot personalisation of the built-in backbone (www/models/speech-ast-tiny, trained on george,
# jackson, lucas, nicolas) to the held-out FSDD speakers theo and yweweler: K clips per digit,
# tested on their official test takes (index 0–4): `native-train train --dataset fsdd-fewshot`.
# Each cell trains SEEDS runs (default 3), each on its own seeded draw of K clips per digit, and
# shows their mean ± std test accuracy (%). Prints a markdown table; runs go to $OUT_DIR.
# Usage: [SEEDS=3] [EPOCHS=30] scripts/fewshot_fsdd.sh [K…]   (default 1 2 4 8)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/petl-ast-target}"
OUT_DIR="${OUT_DIR:-runs/fsdd-fewshot}"
DATA="${DATA:-../shared/data/fsdd/recordings}"
EPOCHS="${EPOCHS:-30}"
SEEDS="${SEEDS:-3}"
KS="${*:-1 2 4 8}"
mkdir -p "$OUT_DIR"
cargo build --release -q -p native-train
BIN="$CARGO_TARGET_DIR/release/native-train"
declare -A METHODS=(
  [linear]="--method linear"
  [BitFit]="--method BitFit"
  [LoRA]="--method LoRA --reduction-rate-lora 16"
  [Pfeiffer-par]="--method adapter --adapter-type Pfeiffer --seq-or-par parallel --reduction-rate 16"
  [Pfeiffer-seq]="--method adapter --adapter-type Pfeiffer --seq-or-par sequential --reduction-rate 16 --apply-residual true"
  [Houlsby-par]="--method adapter --adapter-type Houlsby --seq-or-par parallel --reduction-rate 16"
  [Houlsby-seq]="--method adapter --adapter-type Houlsby --seq-or-par sequential --reduction-rate 16 --apply-residual true"
  [Prefix]="--method prefix-tuning --prompt-len 8"
  [SPT]="--method prompt-tuning --prompt-len 8"
  [DPT]="--method prompt-tuning --deep --prompt-len 8"
)
ORDER="linear BitFit LoRA Pfeiffer-par Pfeiffer-seq Houlsby-par Houlsby-seq Prefix SPT DPT"
printf "| method |"; for k in $KS; do printf " K=%s |" "$k"; done; printf " trainable |\n"
printf "|---|"; for _ in $KS; do printf "%s" "---|"; done; printf "%s\n" "---|"
for m in $ORDER; do
  printf "| %s |" "$m"
  for k in $KS; do
    out="$OUT_DIR/$m-k$k"
    # shellcheck disable=SC2086
    "$BIN" train --checkpoint www/models/speech-ast-tiny --dataset fsdd-fewshot --data "$DATA" \
      --few-shot "$k" --epochs "$EPOCHS" --seeds "$SEEDS" ${METHODS[$m]} --out "$out" > "$out.log" 2>&1 \
      || { printf " failed |"; continue; }
    acc=$(python3 - "$out/results.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["test_accuracy"]
print(f"{100 * a['mean']:.1f} ± {100 * a['std']:.1f}" if isinstance(a, dict) else f"{100 * a:.1f}")
PY
)
    printf " %s |" "$acc"
  done
  first="$out"; [ "$SEEDS" -gt 1 ] && first="$out/seed-0"
  params=$(python3 -c "import json;print(json.load(open('$first/results.json'))['trainable_params'])")
  printf " %s |\n" "$params"
done
