//! `native-train init`: a randomly initialised AST in the Hugging Face layout (`config.json`,
//! `model.safetensors`, `preprocessor_config.json`), e.g. the AST-base shape of the AudioSet model
//! for load, memory and speed checks where its trained weights cannot be downloaded.

use std::path::PathBuf;

use anyhow::{Context, Result};
use petl_ast::audio::FeatureExtractorConfig;
use petl_ast::io::write_atomic;
use petl_ast::model::checkpoint::PREPROCESSOR_FILE;
use petl_ast::model::save::save_dir;
use petl_ast::model::{AstConfig, AstForAudioClassification};

/// The largest model `init` makes (f32 weights; AST-large is about 1.2 GB): a config that
/// passes validation can still describe hundreds of GiB.
const MAX_WEIGHT_BYTES: u128 = 16 << 30;

/// Arguments of `init`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A Hugging Face `config.json` to take the shape from (default: AST-base, the shape of
    /// `MIT/ast-finetuned-audioset-10-10-0.4593`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output classes, named "label 0", "label 1", … (default: the config's, else 527 as AudioSet).
    #[arg(long)]
    labels: Option<usize>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder to write.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Runs `init`.
pub fn run(args: Args) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            AstConfig::from_json(&text, &path.display().to_string())?
        }
        None => AstConfig::default(),
    };
    let labels = args.labels.unwrap_or(match &args.config {
        Some(_) => config.num_labels(),
        None => 527,
    });
    anyhow::ensure!(labels > 0, "--labels must be at least 1");
    let names: Vec<String> = (0..labels).map(|i| format!("label {i}")).collect();
    config.set_labels(&names);
    config.validate().map_err(anyhow::Error::msg)?;
    let bytes = 4 * config.backbone_weight_values(config.max_length);
    anyhow::ensure!(
        bytes <= MAX_WEIGHT_BYTES,
        "a random AST of this shape needs {:.1} GiB for its weights; init writes at most {} GiB",
        bytes as f64 / f64::from(1u32 << 30),
        MAX_WEIGHT_BYTES >> 30
    );
    let device = petl_ast::backend::cpu_device().map_err(anyhow::Error::msg)?;
    device.seed(args.seed);
    let model = AstForAudioClassification::new(&config, config.max_length, labels, &device);
    save_dir(&model, &config, &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let preprocessor = FeatureExtractorConfig {
        max_length: config.max_length,
        ..FeatureExtractorConfig::default()
    };
    write_atomic(
        &args.out.join(PREPROCESSOR_FILE),
        serde_json::to_string_pretty(&preprocessor)?.as_bytes(),
    )?;
    println!(
        "random AST (d {}, {} layers, {labels} labels, {} frames) written to {}",
        config.hidden_size,
        config.num_hidden_layers,
        config.max_length,
        args.out.display()
    );
    Ok(())
}
