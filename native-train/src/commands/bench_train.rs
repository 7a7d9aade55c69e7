//! `native-train bench-train`: time of one training step (forward, backward, AdamW) of a PETL
//! method on the AST-base configuration with random weights. One method and length per process,
//! so the reported peak RSS is that case's (`scripts/bench.sh` loops over the cases).

use std::time::Instant;

use anyhow::Result;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Distribution, Int, Tensor};
use petl_ast::backend::Backend;
use petl_ast::kernels::fuses_adamw;
use petl_ast::model::{AstConfig, AstModel};
use petl_ast::petl::{MethodArgs, PetlModel};
use petl_ast::train::{adamw, composed_adamw, OptimizerConfig};
use serde_json::json;

/// Arguments of `bench-train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Compute backend (autodiff is added).
    #[arg(long, default_value = "cpu", value_parser = |s: &str| s.parse::<Backend>())]
    backend: Backend,
    #[command(flatten)]
    method: MethodArgs,
    /// Clips per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Input length in frames.
    #[arg(long, default_value_t = 100)]
    max_length: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Less peak memory for more compute: on the cpu backend each layer's MLP expansion is
    /// recomputed in the backward instead of keeping its GELU input; on ndarray, wgpu and cuda,
    /// burn's balanced gradient checkpointing (recomputes element-wise ops and softmax).
    #[arg(long)]
    gradient_checkpointing: bool,
    /// Update with burn's `AdamW` (about fifteen tensor ops per parameter) instead of the fused
    /// one-pass update the trainer uses on the cpu backend, for comparison.
    #[arg(long)]
    composed_adamw: bool,
    /// Name of the case in the output.
    #[arg(long)]
    label: Option<String>,
}

/// Where one step's time went, in seconds. On asynchronous backends (wgpu, cuda) GPU work of the
/// backward that is still queued when `backward` returns is counted in `optimizer`.
#[derive(Clone, Copy, Debug, serde::Serialize)]
struct StepPhases {
    /// Forward pass and loss.
    forward: f64,
    /// Back-propagation.
    backward: f64,
    /// The AdamW update.
    optimizer: f64,
}

/// Runs `bench-train`.
pub fn run(args: Args) -> Result<()> {
    let super::TrainingDevice {
        device,
        recompute_mlp,
    } = super::training_device(args.backend, args.gradient_checkpointing)?;
    let config = AstConfig::default();
    let petl = args
        .method
        .to_config(config.hidden_size, config.num_hidden_layers)?;
    let classes = 10;
    let ast = AstModel::new(&config, args.max_length, &device);
    let mut model = PetlModel::new(ast, &config, &petl, classes, &device)?
        .recompute_mlp_in_backward(recompute_mlp);
    let counts = model.param_counts();
    let input = Tensor::<3>::random(
        [args.batch, args.max_length, config.num_mel_bins],
        Distribution::Normal(0.0, 0.5),
        &device,
    );
    let labels = Tensor::<1, Int>::from_ints(
        (0..args.batch)
            .map(|i| (i % classes) as i64)
            .collect::<Vec<_>>()
            .as_slice(),
        &device,
    );
    let one_hot = labels.one_hot::<2>(classes).float();
    // The paper's AdamW settings and learning rate for this method.
    let settings = OptimizerConfig::paper(&petl);
    let mut optimizer = if args.composed_adamw {
        ModuleOptimizer::from(composed_adamw(&settings))
    } else {
        adamw(&settings)
    };
    let optimizer_name = if !args.composed_adamw && fuses_adamw(&model.head.weight.val()) {
        "fused AdamW"
    } else {
        "burn AdamW"
    };
    let mut times = Vec::new();
    let mut phases = Vec::new();
    for step in 0..=args.repeats.max(1) {
        let start = Instant::now();
        let logits = model.forward(input.clone());
        let loss = (log_softmax(logits, 1) * one_hot.clone()).sum().neg() / args.batch as f64;
        // Reading the loss waits for the forward on asynchronous backends.
        loss.clone().try_into_data().map_err(|e| {
            anyhow::anyhow!(
                "the forward pass failed on the device: {}",
                super::backend_check::device_error_summary(&e)
            )
        })?;
        let forward_done = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let backward_done = Instant::now();
        model = optimizer.step(settings.lr, model, grads);
        // Wait for the step to finish on asynchronous backends.
        model.head.weight.val().try_into_data().map_err(|e| {
            anyhow::anyhow!(
                "the training step failed on the device: {}",
                super::backend_check::device_error_summary(&e)
            )
        })?;
        if step > 0 {
            let end = Instant::now();
            times.push((end - start).as_secs_f64());
            phases.push(StepPhases {
                forward: (forward_done - start).as_secs_f64(),
                backward: (backward_done - forward_done).as_secs_f64(),
                optimizer: (end - backward_done).as_secs_f64(),
            });
        }
    }
    let fastest = times
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| phases[i])
        .expect("at least one timed step");
    times.sort_by(f64::total_cmp);
    let line = json!({
        "impl": args.backend.implementation(),
        "matmul": super::bench::matmul_library(args.backend),
        "case": "train_step",
        "method": args.label.unwrap_or_else(|| format!("{:?}", args.method.method)),
        "batch": args.batch,
        "max_length": args.max_length,
        "seconds_median": times[times.len() / 2],
        "seconds_min": times[0],
        "fastest_step_phases": fastest,
        "repeats": times.len(),
        "trainable": counts.trainable,
        "gradient_checkpointing": args.gradient_checkpointing,
        "optimizer": optimizer_name,
        "peak_rss_mb": super::bench::peak_rss_mb(),
    });
    println!("{line}");
    Ok(())
}
