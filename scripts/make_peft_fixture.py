#!/usr/bin/env python3
"""A Hugging Face PEFT LoRA adapter fixture for the tiny AST checkpoint.

Run from anywhere (paths are relative to the repository root), after
scripts/make_fixtures.py:

    /root/pyenv/bin/python scripts/make_peft_fixture.py

Needs `peft` (pinned in scripts/requirements.txt).  Writes

    tests/fixtures/peft/lora-qv/                adapter_config.json, adapter_model.safetensors,
                                                reference.safetensors
    tests/fixtures/peft/lora-qv-hubnames/       the same adapter under transformers-4 names
    tests/fixtures/peft/README.md

How:

1. `ASTForAudioClassification.from_pretrained("tests/fixtures/models/ast-tiny-s10")`
   (float32, eager attention, eval); asserts it reproduces that folder's reference logits.
2. `peft.get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=[...],
   lora_dropout=0.0, bias="none", modules_to_save=None))`.
   The brief asked for target_modules=["query", "value"], the transformers-4 module names.
   transformers >= 5 renamed the AST attention projections (`layers.N.attention.q_proj` /
   `v_proj`; see scripts/make_fixtures.py) and PEFT does not translate target_modules for
   AST (its v4 -> v5 conversion is keyed on model_type and has no entry for
   "audio-spectrogram-transformer"), so get_peft_model raises NoMatchingPeftModuleError.
   The script checks that this still happens and then targets ["q_proj", "v_proj"]: the
   same two Linear layers per block.
3. Every lora_A / lora_B weight := 0.2 * N(0, 1) from a seeded torch.Generator, drawn in
   sorted parameter-name order (PEFT's own init, lora_B = 0, would make the update a no-op).
4. `save_pretrained("tests/fixtures/peft/lora-qv")` (safetensors).  PEFT also writes a
   model-card README.md there; it is removed (not needed).  PEFT serialises the
   target_modules *set* with `list(set)`, whose order depends on PYTHONHASHSEED, so the
   script rewrites adapter_config.json with target_modules sorted (same json format).
5. Logits of the PEFT model (eval, no_grad) on `input_values` of
   tests/fixtures/models/ast-tiny-s10/reference.safetensors -> reference.safetensors
   (`logits`, float32 [3, 10]).
6. Checks: (a) `PeftModel.from_pretrained(fresh base, dir)` gives the same logits;
   (b) independent merge: W_q/W_v += (lora_alpha / r) * B @ A in a fresh base model gives
   the same logits (to 1e-5); (c) max |logits - base logits| > 1e-2.
7. lora-qv-hubnames: the same tensors and config with the module paths of transformers 4
   (`audio_spectrogram_transformer.encoder.layer.N.attention.attention.query`), i.e. the
   layout of LoRA adapters for AST trained with transformers 4.x, and target_modules
   ["query", "value"].  The v5 -> hub name mapping is taken from the base checkpoint itself
   (model.safetensors is written by transformers' save_pretrained with the historical hub
   names; tensors are matched by value).  PEFT 0.21 + transformers 5 cannot load this
   layout for AST (see 2.), so it is checked by merging B @ A into the hub-named
   model.safetensors, loading that with from_pretrained, and comparing logits.

Deterministic: CPU, float32, one thread; two runs give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import peft
import safetensors
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import ASTForAudioClassification

REPO = Path(__file__).resolve().parent.parent
BASE_REL = "tests/fixtures/models/ast-tiny-s10"  # relative: it is recorded in adapter_config.json
OUT_REL = "tests/fixtures/peft"
BASE = REPO / BASE_REL
OUT = REPO / OUT_REL
ADAPTER = "lora-qv"
ADAPTER_HUB = "lora-qv-hubnames"

SEED = 20240613
STD = 0.2
R = 4
ALPHA = 8
ATTN = "eager"
PREFIX = "base_model.model."


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def lora_config(target_modules: list[str]) -> LoraConfig:
    return LoraConfig(r=R, lora_alpha=ALPHA, target_modules=target_modules, lora_dropout=0.0,
                      bias="none", modules_to_save=None)


def load_base() -> ASTForAudioClassification:
    # from_pretrained with a repo-relative path so that adapter_config.json records
    # base_model_name_or_path = "tests/fixtures/models/ast-tiny-s10", not a machine path.
    m = ASTForAudioClassification.from_pretrained(BASE_REL, dtype=torch.float32,
                                                  attn_implementation=ATTN)
    return m.eval()


def safetensors_keys(path: Path) -> dict[str, tuple[str, list[int]]]:
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"]) for k, v in sorted(header.items())}


def st_metadata(path: Path):
    with safe_open(str(path), "pt") as f:
        return f.metadata()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_config(path: Path, cfg: dict) -> None:
    # the exact format of PeftConfig.save_pretrained
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True))


@torch.no_grad()
def logits_of(model, iv: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model(input_values=iv).logits.detach().to(torch.float32).contiguous()


def main() -> None:
    os.chdir(REPO)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    notes: dict = {}

    ref = load_file(str(BASE / "reference.safetensors"))
    iv, base_logits = ref["input_values"], ref["logits"]
    assert iv.shape == (3, 100, 128) and base_logits.shape == (3, 10)

    model = load_base()
    d = float((logits_of(model, iv) - base_logits).abs().max())
    assert d <= 1e-5, f"base model does not reproduce its reference logits ({d})"

    # --- 2. the brief's target_modules, then the transformers-5 names -----------------
    try:
        get_peft_model(load_base(), lora_config(["query", "value"]))
        raise RuntimeError("PEFT now accepts target_modules=['query', 'value'] for AST: "
                           "revisit this script (the saved key names may change)")
    except peft.utils.error.NoMatchingPeftModuleError as e:
        notes["query_value_error"] = f"{type(e).__name__}: {e}"
    target_modules = ["q_proj", "v_proj"]
    pm = get_peft_model(model, lora_config(target_modules))
    pm.eval()

    # --- 3. seeded LoRA weights --------------------------------------------------------
    g = torch.Generator().manual_seed(SEED)
    lora_params = sorted((n, p) for n, p in pm.named_parameters() if ".lora_" in n)
    assert len(lora_params) == 2 * 2 * model.config.num_hidden_layers, [n for n, _ in lora_params]
    with torch.no_grad():
        for name, p in lora_params:
            p.copy_(STD * torch.randn(p.shape, generator=g, dtype=torch.float32))

    # the scale PEFT applies: lora_alpha / r (use_rslora=False), per adapted layer
    scalings = set()
    for name, mod in pm.named_modules():
        if isinstance(mod, peft.tuners.lora.LoraLayer):
            scalings.add(float(mod.scaling["default"]))
            assert mod.use_dora["default"] is False
    cfg_obj = pm.peft_config["default"]
    assert cfg_obj.use_rslora is False
    assert scalings == {ALPHA / R}, scalings
    scale = ALPHA / R

    peft_logits = logits_of(pm, iv)
    max_change = float((peft_logits - base_logits).abs().max())
    assert max_change > 1e-2, f"LoRA update barely changes the logits ({max_change})"
    notes["max_logit_change_vs_base"] = max_change

    # --- 4/5. save ---------------------------------------------------------------------
    out = OUT / ADAPTER
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pm.save_pretrained(OUT_REL + "/" + ADAPTER, safe_serialization=True)
    card = out / "README.md"
    if card.exists():
        card.unlink()  # PEFT's model card template; nothing the fixture needs
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    assert sorted(cfg["target_modules"]) == target_modules, cfg["target_modules"]
    cfg["target_modules"] = sorted(cfg["target_modules"])  # list(set) order is hash-seed dependent
    write_config(cfg_path, cfg)
    save_file({"logits": peft_logits}, str(out / "reference.safetensors"))
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "reference.safetensors"], list(out.iterdir())

    saved = load_file(str(out / "adapter_model.safetensors"))
    # saved keys: PEFT state_dict keys without the adapter name
    expect = {n.replace(".default.", "."): p.detach() for n, p in lora_params}
    assert saved.keys() == expect.keys(), (sorted(saved), sorted(expect))
    for k, v in saved.items():
        assert v.dtype == torch.float32 and torch.equal(v, expect[k]), k

    # --- 6a. reload with PeftModel.from_pretrained --------------------------------------
    re = PeftModel.from_pretrained(load_base(), OUT_REL + "/" + ADAPTER).eval()
    re_logits = logits_of(re, iv)
    notes["reload_max_abs_diff"] = float((re_logits - peft_logits).abs().max())
    assert torch.equal(re_logits, peft_logits), notes["reload_max_abs_diff"]

    # --- 6b. independent merge with the documented scale -------------------------------
    merged = load_base()
    sd = merged.state_dict()
    n_merged = 0
    with torch.no_grad():
        for k in sorted(saved):
            if ".lora_A." not in k:
                continue
            mod = k[len(PREFIX):].replace(".lora_A.weight", "")
            A, B = saved[k], saved[k.replace(".lora_A.", ".lora_B.")]
            assert A.shape == (R, 64) and B.shape == (64, R), (A.shape, B.shape)
            sd[mod + ".weight"] += scale * (B @ A)
            n_merged += 1
    merged.load_state_dict(sd, strict=True)
    merge_logits = logits_of(merged, iv)
    notes["merge_max_abs_diff"] = float((merge_logits - peft_logits).abs().max())
    assert n_merged == 4 and notes["merge_max_abs_diff"] <= 1e-5, notes["merge_max_abs_diff"]

    # --- 7. transformers-4 (hub) names --------------------------------------------------
    hub_sd = load_file(str(BASE / "model.safetensors"))
    v5_sd = load_base().state_dict()
    v5_to_hub = {}
    for k5, t5 in v5_sd.items():
        hits = [kh for kh, th in hub_sd.items() if th.shape == t5.shape and torch.equal(th, t5)]
        assert len(hits) == 1, (k5, hits)
        v5_to_hub[k5] = hits[0]
    hub_saved = {}
    module_map = {}
    for k, v in saved.items():
        mod5, _, tail = k[len(PREFIX):].partition(".lora_")
        mod_hub = v5_to_hub[mod5 + ".weight"][: -len(".weight")]
        module_map[mod5] = mod_hub
        hub_saved[f"{PREFIX}{mod_hub}.lora_{tail}"] = v
    notes["module_map"] = module_map
    hub_targets = sorted({m.rsplit(".", 1)[1] for m in module_map.values()})
    assert hub_targets == ["query", "value"], hub_targets

    out_hub = OUT / ADAPTER_HUB
    if out_hub.exists():
        shutil.rmtree(out_hub)
    out_hub.mkdir(parents=True)
    cfg_hub = dict(cfg)
    cfg_hub["target_modules"] = hub_targets
    write_config(out_hub / "adapter_config.json", cfg_hub)
    # same metadata as PEFT writes ({"format": "pt"}); save_file sorts the keys itself
    save_file(hub_saved, str(out_hub / "adapter_model.safetensors"),
              metadata=st_metadata(out / "adapter_model.safetensors"))
    shutil.copyfile(out / "reference.safetensors", out_hub / "reference.safetensors")

    # check: merge into the hub-named checkpoint, load it with from_pretrained
    merged_hub = dict(hub_sd)
    for k, A in hub_saved.items():
        if ".lora_A." not in k:
            continue
        B = hub_saved[k.replace(".lora_A.", ".lora_B.")]
        w = k[len(PREFIX):].replace(".lora_A.weight", ".weight")
        merged_hub[w] = merged_hub[w] + scale * (B @ A)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(BASE / "config.json", Path(tmp) / "config.json")
        save_file(merged_hub, str(Path(tmp) / "model.safetensors"), metadata={"format": "pt"})
        mh = ASTForAudioClassification.from_pretrained(tmp, dtype=torch.float32,
                                                       attn_implementation=ATTN).eval()
        notes["hubnames_merge_max_abs_diff"] = float((logits_of(mh, iv) - peft_logits).abs().max())
    assert notes["hubnames_merge_max_abs_diff"] <= 1e-5, notes["hubnames_merge_max_abs_diff"]
    # and PEFT itself refuses the hub layout on a transformers-5 model (documents 2.)
    try:
        PeftModel.from_pretrained(load_base(), OUT_REL + "/" + ADAPTER_HUB)
        notes["hubnames_peft_load"] = "loads"
        raise RuntimeError("PEFT now loads the transformers-4 layout for AST: update the README")
    except peft.utils.error.NoMatchingPeftModuleError as e:
        notes["hubnames_peft_load"] = f"{type(e).__name__}"

    # --- report + README --------------------------------------------------------------
    print("adapter_config.json:")
    print(cfg_path.read_text())
    for name in (ADAPTER, ADAPTER_HUB):
        p = OUT / name / "adapter_model.safetensors"
        print(f"\n{name}/adapter_model.safetensors  metadata={st_metadata(p)}")
        for k, (dt, shape) in safetensors_keys(p).items():
            print(f"  {k}: {dt} {shape}")
    print(f"\nscaling = lora_alpha / r = {ALPHA} / {R} = {scale}  (use_rslora={cfg['use_rslora']})")
    print(json.dumps({k: v for k, v in notes.items() if k != "module_map"}, indent=1))
    write_readme(cfg, scale, peft_logits, base_logits, notes)
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            print(f"{sha256(p)}  {p.stat().st_size:>6}  {p.relative_to(REPO)}")


def describe(path: Path) -> str:
    return "\n".join(f"  - `{k}`: {dt} {shape}" for k, (dt, shape) in safetensors_keys(path).items())


def write_readme(cfg: dict, scale: float, peft_logits, base_logits, notes: dict) -> None:
    a = OUT / ADAPTER
    h = OUT / ADAPTER_HUB
    module_rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in sorted(notes["module_map"].items()))
    text = f"""# PEFT fixtures

Generated by `scripts/make_peft_fixture.py` (deterministic: CPU, float32, one thread; two
runs give byte-identical files). Regenerate from the repository root, after
`scripts/make_fixtures.py`, with

```
/root/pyenv/bin/python scripts/make_peft_fixture.py
```

Versions: python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__},
peft {peft.__version__}, safetensors {safetensors.__version__}, numpy {np.__version__}.

## How

- Base: `ASTForAudioClassification.from_pretrained("{BASE_REL}", dtype=float32,
  attn_implementation="eager")`, eval (d = 64, 2 layers, 4 heads; no dropout anywhere).
- `peft.get_peft_model(model, LoraConfig(r={R}, lora_alpha={ALPHA}, target_modules=["q_proj", "v_proj"],
  lora_dropout=0.0, bias="none", modules_to_save=None))`.
  **Why not `["query", "value"]`:** transformers 5 renamed the AST attention projections
  (`encoder.layer.N.attention.attention.query` became `layers.N.attention.q_proj`), and
  peft {peft.__version__} does not translate target_modules for this model (its v4 -> v5 conversion
  has no entry for model_type `audio-spectrogram-transformer`), so it raises
  `{notes["query_value_error"].split(":")[0]}` ("Target modules {{'query', 'value'}} not found in the
  base model"). `q_proj` / `v_proj` are the same two Linear layers per block.
- Every `lora_A` / `lora_B` weight = {STD} * N(0, 1) from `torch.Generator().manual_seed({SEED})`,
  drawn in sorted parameter-name order (PEFT's own init has lora_B = 0, a no-op update).
- `model.save_pretrained("{OUT_REL}/{ADAPTER}")` (safetensors). The model card README.md
  PEFT also writes is deleted. PEFT writes `target_modules` with `list(set)`, whose order
  depends on PYTHONHASHSEED; the script rewrites `adapter_config.json` with it sorted
  (otherwise byte-identical: `json.dumps(indent=2, sort_keys=True)`).
- `reference.safetensors`: `logits` (float32 [3, 10]) of the PEFT model in eval mode on
  `input_values` [3, 100, 128] of `{BASE_REL}/reference.safetensors`
  (the batch [0_george_0, 5_jackson_3, 9_theo_1]).
- Checks: `PeftModel.from_pretrained(fresh base, "{OUT_REL}/{ADAPTER}")` gives
  identical logits (max |diff| {notes["reload_max_abs_diff"]:.3g}); merging `W += scale * B @ A` into
  `q_proj` / `v_proj` of a fresh base model gives them to {notes["merge_max_abs_diff"]:.3g};
  max |logits - base logits| = **{notes["max_logit_change_vs_base"]:.4g}** (asserted > 1e-2).

## Scale

`scaling = lora_alpha / r = {ALPHA} / {R} = {scale:g}` (`use_rslora` false; with `use_rslora` true
PEFT would use `lora_alpha / sqrt(r)`). `lora_dropout` 0, `bias` "none", no DoRA.
For a targeted Linear `y = x W^T + b`, the adapted layer computes

```
y = x W^T + b + scaling * (x A^T) B^T        A = lora_A.weight [r, d_in], B = lora_B.weight [d_out, r]
```

i.e. the merged weight is `W + scaling * B @ A`.

## `{ADAPTER}/` (what peft {peft.__version__} + transformers {transformers.__version__} write)

`adapter_config.json`:

```json
{(a / "adapter_config.json").read_text()}
```

`adapter_model.safetensors` (metadata `{st_metadata(a / "adapter_model.safetensors")}`). Key naming:
`base_model.model.` + the module path in the transformers-5 `ASTForAudioClassification` +
`.lora_A.weight` / `.lora_B.weight` (the adapter name `default` is stripped on save):

{describe(a / "adapter_model.safetensors")}

`reference.safetensors`:

{describe(a / "reference.safetensors")}

## `{ADAPTER_HUB}/` (the same adapter, transformers-4 module names)

LoRA adapters for AST saved with transformers 4.x (any made before transformers 5) use the
historical module paths and `target_modules: ["query", "value"]`. This folder holds the
**same tensors**, config (only `target_modules` = `{cfg["target_modules"]}` -> `["query", "value"]`)
and `reference.safetensors` as `{ADAPTER}/`, with the keys renamed module by module. The
mapping is taken from the base checkpoint (`model.safetensors` uses the hub names, which
transformers' `save_pretrained` writes; tensors matched by value):

| transformers 5 module | hub / transformers 4 module |
|---|---|
{module_rows}

{describe(h / "adapter_model.safetensors")}

peft {peft.__version__} with transformers {transformers.__version__} cannot load this layout for AST
(`PeftModel.from_pretrained` -> `{notes["hubnames_peft_load"]}`); the script checks it instead by
merging `W += scale * B @ A` into the hub-named `model.safetensors` and loading that with
`from_pretrained`: max |logits - reference| = {notes["hubnames_merge_max_abs_diff"]:.3g}.

## Numbers

- base logits (`{BASE_REL}/reference.safetensors`), row 0:
  {[round(x, 5) for x in base_logits[0].tolist()]}
- LoRA logits, row 0: {[round(x, 5) for x in peft_logits[0].tolist()]}
"""
    (OUT / "README.md").write_text(text)


if __name__ == "__main__":
    main()
