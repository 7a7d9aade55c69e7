//! `native-train pretrain-demo`: trains a small AST from scratch on four FSDD speakers and, with
//! `--corpus`, the synthetic multi-voice word corpus of `scripts/make_pretrain_corpus.py`, and
//! writes it as a Hugging Face checkpoint folder — the offline default of the CLI and the web app.
//! Resumable (`--resume`) after any finished epoch.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use petl_ast::audio::{AudioLimits, FeatureExtractor, FeatureExtractorConfig};
use petl_ast::data::{self, Clip};
use petl_ast::io::write_atomic;
use petl_ast::model::{
    save, AstConfig, AstForAudioClassification, AstModel, Checkpoint, ClassifierHead, LoadOptions,
    PositionMode,
};
use petl_ast::train::{self, OptimizerConfig, SpecAugment, TimeShift, TrainConfig};
use serde_json::json;

use super::train::{featurise, initial_state, run_loop, STATE_FILE};

/// The settings of a run in its output folder, checked by `--resume`.
const RUN_FILE: &str = "pretrain_run.json";

/// FSDD speakers the built-in backbone is trained on; theo and yweweler are held out for few-shot
/// tests.
pub const DEMO_SPEAKERS: [&str; 4] = ["george", "jackson", "lucas", "nicolas"];

/// Arguments of `pretrain-demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// FSDD `recordings/` folder.
    #[arg(long, default_value = "../shared/data/fsdd/recordings")]
    data: PathBuf,
    /// Pretraining corpus of `scripts/make_pretrain_corpus.py` (its `train/<label>/*.wav` are
    /// added to the FSDD takes; its digit labels "0"…"9" are FSDD's).
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Every how many-th corpus clip is held out for validation.
    #[arg(long, default_value_t = 20)]
    corpus_valid_every: usize,
    /// Leave out clips that cannot be read (each named on stderr) instead of stopping.
    #[arg(long)]
    skip_bad_files: bool,
    /// Continue the run in --out after its last finished epoch (same arguments).
    #[arg(long)]
    resume: bool,
    /// Output checkpoint folder.
    #[arg(long, default_value = "www/models/speech-ast-tiny")]
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
    /// Attention heads.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Start from this checkpoint's backbone (a Hugging Face folder) instead of a random one; its
    /// shape replaces --hidden-size, --layers, --heads and --stride, the head is new.
    #[arg(long, value_name = "DIR")]
    init_from: Option<PathBuf>,
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
    let init = args
        .init_from
        .as_ref()
        .map(|dir| {
            Checkpoint::from_dir(dir)
                .with_context(|| format!("cannot load the checkpoint in {}", dir.display()))
        })
        .transpose()?;
    let mut config = model_config(&args, init.as_ref())?;
    let mut splits = data::fsdd::splits(&args.data, &DEMO_SPEAKERS)?;
    if let Some(corpus) = &args.corpus {
        add_corpus(&mut splits, &corpus.join("train"), args.corpus_valid_every)?;
    }
    config.set_labels(&splits.labels);
    config.validate().map_err(anyhow::Error::msg)?;
    let preprocessor = FeatureExtractorConfig {
        max_length: args.max_length,
        ..FeatureExtractorConfig::default()
    };
    let extractor = FeatureExtractor::new(preprocessor.clone())?;
    let limits = AudioLimits::default();
    let skip = args.skip_bad_files;
    let train_set = featurise(&splits.train, &extractor, &limits, skip, "train")?;
    let valid = featurise(&splits.valid, &extractor, &limits, skip, "valid")?;
    let test = featurise(&splits.test, &extractor, &limits, skip, "test")?;

    let ast = match &init {
        Some(checkpoint) => checkpoint.load_backbone(
            &LoadOptions {
                max_length: Some(args.max_length),
                position: PositionMode::Adapt,
                new_head: None,
            },
            &device,
        )?,
        None => AstModel::new(&config, args.max_length, &device),
    };
    let model = AstForAudioClassification {
        ast,
        head: ClassifierHead::new(&config, splits.labels.len(), &device),
    };
    let train_config = train_config(&args);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let shape = [args.max_length, config.num_mel_bins];
    let state_path = args.out.join(STATE_FILE);
    let run_path = args.out.join(RUN_FILE);
    // What a resumed run must share with the run that wrote the state.
    let run = json!({
        "config": &config, "train": &train_config, "train_clips": train_set.len(),
        "valid_clips": valid.len(), "init_from": &args.init_from,
    });
    let resume_from = resumable_state(&args, &state_path, &run_path, &run)?;
    let (model, history) = run_loop(
        initial_state(model, &train_config, resume_from, &args.out)?,
        &train_set,
        Some(&valid),
        shape,
        &train_config,
        &args.out,
        Some(&state_path),
    )?
    .finish();
    let (_, test_accuracy, _) = train::evaluate(&model, &test, args.batch_size, shape);
    let model = burn::module::Module::valid(&model);
    save::save_dir(&model, &config, &args.out)?;
    // The finished checkpoint replaces the resumable state (the full model with AdamW's moments).
    let _ = std::fs::remove_file(&state_path);
    let _ = std::fs::remove_file(&run_path);
    write_atomic(
        &args.out.join("preprocessor_config.json"),
        serde_json::to_string_pretty(&preprocessor)?.as_bytes(),
    )?;
    let results = json!({
        "speakers": DEMO_SPEAKERS, "corpus": corpus_manifest(&args), "labels": splits.labels.len(),
        "train_clips": train_set.len(), "valid_clips": valid.len(),
        "test_clips": test.len(), "test_accuracy": test_accuracy,
        "best_valid_accuracy": history.iter().filter_map(|m| m.valid_accuracy).fold(0.0, f64::max),
        "train": train_config, "command": std::env::args().collect::<Vec<_>>().join(" "),
    });
    write_atomic(
        &args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    println!(
        "backbone: FSDD test accuracy {test_accuracy:.4} on {} clips of {:?}; written to {}",
        test.len(),
        DEMO_SPEAKERS,
        args.out.display()
    );
    Ok(())
}

/// The corpus's `manifest.json` (its sources, voices, words and counts), kept in `results.json`.
fn corpus_manifest(args: &Args) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(args.corpus.as_ref()?.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The model's config: the checkpoint's when starting from one, else the sizes of `args`; the
/// input length is `args`'s either way.
fn model_config(args: &Args, init: Option<&Checkpoint>) -> Result<AstConfig> {
    let mut config: AstConfig = match init {
        Some(checkpoint) => checkpoint.config.clone(),
        None => serde_json::from_value(json!({
            "hidden_size": args.hidden_size,
            "num_hidden_layers": args.layers,
            "num_attention_heads": args.heads,
            "intermediate_size": 4 * args.hidden_size,
            "frequency_stride": args.stride,
            "time_stride": args.stride,
            "max_length": args.max_length,
            "model_type": "audio-spectrogram-transformer",
            "architectures": ["ASTForAudioClassification"],
        }))?,
    };
    config.max_length = args.max_length;
    Ok(config)
}

/// The pretraining recipe: AdamW (β 0.9 / 0.98, weight decay 0.05), warm-up then cosine decay,
/// SpecAugment and a random time shift.
fn train_config(args: &Args) -> TrainConfig {
    TrainConfig {
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
        devices: Vec::new(),
    }
}

/// With `--resume`, the state to continue when there is one and `run_path` says it was written
/// by a run of the same `run` settings (refused otherwise); without, none, and `run` is written
/// for a later resume.
fn resumable_state<'p>(
    args: &Args,
    state_path: &'p Path,
    run_path: &Path,
    run: &serde_json::Value,
) -> Result<Option<&'p Path>> {
    let run_text = serde_json::to_string_pretty(run)?;
    // Compared as read back from text on both sides (float parsing is not always exact).
    let run: serde_json::Value = serde_json::from_str(&run_text)?;
    let resume_from = (args.resume && state_path.is_file()).then_some(state_path);
    if args.resume && resume_from.is_none() {
        eprintln!(
            "note: no {} to resume from; starting afresh",
            state_path.display()
        );
    }
    if resume_from.is_some() {
        let saved: Option<serde_json::Value> = std::fs::read_to_string(run_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        anyhow::ensure!(
            saved.as_ref() == Some(&run),
            "{} was written by a run with other arguments or data; --resume needs the same ones \
             (or start over without --resume)",
            state_path.display()
        );
    } else {
        write_atomic(run_path, run_text.as_bytes())?;
    }
    Ok(resume_from)
}

/// Adds the corpus `train/<label>/*.wav` folders to FSDD's `splits`: labels are the union (FSDD's
/// digits "0"…"9" keep their clips), every `valid_every`-th file of a label goes to validation.
fn add_corpus(splits: &mut data::Splits, dir: &std::path::Path, valid_every: usize) -> Result<()> {
    let (labels, clips) = data::folder::read(dir)?;
    let mut all = splits.labels.clone();
    for label in &labels {
        if !all.contains(label) {
            all.push(label.clone());
        }
    }
    let index = |label: &str| all.iter().position(|l| l == label).expect("in the union");
    let mut seen = vec![0usize; labels.len()];
    for clip in clips {
        let n = seen[clip.label];
        seen[clip.label] += 1;
        let clip = Clip {
            label: index(&labels[clip.label]),
            ..clip
        };
        if valid_every > 0 && n % valid_every == valid_every - 1 {
            splits.valid.push(clip);
        } else {
            splits.train.push(clip);
        }
    }
    eprintln!(
        "corpus {}: {} labels ({} new), {} clips",
        dir.display(),
        labels.len(),
        all.len() - splits.labels.len(),
        seen.iter().sum::<usize>()
    );
    splits.labels = all;
    Ok(())
}
