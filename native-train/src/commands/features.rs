//! `native-train features`: the normalised input matrix of one wav file, as .npy.

use std::path::PathBuf;

use anyhow::{Context, Result};
use petl_ast::audio::{read_wav, AudioLimits, FeatureExtractor, FeatureExtractorConfig};
use petl_ast::io::write_atomic;

/// Arguments of `features`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Frames to pad / truncate to.
    #[arg(long, default_value_t = 1024)]
    max_length: usize,
    /// A `preprocessor_config.json` with another mean/std (default: the AudioSet AST values).
    #[arg(long, value_name = "FILE")]
    preprocessor: Option<PathBuf>,
    /// Refuse clips longer than this many seconds (judged from the wav header).
    #[arg(long, default_value_t = AudioLimits::default().max_seconds)]
    max_seconds: f64,
    /// Output .npy file (float32, frames × mel).
    #[arg(long, value_name = "OUT.npy")]
    npy: PathBuf,
    /// Input wav file.
    #[arg(value_name = "FILE.wav")]
    file: PathBuf,
}

/// Runs `features`.
pub fn run(args: Args) -> Result<()> {
    let mut config = match &args.preprocessor {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            FeatureExtractorConfig::from_json(&text, &path.display().to_string())?
        }
        None => FeatureExtractorConfig::default(),
    };
    anyhow::ensure!(args.max_length > 0, "--max-length must be at least 1");
    config.max_length = args.max_length;
    let limits = AudioLimits {
        max_seconds: args.max_seconds,
    };
    let audio = read_wav(&args.file, &limits)?;
    let extractor = FeatureExtractor::new(config.clone())?;
    let values = extractor.extract_audio(&audio)?;
    let shape = [config.max_length as u64, config.num_mel_bins as u64];
    let bytes = super::npy_f32(&shape, &values)?;
    write_atomic(&args.npy, &bytes)
        .with_context(|| format!("cannot write {}", args.npy.display()))?;
    Ok(())
}
