//! `native-train params`: total and trainable parameter counts of a method on a checkpoint.

use anyhow::{Context, Result};
use petl_ast::model::LoadOptions;
use petl_ast::petl::{MethodArgs, PetlModel};

use crate::model_source::ModelArgs;

/// Arguments of `params`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    method: MethodArgs,
    /// Classes of the new head.
    #[arg(long, default_value_t = 10)]
    num_classes: usize,
    /// Input length in frames (sets the number of position embeddings).
    #[arg(long)]
    max_length: Option<usize>,
    /// Print exactly one JSON object {"total", "trainable", "method", "head"}.
    #[arg(long)]
    json: bool,
}

/// Runs `params`.
pub fn run(args: Args) -> Result<()> {
    let device = args.model.backend.device().map_err(anyhow::Error::msg)?;
    let checkpoint = args.model.checkpoint()?;
    let config = &checkpoint.config;
    let petl = args
        .method
        .to_config(config.hidden_size, config.num_hidden_layers)?;
    let options = LoadOptions {
        max_length: args.max_length,
        position: petl.position_mode(),
        new_head: None,
    };
    let ast = checkpoint
        .load_backbone(&options, &device)
        .context("cannot load the backbone")?;
    let model = PetlModel::new(ast, config, &petl, args.num_classes, &device)?;
    let counts = model.param_counts();
    if args.json {
        println!("{}", serde_json::to_string(&counts)?);
    } else {
        println!("total      {:>12}", counts.total);
        println!(
            "trainable  {:>12}  ({:.3} %)",
            counts.trainable,
            100.0 * counts.trainable as f64 / counts.total as f64
        );
        println!("  method   {:>12}", counts.method);
        println!(
            "  head     {:>12}  (classifier + final LayerNorm)",
            counts.head
        );
    }
    Ok(())
}
