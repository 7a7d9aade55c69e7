//! `native-train train`: fine-tune a checkpoint with a PETL method on a dataset, writing the run
//! folder (config, per-epoch metrics, the best adapter, results).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use indicatif::{ProgressBar, ProgressStyle};
use petl_ast::audio::{AudioLimits, FeatureExtractor};
use petl_ast::data::{self, Clip, Splits};
use petl_ast::io::write_atomic;
use petl_ast::model::LoadOptions;
use petl_ast::petl::checkpoint::sha256_hex;
use petl_ast::petl::{AdapterMetadata, MethodArgs, PetlModel};
use petl_ast::train::{
    self, Classifier, EpochMetrics, Example, OptimizerConfig, Progress, SpecAugment, TrainConfig,
};
use serde_json::json;

use crate::model_source::ModelArgs;

/// Dataset layouts.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Dataset {
    /// Free Spoken Digit Dataset `recordings/` (official test split: index 0–4; valid: 5–9).
    Fsdd,
    /// One sub-folder of wavs per class.
    Folder,
}

/// Arguments of `train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    method: MethodArgs,
    /// Dataset layout.
    #[arg(long, value_enum)]
    dataset: Dataset,
    /// Dataset folder.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// FSDD: only these speakers (comma-separated).
    #[arg(long, value_delimiter = ',')]
    speakers: Vec<String>,
    /// Keep only the first K training clips per class.
    #[arg(long, value_name = "K")]
    few_shot: Option<usize>,
    /// Passes over the training set.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Clips per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate (default: the paper's for the method).
    #[arg(long)]
    lr: Option<f64>,
    /// Input length in frames.
    #[arg(long, default_value_t = 100)]
    max_length: usize,
    /// Linear learning-rate warm-up steps before the cosine schedule (0 = the paper's recipe).
    #[arg(long, default_value_t = 0)]
    warmup_steps: usize,
    /// Seed of shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// SpecAugment (frequency mask 24, time mask 80) on the training inputs.
    #[arg(long)]
    spec_augment: bool,
    /// Leave unreadable wav files out (listed in the log) instead of stopping.
    #[arg(long)]
    skip_bad_files: bool,
    /// Refuse clips longer than this many seconds (judged from the wav header).
    #[arg(long, default_value_t = AudioLimits::default().max_seconds)]
    max_seconds: f64,
    /// Run folder to write.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Progress bar over steps that shows loss and accuracy per epoch.
pub fn progress_bar(total_steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(total_steps);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} epoch {prefix} [{bar:30}] {pos}/{len} steps {msg} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Runs a training loop with a progress bar and appends the epochs to `metrics.jsonl`.
pub fn run_loop<M: Classifier>(
    model: M,
    train_set: &[Example],
    valid: Option<&[Example]>,
    shape: [usize; 2],
    config: &TrainConfig,
    out: &Path,
) -> Result<(M, Vec<EpochMetrics>)> {
    let steps = train_set.len().div_ceil(config.batch_size.max(1)) * config.epochs;
    let bar = progress_bar(steps as u64);
    let mut lines = String::new();
    let metrics_path = out.join("metrics.jsonl");
    let mut on_progress = |p: Progress| match p {
        Progress::Step { epoch, loss, .. } => {
            bar.set_prefix(epoch.to_string());
            bar.set_message(format!("loss {loss:.4}"));
            bar.inc(1);
        }
        Progress::Epoch(m) => {
            bar.println(format!(
                "epoch {:>3}: train loss {:.4} acc {:.3} | valid {} | lr {:.2e} | {:.1} s",
                m.epoch,
                m.train_loss,
                m.train_accuracy,
                m.valid_accuracy
                    .map_or("–".into(), |a| format!("acc {a:.3}")),
                m.lr,
                m.seconds
            ));
            lines.push_str(&serde_json::to_string(m).expect("metrics serialise"));
            lines.push('\n');
            let _ = write_atomic(&metrics_path, lines.as_bytes());
        }
    };
    let result = train::train(model, train_set, valid, shape, config, &mut on_progress);
    bar.finish_and_clear();
    Ok(result?)
}

fn splits(args: &Args) -> Result<Splits> {
    let mut splits = match args.dataset {
        Dataset::Fsdd => {
            let speakers: Vec<&str> = args.speakers.iter().map(String::as_str).collect();
            data::fsdd::splits(&args.data, &speakers)?
        }
        Dataset::Folder => {
            let (labels, clips) = data::folder::read(&args.data)?;
            let mut s = Splits {
                labels,
                ..Splits::default()
            };
            let mut seen = std::collections::HashMap::new();
            for clip in clips {
                let n = seen.entry(clip.label).or_insert(0usize);
                match *n % 5 {
                    0 => s.test.push(clip),
                    1 => s.valid.push(clip),
                    _ => s.train.push(clip),
                }
                *n += 1;
            }
            s
        }
    };
    if let Some(k) = args.few_shot {
        splits.train = data::first_k_per_class(&splits.train, k);
    }
    anyhow::ensure!(
        !splits.train.is_empty(),
        "{}: no training clips selected",
        args.data.display()
    );
    Ok(splits)
}

/// Featurises clips with a progress message.
pub fn featurise(
    clips: &[Clip],
    extractor: &FeatureExtractor,
    limits: &AudioLimits,
    skip_bad: bool,
    what: &str,
) -> Result<Vec<Example>> {
    let (examples, skipped) = data::features::examples(clips, extractor, limits, skip_bad)?;
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    eprintln!("{what}: {} clips", examples.len());
    Ok(examples)
}

/// Runs `train`.
pub fn run(args: Args) -> Result<()> {
    let device = args
        .model
        .backend
        .device()
        .map_err(anyhow::Error::msg)?
        .autodiff();
    let checkpoint = args.model.checkpoint()?;
    let config = &checkpoint.config;
    let petl = args
        .method
        .to_config(config.hidden_size, config.num_hidden_layers)?;
    let splits = splits(&args)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let options = LoadOptions {
        max_length: Some(args.max_length),
        position: petl.position_mode(),
        new_head: None,
    };
    let ast = checkpoint.load_backbone(&options, &device)?;
    let model = PetlModel::new(ast, config, &petl, splits.labels.len(), &device)?;
    let mut extractor_config = checkpoint.preprocessor.clone();
    extractor_config.max_length = args.max_length;
    let extractor = FeatureExtractor::new(extractor_config)?;
    let limits = AudioLimits {
        max_seconds: args.max_seconds,
    };
    let bad = args.skip_bad_files;
    let train_set = featurise(&splits.train, &extractor, &limits, bad, "train")?;
    let valid = featurise(&splits.valid, &extractor, &limits, bad, "valid")?;
    let test = featurise(&splits.test, &extractor, &limits, bad, "test")?;

    let mut optimizer = OptimizerConfig::paper(&petl);
    if let Some(lr) = args.lr {
        optimizer.lr = lr;
    }
    let train_config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer,
        seed: args.seed,
        spec_augment: args.spec_augment.then_some(SpecAugment::PAPER),
        max_bad_steps: 10,
        warmup_steps: args.warmup_steps,
    };
    let run_config = json!({
        "method": &args.method, "petl": &petl, "train": &train_config, "dataset": format!("{:?}", args.dataset),
        "data": args.data, "speakers": args.speakers, "few_shot": args.few_shot, "max_length": args.max_length,
        "labels": splits.labels, "params": model.param_counts(),
    });
    write_atomic(
        &args.out.join("config.json"),
        serde_json::to_string_pretty(&run_config)?.as_bytes(),
    )?;

    let shape = [args.max_length, config.num_mel_bins];
    let valid_ref = (!valid.is_empty()).then_some(valid.as_slice());
    let (model, history) = run_loop(
        model,
        &train_set,
        valid_ref,
        shape,
        &train_config,
        &args.out,
    )?;

    let (test_loss, test_accuracy, _) = train::evaluate(&model, &test, args.batch_size, shape);
    let metadata = AdapterMetadata {
        petl: petl.clone(),
        base_model: args.model.name(),
        base_sha256: sha256_hex(&checkpoint.weights),
        labels: splits.labels.clone(),
        max_length: args.max_length,
    };
    write_atomic(
        &args.out.join("adapter.safetensors"),
        &model.valid().adapter_bytes(&metadata),
    )?;
    let results = json!({
        "test_accuracy": test_accuracy, "test_loss": test_loss, "test_clips": test.len(),
        "best_valid_accuracy": history.iter().filter_map(|m| m.valid_accuracy).fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v)))),
        "epochs": history.len(), "train_clips": train_set.len(), "trainable_params": model.param_counts().trainable,
    });
    write_atomic(
        &args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    println!(
        "test accuracy {test_accuracy:.4} on {} clips; run written to {}",
        test.len(),
        args.out.display()
    );
    Ok(())
}
