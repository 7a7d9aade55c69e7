#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer), one target after the other on one core.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   run each target (default: all) for SECONDS (default 30)
#   scripts/fuzz.sh cmin [TARGET...]        merge seeds and new finds (files up to
#                                           FUZZ_CMIN_MAX_KB, default 32) into the committed
#                                           corpora and minimise them
#
# Stable Rust is enough: RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz passes. The
# sanitizer is FUZZ_SANITIZER (default none: AddressSanitizer needs the nightly standard library
# and doubles the build; safe Rust gains little from it). New inputs go to fuzz/work/<target>/
# (ignored by git), crashes to fuzz/artifacts/<target>/; a crash input belongs in
# fuzz/regressions/<target>/ once fixed, where `cargo test --test fuzz_corpus_replay` replays it.
# Seeds: `cargo test --release --test fuzz_corpus_replay -- --ignored write_seeds`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/petl-ast-fuzz-target}"
export RUSTC_BOOTSTRAP=1

ALL=(wav fbank config checkpoint adapter dataset_lists)
mode=run
if [[ "${1:-}" == cmin ]]; then
  mode=cmin
  shift
fi
seconds=30
if [[ "$mode" == run && "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL[@]}")

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
build=(--sanitizer "${FUZZ_SANITIZER:-none}" --codegen-units 16)
cd fuzz
nice -n 19 cargo fuzz build "${build[@]}"

if [[ "$mode" == cmin ]]; then
  for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    for extra in "seeds/$t" "work/$t"; do
      if [[ -d "$extra" ]]; then
        find "$extra" -maxdepth 1 -type f -size "-$((${FUZZ_CMIN_MAX_KB:-32} + 1))k" \
          -exec cp -n {} "corpus/$t/" \;
      fi
    done
    nice -n 19 cargo fuzz cmin "${build[@]}" "$t" "corpus/$t" -- -rss_limit_mb=2048
    echo "$t: $(ls "corpus/$t" | wc -l) files, $(du -sh "corpus/$t" | cut -f1)"
  done
  exit 0
fi

status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "work/$t" "corpus/$t" "regressions/$t"
  log="work/$t.log"
  dirs=("work/$t" "corpus/$t" "regressions/$t")
  [[ -d "seeds/$t" ]] && dirs+=("seeds/$t")
  echo "== $t: ${seconds}s"
  if ! nice -n 19 cargo fuzz run "${build[@]}" "$t" "${dirs[@]}" -- \
      -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -print_final_stats=1 >"$log" 2>&1; then
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo "?")
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo "?")
  crashes=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
  summary+=("$(printf '%-14s %6ss  execs %10s  cov %6s  ft %7s  artifacts %s' "$t" "$seconds" "$execs" "$cov" "$ft" "$crashes")")
  grep -E 'ERROR|panicked|SUMMARY|Test unit written' "$log" | head -n 5 || true
done
printf '%s\n' "${summary[@]}"
exit "$status"
