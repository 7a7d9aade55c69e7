//! `native-train backend-check`: does a backend compute what the CPU backend computes? The same
//! weights and inputs on both: the built-in backbone and a random AST-base (the AudioSet model's
//! shape: d 768, 12 layers, 527 labels). One JSON line per case with the largest logit difference
//! and whether it is within `--tolerance`; a non-zero exit when any case is not.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::{Device, Tensor, TensorData};
use petl_ast::backend::{cpu_device, Backend};
use petl_ast::model::{
    save::safetensors_bytes, AstConfig, AstForAudioClassification, Checkpoint, LoadOptions,
};
use serde_json::json;

use crate::model_source::demo_checkpoint;

/// Arguments of `backend-check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The backend to check against the CPU backend.
    #[arg(long, value_parser = |s: &str| s.parse::<Backend>())]
    backend: Backend,
    /// Largest |logit difference| accepted.
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f32,
    /// Clips per forward pass.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Input lengths (frames) of the random AST-base cases.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1024])]
    max_length: Vec<usize>,
    /// Skip the AST-base cases (about 1 GiB of CPU memory at 1,024 frames).
    #[arg(long)]
    no_base: bool,
}

/// A deterministic input batch (uniform in [-1.5, 1.5), the range of normalised fbanks).
fn input_values(batch: usize, frames: usize, mel: usize) -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..batch * frames * mel)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 3.0 - 1.5
        })
        .collect()
}

/// Logits of `checkpoint` on `device` for `input` (`[batch, frames, mel]`), and the seconds the
/// second (warm) forward took.
fn logits(
    checkpoint: &Checkpoint,
    input: &[f32],
    shape: [usize; 3],
    device: &Device,
) -> Result<(Vec<f32>, f64)> {
    let options = LoadOptions {
        max_length: Some(shape[1]),
        ..LoadOptions::default()
    };
    let model = checkpoint.load_classifier(&options, device)?;
    let x = Tensor::<3>::from_data(TensorData::new(input.to_vec(), shape), device);
    let read = |t: Tensor<2>| {
        t.try_into_data().map_err(|e| {
            anyhow::anyhow!(
                "the forward pass failed on the device: {}",
                device_error_summary(&e)
            )
        })
    };
    let first = read(model.forward(x.clone()))?;
    let start = Instant::now();
    read(model.forward(x))?;
    let seconds = start.elapsed().as_secs_f64();
    let values = first
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the logits back: {e:?}"))?;
    Ok((values, seconds))
}

/// The AST-base configuration with 527 labels and random weights, as a checkpoint.
fn random_ast_base(max_length: usize) -> Result<Checkpoint> {
    let device = cpu_device().map_err(anyhow::Error::msg)?;
    device.seed(0);
    let mut config = AstConfig {
        max_length,
        ..AstConfig::default()
    };
    let labels: Vec<String> = (0..527).map(|i| format!("label {i}")).collect();
    config.set_labels(&labels);
    let model = AstForAudioClassification::new(&config, max_length, labels.len(), &device);
    Ok(Checkpoint::from_parts(
        &config.to_json(),
        "AST-base (random)/config.json",
        None,
        safetensors_bytes(&model),
        "AST-base (random)/model.safetensors",
    )?)
}

/// Runs `backend-check`.
pub fn run(args: Args) -> Result<()> {
    let device = args.backend.device().map_err(anyhow::Error::msg)?;
    let cpu = cpu_device().map_err(anyhow::Error::msg)?;
    let mut cases: Vec<(String, Checkpoint, usize)> = Vec::new();
    let demo = demo_checkpoint()?;
    let demo_length = demo.config.max_length;
    cases.push(("speech-ast-tiny".into(), demo, demo_length));
    if !args.no_base {
        for &length in &args.max_length {
            cases.push((
                "ast-base-random".into(),
                random_ast_base(length).context("cannot build the random AST-base")?,
                length,
            ));
        }
    }
    let mut failed = 0;
    for (name, checkpoint, frames) in cases {
        let shape = [args.batch, frames, checkpoint.config.num_mel_bins];
        let input = input_values(shape[0], shape[1], shape[2]);
        let (reference, cpu_seconds) = logits(&checkpoint, &input, shape, &cpu)?;
        let (values, seconds) = logits(&checkpoint, &input, shape, &device)
            .with_context(|| format!("{name} on {}", args.backend))?;
        let max_abs_diff = reference
            .iter()
            .zip(&values)
            .map(|(a, b)| (a - b).abs())
            .fold(
                0f32,
                |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
            );
        let top1_agree = top1(&reference, shape[0]) == top1(&values, shape[0]);
        let ok = max_abs_diff <= args.tolerance && values.len() == reference.len();
        failed += usize::from(!ok);
        println!(
            "{}",
            json!({
                "case": "logits_vs_cpu",
                "backend": args.backend.to_string(),
                "impl": args.backend.implementation(),
                "model": name,
                "batch": shape[0],
                "max_length": frames,
                "max_abs_diff": max_abs_diff,
                "top1_agree": top1_agree,
                "tolerance": args.tolerance,
                "ok": ok,
                "forward_seconds": seconds,
                "cpu_forward_seconds": cpu_seconds,
            })
        );
    }
    if failed > 0 {
        bail!(
            "{failed} case(s) on {} differ from the CPU by more than {}",
            args.backend,
            args.tolerance
        );
    }
    Ok(())
}

/// An error's first line and its root cause (device errors list every failed kernel and their
/// causes in "Caused by:" blocks; the last block is the root, e.g. an allocation refused).
pub fn device_error_summary(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let first = lines.first().copied().unwrap_or_default();
    let root = lines
        .windows(2)
        .filter(|w| w[0] == "Caused by:")
        .map(|w| w[1])
        .next_back();
    match root {
        Some(root) if root != first => format!("{first} ({root})"),
        _ => first.to_string(),
    }
}

/// The top class of each of `batch` rows of `logits`.
fn top1(logits: &[f32], batch: usize) -> Vec<usize> {
    let classes = logits.len() / batch.max(1);
    logits
        .chunks(classes.max(1))
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i)
        })
        .collect()
}
