"""Markdown tables from the JSON lines of `native-train bench`, `bench-train` and
`scripts/bench_pytorch.py` (see scripts/bench.sh)."""
import json
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def main(rust_path, torch_path, train_path=None):
    rows = load(rust_path) + load(torch_path)
    cases = defaultdict(dict)
    for r in rows:
        impl = "pytorch" if r["impl"] == "pytorch" else "burn"
        cases[(r["case"], r["batch"], r["max_length"] or 0)][impl] = r
    print("| case | batch | max_length | PyTorch s | burn-ndarray s | burn / PyTorch | burn GFLOP/s | peak RSS burn / PyTorch MB |")
    print("|---|---|---|---|---|---|---|---|")
    for (case, batch, length), impls in sorted(cases.items()):
        t, b = impls.get("pytorch"), impls.get("burn")
        ts = t["seconds_median"] if t else None
        bs = b["seconds_median"] if b else None
        ratio = f"{bs / ts:.2f}" if ts and bs else "–"
        gflops = "–"
        if case == "forward" and bs:
            # AST-base forward FLOPs: 2·params-per-token matmuls + attention scores/context.
            f = (128 - 16) // 10 + 1
            tokens = f * ((length - 16) // 10 + 1) + 2
            d, L, ff = 768, 12, 3072
            per_layer = 2 * tokens * (4 * d * d + 2 * d * ff) + 4 * tokens * tokens * d
            flops = batch * (L * per_layer + 2 * tokens * 256 * d)
            gflops = f"{flops / bs / 1e9:.0f}"
        rss = f"{b.get('peak_rss_mb') or 0:.0f} / {t.get('peak_rss_mb') or 0:.0f}" if t and b else "–"
        label = "fbank (10 s clip)" if case == "fbank_10s" else "forward"
        length = "–" if case == "fbank_10s" else length
        print(f"| {label} | {batch} | {length} | {ts if ts is None else f'{ts:.3f}'} | {bs if bs is None else f'{bs:.3f}'} | {ratio} | {gflops} | {rss} |")
    if train_path:
        train = load(train_path)
        full = {r["max_length"]: r["seconds_median"] for r in train if r["method"] == "full-FT"}
        print()
        print("| training step (batch 8) | max_length | trainable params | s / step | vs full FT | peak RSS MB |")
        print("|---|---|---|---|---|---|")
        for r in train:
            base = full.get(r["max_length"])
            ratio = f"{r['seconds_median'] / base:.2f}" if base else "–"
            print(f"| {r['method']} | {r['max_length']} | {r['trainable']:,} | {r['seconds_median']:.2f} | {ratio} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
