#!/usr/bin/env python3
"""Markdown table of `native-train fewshot --json` reports, side by side.

    python3 scripts/fewshot_table.py NAME=report.json [NAME=report.json …]

One row per task × K × method, one column per report: mean ± population std over its seeds (%),
and the lowest seed.
"""

import json
import sys


def main():
    reports = []
    for arg in sys.argv[1:]:
        name, _, path = arg.partition("=")
        if not path:
            sys.exit(f"fewshot_table: expected NAME=FILE, got {arg!r}")
        with open(path) as f:
            runs = json.load(f)["runs"]
        reports.append((name, {(r["task"], r["k"], r["method"]): r for r in runs}))
    if not reports:
        sys.exit(__doc__)
    keys = []
    for _, runs in reports:
        keys += [k for k in runs if k not in keys]
    print("| task | K | method | " + " | ".join(name for name, _ in reports) + " |")
    print("|---|---|---|" + "---|" * len(reports))
    for task, k, method in keys:
        cells = []
        for _, runs in reports:
            r = runs.get((task, k, method))
            cells.append("–" if r is None else
                         f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f} (min {100 * min(r['values']):.0f})")
        print(f"| {task} | {k} | {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
