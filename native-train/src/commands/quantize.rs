//! `native-train quantize`: a checkpoint folder rewritten with smaller weights (f16, bf16, or
//! int8 Linear weights with per-channel scales, `petl_ast::model::quantize`), in the Hugging Face
//! layout every command and the web page load.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use petl_ast::io::write_atomic;
use petl_ast::model::checkpoint::{CONFIG_FILE, PREPROCESSOR_FILE, WEIGHTS_FILE};
use petl_ast::model::quantize::{quantize, StorageDtype};
use petl_ast::model::{Checkpoint, LoadOptions};
use serde_json::json;

/// Arguments of `quantize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Hugging Face model folder to read (config.json + model.safetensors).
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Storage of the new file.
    #[arg(long, value_enum)]
    dtype: StorageDtype,
    /// Folder to write (created; its config.json, model.safetensors and
    /// preprocessor_config.json are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Runs `quantize`.
pub fn run(args: Args) -> Result<()> {
    // Reads the whole checkpoint first, so a broken input is reported as for any other command.
    let checkpoint = Checkpoint::from_dir(&args.checkpoint).with_context(|| {
        format!(
            "cannot load the checkpoint in {}",
            args.checkpoint.display()
        )
    })?;
    let bytes = &checkpoint.weights;
    let quantized = quantize(bytes, &checkpoint.weights_source, args.dtype)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for file in [CONFIG_FILE, PREPROCESSOR_FILE] {
        let from = args.checkpoint.join(file);
        if from.is_file() {
            let text =
                std::fs::read(&from).with_context(|| format!("cannot read {}", from.display()))?;
            let to = args.out.join(file);
            write_atomic(&to, &text).with_context(|| format!("cannot write {}", to.display()))?;
        }
    }
    let target = args.out.join(WEIGHTS_FILE);
    write_atomic(&target, &quantized)
        .with_context(|| format!("cannot write {}", target.display()))?;
    // The new folder loads like any checkpoint.
    let start = Instant::now();
    let written = Checkpoint::from_dir(&args.out)?;
    let device = petl_ast::backend::cpu_device().map_err(anyhow::Error::msg)?;
    written.load_classifier(&LoadOptions::default(), &device)?;
    println!(
        "{}",
        json!({
            "out": args.out.display().to_string(),
            "dtype": format!("{:?}", args.dtype).to_lowercase(),
            "bytes_before": bytes.len(),
            "bytes_after": quantized.len(),
            "load_seconds": start.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}
