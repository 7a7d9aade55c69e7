//! `native-train train`: fine-tune a checkpoint with a PETL method on a dataset, writing the run
//! folder (config, per-epoch metrics, a resumable training state, the best adapter, test
//! predictions and embeddings, results). With `--seeds N` the run is repeated per seed in
//! sub-folders and summed up by [`super::aggregate`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use petl_ast::audio::{AudioLimits, FeatureExtractor};
use petl_ast::data::{self, Clip, Splits};
use petl_ast::io::write_atomic;
use petl_ast::model::{Checkpoint, LoadOptions};
use petl_ast::petl::checkpoint::sha256_hex;
use petl_ast::petl::{AdapterMetadata, MethodArgs, PetlConfig, PetlModel};
use petl_ast::train::{
    self, Classifier, Evaluation, Example, OptimizerConfig, Progress, SpecAugment, TrainConfig,
    TrainState,
};
use serde_json::{json, Value};

use super::aggregate::{self, SubRun};
use crate::model_source::ModelArgs;

/// The resumable training state in a run folder, rewritten after every epoch.
pub const STATE_FILE: &str = "train_state.safetensors";
/// Test-set labels, predictions and label names.
pub const PREDICTIONS_FILE: &str = "predictions.json";
/// Pooled test-set embeddings, float32 `[clips, d]`.
pub const EMBEDDINGS_FILE: &str = "embeddings.npy";
/// Test hook: exit (status 3) right after the state of this epoch is written, as if killed.
pub const STOP_AFTER_EPOCH_ENV: &str = "NATIVE_TRAIN_STOP_AFTER_EPOCH";

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
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Repeat the run with seeds SEED, SEED+1, …, SEED+N−1, each in OUT/seed-S/, and write their
    /// mean ± std test accuracy to OUT/results.json (with 1, the run is OUT itself).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Continue the run in --out (started with the same arguments) after its last finished
    /// epoch; finished seeds are kept.
    #[arg(long)]
    resume: bool,
    /// SpecAugment (frequency mask 24, time mask 80) on the training inputs.
    #[arg(long)]
    spec_augment: bool,
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

/// Runs the training loop from `state` with a progress bar, rewrites `metrics.jsonl` after every
/// epoch and, with `state_file`, the resumable training state (atomically, so a kill leaves the
/// previous one). Exits with status 3 after the epoch named by [`STOP_AFTER_EPOCH_ENV`] (tests).
pub fn run_loop<M: Classifier>(
    state: TrainState<M>,
    train_set: &[Example],
    valid: Option<&[Example]>,
    shape: [usize; 2],
    config: &TrainConfig,
    out: &Path,
    state_file: Option<&Path>,
) -> Result<TrainState<M>> {
    let steps_per_epoch = train_set.len().div_ceil(config.batch_size.max(1));
    let bar = progress_bar((steps_per_epoch * config.epochs) as u64);
    bar.set_position((steps_per_epoch * state.epoch) as u64);
    let metrics_path = out.join("metrics.jsonl");
    let mut lines = String::new();
    for m in &state.history {
        lines.push_str(&serde_json::to_string(m)?);
        lines.push('\n');
    }
    if !state.history.is_empty() {
        write_atomic(&metrics_path, lines.as_bytes())?;
    }
    let stop_after: Option<usize> = std::env::var(STOP_AFTER_EPOCH_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
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
        }
    };
    let mut on_epoch_end = |state: &TrainState<M>| -> Result<(), String> {
        let m = state.history.last().expect("an epoch finished");
        lines.push_str(&serde_json::to_string(m).map_err(|e| e.to_string())?);
        lines.push('\n');
        write_atomic(&metrics_path, lines.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", metrics_path.display()))?;
        if let Some(path) = state_file {
            let bytes = state.to_bytes(config).map_err(|e| e.to_string())?;
            write_atomic(path, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        if stop_after == Some(state.epoch) {
            bar.abandon();
            eprintln!(
                "stopping after epoch {} ({STOP_AFTER_EPOCH_ENV})",
                state.epoch
            );
            std::process::exit(3);
        }
        Ok(())
    };
    let result = train::train_from(
        state,
        train_set,
        valid,
        shape,
        config,
        &mut on_progress,
        &mut on_epoch_end,
    );
    bar.finish_and_clear();
    Ok(result?)
}

/// Evaluates `model` on `data` with a progress bar over clips.
pub fn predict_with_bar<M: Classifier>(
    model: &M,
    data: &[Example],
    batch_size: usize,
    shape: [usize; 2],
    what: &str,
) -> Evaluation {
    let bar = ProgressBar::new(data.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} clips ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    let result = train::predict(model, data, batch_size, shape, &mut |done| {
        bar.set_position(done as u64)
    });
    bar.finish_and_clear();
    result
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
    skip_bad: bool,
    what: &str,
) -> Result<Vec<Example>> {
    Ok(featurise_listing(clips, extractor, skip_bad, what)?.0)
}

/// [`featurise`], also returning the messages of the files left out.
fn featurise_listing(
    clips: &[Clip],
    extractor: &FeatureExtractor,
    skip_bad: bool,
    what: &str,
) -> Result<(Vec<Example>, Vec<String>)> {
    let (examples, skipped) =
        data::features::examples(clips, extractor, &AudioLimits::default(), skip_bad)?;
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    eprintln!("{what}: {} clips", examples.len());
    Ok((examples, skipped))
}

/// What every sub-run of a `train` invocation shares: the base checkpoint, the method and the
/// featurised splits.
struct Job<'a> {
    args: &'a Args,
    device: Device,
    checkpoint: Checkpoint,
    petl: PetlConfig,
    splits: Splits,
    train_set: Vec<Example>,
    valid: Vec<Example>,
    test: Vec<Example>,
    /// Messages of the test files left out by `--skip-bad-files`.
    test_skipped: Vec<String>,
}

impl<'a> Job<'a> {
    fn prepare(args: &'a Args) -> Result<Self> {
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
        let splits = splits(args)?;
        let mut extractor_config = checkpoint.preprocessor.clone();
        extractor_config.max_length = args.max_length;
        let extractor = FeatureExtractor::new(extractor_config)?;
        let train_set = featurise(&splits.train, &extractor, args.skip_bad_files, "train")?;
        let valid = featurise(&splits.valid, &extractor, args.skip_bad_files, "valid")?;
        let (test, test_skipped) =
            featurise_listing(&splits.test, &extractor, args.skip_bad_files, "test")?;
        Ok(Self {
            args,
            device,
            checkpoint,
            petl,
            splits,
            train_set,
            valid,
            test,
            test_skipped,
        })
    }

    fn shape(&self) -> [usize; 2] {
        [self.args.max_length, self.checkpoint.config.num_mel_bins]
    }

    /// The model at initialisation for `seed` (the device generator is seeded first, so the
    /// same seed builds the same model).
    fn model(&self, seed: u64) -> Result<PetlModel> {
        self.device.seed(seed);
        let options = LoadOptions {
            max_length: Some(self.args.max_length),
            position: self.petl.position_mode(),
            new_head: None,
        };
        let ast = self.checkpoint.load_backbone(&options, &self.device)?;
        Ok(PetlModel::new(
            ast,
            &self.checkpoint.config,
            &self.petl,
            self.splits.labels.len(),
            &self.device,
        )?)
    }

    fn train_config(&self, seed: u64) -> TrainConfig {
        let args = self.args;
        let mut optimizer = OptimizerConfig::paper(&self.petl);
        if let Some(lr) = args.lr {
            optimizer.lr = lr;
        }
        TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            optimizer,
            seed,
            spec_augment: args.spec_augment.then_some(SpecAugment::PAPER),
            max_bad_steps: 10,
            warmup_steps: args.warmup_steps,
        }
    }

    /// `config.json` of a run trained with `train`.
    fn run_config(&self, train: &TrainConfig, model: &PetlModel) -> Value {
        let args = self.args;
        json!({
            "method": &args.method, "petl": &self.petl, "train": train, "dataset": format!("{:?}", args.dataset),
            "data": args.data, "speakers": args.speakers, "few_shot": args.few_shot, "max_length": args.max_length,
            "labels": self.splits.labels, "params": model.param_counts(), "base_model": args.model.name(),
        })
    }

    /// Trains with `seed` into `out` (continuing the state there with `resume`) and writes the
    /// run's files; returns its `results.json`.
    fn run_one(&self, seed: u64, out: &Path, resume: bool) -> Result<Value> {
        let args = self.args;
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        let model = self.model(seed)?;
        let train_config = self.train_config(seed);
        let run_config = self.run_config(&train_config, &model);
        let config_path = out.join("config.json");
        let results_path = out.join("results.json");
        let state_path = out.join(STATE_FILE);
        let config_text = serde_json::to_string_pretty(&run_config)?;
        if resume {
            if let Ok(saved) = std::fs::read_to_string(&config_path) {
                let saved: Value = serde_json::from_str(&saved)
                    .with_context(|| format!("cannot parse {}", config_path.display()))?;
                let now: Value = serde_json::from_str(&config_text)?;
                anyhow::ensure!(
                    saved == now,
                    "{} was written by a run with other arguments; --resume needs the same ones                      (or start over without --resume)",
                    config_path.display()
                );
                if results_path.is_file() {
                    eprintln!("{}: finished already", out.display());
                    let text = std::fs::read_to_string(&results_path)?;
                    return Ok(serde_json::from_str(&text)?);
                }
            }
            remove_stale_temporaries(out, STATE_FILE);
        } else {
            for stale in [
                STATE_FILE,
                "results.json",
                "metrics.jsonl",
                PREDICTIONS_FILE,
                EMBEDDINGS_FILE,
            ] {
                let _ = std::fs::remove_file(out.join(stale));
            }
        }
        write_atomic(&config_path, config_text.as_bytes())?;

        let state = if resume && state_path.is_file() {
            let bytes = std::fs::read(&state_path)
                .with_context(|| format!("cannot read {}", state_path.display()))?;
            let state = TrainState::from_bytes(
                &bytes,
                &state_path.display().to_string(),
                model,
                &train_config,
            )?;
            eprintln!(
                "resuming {} after epoch {} of {}",
                out.display(),
                state.epoch,
                train_config.epochs
            );
            state
        } else {
            if resume {
                eprintln!("{}: no training state yet; starting", out.display());
            }
            TrainState::new(model, &train_config)
        };

        let shape = self.shape();
        let valid_ref = (!self.valid.is_empty()).then_some(self.valid.as_slice());
        let state = run_loop(
            state,
            &self.train_set,
            valid_ref,
            shape,
            &train_config,
            out,
            Some(&state_path),
        )?;
        let (model, history) = state.finish();

        let eval = predict_with_bar(&model, &self.test, args.batch_size, shape, "test");
        let metadata = AdapterMetadata {
            petl: self.petl.clone(),
            base_model: args.model.name(),
            base_sha256: sha256_hex(&self.checkpoint.weights),
            labels: self.splits.labels.clone(),
            max_length: args.max_length,
        };
        write_atomic(
            &out.join("adapter.safetensors"),
            &model.valid().adapter_bytes(&metadata),
        )?;
        self.write_predictions(out, &eval)?;
        let results = json!({
            "test_accuracy": eval.accuracy, "test_loss": eval.loss, "test_clips": self.test.len(),
            "best_valid_accuracy": history.iter().filter_map(|m| m.valid_accuracy).fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v)))),
            "epochs": history.len(), "train_clips": self.train_set.len(), "trainable_params": model.param_counts().trainable,
            "seed": seed,
        });
        // Last: its presence marks the run as finished.
        let text = serde_json::to_string_pretty(&results)?;
        write_atomic(&results_path, text.as_bytes())?;
        println!(
            "test accuracy {:.4} on {} clips; run written to {}",
            eval.accuracy,
            self.test.len(),
            out.display()
        );
        // As read back from the file, like a finished run's on --resume (serde_json's float
        // parsing is not always exact, and a summary must not depend on which path ran).
        Ok(serde_json::from_str(&text)?)
    }

    /// `predictions.json` and `embeddings.npy` of the test set.
    fn write_predictions(&self, out: &Path, eval: &Evaluation) -> Result<()> {
        let targets: Vec<usize> = self.test.iter().map(|e| e.label).collect();
        let mut predictions = json!({
            "labels": self.splits.labels, "targets": targets, "predictions": eval.predictions,
        });
        // File names only when none was left out (the reader reports skips without an index).
        if self.test_skipped.is_empty() {
            predictions["files"] =
                json!(self.splits.test.iter().map(|c| &c.path).collect::<Vec<_>>());
        } else {
            predictions["skipped"] = json!(self.test_skipped);
        }
        write_atomic(
            &out.join(PREDICTIONS_FILE),
            serde_json::to_string(&predictions)?.as_bytes(),
        )?;
        let shape = [self.test.len() as u64, eval.embedding_dim as u64];
        let mut bytes = Vec::new();
        {
            use npyz::WriterBuilder;
            let mut writer = npyz::WriteOptions::<f32>::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut bytes)
                .begin_nd()?;
            writer.extend(eval.embeddings.iter().copied())?;
            writer.finish()?;
        }
        write_atomic(&out.join(EMBEDDINGS_FILE), &bytes)?;
        Ok(())
    }
}

/// Removes temporary files that a killed atomic write of `name` left in `dir`.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Runs `train`.
pub fn run(args: Args) -> Result<()> {
    let job = Job::prepare(&args)?;
    if args.seeds == 1 {
        job.run_one(args.seed, &args.out, args.resume)?;
        return Ok(());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut runs = Vec::new();
    for (i, seed) in (args.seed..args.seed + args.seeds).enumerate() {
        let key = SubRun { fold: None, seed };
        eprintln!("== seed {seed} ({}/{})", i + 1, args.seeds);
        let results = job.run_one(seed, &args.out.join(key.dir()), args.resume)?;
        runs.push((key, results));
    }
    let summary = aggregate::write(&args.out, &runs)?;
    let accuracy = &summary["test_accuracy"];
    println!(
        "test accuracy {:.4} ± {:.4} over {} seeds; summary written to {}",
        accuracy["mean"].as_f64().unwrap_or(f64::NAN),
        accuracy["std"].as_f64().unwrap_or(f64::NAN),
        args.seeds,
        args.out.join("results.json").display()
    );
    Ok(())
}
