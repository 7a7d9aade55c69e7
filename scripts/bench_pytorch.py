#!/usr/bin/env python3
"""PyTorch side of the petl-ast speed benchmark (CPU).

    /root/pyenv/bin/python scripts/bench_pytorch.py [--threads 2] [--repeats 3] [--quick]

Prints one JSON object per line to stdout, e.g.

    {"impl": "pytorch", "case": "forward", "batch": 1, "max_length": 100,
     "seconds_median": ..., "seconds_min": ..., "repeats": 3, "peak_rss_mb": ..., ...}

Cases
* fbank_10s: torchaudio.compliance.kaldi.fbank with the AST arguments on a 10 s,
  16 kHz signal (seeded white noise); seconds are per clip (batch 1, max_length null).
* forward: ASTForAudioClassification with the AST-base config (ASTConfig() defaults:
  hidden 768, 12 layers, 12 heads, intermediate 3072, patch 16, strides 10, 527 labels),
  random init, eval(), torch.inference_mode(), input_values [batch, max_length, 128]
  (seeded N(0, 0.5)), for batch in {1, 8} x max_length in {100, 500, 1024}.
  The model's config.max_length is set to the case's max_length (so the position
  embeddings fit), attention implementation per --attn (default sdpa, the HF default).

Each case does 1 warm-up run and then --repeats timed runs (time.perf_counter around
the call).  By default every case runs in its own child process so that `peak_rss_mb`
(resource.getrusage(RUSAGE_SELF).ru_maxrss of that process: model + inputs +
activations + the Python/torch runtime) belongs to that case alone
(`rss_after_import_mb` is the same measure taken right after importing torch /
transformers, before the case builds anything); --no-isolate runs
everything in one process (then peak RSS is cumulative).  Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

FBANK_KW = dict(
    htk_compat=True,
    sample_frequency=16000,
    use_energy=False,
    window_type="hanning",
    num_mel_bins=128,
    dither=0.0,
    frame_shift=10,
)


def peak_rss_mb() -> float:
    # Linux: ru_maxrss is in KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run_case(case: str, batch: int, max_length: int | None, args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    extra: dict = {}
    if case == "forward":
        import transformers  # noqa: F401  (count the import in the baseline)
    # peak RSS after importing the runtime, before building anything for the case
    extra["rss_after_import_mb"] = round(peak_rss_mb(), 1)
    if case == "fbank_10s":
        import torchaudio.compliance.kaldi as ta_kaldi

        g = torch.Generator().manual_seed(0)
        wave = (torch.rand(1, 16000 * 10, generator=g) * 0.6 - 0.3).to(torch.float32)

        def fn():
            with torch.inference_mode():
                return ta_kaldi.fbank(wave, **FBANK_KW)

        extra["frames"] = int(fn().shape[0])
    elif case == "forward":
        from transformers import ASTConfig, ASTForAudioClassification

        config = ASTConfig(max_length=max_length)
        model = ASTForAudioClassification(config)
        model.set_attn_implementation(args.attn)
        model.eval()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, max_length, config.num_mel_bins, generator=g) * 0.5

        def fn():
            with torch.inference_mode():
                return model(x).logits

        extra["attn"] = args.attn
        extra["params"] = sum(p.numel() for p in model.parameters())
        extra["tokens"] = int(model.audio_spectrogram_transformer.embeddings.position_embeddings.shape[1])
    else:
        raise ValueError(case)

    secs = timed(fn, args.repeats)
    return {
        "impl": "pytorch",
        "case": case,
        "batch": batch,
        "max_length": max_length,
        "seconds_median": statistics.median(secs),
        "seconds_min": min(secs),
        "repeats": args.repeats,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": args.threads,
        "seconds_all": secs,
        "torch": torch.__version__,
        **extra,
    }


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cases(args) -> list[tuple[str, int, int | None]]:
    if args.quick:
        return [("fbank_10s", 1, None), ("forward", 1, 100)]
    out = [("fbank_10s", 1, None)]
    for b in (1, 8):
        for L in (100, 500, 1024):
            out.append(("forward", b, L))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="only fbank_10s and forward batch 1 max_length 100, repeats 1")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--no-isolate", action="store_true", help="run all cases in this process")
    ap.add_argument("--only", help=argparse.SUPPRESS)  # internal: case,batch,max_length
    args = ap.parse_args()
    if args.quick:
        args.repeats = 1

    if args.only:
        case, b, L = args.only.split(",")
        res = run_case(case, int(b), None if L == "None" else int(L), args)
        print(json.dumps(res), flush=True)
        return

    host = {"cpu": cpu_name(), "nproc": os.cpu_count()}
    for case, b, L in cases(args):
        print(f"[bench_pytorch] {case} batch={b} max_length={L} ...", file=sys.stderr, flush=True)
        if args.no_isolate:
            res = run_case(case, b, L, args)
        else:
            cmd = [sys.executable, os.path.abspath(__file__), "--only", f"{case},{b},{L}",
                   "--threads", str(args.threads), "--repeats", str(args.repeats), "--attn", args.attn]
            p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
            res = json.loads(p.stdout.strip().splitlines()[-1])
        res.update(host)
        # 1-minute load average when the case finished: >> threads means the timings
        # were taken on a busy machine
        res["loadavg_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
