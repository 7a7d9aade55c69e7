#!/usr/bin/env python3
"""PyTorch side of the training-step benchmark (CPU), the counterpart of `native-train bench-train`.

    python scripts/bench_pytorch_train.py --method adapter --max-length 100 [--threads 2]
    python scripts/bench_pytorch_train.py --method adapter,LoRA --max-length 100,500 --device cuda

On the CPU, one case per process (so peak RSS is the case's own); prints one JSON line per case
in the same format as `native-train bench-train` (on CUDA with `gpu` and `peak_gpu_mb` added):

    {"impl": "pytorch", "case": "train_step", "method": "...", "batch": 8, "max_length": 100,
     "seconds_median": ..., "seconds_min": ..., "repeats": 3, "trainable": ..., "peak_rss_mb": ...}

The model is HF `ASTModel` with the AST-base config (random init, SDPA attention) and the
PETL_AST wrapper's head: final LayerNorm → mean over all tokens → Linear(768, 10). The methods
follow PETL_AST (docs/petl_reference.md), written here with forward hooks on the HF modules:

* full-FT: everything trains.
* adapter: Pfeiffer parallel Bottleneck adapter, RR 64 (d 12), on the FFN: out += up(gelu(down(LN_a(h1)))).
  Trains adapters + `layernorm_after` + final LN + head.
* LoRA: RR 128 (r 6), alpha 8, scale alpha/RR on Wq and Wv. Trains LoRA + final LN + head.
* DPT: deep prompt tuning, 25 prompts per layer, DIST token dropped, positions 1..25 overwritten
  before layers 1..11. Trains prompts + final LN + head.
* linear: trains final LN + head.

A step is zero_grad + forward + cross-entropy + backward + AdamW (lr 5e-3, betas (0.9, 0.98),
eps 1e-6, weight decay 0.1), batch 8, 10 classes, input N(0, 0.5). One warm-up step, then
--repeats timed steps; median and min reported, and the fastest step split into forward
(with the loss), backward and optimizer seconds (`fastest_step_phases`, as `bench-train`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import torch
from torch import nn
from transformers import ASTConfig, ASTModel

CLASSES = 10


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Bottleneck(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.down = nn.Linear(d, hidden)
        self.up = nn.Linear(hidden, d)
        for lin in (self.down, self.up):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)

    def forward(self, x):
        return self.up(nn.functional.gelu(self.down(x)))


class LowRank(nn.Module):
    def __init__(self, d: int, r: int, scale: float):
        super().__init__()
        self.down = nn.Linear(d, r, bias=False)
        self.up = nn.Linear(r, d, bias=False)
        nn.init.normal_(self.down.weight, std=0.02)
        nn.init.normal_(self.up.weight, std=0.02)
        self.scale = scale

    def forward(self, x):
        return self.scale * self.up(self.down(x))


class Wrapper(nn.Module):
    """ASTModel + (optional) PETL modules + the PETL_AST head."""

    def __init__(self, config: ASTConfig, method: str):
        super().__init__()
        self.ast = ASTModel(config)
        self.ast.set_attn_implementation("sdpa")
        self.head = nn.Linear(config.hidden_size, CLASSES)
        self.method = method
        d = config.hidden_size
        layers = self.layers()
        if method != "full-FT":
            self.ast.requires_grad_(False)
            self.ast.layernorm.requires_grad_(True)
        self.extra = nn.ModuleList()
        if method == "adapter":
            for layer in layers:
                adapter = Bottleneck(d, round(d / 64))
                self.extra.append(adapter)
                layer.layernorm_after.requires_grad_(True)
                self._hook_parallel_adapter(layer, adapter)
        elif method == "LoRA":
            for layer in layers:
                for lin in self.query_value(layer):
                    lora = LowRank(d, round(d / 128), 8 / 128)
                    self.extra.append(lora)
                    lin.register_forward_hook(lambda _m, inp, out, lora=lora: out + lora(inp[0]))
        elif method == "DPT":
            val = (6 / (3 * 16 * 16 + d)) ** 0.5
            self.prompts = nn.Parameter(torch.empty(1, 25, d).uniform_(-val, val))
            self.deep = nn.Parameter(torch.empty(len(layers) - 1, 25, d).uniform_(-val, val))
        elif method not in ("full-FT", "linear"):
            raise ValueError(method)

    def layers(self):
        # transformers ≥ 5: `layers`; 4.x: `encoder.layer`.
        return self.ast.layers if hasattr(self.ast, "layers") else self.ast.encoder.layer

    @staticmethod
    def query_value(layer):
        att = layer.attention
        if hasattr(att, "q_proj"):
            return att.q_proj, att.v_proj
        return att.attention.query, att.attention.value

    @staticmethod
    def _hook_parallel_adapter(layer, adapter):
        saved = {}

        def keep_input(_m, _inp, out):
            saved["z"] = out

        def add_adapter(_m, _inp, out):
            return out + adapter(saved.pop("z"))

        layer.layernorm_after.register_forward_hook(keep_input)
        # The FFN before its residual: `mlp` (transformers ≥ 5) or `output` (4.x, which adds the
        # residual inside; the adapter term is additive either way).
        ffn = layer.mlp if hasattr(layer, "mlp") else layer.output
        ffn.register_forward_hook(add_adapter)

    def forward(self, x):
        if self.method != "DPT":
            hidden = self.ast(x).last_hidden_state
            return self.head(hidden.mean(dim=1))
        emb = self.ast.embeddings(x)  # [B, 2 + patches, d]: CLS, DIST, patches
        b, p = emb.shape[0], self.prompts.shape[1]
        h = torch.cat([emb[:, :1], self.prompts.expand(b, -1, -1), emb[:, 2:]], dim=1)
        for i, layer in enumerate(self.layers()):
            if i > 0:
                h = torch.cat([h[:, :1], self.deep[i - 1].expand(b, -1, -1), h[:, 1 + p :]], dim=1)
            out = layer(h)
            h = out[0] if isinstance(out, tuple) else out
        return self.head(self.ast.layernorm(h).mean(dim=1))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_case(method: str, max_length: int, args, device: torch.device) -> dict:
    """Times one method at one input length; returns its JSON line."""
    torch.manual_seed(0)
    model = Wrapper(ASTConfig(max_length=max_length), method).to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(args.batch, max_length, 128, generator=g) * 0.5).to(device)
    y = (torch.arange(args.batch) % CLASSES).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> dict:
        """One step; returns the seconds of its forward, backward and optimizer phases."""
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        sync(device)
        t1 = time.perf_counter()
        loss.backward()
        sync(device)
        t2 = time.perf_counter()
        opt.step()
        sync(device)
        t3 = time.perf_counter()
        return {"forward": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2}

    step()
    times, phases = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        phases.append(step())
        times.append(time.perf_counter() - t0)
    line = {
        "impl": "pytorch" if device.type == "cpu" else f"pytorch-{device.type}",
        "case": "train_step",
        "method": args.label or method,
        "batch": args.batch,
        "max_length": max_length,
        "seconds_median": statistics.median(times),
        "seconds_min": min(times),
        "fastest_step_phases": phases[times.index(min(times))],
        "repeats": len(times),
        "trainable": sum(p.numel() for p in params),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": args.threads,
        "torch": torch.__version__,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    if device.type == "cuda":
        line["gpu"] = torch.cuda.get_device_name(device)
        line["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    methods = ["full-FT", "adapter", "LoRA", "DPT", "linear"]
    ap.add_argument("--method", required=True, help=f"one or more (comma-separated) of {', '.join(methods)}")
    ap.add_argument("--label", help="name of the case in the output (default: --method)")
    ap.add_argument("--max-length", default="100", help="input length(s) in frames, comma-separated")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the GPU check, scripts/gpu_check.sh)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for method in args.method.split(","):
        if method not in methods:
            ap.error(f"unknown method {method!r} (expected {', '.join(methods)})")
        for max_length in (int(n) for n in args.max_length.split(",")):
            print(json.dumps(bench_case(method, max_length, args, device)), flush=True)


if __name__ == "__main__":
    main()
