#!/usr/bin/env python3
"""What quantised weights cost: `native-train quantize` to f16, bf16 and int8, then, against the
f32 checkpoint on the same clips (`classify --json`): file size, top-1 agreement, largest
|logit difference|; with --fewshot, the page's recipe (`fewshot`) on each quantised backbone.

    python3 scripts/quantize_report.py [--checkpoint DIR] [--fsdd DIR] [--fewshot] [--out FILE]

Without --checkpoint: the built-in backbone (www/models/speech-ast-tiny). Clips: the official FSDD
test takes (index 0-4) of every speaker and the wav fixtures in tests/fixtures/audio. Prints a
markdown table; --out writes the numbers as JSON (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def native_train() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/petl-ast-target"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "native-train"], cwd=ROOT, check=True)
    return str(Path(target) / "release/native-train")


def logits(bin: str, checkpoint: Path, clips: list[str]) -> list[list[float]]:
    out = subprocess.run([bin, "classify", "--checkpoint", str(checkpoint), "--json", "--top-k", "1", *clips],
                         capture_output=True, text=True, check=True).stdout
    return [r["logits"] for r in json.loads(out)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "www/models/speech-ast-tiny")
    ap.add_argument("--fsdd", type=Path, default=ROOT.parent / "shared/data/fsdd/recordings")
    ap.add_argument("--fewshot", action="store_true", help="also run the page's recipe on each backbone")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if not args.fsdd.is_dir():
        sys.exit(f"quantize_report: {args.fsdd} is not a folder of FSDD recordings")
    clips = sorted(str(p) for p in args.fsdd.glob("*.wav") if int(p.stem.split("_")[-1]) < 5)
    clips += sorted(str(p) for p in (ROOT / "tests/fixtures/audio").glob("*.wav"))
    bin = native_train()
    reference = logits(bin, args.checkpoint, clips)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ["f32", "f16", "bf16", "int8"]:
            folder = args.checkpoint
            if dtype != "f32":
                folder = Path(tmp) / dtype
                subprocess.run([bin, "quantize", "--checkpoint", str(args.checkpoint), "--dtype", dtype,
                                "--out", str(folder)], check=True, capture_output=True)
            values = logits(bin, folder, clips)
            top1 = sum(max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)
                       for a, b in zip(reference, values))
            row = {
                "dtype": dtype,
                "bytes": (folder / "model.safetensors").stat().st_size,
                "clips": len(clips),
                "top1_agreement": top1 / len(clips),
                "max_abs_logit_diff": max(abs(x - y) for a, b in zip(reference, values) for x, y in zip(a, b)),
            }
            if args.fewshot:
                report = Path(tmp) / f"fewshot-{dtype}.json"
                subprocess.run([bin, "fewshot", "--checkpoint", str(folder), "--fsdd", str(args.fsdd),
                                "--fsdd-shots", "1,8", "--methods", "adapter", "--seeds", "3",
                                "--json", str(report)], check=True, capture_output=True)
                runs = json.loads(report.read_text())["runs"]
                row["fewshot_fsdd_adapter"] = {f"K={r['k']}": round(100 * r["mean"], 1) for r in runs}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| storage | file MB | top-1 agreement | max abs logit diff | few-shot (FSDD, adapter) |")
    print("|---|---|---|---|---|")
    for r in rows:
        fs = ", ".join(f"{k} {v} %" for k, v in r.get("fewshot_fsdd_adapter", {}).items()) or "–"
        print(f"| {r['dtype']} | {r['bytes'] / 1e6:.2f} | {100 * r['top1_agreement']:.1f} % "
              f"| {r['max_abs_logit_diff']:.2e} | {fs} |")
    if args.out:
        tmp_out = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp_out.write_text(json.dumps({"checkpoint": str(args.checkpoint), "rows": rows}, indent=1))
        os.replace(tmp_out, args.out)


if __name__ == "__main__":
    main()
