//! `native-train bench-train`: time of one training step (forward, backward, AdamW) of a PETL
//! method on the AST-base configuration with random weights. One method and length per process,
//! so the reported peak RSS is that case's (`scripts/bench.sh` loops over the cases).

use std::time::Instant;

use anyhow::Result;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Distribution, Int, Tensor};
use petl_ast::backend::Backend;
use petl_ast::model::{AstConfig, AstModel};
use petl_ast::petl::{MethodArgs, PetlModel};
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
    /// Name of the case in the output.
    #[arg(long)]
    label: Option<String>,
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
    let mut optimizer = AdamWConfig::new()
        .with_beta_2(0.98)
        .with_epsilon(1e-6)
        .with_weight_decay(0.1)
        .init();
    let mut times = Vec::new();
    for step in 0..=args.repeats.max(1) {
        let start = Instant::now();
        let logits = model.forward(input.clone());
        let loss = (log_softmax(logits, 1) * one_hot.clone()).sum().neg() / args.batch as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(5e-3, model, grads);
        // Wait for the step to finish on asynchronous backends.
        let _ = model.head.weight.val().into_data();
        if step > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let line = json!({
        "impl": format!("burn-{}", args.backend),
        "matmul": super::bench::matmul_library(args.backend),
        "case": "train_step",
        "method": args.label.unwrap_or_else(|| format!("{:?}", args.method.method)),
        "batch": args.batch,
        "max_length": args.max_length,
        "seconds_median": times[times.len() / 2],
        "seconds_min": times[0],
        "repeats": times.len(),
        "trainable": counts.trainable,
        "gradient_checkpointing": args.gradient_checkpointing,
        "peak_rss_mb": super::bench::peak_rss_mb(),
    });
    println!("{line}");
    Ok(())
}
