//! `native-train classify`: top labels of wav files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use petl_ast::audio::{read_wav, AudioLimits};
use petl_ast::model::LoadOptions;
use petl_ast::petl::MethodArgs;
use petl_ast::pipeline::Classifier;
use serde::Serialize;

use crate::model_source::ModelArgs;

/// Arguments of `classify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Number of labels to show per file.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Print one JSON array (one object per file with all logits and the top-k labels) and
    /// nothing else on stdout.
    #[arg(long)]
    json: bool,
    /// Input length in frames (default: the checkpoint's max_length).
    #[arg(long)]
    max_length: Option<usize>,
    /// Clips per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Refuse clips longer than this many seconds.
    #[arg(long, default_value_t = AudioLimits::default().max_seconds)]
    max_seconds: f64,
    /// A petl-ast adapter file (its metadata names the method, labels and input length).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["import_petl_ast", "import_peft"])]
    adapter: Option<PathBuf>,
    /// A PETL_AST state_dict saved as safetensors; give the method flags it was trained with.
    #[arg(long, value_name = "FILE", conflicts_with = "import_peft")]
    import_petl_ast: Option<PathBuf>,
    /// A Hugging Face PEFT LoRA folder (adapter_config.json + adapter_model.safetensors).
    #[arg(long, value_name = "DIR")]
    import_peft: Option<PathBuf>,
    #[command(flatten)]
    method: MethodArgs,
    /// Wav files to classify.
    #[arg(required = true, value_name = "FILE.wav")]
    files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct FileResult {
    file: String,
    logits: Vec<f32>,
    /// The top-k labels, best first.
    labels: Vec<String>,
    /// The same with their scores (softmax, or sigmoid for multi-label models).
    top: Vec<Scored>,
}

#[derive(Serialize)]
struct Scored {
    label: String,
    score: f32,
}

/// Runs `classify`.
pub fn run(args: Args) -> Result<()> {
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    let device = args.model.backend.device().map_err(anyhow::Error::msg)?;
    let checkpoint = args.model.checkpoint()?;
    let options = LoadOptions {
        max_length: args.max_length,
        ..Default::default()
    };
    let read = |path: &PathBuf| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let classifier = if let Some(path) = &args.adapter {
        Classifier::with_adapter(
            &checkpoint,
            &read(path)?,
            &path.display().to_string(),
            &device,
        )?
    } else if let Some(path) = &args.import_petl_ast {
        let config = &checkpoint.config;
        let petl = args
            .method
            .to_config(config.hidden_size, config.num_hidden_layers)?;
        let bytes = read(path)?;
        Classifier::with_petl_ast(
            &checkpoint,
            &petl,
            args.max_length,
            &bytes,
            &path.display().to_string(),
            &device,
        )?
    } else if let Some(dir) = &args.import_peft {
        Classifier::with_peft(&checkpoint, &options, dir, &device)?
    } else {
        Classifier::new(&checkpoint, &options, &device)
            .context("cannot build the model from the checkpoint")?
    };
    let limits = AudioLimits {
        max_seconds: args.max_seconds,
    };
    let mut results = Vec::with_capacity(args.files.len());
    for chunk in args.files.chunks(args.batch_size) {
        let inputs = chunk
            .iter()
            .map(|path| {
                let audio = read_wav(path, &limits)?;
                Ok(classifier.features(&audio)?)
            })
            .collect::<Result<Vec<_>>>()?;
        for (path, logits) in chunk.iter().zip(classifier.logits(&inputs)) {
            let top: Vec<Scored> = classifier
                .top_k(&logits, args.top_k)
                .into_iter()
                .map(|(label, score)| Scored { label, score })
                .collect();
            results.push(FileResult {
                file: path.display().to_string(),
                logits,
                labels: top.iter().map(|s| s.label.clone()).collect(),
                top,
            });
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&results)?);
    } else {
        for result in &results {
            println!("{}", result.file);
            for (label, score) in classifier.top_k(&result.logits, args.top_k) {
                println!("  {score:>7.4}  {label}");
            }
        }
    }
    Ok(())
}
