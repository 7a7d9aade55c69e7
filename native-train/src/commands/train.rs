//! `native-train train`: fine-tune a checkpoint with a PETL method on a dataset, writing the run
//! folder (config, per-epoch metrics, the best adapter, results).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use petl_ast::audio::FeatureExtractor;
use petl_ast::data::cache::FbankCache;
use petl_ast::data::Clip;
use petl_ast::io::write_atomic;
use petl_ast::model::{Checkpoint, LoadOptions};
use petl_ast::petl::checkpoint::sha256_hex;
use petl_ast::petl::{AdapterMetadata, MethodArgs, PetlConfig, PetlModel};
use petl_ast::train::{
    self, Classifier, EpochMetrics, Example, OptimizerConfig, Progress, SpecAugment, TrainConfig,
};
use serde_json::json;

use super::datasets::{self, DataArgs};
use crate::model_source::ModelArgs;

/// Arguments of `train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    method: MethodArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Passes over the training set (default: the dataset's protocol).
    #[arg(long)]
    epochs: Option<usize>,
    /// Clips per step (default: the dataset's protocol).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate (default: the paper's for the method).
    #[arg(long)]
    lr: Option<f64>,
    /// Input length in frames (default: the dataset's protocol).
    #[arg(long)]
    max_length: Option<usize>,
    /// Linear learning-rate warm-up steps before the cosine schedule (0 = the paper's recipe).
    #[arg(long, default_value_t = 0)]
    warmup_steps: usize,
    /// Seed of shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// SpecAugment (frequency mask 24, time mask 80) on the training inputs: `--spec-augment`
    /// or `--spec-augment true|false` (default: the dataset's protocol, on for ESC-50 and US8K).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    spec_augment: Option<bool>,
    /// Leave unreadable wav files out (listed in the log) instead of stopping.
    #[arg(long)]
    skip_bad_files: bool,
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

/// Featurises clips with a progress message.
pub fn featurise(
    clips: &[Clip],
    extractor: &FeatureExtractor,
    skip_bad: bool,
    what: &str,
) -> Result<Vec<Example>> {
    datasets::featurise(clips, extractor, None, skip_bad, what)
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
    let runs = args.data.runs(&args.out, petl.paper_compat)?;
    let cache = args.data.cache();
    let mut results = Vec::with_capacity(runs.len());
    for run in &runs {
        results.push(run_fold(
            &args,
            &device,
            &checkpoint,
            &petl,
            run,
            cache.as_ref(),
        )?);
    }
    if runs.len() > 1 {
        datasets::write_summary(&args.out, args.data.protocol(), &results)?;
    }
    if let Some(cache) = &cache {
        let s = cache.stats();
        eprintln!(
            "fbank cache {}: {} read, {} computed, {} bad entries replaced, {} not written",
            cache.dir().display(),
            s.hits,
            s.computed,
            s.discarded,
            s.write_errors
        );
    }
    Ok(())
}

/// Trains and tests one fold (or the dataset's one split), writing its run folder; returns its
/// results.
fn run_fold(
    args: &Args,
    device: &Device,
    checkpoint: &Checkpoint,
    petl: &PetlConfig,
    run: &datasets::Run,
    cache: Option<&FbankCache>,
) -> Result<serde_json::Value> {
    let config = &checkpoint.config;
    let protocol = args.data.protocol();
    let max_length = args.max_length.unwrap_or(protocol.max_length);
    let batch_size = args.batch_size.unwrap_or(protocol.batch_size);
    let (splits, out) = (&run.splits, &run.out);
    if let Some(fold) = run.fold {
        eprintln!("{} fold {fold} -> {}", protocol.name, out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

    let options = LoadOptions {
        max_length: Some(max_length),
        position: petl.position_mode(),
        new_head: None,
    };
    let ast = checkpoint.load_backbone(&options, device)?;
    let model = PetlModel::new(ast, config, petl, splits.labels.len(), device)?;
    let mut extractor_config = checkpoint.preprocessor.clone();
    extractor_config.max_length = max_length;
    let extractor = FeatureExtractor::new(extractor_config)?;
    let featurise = |clips: &[Clip], what| {
        datasets::featurise(clips, &extractor, cache, args.skip_bad_files, what)
    };
    let train_set = featurise(&splits.train, "train")?;
    let valid = featurise(&splits.valid, "valid")?;
    let test = featurise(&splits.test, "test")?;

    let mut optimizer = OptimizerConfig::paper(petl);
    if let Some(lr) = args.lr {
        optimizer.lr = lr;
    }
    let train_config = TrainConfig {
        epochs: args.epochs.unwrap_or(protocol.epochs),
        batch_size,
        optimizer,
        seed: args.seed,
        spec_augment: args
            .spec_augment
            .unwrap_or(protocol.spec_augment)
            .then_some(SpecAugment::PAPER),
        max_bad_steps: 10,
        warmup_steps: args.warmup_steps,
    };
    let run_config = json!({
        "method": &args.method, "petl": &petl, "train": &train_config, "dataset": &args.data,
        "fold": run.fold, "rotation": &run.rotation, "max_length": max_length,
        "labels": splits.labels, "params": model.param_counts(),
    });
    write_atomic(
        &out.join("config.json"),
        serde_json::to_string_pretty(&run_config)?.as_bytes(),
    )?;

    let shape = [max_length, config.num_mel_bins];
    let valid_ref = (!valid.is_empty()).then_some(valid.as_slice());
    let (model, history) = run_loop(model, &train_set, valid_ref, shape, &train_config, out)?;

    let (test_loss, test_accuracy, _) = train::evaluate(&model, &test, batch_size, shape);
    let metadata = AdapterMetadata {
        petl: petl.clone(),
        base_model: args.model.name(),
        base_sha256: sha256_hex(&checkpoint.weights),
        labels: splits.labels.clone(),
        max_length,
    };
    write_atomic(
        &out.join("adapter.safetensors"),
        &model.valid().adapter_bytes(&metadata),
    )?;
    let results = json!({
        "fold": run.fold, "test_accuracy": test_accuracy, "test_loss": test_loss, "test_clips": test.len(),
        "best_valid_accuracy": history.iter().filter_map(|m| m.valid_accuracy).fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v)))),
        "epochs": history.len(), "train_clips": train_set.len(), "trainable_params": model.param_counts().trainable,
    });
    write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    println!(
        "test accuracy {test_accuracy:.4} on {} clips; run written to {}",
        test.len(),
        out.display()
    );
    Ok(results)
}
