//! `native-train classify`: top labels of wav files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use petl_ast::audio::{read_wav, AudioLimits};
use petl_ast::model::LoadOptions;
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
    /// Wav files to classify.
    #[arg(required = true, value_name = "FILE.wav")]
    files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct FileResult {
    file: String,
    logits: Vec<f32>,
    labels: Vec<String>,
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
    let classifier = Classifier::new(&checkpoint, &options, &device)
        .context("cannot build the model from the checkpoint")?;
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
            let labels = classifier
                .top_k(&logits, args.top_k)
                .into_iter()
                .map(|(label, _)| label)
                .collect();
            results.push(FileResult {
                file: path.display().to_string(),
                logits,
                labels,
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
