#!/usr/bin/env python3
"""A Hugging Face PEFT IA3 adapter fixture for the tiny AST checkpoint.

Run from anywhere (paths are relative to the repository root), after scripts/make_fixtures.py,
with the versions pinned in scripts/requirements.txt:

    python scripts/make_ia3_fixture.py

Writes tests/fixtures/peft/ia3/: adapter_config.json, adapter_model.safetensors and
reference.safetensors.

How:

1. `ASTForAudioClassification.from_pretrained("tests/fixtures/models/ast-tiny-s10")` (float32,
   eager attention, eval).
2. `peft.get_peft_model(model, IA3Config(target_modules=["k_proj", "v_proj", "fc2"],
   feedforward_modules=["fc2"], init_ia3_weights=True))`: the IA3 paper's rescaling of keys,
   values (at the projection's output) and the MLP hidden activation (at fc2's input).
   Checks that the fresh adapter changes no logit (PEFT starts the vectors at one).
3. Every `ia3_l` vector := 1 + 0.5 N(0, 1) from a seeded torch.Generator, drawn in sorted
   parameter-name order.
4. `save_pretrained` (safetensors; PEFT's model card README.md removed; target_modules sorted,
   since PEFT writes the set in hash order).
5. reference.safetensors, on `input_values` of ast-tiny-s10/reference.safetensors:
   `last_hidden_state` (the encoder output after its final LayerNorm, what the Rust PetlModel's
   `encode` returns), `base_last_hidden_state` (the same without the adapter) and `logits`.
6. Independent check: the vectors folded into a fresh base model's weights by hand
   (k/v rows and biases times l, fc2 columns times l_ff) give the same logits (1e-5).

Deterministic: CPU, float32, one thread.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import transformers
from peft import IA3Config, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import ASTForAudioClassification

REPO = Path(__file__).resolve().parent.parent
BASE_REL = "tests/fixtures/models/ast-tiny-s10"
OUT = REPO / "tests/fixtures/peft/ia3"
SEED = 20261204
STD = 0.5


def load_base() -> ASTForAudioClassification:
    return ASTForAudioClassification.from_pretrained(
        BASE_REL, dtype=torch.float32, attn_implementation="eager").eval()


@torch.no_grad()
def outputs(model, encoder, iv):
    hidden = encoder(input_values=iv).last_hidden_state.contiguous()
    return hidden, model(input_values=iv).logits.contiguous()


@torch.no_grad()
def main() -> None:
    os.chdir(REPO)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    iv = load_file(f"{BASE_REL}/reference.safetensors")["input_values"]

    base = load_base()
    base_hidden, base_logits = outputs(base, base.audio_spectrogram_transformer, iv)

    config = IA3Config(target_modules=["k_proj", "v_proj", "fc2"], feedforward_modules=["fc2"],
                       init_ia3_weights=True)
    model = get_peft_model(load_base(), config).eval()
    inner = model.base_model.model
    _, fresh_logits = outputs(inner, inner.audio_spectrogram_transformer, iv)
    assert torch.equal(fresh_logits, base_logits), "a fresh IA3 adapter changed the logits"

    generator = torch.Generator().manual_seed(SEED)
    vectors = sorted((n, p) for n, p in model.named_parameters() if "ia3_l" in n)
    assert vectors, "no IA3 vectors"
    for _, p in vectors:
        p.copy_(1 + STD * torch.randn(p.shape, generator=generator))
    hidden, logits = outputs(inner, inner.audio_spectrogram_transformer, iv)
    assert (logits - base_logits).abs().max() > 1e-2, "the adapter changed nothing"

    OUT.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(OUT), safe_serialization=True)
    (OUT / "README.md").unlink(missing_ok=True)
    cfg_path = OUT / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    for key in ("target_modules", "feedforward_modules"):
        cfg[key] = sorted(cfg[key])
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    save_file({"last_hidden_state": hidden, "base_last_hidden_state": base_hidden,
               "logits": logits}, str(OUT / "reference.safetensors"))

    # Independent check: fold the vectors into a fresh base model by hand.
    folded = load_base()
    saved = load_file(str(OUT / "adapter_model.safetensors"))
    for i, layer in enumerate(folded.audio_spectrogram_transformer.layers):
        prefix = f"base_model.model.audio_spectrogram_transformer.layers.{i}."
        for proj in (layer.attention.k_proj, layer.attention.v_proj):
            name = "k_proj" if proj is layer.attention.k_proj else "v_proj"
            scale = saved[f"{prefix}attention.{name}.ia3_l"].reshape(-1)
            proj.weight.mul_(scale[:, None])
            proj.bias.mul_(scale)
        layer.mlp.fc2.weight.mul_(saved[f"{prefix}mlp.fc2.ia3_l"].reshape(1, -1))
    _, folded_logits = outputs(folded, folded.audio_spectrogram_transformer, iv)
    err = (folded_logits - logits).abs().max().item()
    assert err < 1e-5, f"folded weights differ by {err}"
    print(f"wrote {OUT}: {len(vectors)} IA3 vectors, max |logits - base| = "
          f"{(logits - base_logits).abs().max().item():.3f}, folded check {err:.1e}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
