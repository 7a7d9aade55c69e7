"""Markdown tables from the JSON lines of `native-train bench`, `bench-train` and
`scripts/bench_pytorch.py` (see scripts/bench.sh).

A case measured in several rounds (bench.sh's ROUNDS, ours and PyTorch alternating) is one row:
`best` is the fastest run of any round (this VM's noise only ever adds time, so the minimum is the
stable statistic; a training step's forward / backward / optimizer split is that run's), `median`
the median of the rounds' medians; peak RSS is the largest."""
import json
import statistics
import sys

KEY_FIELDS = ("impl", "case", "method", "batch", "max_length", "pass", "tokens")


def load(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip().startswith("{")]
    merged = {}
    for r in rows:
        key = tuple(r.get(k) for k in KEY_FIELDS)
        merged.setdefault(key, []).append(r)
    out = []
    for group in merged.values():
        r = dict(group[0])
        fastest = min(group, key=lambda g: g.get("seconds_min", g["seconds_median"]))
        r["seconds_min"] = fastest.get("seconds_min", fastest["seconds_median"])
        if "fastest_step_phases" in fastest:
            r["fastest_step_phases"] = fastest["fastest_step_phases"]
        r["seconds_median"] = statistics.median(g["seconds_median"] for g in group)
        rss = [g["peak_rss_mb"] for g in group if g.get("peak_rss_mb") is not None]
        r["peak_rss_mb"] = max(rss) if rss else None
        r["rounds"] = len(group)
        out.append(r)
    return out


def forward_gflop(batch, length):
    """AST-base forward FLOPs: 2·params-per-token matmuls + attention scores/context."""
    f = (128 - 16) // 10 + 1
    tokens = f * ((length - 16) // 10 + 1) + 2
    d, layers, ff = 768, 12, 3072
    per_layer = 2 * tokens * (4 * d * d + 2 * d * ff) + 4 * tokens * tokens * d
    return batch * (layers * per_layer + 2 * tokens * 256 * d) / 1e9


def impl_label(r):
    """The implementation, with the library of its matmuls when the record names it."""
    return f"{r['impl']} ({r['matmul']})" if r.get("matmul") else r["impl"]


def kernel_table(path):
    """This crate's CPU kernels against the burn ops they replace (`native-train bench-kernels`)."""
    rows = load(path)
    burn = {(r["case"], r["pass"], r["batch"], r["tokens"]): r for r in rows if r["impl"] != "petl-ast kernel"}
    print()
    print("| op (one AST-base layer) | pass | batch × tokens | burn op | burn ms | kernel ms | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r["impl"] != "petl-ast kernel":
            continue
        b = burn.get((r["case"], r["pass"], r["batch"], r["tokens"]))
        if b is None:
            continue
        ours, theirs = r["seconds_median"], b["seconds_median"]
        op = r["case"].removeprefix("kernel_")
        print(f"| {op} | {r['pass']} | {r['batch']} × {r['tokens']} | {b['impl']} | {theirs * 1e3:.1f} | {ours * 1e3:.1f} | {theirs / ours:.1f}× |")


def phase_table(train):
    """Where the fastest step of each training case went: forward, backward, optimizer."""
    ours = [r for r in train if r["impl"] != "pytorch" and "fastest_step_phases" in r]
    theirs = {(r["method"], r["max_length"]): r for r in train if r["impl"] == "pytorch"}
    if not ours:
        return
    print()
    print("| fastest step | max_length | forward s ours / PyTorch | backward s | optimizer s |")
    print("|---|---|---|---|---|")
    for r in ours:
        t = theirs.get((r["method"], r["max_length"]), {}).get("fastest_step_phases")
        cells = []
        for phase in ("forward", "backward", "optimizer"):
            mine = r["fastest_step_phases"][phase]
            cells.append(f"{mine:.2f} / {t[phase]:.2f}" if t else f"{mine:.2f}")
        print(f"| {r['method']} ({r.get('optimizer', impl_label(r))}) | {r['max_length']} | " + " | ".join(cells) + " |")


def main(rust_path, torch_path, train_path=None, kernels_path=None):
    rows = load(rust_path) + load(torch_path)
    torch_rows = {(r["case"], r["batch"], r["max_length"] or 0): r for r in rows if r["impl"] == "pytorch"}
    ours = sorted(
        (r for r in rows if r["impl"] != "pytorch"),
        key=lambda r: (r["case"], r["batch"], r["max_length"] or 0, r["impl"]),
    )
    print("| case | batch | max_length | PyTorch best s | ours | ours best s | ours / PyTorch (best) | (median) | ours GFLOP/s | PyTorch GFLOP/s | peak RSS ours / PyTorch MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in ours:
        case, batch, length = r["case"], r["batch"], r["max_length"] or 0
        t = torch_rows.get((case, batch, length))
        ts = t["seconds_min"] if t else None
        bs = r["seconds_min"]
        ratio = f"{bs / ts:.2f}" if ts else "–"
        ratio_median = f"{r['seconds_median'] / t['seconds_median']:.2f}" if t else "–"
        gf = forward_gflop(batch, length) if case == "forward" else None
        ours_gf = f"{gf / bs:.0f}" if gf else "–"
        torch_gf = f"{gf / ts:.0f}" if gf and ts else "–"
        rss = f"{r.get('peak_rss_mb') or 0:.0f} / {t.get('peak_rss_mb') or 0:.0f}" if t else "–"
        label = "fbank (10 s clip)" if case == "fbank_10s" else "forward"
        length = "–" if case == "fbank_10s" else length
        ts = "–" if ts is None else f"{ts:.3f}"
        print(f"| {label} | {batch} | {length} | {ts} | {impl_label(r)} | {bs:.3f} | {ratio} | {ratio_median} | {ours_gf} | {torch_gf} | {rss} |")
    if train_path:
        train = load(train_path)
        ours = [r for r in train if r["impl"] != "pytorch"]
        torch_steps = {(r["method"], r["max_length"]): r for r in train if r["impl"] == "pytorch"}
        full = {(r["impl"], r["max_length"]): r for r in ours if r["method"] == "full-FT"}
        print()
        print("| training step (batch 8) | max_length | trainable params | PyTorch best s | burn best s | burn / PyTorch (best) | (median) | vs our full FT (best) | peak RSS burn / PyTorch MB | RSS vs our full FT |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in ours:
            t = torch_steps.get((r["method"], r["max_length"]))
            base = full.get((r["impl"], r["max_length"]))
            secs = r["seconds_min"]
            ts = f"{t['seconds_min']:.2f}" if t else "–"
            ratio = f"{secs / t['seconds_min']:.2f}" if t else "–"
            ratio_median = f"{r['seconds_median'] / t['seconds_median']:.2f}" if t else "–"
            vs_full = f"{secs / base['seconds_min']:.2f}" if base else "–"
            rss = f"{r['peak_rss_mb']:.0f} / {t['peak_rss_mb']:.0f}" if t else f"{r['peak_rss_mb']:.0f}"
            rss_full = f"{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}" if base else "–"
            print(f"| {r['method']} ({impl_label(r)}) | {r['max_length']} | {r['trainable']:,} | {ts} | {secs:.2f} | {ratio} | {ratio_median} | {vs_full} | {rss} | {rss_full} |")
        phase_table(train)

    if kernels_path:
        kernel_table(kernels_path)


if __name__ == "__main__":
    main(*sys.argv[1:])
