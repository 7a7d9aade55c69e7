//! `native-train convert`: a PETL_AST `state_dict` (safetensors) into a petl-ast adapter file,
//! which then needs no method flags (`classify --adapter`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use petl_ast::io::write_atomic;
use petl_ast::petl::checkpoint::sha256_hex;
use petl_ast::petl::{AdapterMetadata, MethodArgs};
use petl_ast::pipeline::{Classifier, Network};

use crate::model_source::ModelArgs;

/// Arguments of `convert`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    method: MethodArgs,
    /// The PETL_AST state_dict (safetensors).
    #[arg(long, value_name = "FILE")]
    import_petl_ast: PathBuf,
    /// Input length in frames the adapter was trained for (default: the checkpoint's).
    #[arg(long)]
    max_length: Option<usize>,
    /// Label names, comma-separated, in class order (default LABEL_0, LABEL_1, …).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Output adapter file.
    #[arg(long, value_name = "OUT.safetensors")]
    out: PathBuf,
}

/// Runs `convert`.
pub fn run(args: Args) -> Result<()> {
    let device = args.model.backend.device().map_err(anyhow::Error::msg)?;
    let checkpoint = args.model.checkpoint()?;
    let config = &checkpoint.config;
    let petl = args
        .method
        .to_config(config.hidden_size, config.num_hidden_layers)?;
    let path = &args.import_petl_ast;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let classifier = Classifier::with_petl_ast(
        &checkpoint,
        &petl,
        args.max_length,
        &bytes,
        &path.display().to_string(),
        &device,
    )?;
    let Network::Petl(model) = &classifier.model else {
        unreachable!("with_petl_ast builds a PETL model")
    };
    let labels = match args.labels {
        Some(labels) => {
            anyhow::ensure!(
                labels.len() == model.num_classes(),
                "--labels has {} names but the head has {} classes",
                labels.len(),
                model.num_classes()
            );
            labels
        }
        None => classifier.labels.clone(),
    };
    let base_model = args.model.name();
    let metadata = AdapterMetadata {
        petl,
        base_model,
        base_sha256: sha256_hex(&checkpoint.weights),
        labels,
        max_length: model.ast.max_length,
    };
    write_atomic(&args.out, &model.adapter_bytes(&metadata))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    Ok(())
}
