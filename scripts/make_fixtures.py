#!/usr/bin/env python3
"""Generate the reference fixtures for the Rust (burn) AST port.

Run from the repository root:

    /root/pyenv/bin/python scripts/make_fixtures.py

Everything is written under tests/fixtures/ (see tests/fixtures/README.md, which
this script also writes).  The script is deterministic: all randomness comes
from explicitly seeded generators, and the computations run on CPU in float32.

Notes on the installed library versions (checked against transformers 5.24.0):

* ASTFeatureExtractor uses torchaudio's Kaldi fbank whenever
  `transformers.utils.is_speech_available()` is True, which in this version is
  simply `is_torchaudio_available()`.  Otherwise it falls back to a numpy
  implementation (`audio_utils.spectrogram`).  The script asserts that the
  torchaudio path is the one in use, and additionally measures how far the numpy
  path is from it (reported in the README, not stored).

* The extractor calls
      ta_kaldi.fbank(waveform, sample_frequency=16000, window_type="hanning",
                     num_mel_bins=128)
  i.e. it does NOT pass htk_compat / use_energy / dither / frame_shift.  The
  torchaudio defaults are use_energy=False, dither=0.0, frame_shift=10.0,
  htk_compat=False.  htk_compat only decides where the energy column goes when
  use_energy=True, so with use_energy=False it has no effect: the arguments
  below (those of the original AST code) give bit-identical output, which
  the script asserts.  The waveform is passed as floats in [-1, 1) (the
  `* 2**15` line is commented out in the extractor), so we do the same.
  The original AST dataloader also subtracts the waveform mean before the
  fbank; HF does not, and neither do these fixtures.

* The extractor pads (with zeros, BEFORE normalisation) or truncates the fbank
  to max_length frames and then normalises with (x - (-4.2677393)) / (2 * 4.5689974).

* transformers 5.x renamed the AST modules (layers.N.attention.q_proj, ...,
  mlp.fc1/fc2), but save_pretrained() converts back to the historical hub key
  names (audio_spectrogram_transformer.encoder.layer.N.attention.attention.query.weight,
  ...).  The script prints the key list it wrote.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
import torchaudio.compliance.kaldi as ta_kaldi
import torchaudio.functional as taF
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification
from transformers.utils import is_speech_available

import safetensors

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures"
FSDD_DIR = Path("/work/shared/data/fsdd/recordings")
FSDD_CLIPS = ["0_george_0", "5_jackson_3", "9_theo_1"]
SR = 16000

# Arguments of the original AST code (and of the brief); see module docstring.
FBANK_KW = dict(
    htk_compat=True,
    sample_frequency=SR,
    use_energy=False,
    window_type="hanning",
    num_mel_bins=128,
    dither=0.0,
    frame_shift=10,
)

ATTN = "eager"  # reference forward passes use the plain eager attention

# Stored `input_values.<stem>.L<L>` of fbank.safetensors.  Full-length (1024-frame) inputs
# are mostly padding: keep one clip to bound the size.
INPUT_VALUES_STEMS = {100: FSDD_CLIPS + ["sine1k"], 1024: FSDD_CLIPS[:1]}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# audio
# ---------------------------------------------------------------------------

def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path: Path, samples_f: np.ndarray) -> None:
    sf.write(str(path), to_int16(samples_f), SR, subtype="PCM_16", format="WAV")


def read_wav(path: Path) -> np.ndarray:
    """Read a 16-bit PCM wav as float32 = int16 / 32768 (exactly what Rust sees)."""
    data, sr = sf.read(str(path), dtype="int16", always_2d=False)
    assert sr == SR and data.ndim == 1, (path, sr, data.shape)
    return (data.astype(np.float32) / np.float32(32768.0)).astype(np.float32)


def make_audio(audio_dir: Path) -> dict[str, np.ndarray]:
    audio_dir.mkdir(parents=True, exist_ok=True)
    for stem in FSDD_CLIPS:
        src = FSDD_DIR / f"{stem}.wav"
        data, sr = sf.read(str(src), dtype="int16", always_2d=False)
        assert sr == 8000 and data.ndim == 1, (src, sr, data.shape)
        wav8 = torch.from_numpy(data.astype(np.float32) / 32768.0).unsqueeze(0)
        # default resample parameters: sinc_interp_hann, lowpass_filter_width=6, rolloff=0.99
        wav16 = taF.resample(wav8, orig_freq=8000, new_freq=SR)[0].numpy()
        write_wav(audio_dir / f"{stem}.wav", wav16)

    n = np.arange(SR, dtype=np.float64)
    write_wav(audio_dir / "sine1k.wav", 0.5 * np.sin(2.0 * np.pi * 1000.0 * n / SR))

    rng = np.random.default_rng(1234)
    write_wav(audio_dir / "noise.wav", rng.uniform(-0.3, 0.3, size=int(0.7 * SR)))

    rng = np.random.default_rng(401)
    write_wav(audio_dir / "short401.wav", rng.uniform(-0.2, 0.2, size=401))
    rng = np.random.default_rng(399)
    write_wav(audio_dir / "short399.wav", rng.uniform(-0.2, 0.2, size=399))

    stems = FSDD_CLIPS + ["sine1k", "noise", "short401", "short399"]
    return {s: read_wav(audio_dir / f"{s}.wav") for s in stems}


# ---------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------

def kaldi_fbank(wave: np.ndarray) -> torch.Tensor:
    return ta_kaldi.fbank(torch.from_numpy(wave).unsqueeze(0), **FBANK_KW)


def extractor(max_length: int) -> ASTFeatureExtractor:
    return ASTFeatureExtractor(max_length=max_length)


def extract(fe: ASTFeatureExtractor, waves: list[np.ndarray]) -> torch.Tensor:
    out = fe(waves, sampling_rate=SR, return_tensors="pt")["input_values"]
    assert out.dtype == torch.float32, out.dtype
    return out.contiguous()


def numpy_path_extract(max_length: int, wave: np.ndarray) -> np.ndarray:
    """Run ASTFeatureExtractor through its numpy (no-torchaudio) code path."""
    import transformers.models.audio_spectrogram_transformer.feature_extraction_audio_spectrogram_transformer as m

    orig = m.is_speech_available
    m.is_speech_available = lambda: False
    try:
        fe = ASTFeatureExtractor(max_length=max_length)
        return fe([wave], sampling_rate=SR, return_tensors="np")["input_values"][0]
    finally:
        m.is_speech_available = orig


def make_fbank(waves: dict[str, np.ndarray], notes: dict) -> dict[str, torch.Tensor]:
    assert is_speech_available(), "transformers would use its numpy fbank; install torchaudio"
    t: dict[str, torch.Tensor] = {}
    for stem, w in waves.items():
        expect_frames = 0 if len(w) < 400 else 1 + (len(w) - 400) // 160
        if len(w) < 400:
            # torchaudio asserts "choose a window size 400 that is [2, N]" for N < 400
            # (and so does ASTFeatureExtractor).  Kaldi semantics (snip_edges) give 0 frames.
            try:
                kaldi_fbank(w)
                raise AssertionError("expected torchaudio to reject a clip shorter than one window")
            except AssertionError as e:
                if "window size" not in str(e):
                    raise
                notes["short_clip_error"] = str(e)
            fb = torch.zeros(0, 128, dtype=torch.float32)
        else:
            fb = kaldi_fbank(w)
            # exactly the call ASTFeatureExtractor makes
            fb_hf = ta_kaldi.fbank(torch.from_numpy(w).unsqueeze(0), sample_frequency=SR,
                                   window_type="hanning", num_mel_bins=128)
            assert torch.equal(fb, fb_hf), f"{stem}: AST-code args differ from HF-extractor args"
        assert fb.shape == (expect_frames, 128), (stem, fb.shape, expect_frames)
        t[f"fbank.{stem}"] = fb.to(torch.float32).contiguous()

    mean, std = -4.2677393, 4.5689974
    notes["numpy_path_max_abs_diff"] = {}
    for L, stems in INPUT_VALUES_STEMS.items():
        fe = extractor(L)
        for stem in stems:
            iv = extract(fe, [waves[stem]])[0]
            assert iv.shape == (L, 128)
            # cross-check against our own pad/truncate + normalise of the fbank
            fb = t[f"fbank.{stem}"]
            ref = torch.zeros(L, 128)
            n = min(L, fb.shape[0])
            ref[:n] = fb[:n]
            ref = (ref - mean) / (std * 2)
            assert torch.allclose(iv, ref, atol=1e-6, rtol=0), stem
            t[f"input_values.{stem}.L{L}"] = iv
            npv = numpy_path_extract(L, waves[stem])
            notes["numpy_path_max_abs_diff"][f"{stem}.L{L}"] = float(np.abs(npv - iv.numpy()).max())
    # extra: a truncating case (noise has 68 frames > 64); none of the above truncates
    iv = extract(extractor(64), [waves["noise"]])[0]
    assert torch.equal(iv, ((t["fbank.noise"][:64] - mean) / (std * 2)))
    t["input_values.noise.L64"] = iv
    return t


# ---------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------

ID2LABEL = {i: w for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])}


def tiny_config(frequency_stride: int, time_stride: int, max_length: int) -> ASTConfig:
    return ASTConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        num_mel_bins=128,
        patch_size=16,
        frequency_stride=frequency_stride,
        time_stride=time_stride,
        max_length=max_length,
        num_labels=10,
        id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()},
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        qkv_bias=True,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def build_model(config: ASTConfig, seed: int) -> ASTForAudioClassification:
    torch.manual_seed(seed)
    model = ASTForAudioClassification(config)
    model.set_attn_implementation(ATTN)
    g = torch.Generator().manual_seed(seed + 1)

    def randn(shape):
        return torch.randn(shape, generator=g, dtype=torch.float32)

    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith(("cls_token", "distillation_token", "position_embeddings")):
                # HF zero-initialises these
                p.copy_(0.02 * randn(p.shape))
            elif name.endswith("bias"):
                # HF zero-initialises all biases
                p.copy_(0.1 * randn(p.shape))
            elif p.ndim == 1:
                # LayerNorm gains (HF: ones)
                p.copy_(1.0 + 0.1 * randn(p.shape))
            else:
                # Linear / Conv weights.  HF draws N(0, 0.02); with hidden 64 that makes
                # attention scores ~0 and softmax ~uniform, which would hide e.g. a
                # wrong head split.  Use fan-in scaling instead so that attention is peaked.
                fan_in = p[0].numel()
                p.copy_(randn(p.shape) / fan_in ** 0.5)
    model.eval()
    return model


@torch.no_grad()
def forward_refs(model: ASTForAudioClassification, input_values: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    base = model.audio_spectrogram_transformer
    emb = base.embeddings(input_values)
    base_out = base(input_values)
    out = model(input_values, output_hidden_states=True)
    hs = out.hidden_states
    n_layers = model.config.num_hidden_layers
    assert len(hs) == n_layers + 1, len(hs)
    assert torch.equal(hs[0], emb), "hidden_states[0] is not the embedding output"
    assert torch.allclose(base.layernorm(hs[-1]), base_out.last_hidden_state, atol=1e-6), \
        "last_hidden_state != layernorm(hidden_states[-1])"
    assert torch.allclose(model.classifier(base_out.pooler_output), out.logits, atol=1e-6)
    refs = {
        "input_values": input_values,
        "embeddings": emb,
        "last_hidden_state": base_out.last_hidden_state,
        "pooler_output": base_out.pooler_output,
        "logits": out.logits,
    }
    for i, h in enumerate(hs):
        refs[f"hidden_states.{i}"] = h
    return {k: v.detach().to(torch.float32).contiguous() for k, v in refs.items()}


def grid_dims(config: ASTConfig, max_length: int | None = None) -> tuple[int, int]:
    L = config.max_length if max_length is None else max_length
    f = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
    t = (L - config.patch_size) // config.time_stride + 1
    return f, t


def adapt_pos_embed(pos: torch.Tensor, f_old: int, t_old: int, f_new: int, t_new: int) -> torch.Tensor:
    """Position-embedding adaptation as done by the original AST code
    (YuanGongND/ast, src/models/ast_models.py), re-written here:
    drop the two token positions, view the patch positions as a (f, t) grid
    (frequency-major, the order of the conv output flatten), centre-crop or
    bilinearly interpolate (align_corners default = False) the time axis first, then the
    frequency axis, flatten back frequency-major and put the two token positions in front."""
    d = pos.shape[-1]
    tokens = pos[:, :2, :]
    grid = pos[:, 2:, :].reshape(1, f_old, t_old, d).permute(0, 3, 1, 2)  # (1, d, f, t)
    if t_new <= t_old:
        s = t_old // 2 - t_new // 2
        grid = grid[:, :, :, s:s + t_new]
    else:
        grid = torch.nn.functional.interpolate(grid, size=(f_old, t_new), mode="bilinear")
    if f_new <= f_old:
        s = f_old // 2 - f_new // 2
        grid = grid[:, :, s:s + f_new, :]
    else:
        grid = torch.nn.functional.interpolate(grid, size=(f_new, t_new), mode="bilinear")
    patches = grid.permute(0, 2, 3, 1).reshape(1, f_new * t_new, d)
    return torch.cat([tokens, patches], dim=1).contiguous()


def save_model_dir(model: ASTForAudioClassification, d: Path, max_length: int | None,
                   dtype: torch.dtype | None = None) -> None:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    m = model
    if dtype is not None:
        m = copy.deepcopy(model).to(dtype)
    m.save_pretrained(str(d), safe_serialization=True)
    if max_length is not None:
        extractor(max_length).save_pretrained(str(d))
    # keep only what the Rust side reads
    for f in d.iterdir():
        assert f.name in ("config.json", "model.safetensors", "preprocessor_config.json"), f


def safetensors_keys(path: Path) -> dict[str, tuple[str, list[int]]]:
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"]) for k, v in sorted(header.items())}


def make_models(waves: dict[str, np.ndarray], notes: dict) -> None:
    models_dir = OUT / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    batch = [waves[s] for s in FSDD_CLIPS]

    specs = {
        "ast-tiny-s10": (tiny_config(10, 10, 100), 100, 1000),
        "ast-tiny-f16t12": (tiny_config(16, 12, 128), 128, 2000),
    }
    s10_model = None
    for name, (config, L, seed) in specs.items():
        model = build_model(config, seed)
        d = models_dir / name
        save_model_dir(model, d, L)
        iv = extract(extractor(L), batch)
        assert iv.shape == (3, L, 128)
        refs = forward_refs(model, iv)
        f, t = grid_dims(config)
        assert refs["embeddings"].shape == (3, f * t + 2, 64)

        # reload through HF and check the saved checkpoint reproduces the logits
        re = ASTForAudioClassification.from_pretrained(str(d), attn_implementation=ATTN).eval()
        with torch.no_grad():
            assert torch.allclose(re(iv).logits, refs["logits"], atol=1e-5)

        if name == "ast-tiny-s10":
            s10_model = model
            refs.update(pos_adapt_refs(model, d, batch, notes))
        save_file(refs, str(d / "reference.safetensors"))
        notes.setdefault("saved_weight_keys", list(safetensors_keys(d / "model.safetensors").keys()))

    # half-precision copies of ast-tiny-s10
    L = 100
    iv = extract(extractor(L), batch)
    for name, dtype, tag in (("ast-tiny-s10-f16", torch.float16, "F16"),
                             ("ast-tiny-s10-bf16", torch.bfloat16, "BF16")):
        d = models_dir / name
        save_model_dir(s10_model, d, None, dtype=dtype)
        keys = safetensors_keys(d / "model.safetensors")
        assert all(v[0] == tag for v in keys.values()), keys
        # The file uses the hub key names; from_pretrained applies the key conversion.
        # Force float32: the loaded weights are the half-precision values cast back to f32.
        m32 = ASTForAudioClassification.from_pretrained(str(d), dtype=torch.float32,
                                                        attn_implementation=ATTN).eval()
        # every weight must be the f32 weight rounded to `dtype`
        ref_sd = {k: v.to(dtype).to(torch.float32) for k, v in s10_model.state_dict().items()}
        got_sd = m32.state_dict()
        assert got_sd.keys() == ref_sd.keys() and len(keys) == len(ref_sd)
        for k, v in got_sd.items():
            assert v.dtype == torch.float32 and torch.equal(v, ref_sd[k]), k
        refs = forward_refs(m32, iv)
        # The inputs are ast-tiny-s10's; only the logits differ, so only they are stored.
        save_file({"logits": refs["logits"]}, str(d / "reference.safetensors"))
        # sanity: the rounded model is close to, but not identical with, the f32 one
        s10_logits = load_file(str(models_dir / "ast-tiny-s10" / "reference.safetensors"))["logits"]
        notes[f"{name}_logit_maxdiff_vs_f32"] = float((refs["logits"] - s10_logits).abs().max())


def pos_adapt_refs(model: ASTForAudioClassification, d: Path, batch, notes: dict) -> dict[str, torch.Tensor]:
    config = model.config
    f_old, t_old = grid_dims(config)
    pos = model.audio_spectrogram_transformer.embeddings.position_embeddings.detach()
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for L in (64, 160):
        f_new, t_new = grid_dims(config, L)
        new_pos = adapt_pos_embed(pos, f_old, t_old, f_new, t_new)
        assert new_pos.shape == (1, f_new * t_new + 2, config.hidden_size)
        cfg = copy.deepcopy(config)
        cfg.max_length = L
        m = ASTForAudioClassification(cfg)
        m.set_attn_implementation(ATTN)
        sd_new = dict(sd)
        sd_new["audio_spectrogram_transformer.embeddings.position_embeddings"] = new_pos
        m.load_state_dict(sd_new, strict=True)
        m.eval()
        iv = extract(extractor(L), batch)
        with torch.no_grad():
            logits = m(iv).logits
        out[f"position_embeddings.L{L}"] = new_pos.contiguous()
        out[f"input_values.L{L}"] = iv
        out[f"logits.L{L}"] = logits.contiguous()

        if L == 64:
            # What HF itself does for a different max_length: the checkpoint's
            # position_embeddings no longer fit, so with ignore_mismatched_sizes=True
            # they are reported as mismatched and re-initialised by _init_weights,
            # which for ASTEmbeddings zeroes them (init.zeros_).  cls/distillation
            # tokens are loaded (flagged _is_hf_initialized) and NOT zeroed.
            hf = ASTForAudioClassification.from_pretrained(
                str(d), max_length=L, ignore_mismatched_sizes=True, attn_implementation=ATTN).eval()
            hf_pos = hf.audio_spectrogram_transformer.embeddings.position_embeddings
            assert hf_pos.shape == new_pos.shape
            assert torch.count_nonzero(hf_pos) == 0, "HF did not zero the mismatched position embeddings"
            for k, v in hf.state_dict().items():
                if k.endswith("position_embeddings"):
                    continue
                assert torch.equal(v, sd[k]), f"{k} was not loaded unchanged"
            notes["mismatched_pos_embed_zeroed"] = True
            with torch.no_grad():
                zl = hf(iv).logits
                # same thing by hand
                sd_zero = dict(sd)
                sd_zero["audio_spectrogram_transformer.embeddings.position_embeddings"] = torch.zeros_like(new_pos)
                m.load_state_dict(sd_zero, strict=True)
                assert torch.allclose(m(iv).logits, zl, atol=1e-6)
            out[f"logits.L{L}.zero_pos"] = zl.contiguous()
    return out


# ---------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------

def describe(path: Path) -> str:
    lines = []
    for k, (dt, shape) in safetensors_keys(path).items():
        lines.append(f"  - `{k}`: {dt} {shape}")
    return "\n".join(lines)


def write_readme(waves: dict[str, np.ndarray], notes: dict) -> None:
    # only what this script writes (petl/ and peft/ come from other scripts)
    files = sorted(p for p in OUT.rglob("*") if p.is_file() and p.name != "README.md"
                   and p.relative_to(OUT).parts[0] in ("audio", "fbank.safetensors", "models"))
    total = sum(p.stat().st_size for p in files)
    listing = "\n".join(f"| `{p.relative_to(OUT)}` | {p.stat().st_size:,} |" for p in files)
    audio_rows = "\n".join(
        f"| `{s}.wav` | {len(w)} | {0 if len(w) < 400 else 1 + (len(w) - 400) // 160} |" for s, w in waves.items())
    npdiff = "\n".join(f"  - {k}: {v:.3g}" for k, v in notes["numpy_path_max_abs_diff"].items())
    half = "\n".join(f"  - `{k[:-len('_logit_maxdiff_vs_f32')]}`: {v:.3g}"
                     for k, v in notes.items() if k.endswith("_vs_f32"))
    iv_stems = " and ".join(
        f"L = {L} ({', '.join(f'`{s}`' for s in stems)})" for L, stems in INPUT_VALUES_STEMS.items())
    models = OUT / "models"
    model_sections = []
    for name in ("ast-tiny-s10", "ast-tiny-f16t12", "ast-tiny-s10-f16", "ast-tiny-s10-bf16"):
        model_sections.append(f"### `models/{name}/reference.safetensors`\n\n"
                              + describe(models / name / "reference.safetensors") + "\n")
    weight_keys = describe(models / "ast-tiny-s10" / "model.safetensors")

    text = f"""# Test fixtures

Generated by `scripts/make_fixtures.py` (deterministic, CPU, float32). Regenerate with

```
/root/pyenv/bin/python scripts/make_fixtures.py
```

from the repository root (the FSDD recordings are read from `{FSDD_DIR}`; only the three
clips below are used and only their resampled copies are committed).

Versions: python {sys.version.split()[0]}, torch {torch.__version__}, torchaudio {torchaudio.__version__},
transformers {transformers.__version__}, safetensors {safetensors.__version__}, numpy {np.__version__},
soundfile {sf.__version__} (pinned in `scripts/requirements.txt`).

## audio/

16 kHz mono 16-bit PCM wav. **All reference numbers are computed from the wav as read
back from disk**, i.e. `int16 / 32768` as float32, so Rust and Python see the identical waveform.

| file | samples | fbank frames |
|---|---|---|
{audio_rows}

- `0_george_0`, `5_jackson_3`, `9_theo_1`: Free Spoken Digit Dataset clips (8 kHz),
  resampled 8k -> 16k with `torchaudio.functional.resample` (default sinc/hann, width 6,
  rolloff 0.99), rounded to int16.
- `sine1k`: 1 s, 1 kHz sine, amplitude 0.5.
- `noise`: 0.7 s uniform white noise in [-0.3, 0.3] (numpy `default_rng(1234)`).
- `short401` / `short399`: 401 / 399 samples of uniform noise in [-0.2, 0.2]
  (`default_rng(401)` / `default_rng(399)`): exactly 1 and 0 fbank frames.

## fbank.safetensors

- `fbank.<stem>`: float32 [frames, 128] =
  `torchaudio.compliance.kaldi.fbank(wave[None], htk_compat=True, sample_frequency=16000,
  use_energy=False, window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)`
  with `wave` in [-1, 1) (not scaled by 2^15, same as the HF extractor).
  `frames = 1 + (n - 400) // 160` (snip_edges), 0 if n < 400.
  - torchaudio computes `log(max(mel_energy, torch.finfo(float32).eps))`, so the floor is
    `log(1.1920929e-07) = -15.942385`. With 128 bins and a 512-point FFT, mel filter
    index 3 has no FFT bin inside it (all-zero filter), so column 3 is that floor in every
    frame of every clip; `sine1k` has many more floored columns (energy below eps).
  - These are the arguments of the original AST code. `ASTFeatureExtractor` (transformers
    {transformers.__version__}) calls `ta_kaldi.fbank(waveform, sample_frequency=16000,
    window_type="hanning", num_mel_bins=128)` only; the other values are torchaudio
    defaults except `htk_compat` (default False), which only moves the energy column and
    so has no effect with `use_energy=False`. The script asserts both calls give
    bit-identical results.
  - `fbank.short399` is a **[0, 128]** tensor (safetensors accepts empty tensors). It is
    the Kaldi/snip_edges answer, not torchaudio output: torchaudio (and hence
    `ASTFeatureExtractor`) raises `AssertionError: {notes.get("short_clip_error", "")}`
    for a clip shorter than one 400-sample window.
- `input_values.<stem>.L<L>`: float32 [L, 128], output of the real
  `ASTFeatureExtractor(max_length=L)(wave, sampling_rate=16000, return_tensors="pt")`
  for {iv_stems}
  (1024-frame inputs are mostly padding, so only one clip is kept there). The extractor
  zero-pads (before normalisation) or truncates the fbank to L frames and then applies
  `(x + 4.2677393) / (2 * 4.5689974)`; padded rows therefore hold 4.2677393 / 9.1379948.
  Extra: `input_values.noise.L64` [64, 128] exercises truncation (68 frames -> 64).
  The extractor used its torchaudio path (`transformers.utils.is_speech_available()` is
  True: torchaudio is installed). For information only (not stored), the extractor's numpy
  fallback path differs from the torchaudio path by at most:
{npdiff}

Keys:

{describe(OUT / "fbank.safetensors")}

## models/

Tiny random-init `ASTForAudioClassification` checkpoints (`save_pretrained(...,
safe_serialization=True)`), with hidden_size 64, 2 layers, 4 heads, intermediate 128,
num_mel_bins 128, patch 16, 10 labels `zero`..`nine`, gelu, layer_norm_eps 1e-12, qkv_bias.

- `ast-tiny-s10`: frequency_stride 10, time_stride 10, max_length 100 (12 x 9 patches, N = 110).
- `ast-tiny-f16t12`: frequency_stride 16, time_stride 12, max_length 128 (8 x 10 patches, N = 82).
- `ast-tiny-s10-f16` / `ast-tiny-s10-bf16`: the weights of `ast-tiny-s10` cast with
  `model.to(dtype)` and saved (config.json records `"dtype": "float16"` / `"bfloat16"`;
  transformers 5 writes `dtype`, older hub configs have `torch_dtype`). No preprocessor config
  (use the one of `ast-tiny-s10`). Their reference was computed by a float32 model whose
  weights are the half-precision weights cast back to float32 (i.e. exactly what an f32
  engine gets from those files). Max |logit difference| vs. the f32 model:
{half}

Weights: after HF construction (seeded `torch.manual_seed`), every parameter is
overwritten from a seeded generator so that no tensor is constant (swapped or
misnamed tensors show in the outputs): cls/distillation tokens and position
embeddings ~ 0.02 N(0,1) (HF: zeros), all biases ~ 0.1 N(0,1) (HF: zeros), LayerNorm
gains ~ 1 + 0.1 N(0,1) (HF: ones), and Linear/Conv weights ~ N(0,1)/sqrt(fan_in)
(HF: N(0, 0.02), which with hidden 64 would make the attention almost uniform).

`model.safetensors` uses the historical hub key names (transformers 5 renames the
modules internally, e.g. `layers.N.attention.q_proj`, but `save_pretrained` maps them
back), e.g. for `ast-tiny-s10`:

{weight_keys}

`preprocessor_config.json` is `ASTFeatureExtractor(max_length=L).save_pretrained(...)`.

`reference.safetensors` (float32), for the batch [0_george_0, 5_jackson_3, 9_theo_1]
at the model's own max_length, `model.eval()`, `torch.no_grad()`, eager attention:

- `input_values` [3, L, 128]: real `ASTFeatureExtractor(max_length=L)` output.
- `embeddings` [3, N, 64]: `model.audio_spectrogram_transformer.embeddings(input_values)`.
- `hidden_states.<i>`, i = 0..2: `output_hidden_states=True`; `hidden_states.0` equals
  `embeddings`, `hidden_states.2` is the last encoder layer output BEFORE the final layernorm.
- `last_hidden_state` (after the final layernorm), `pooler_output` [3, 64] (mean of the
  two token positions), `logits` [3, 10].

`ast-tiny-s10` only, position-embedding adaptation (original AST rule, re-implemented in
`adapt_pos_embed`: take `pos[:, 2:]`, view as (1, f, t, d) -> (1, d, f, t); time axis: centre
crop `[t_old//2 - t_new//2 :][:t_new]` if smaller, else
`F.interpolate(mode="bilinear", size=(f_old, t_new))` (align_corners=False); then the same for
frequency (a no-op here, f stays 12); flatten frequency-major; prepend the two token positions):

- `position_embeddings.L64` [1, 12*5+2, 64] (time crop 9 -> 5, columns 2..6),
  `position_embeddings.L160` [1, 12*15+2, 64] (time interpolation 9 -> 15).
- `input_values.L64`, `input_values.L160` [3, L, 128]: extractor with that max_length.
- `logits.L64`, `logits.L160`: an HF model with `max_length=L` carrying all other
  `ast-tiny-s10` weights and the adapted position embeddings.
- `logits.L64.zero_pos`: logits of
  `ASTForAudioClassification.from_pretrained("models/ast-tiny-s10", max_length=64,
  ignore_mismatched_sizes=True)`. Verified in transformers {transformers.__version__}: the
  position_embeddings are reported as mismatched and re-initialised by `_init_weights`,
  which zeroes them for `ASTEmbeddings` (`init.zeros_`); every other tensor, including
  cls/distillation tokens, is loaded unchanged (the init helpers skip tensors flagged
  `_is_hf_initialized`). So HF's own answer to a different max_length is *zero* position
  embeddings, not the AST crop/interpolation.

{chr(10).join(model_sections)}

## Files

Written by this script (`petl/` and `peft/` come from `scripts/make_petl_fixtures.py` and
`scripts/make_peft_fixture.py`; see their own README.md):

| file | bytes |
|---|---|
{listing}

Total (without this README): {total:,} bytes. Most of it is compressible (the padded
rows of `input_values` are a constant): committed to git and packed, the whole folder
took about 2.5 MiB when checked with `git gc --aggressive` in a scratch repository.
"""
    (OUT / "README.md").write_text(text)


def main() -> None:
    torch.set_num_threads(1)  # fully deterministic CPU reductions
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)
    for sub in ("audio", "models"):
        if (OUT / sub).exists():
            shutil.rmtree(OUT / sub)
    notes: dict = {}
    waves = make_audio(OUT / "audio")
    fb = make_fbank(waves, notes)
    save_file(fb, str(OUT / "fbank.safetensors"))
    make_models(waves, notes)
    write_readme(waves, notes)

    total = 0
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            total += p.stat().st_size
            print(f"{p.stat().st_size:>10}  {p.relative_to(REPO)}")
    print(f"{total:>10}  total")
    print(json.dumps({k: v for k, v in notes.items() if k != "saved_weight_keys"}, indent=1))


if __name__ == "__main__":
    main()
