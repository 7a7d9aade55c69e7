//! `native-train pretrain-demo`: trains a small AST from scratch on four FSDD speakers and writes
//! it as a Hugging Face checkpoint folder — the offline default of the CLI and the web app.

use std::path::PathBuf;

use anyhow::{Context, Result};
use petl_ast::audio::{AudioLimits, FeatureExtractor, FeatureExtractorConfig};
use petl_ast::data;
use petl_ast::io::write_atomic;
use petl_ast::model::{save, AstConfig, AstForAudioClassification, AstModel, ClassifierHead};
use petl_ast::train::{self, OptimizerConfig, SpecAugment, TimeShift, TrainConfig, TrainState};
use serde_json::json;

use super::train::{featurise, run_loop};

/// Speakers the demo backbone is trained on; theo and yweweler are held out for few-shot tests.
pub const DEMO_SPEAKERS: [&str; 4] = ["george", "jackson", "lucas", "nicolas"];

/// Arguments of `pretrain-demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// FSDD `recordings/` folder.
    #[arg(long, default_value = "../shared/data/fsdd/recordings")]
    data: PathBuf,
    /// Output checkpoint folder.
    #[arg(long, default_value = "www/models/fsdd-ast-tiny")]
    out: PathBuf,
    /// Passes over the training set.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Clips per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate (cosine schedule).
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    /// Linear learning-rate warm-up steps before the cosine schedule (five epochs).
    #[arg(long, default_value_t = 250)]
    warmup_steps: usize,
    /// Largest random time shift of a training clip inside its padding, in frames (0 = off).
    #[arg(long, default_value_t = 16)]
    time_shift: usize,
    /// Seed of initialisation order, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Token width.
    #[arg(long, default_value_t = 128)]
    hidden_size: usize,
    /// Encoder layers.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Patch stride on both axes.
    #[arg(long, default_value_t = 16)]
    stride: usize,
    /// Input length in frames (FSDD clips are at most ~2.3 s).
    #[arg(long, default_value_t = 128)]
    max_length: usize,
}

/// Runs `pretrain-demo`.
pub fn run(args: Args) -> Result<()> {
    let device = petl_ast::backend::cpu_device()
        .map_err(anyhow::Error::msg)?
        .autodiff();
    device.seed(args.seed);
    let mut config: AstConfig = serde_json::from_value(json!({
        "hidden_size": args.hidden_size,
        "num_hidden_layers": args.layers,
        "num_attention_heads": 4,
        "intermediate_size": 4 * args.hidden_size,
        "frequency_stride": args.stride,
        "time_stride": args.stride,
        "max_length": args.max_length,
        "model_type": "audio-spectrogram-transformer",
        "architectures": ["ASTForAudioClassification"],
    }))?;
    config.set_labels(&data::fsdd::labels());
    config.validate().map_err(anyhow::Error::msg)?;

    let splits = data::fsdd::splits(&args.data, &DEMO_SPEAKERS)?;
    let preprocessor = FeatureExtractorConfig {
        max_length: args.max_length,
        ..FeatureExtractorConfig::default()
    };
    let extractor = FeatureExtractor::new(preprocessor.clone())?;
    let limits = AudioLimits::default();
    let train_set = featurise(&splits.train, &extractor, &limits, false, "train")?;
    let valid = featurise(&splits.valid, &extractor, &limits, false, "valid")?;
    let test = featurise(&splits.test, &extractor, &limits, false, "test")?;

    let model = AstForAudioClassification {
        ast: AstModel::new(&config, args.max_length, &device),
        head: ClassifierHead::new(&config, 10, &device),
    };
    let train_config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer: OptimizerConfig {
            lr: args.lr,
            beta1: 0.9,
            beta2: 0.98,
            epsilon: 1e-6,
            weight_decay: 0.05,
        },
        seed: args.seed,
        spec_augment: Some(SpecAugment {
            freq_mask: 16,
            time_mask: 20,
        }),
        time_shift: (args.time_shift > 0).then_some(TimeShift {
            max_frames: args.time_shift,
        }),
        max_bad_steps: 10,
        warmup_steps: args.warmup_steps,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let shape = [args.max_length, config.num_mel_bins];
    let (model, history) = run_loop(
        TrainState::new(model, &train_config),
        &train_set,
        Some(&valid),
        shape,
        &train_config,
        &args.out,
        None,
    )?
    .finish();
    let (_, test_accuracy, _) = train::evaluate(&model, &test, args.batch_size, shape);
    let model = burn::module::Module::valid(&model);
    save::save_dir(&model, &config, &args.out)?;
    write_atomic(
        &args.out.join("preprocessor_config.json"),
        serde_json::to_string_pretty(&preprocessor)?.as_bytes(),
    )?;
    let results = json!({
        "speakers": DEMO_SPEAKERS, "train_clips": train_set.len(), "valid_clips": valid.len(),
        "test_clips": test.len(), "test_accuracy": test_accuracy,
        "best_valid_accuracy": history.iter().filter_map(|m| m.valid_accuracy).fold(0.0, f64::max),
        "train": train_config, "command": std::env::args().collect::<Vec<_>>().join(" "),
    });
    write_atomic(
        &args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    println!(
        "demo backbone: test accuracy {test_accuracy:.4} on {} clips of {:?}; written to {}",
        test.len(),
        DEMO_SPEAKERS,
        args.out.display()
    );
    Ok(())
}
