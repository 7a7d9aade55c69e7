//! `native-train train`: fine-tune a checkpoint with a PETL method on a dataset, writing the run
//! folder (config, per-epoch metrics, a resumable training state, the best adapter, test
//! predictions and embeddings, results). One sub-run per dataset fold × seed (`--fold`,
//! `--seeds`), each in its [`SubRun::dir`] and summed up by [`super::aggregate`]; a single fold
//! with a single seed is `--out` itself.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use petl_ast::audio::{read_wav, to_16k, AudioLimits, FeatureExtractor};
use petl_ast::data::cache::FbankCache;
use petl_ast::data::{self, Clip};
use petl_ast::io::write_atomic;
use petl_ast::model::{Checkpoint, LoadOptions};
use petl_ast::personalise::{PersonaliseMethod, PersonaliseOptions};
use petl_ast::petl::checkpoint::sha256_hex;
use petl_ast::petl::{AdapterMetadata, MethodArgs, PetlConfig, PetlModel};
use petl_ast::train::{
    self, CachedProbe, EpochMetrics, Evaluation, Example, OptimizerConfig, Progress, SpecAugment,
    TimeShift, TrainConfig, TrainState, Trainable,
};
use serde_json::{json, Value};

use super::aggregate::{self, SubRun};
use super::datasets::{self, DataArgs, FewShot, Fold};
use crate::model_source::ModelArgs;

/// The resumable training state in a run folder, rewritten after every epoch.
pub const STATE_FILE: &str = "train_state.safetensors";
/// Test-set labels, predictions and label names.
pub const PREDICTIONS_FILE: &str = "predictions.json";
/// Pooled test-set embeddings, float32 `[clips, d]`.
pub const EMBEDDINGS_FILE: &str = "embeddings.npy";
/// Test hook: exit (status 3) right after the state of this epoch is written, as if killed.
pub const STOP_AFTER_EPOCH_ENV: &str = "NATIVE_TRAIN_STOP_AFTER_EPOCH";

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
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Repeat every fold's run with seeds SEED, SEED+1, …, SEED+N−1, each in OUT/seed-S/ (or
    /// OUT/fold-F/seed-S/), and write their mean ± std test accuracy to OUT/results.json (with
    /// one seed and one fold, the run is OUT itself).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Continue the run in --out (started with the same arguments) after its last finished
    /// epoch; finished sub-runs (folds × seeds) are kept.
    #[arg(long)]
    resume: bool,
    /// SpecAugment (frequency mask 24, time mask 80) on the training inputs: `--spec-augment`
    /// or `--spec-augment true|false` (default: the dataset's protocol, on for ESC-50 and US8K).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    spec_augment: Option<bool>,
    /// Shift each training clip later inside its padding by up to FRAMES frames (uniform draw;
    /// not part of the paper's recipe; off by default).
    #[arg(long, value_name = "FRAMES")]
    time_shift: Option<usize>,
    /// Linear probing: run the backbone on every step instead of training the head on its
    /// output computed once per clip (the same numbers, epochs × slower; for timing).
    #[arg(long)]
    full_probe_forward: bool,
    /// Leave unreadable wav files out (listed in the log) instead of stopping.
    #[arg(long)]
    skip_bad_files: bool,
    /// Refuse clips longer than this many seconds (judged from the wav header).
    #[arg(long, default_value_t = AudioLimits::default().max_seconds)]
    max_seconds: f64,
    /// Less peak memory for more compute: on the cpu backend each layer's MLP expansion is
    /// recomputed in the backward instead of keeping its GELU input; on ndarray, wgpu and cuda,
    /// burn's balanced gradient checkpointing (recomputes element-wise ops and softmax).
    #[arg(long)]
    gradient_checkpointing: bool,
    /// Data parallelism: split each batch over this many devices of the backend (GPUs 0…N−1; on
    /// a CPU backend N replicas on the one device), add their gradients on the first and step
    /// once (burn's multi-device pieces, docs/gpu.md).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    devices: u16,
    /// Training recipe: the paper's (per-dataset protocol, the method flags), or the web page's
    /// few-shot personalisation (`petl_ast::personalise`: its method settings,
    /// epochs, batch, learning rate and prototype-initialised head; --epochs, --batch-size,
    /// --lr and --max-length still override).
    #[arg(long, value_enum, default_value = "paper")]
    recipe: Recipe,
    /// Run folder to write.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `train --recipe`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// The paper's recipe for the dataset and method.
    Paper,
    /// The web page's personalisation recipe (every method but full fine-tuning).
    Personalise,
}

/// The page's personalisation settings for `train --recipe personalise`.
fn personalise_options(args: &Args) -> Result<PersonaliseOptions> {
    let method = PersonaliseMethod::for_flags(&args.method).ok_or_else(|| {
        anyhow::anyhow!(
            "--recipe personalise trains the page's methods (every method but full fine-tuning, \
             in the page's placements), not {:?}",
            args.method.method
        )
    })?;
    let defaults = PersonaliseOptions::default();
    Ok(PersonaliseOptions {
        method,
        epochs: args.epochs.unwrap_or(defaults.epochs),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        lr: args.lr,
        size: defaults.size,
        max_length: args.max_length.unwrap_or(defaults.max_length),
        seed: args.seed,
        augment: defaults.augment,
        speed_perturb: defaults.speed_perturb,
    })
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
pub fn run_loop<M: Trainable>(
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
pub fn predict_with_bar<M: Trainable>(
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

/// Featurises clips (without the fbank cache) with a progress message.
pub fn featurise(
    clips: &[Clip],
    extractor: &FeatureExtractor,
    limits: &AudioLimits,
    skip_bad: bool,
    what: &str,
) -> Result<Vec<Example>> {
    Ok(datasets::featurise(clips, extractor, None, limits, skip_bad, what)?.0)
}

/// The featurised clips of one fold.
struct Features {
    train: Vec<Example>,
    valid: Vec<Example>,
    test: Vec<Example>,
    /// Messages of the test files left out by `--skip-bad-files`.
    test_skipped: Vec<String>,
}

/// One fold, trained with every seed. Its clips are featurised on first use, so a `--resume`
/// whose seeds of this fold all finished skips the front end.
struct FoldData<'f> {
    fold: &'f Fold,
    features: OnceCell<Features>,
}

impl<'f> FoldData<'f> {
    fn new(fold: &'f Fold) -> Self {
        Self {
            fold,
            features: OnceCell::new(),
        }
    }
}

/// What every sub-run of a `train` invocation shares: the base checkpoint, the method, the
/// protocol values after the flags, the front end and its cache.
struct Job<'a> {
    args: &'a Args,
    device: Device,
    /// `--gradient-checkpointing` on the cpu backend (see `training_device`).
    recompute_mlp: bool,
    /// `--devices`: the devices each batch is split over (empty: `device` alone).
    devices: Vec<Device>,
    checkpoint: Checkpoint,
    petl: PetlConfig,
    max_length: usize,
    batch_size: usize,
    epochs: usize,
    spec_augment: bool,
    /// `--recipe personalise`: the page's settings.
    personalise: Option<PersonaliseOptions>,
    extractor: FeatureExtractor,
    cache: Option<FbankCache>,
}

impl<'a> Job<'a> {
    fn prepare(args: &'a Args) -> Result<Self> {
        let super::TrainingDevice {
            device,
            recompute_mlp,
        } = super::training_device(args.model.backend, args.gradient_checkpointing)?;
        let devices = match args.devices {
            1 => Vec::new(),
            n => {
                super::training_devices(args.model.backend, n.into(), args.gradient_checkpointing)?
            }
        };
        let checkpoint = args.model.checkpoint()?;
        let config = &checkpoint.config;
        let protocol = args.data.protocol();
        let personalise = match args.recipe {
            Recipe::Personalise => Some(personalise_options(args)?),
            Recipe::Paper => None,
        };
        let (petl, max_length) = match &personalise {
            Some(options) => (
                options
                    .method
                    .petl_config(config.hidden_size, config.num_hidden_layers, options.size)
                    .map_err(anyhow::Error::msg)?,
                options.input_length(config.max_length),
            ),
            None => (
                args.method
                    .to_config(config.hidden_size, config.num_hidden_layers)?,
                args.max_length.unwrap_or(protocol.max_length),
            ),
        };
        let extractor = checkpoint.extractor(max_length)?;
        Ok(Self {
            args,
            device,
            recompute_mlp,
            devices,
            petl,
            max_length,
            batch_size: personalise
                .as_ref()
                .map_or(args.batch_size.unwrap_or(protocol.batch_size), |o| {
                    o.batch_size
                }),
            epochs: personalise
                .as_ref()
                .map_or(args.epochs.unwrap_or(protocol.epochs), |o| o.epochs),
            spec_augment: personalise.is_none()
                && args.spec_augment.unwrap_or(protocol.spec_augment),
            personalise,
            extractor,
            cache: args.data.cache(),
            checkpoint,
        })
    }

    fn shape(&self) -> [usize; 2] {
        [self.max_length, self.checkpoint.config.num_mel_bins]
    }

    /// The fold's features, computed (through the cache) on the first call.
    fn features<'d>(&self, data: &'d FoldData) -> Result<&'d Features> {
        if let Some(features) = data.features.get() {
            return Ok(features);
        }
        let splits = &data.fold.splits;
        // A few-shot run featurises only its own clips (`run_one`).
        let train = match self.few_shot() {
            FewShot::All => self.featurise(&splits.train, "train")?.0,
            FewShot::FirstK(_) | FewShot::Sampled(_) => Vec::new(),
        };
        let (valid, _) = self.featurise(&splits.valid, "valid")?;
        let (test, test_skipped) = self.featurise(&splits.test, "test")?;
        Ok(data.features.get_or_init(|| Features {
            train,
            valid,
            test,
            test_skipped,
        }))
    }

    /// Features of `clips` (through the cache), with the files left out by --skip-bad-files.
    fn featurise(&self, clips: &[Clip], what: &str) -> Result<(Vec<Example>, Vec<String>)> {
        let limits = AudioLimits {
            max_seconds: self.args.max_seconds,
        };
        datasets::featurise(
            clips,
            &self.extractor,
            self.cache.as_ref(),
            &limits,
            self.args.skip_bad_files,
            what,
        )
    }

    /// The page recipe's speed-changed copies of `clips` ([`PersonaliseOptions::examples`]);
    /// none for the paper's recipe.
    fn speed_copies(&self, clips: &[Clip]) -> Result<Vec<Example>> {
        let Some(options) = &self.personalise else {
            return Ok(Vec::new());
        };
        let limits = AudioLimits {
            max_seconds: self.args.max_seconds,
        };
        if options.speeds().is_empty() {
            return Ok(Vec::new());
        }
        // Each file is read once for all its copies (files that fail were reported when the
        // clips themselves were read).
        let (copies, _) =
            data::features::examples_per_clip(clips, self.args.skip_bad_files, |clip| {
                let audio = read_wav(&clip.path, &limits).map_err(|e| e.to_string())?;
                let samples = to_16k(audio).map_err(|e| e.to_string())?;
                Ok(options.speed_copies(&self.extractor, &samples))
            })?;
        let copies = options.speed_major(copies);
        if !copies.is_empty() {
            eprintln!("train: {} speed-changed copies", copies.len());
        }
        Ok(copies)
    }

    /// The head-and-LayerNorm model to train on cached backbone features, when `model` is a
    /// linear probe whose inputs stay the same every epoch (and --full-probe-forward is off).
    fn cached_probe(&self, model: &PetlModel, train: &TrainConfig) -> Option<CachedProbe> {
        CachedProbe::of(model, train).filter(|_| !self.args.full_probe_forward)
    }

    /// How this job picks training clips.
    fn few_shot(&self) -> FewShot {
        self.args.data.few_shot(self.petl.paper_compat)
    }

    /// The model at initialisation for `seed` (the device generator is seeded first, so the
    /// same seed builds the same model).
    fn model(&self, seed: u64, classes: usize) -> Result<PetlModel> {
        self.device.seed(seed);
        let options = LoadOptions {
            max_length: Some(self.max_length),
            position: self.petl.position_mode(),
            new_head: None,
        };
        let ast = self.checkpoint.load_backbone(&options, &self.device)?;
        Ok(PetlModel::new(
            ast,
            &self.checkpoint.config,
            &self.petl,
            classes,
            &self.device,
        )?
        .recompute_mlp_in_backward(self.recompute_mlp))
    }

    /// The training settings of the run with `seed` on `clips` training clips.
    fn train_config(&self, seed: u64, clips: usize) -> TrainConfig {
        if let Some(options) = &self.personalise {
            let options = PersonaliseOptions {
                seed,
                ..options.clone()
            };
            return TrainConfig {
                devices: self.devices.clone(),
                ..options.train_config(&self.petl, clips)
            };
        }
        let mut optimizer = OptimizerConfig::paper(&self.petl);
        if let Some(lr) = self.args.lr {
            optimizer.lr = lr;
        }
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer,
            seed,
            spec_augment: self.spec_augment.then_some(SpecAugment::PAPER),
            time_shift: self
                .args
                .time_shift
                .map(|max_frames| TimeShift { max_frames }),
            max_bad_steps: 10,
            warmup_steps: self.args.warmup_steps,
            devices: self.devices.clone(),
        }
    }

    /// `config.json` of a run of `fold` trained with `train`. Only what changes the numbers:
    /// the cache flags are left out, so a `--resume` may use another cache.
    fn run_config(&self, fold: &Fold, train: &TrainConfig, model: &PetlModel) -> Value {
        let (args, data) = (self.args, &self.args.data);
        let mut config = json!({
            "method": &args.method, "petl": &self.petl, "train": train,
            "dataset": format!("{:?}", data.dataset), "data": data.data, "speakers": data.speakers(),
            "few_shot": data.few_shot_k(), "few_shot_draw": self.few_shot().draw(), "fold": fold.fold, "rotation": &fold.rotation,
            "max_length": self.max_length, "labels": fold.splits.labels,
            "params": model.param_counts(), "base_model": args.model.name(),
            "probe_on_cached_features": self.cached_probe(model, train).is_some(),
        });
        if let Some(options) = &self.personalise {
            // Only when set, so that runs of the paper's recipe keep their config (and --resume).
            config["recipe"] = json!("personalise");
            config["speeds"] = json!(options.speeds());
        }
        config
    }

    /// Trains `fold` with `seed` into `out` (continuing the state there with `resume`) and
    /// writes the run's files; returns its `results.json`.
    fn run_one(&self, data: &FoldData, seed: u64, out: &Path, resume: bool) -> Result<Value> {
        let fold = data.fold;
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        let model = self.model(seed, fold.splits.labels.len())?;
        let drawn_clips = self.few_shot().select(&fold.splits.train, seed);
        let train_clips = drawn_clips.as_deref().unwrap_or(&fold.splits.train);
        let train_config = self.train_config(seed, train_clips.len());
        let run_config = self.run_config(fold, &train_config, &model);
        let config_path = out.join("config.json");
        let results_path = out.join("results.json");
        let state_path = out.join(STATE_FILE);
        let config_text = serde_json::to_string_pretty(&run_config)?;
        if let Some(finished) = prepare_run_folder(out, &config_text, resume)? {
            return Ok(finished);
        }
        write_atomic(&config_path, config_text.as_bytes())?;
        let features = self.features(data)?;
        let drawn;
        let train: &[Example] = match &drawn_clips {
            Some(clips) => {
                drawn = self.featurise(clips, "train (few-shot)")?.0;
                &drawn
            }
            None => &features.train,
        };

        let speed_copies = self.speed_copies(train_clips)?;
        let with_copies: Vec<Example>;
        let trained_on: &[Example] = if speed_copies.is_empty() {
            train
        } else {
            with_copies = train.iter().cloned().chain(speed_copies).collect();
            &with_copies
        };
        let shape = self.shape();
        let valid = (!features.valid.is_empty()).then_some(features.valid.as_slice());
        let resume_from = (resume && state_path.is_file()).then_some(state_path.as_path());
        // The page's recipe starts from the class-mean head (a resumed run loads its own).
        let model = match &self.personalise {
            Some(_) if resume_from.is_none() => petl_ast::prototypes::prototype_head(
                model,
                train,
                shape,
                fold.splits.labels.len(),
                self.batch_size,
            ),
            _ => model,
        };
        if resume && resume_from.is_none() {
            eprintln!("{}: no training state yet; starting", out.display());
        }
        let (model, history) =
            self.train_model(model, trained_on, valid, &train_config, out, resume_from)?;

        let eval = predict_with_bar(&model, &features.test, self.batch_size, shape, "test");
        let metadata = AdapterMetadata {
            petl: self.petl.clone(),
            base_model: self.args.model.name(),
            base_sha256: sha256_hex(&self.checkpoint.weights),
            labels: fold.splits.labels.clone(),
            max_length: self.max_length,
        };
        write_atomic(
            &out.join("adapter.safetensors"),
            &model.valid().adapter_bytes(&metadata),
        )?;
        self.write_predictions(out, fold, features, &eval)?;
        let mut results = json!({
            "fold": fold.fold, "seed": seed,
            "test_accuracy": eval.accuracy, "test_loss": eval.loss, "test_clips": features.test.len(),
            "best_valid_accuracy": history.iter().filter_map(|m| m.valid_accuracy).fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v)))),
            "epochs": history.len(), "train_clips": train.len(), "trainable_params": model.param_counts().trainable,
        });
        if let Some(clips) = &drawn_clips {
            // Which clips a few-shot run learned from, for anyone repeating it elsewhere.
            results["train_files"] = json!(clips.iter().map(|c| &c.path).collect::<Vec<_>>());
        }
        // Last: its presence marks the run as finished.
        let text = serde_json::to_string_pretty(&results)?;
        write_atomic(&results_path, text.as_bytes())?;
        println!(
            "test accuracy {:.4} on {} clips; run written to {}",
            eval.accuracy,
            features.test.len(),
            out.display()
        );
        // As read back from the file, like a finished run's on --resume (serde_json's float
        // parsing is not always exact, and a summary must not depend on which path ran).
        Ok(serde_json::from_str(&text)?)
    }

    /// Trains `model` (from the state at `resume_from` when given) and returns the best weights
    /// with every epoch's metrics; a linear probe trains its head on cached backbone outputs.
    fn train_model(
        &self,
        model: PetlModel,
        train: &[Example],
        valid: Option<&[Example]>,
        train_config: &TrainConfig,
        out: &Path,
        resume_from: Option<&Path>,
    ) -> Result<(PetlModel, Vec<EpochMetrics>)> {
        let shape = self.shape();
        let state_path = out.join(STATE_FILE);
        let Some(probe) = self.cached_probe(&model, train_config) else {
            let state = initial_state(model, train_config, resume_from, out)?;
            let state = run_loop(
                state,
                train,
                valid,
                shape,
                train_config,
                out,
                Some(&state_path),
            )?;
            return Ok(state.finish());
        };
        // A linear probe: one pass of the frozen backbone, then the head on its output.
        let extract = CachedProbe::feature_model(&model);
        let cache = |set: &[Example], what: &str| {
            let eval = predict_with_bar(&extract, set, self.batch_size, shape, what);
            CachedProbe::cache(&eval, set)
        };
        let train = cache(train, "backbone features (train)");
        let valid = valid.map(|v| cache(v, "backbone features (valid)"));
        let probe_shape = probe.shape();
        let state = initial_state(probe, train_config, resume_from, out)?;
        let state = run_loop(
            state,
            &train,
            valid.as_deref(),
            probe_shape,
            train_config,
            out,
            Some(&state_path),
        )?;
        let (probe, history) = state.finish();
        Ok((probe.into_model(model), history))
    }

    /// `predictions.json` and `embeddings.npy` of the test set.
    fn write_predictions(
        &self,
        out: &Path,
        fold: &Fold,
        features: &Features,
        eval: &Evaluation,
    ) -> Result<()> {
        let targets: Vec<usize> = features.test.iter().map(|e| e.label).collect();
        let mut predictions = json!({
            "labels": fold.splits.labels, "targets": targets, "predictions": eval.predictions,
        });
        // File names only when none was left out (the reader reports skips without an index).
        if features.test_skipped.is_empty() {
            predictions["files"] =
                json!(fold.splits.test.iter().map(|c| &c.path).collect::<Vec<_>>());
        } else {
            predictions["skipped"] = json!(features.test_skipped);
        }
        write_atomic(
            &out.join(PREDICTIONS_FILE),
            serde_json::to_string(&predictions)?.as_bytes(),
        )?;
        let shape = [features.test.len() as u64, eval.embedding_dim as u64];
        let bytes = super::npy_f32(&shape, &eval.embeddings)?;
        write_atomic(&out.join(EMBEDDINGS_FILE), &bytes)?;
        Ok(())
    }
}

/// Readies a run folder for a run whose `config.json` is `config_text`: with `resume`, checks
/// that the saved config is the same and returns the saved results of a finished run; without,
/// removes what an earlier run left.
fn prepare_run_folder(out: &Path, config_text: &str, resume: bool) -> Result<Option<Value>> {
    let config_path = out.join("config.json");
    let results_path = out.join("results.json");
    if !resume {
        for stale in [
            STATE_FILE,
            "results.json",
            "metrics.jsonl",
            PREDICTIONS_FILE,
            EMBEDDINGS_FILE,
        ] {
            let _ = std::fs::remove_file(out.join(stale));
        }
        return Ok(None);
    }
    if let Ok(saved) = std::fs::read_to_string(&config_path) {
        let saved: Value = serde_json::from_str(&saved)
            .with_context(|| format!("cannot parse {}", config_path.display()))?;
        let now: Value = serde_json::from_str(config_text)?;
        anyhow::ensure!(
            saved == now,
            "{} was written by a run with other arguments; --resume needs the same ones \
             (or start over without --resume)",
            config_path.display()
        );
        if results_path.is_file() {
            eprintln!("{}: finished already", out.display());
            let text = std::fs::read_to_string(&results_path)?;
            return Ok(Some(serde_json::from_str(&text)?));
        }
    }
    remove_stale_temporaries(out, STATE_FILE);
    Ok(None)
}

/// The training state to start from: the one saved in `resume_from`, else a fresh one.
pub fn initial_state<M: Trainable>(
    model: M,
    train_config: &TrainConfig,
    resume_from: Option<&Path>,
    out: &Path,
) -> Result<TrainState<M>> {
    let Some(path) = resume_from else {
        return Ok(TrainState::new(model, train_config));
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let state = TrainState::from_bytes(&bytes, &path.display().to_string(), model, train_config)?;
    eprintln!(
        "resuming {} after epoch {} of {}",
        out.display(),
        state.epoch,
        train_config.epochs
    );
    Ok(state)
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

/// Runs `train`: every selected fold × every seed, folds outer (one fold's features in memory at
/// a time), then the summary when there was more than one sub-run.
pub fn run(args: Args) -> Result<()> {
    let job = Job::prepare(&args)?;
    let protocol = args.data.protocol();
    let folds = args.data.folds(job.petl.paper_compat)?;
    let single = folds.len() == 1 && args.seeds == 1;
    let total = folds.len() as u64 * args.seeds;
    let mut runs = Vec::with_capacity(total as usize);
    for fold in &folds {
        let data = FoldData::new(fold);
        for seed in args.seed..args.seed + args.seeds {
            let key = SubRun {
                fold: fold.fold,
                seed,
            };
            let out = if single {
                args.out.clone()
            } else {
                args.out.join(key.dir())
            };
            match (fold.fold, single) {
                (Some(f), true) => eprintln!("{} fold {f} -> {}", protocol.name, out.display()),
                (_, true) => {}
                (f, false) => eprintln!(
                    "== {}{}seed {seed} ({}/{total}) -> {}",
                    protocol.name,
                    f.map_or(" ".to_string(), |f| format!(" fold {f}, ")),
                    runs.len() + 1,
                    out.display()
                ),
            }
            let results = job.run_one(&data, seed, &out, args.resume)?;
            runs.push((key, results));
        }
    }
    if !single {
        let summary = aggregate::write(&args.out, &runs, &[("dataset", json!(protocol.name))])?;
        let accuracy = &summary["test_accuracy"];
        println!(
            "{}: test accuracy {:.4} ± {:.4} ({} std) over {} runs ({} folds × {} seeds); \
             summary written to {}",
            protocol.name,
            accuracy["mean"].as_f64().unwrap_or(f64::NAN),
            accuracy["std"].as_f64().unwrap_or(f64::NAN),
            aggregate::STD_CONVENTION,
            runs.len(),
            folds.len(),
            args.seeds,
            args.out.join("results.json").display()
        );
    }
    if let Some(cache) = &job.cache {
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
