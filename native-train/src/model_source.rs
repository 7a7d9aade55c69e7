//! Where a checkpoint comes from: a local Hugging Face folder or a hub repository id.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use petl_ast::backend::Backend;
use petl_ast::model::Checkpoint;

/// Flags that choose the checkpoint and the compute backend.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Local Hugging Face model folder (config.json + model.safetensors); default: the built-in
    /// backbone (www/models/speech-ast-tiny: spoken words, digits and sounds).
    #[arg(long, value_name = "DIR", conflicts_with = "model")]
    pub checkpoint: Option<PathBuf>,
    /// Hugging Face hub repository id, downloaded into the hub cache
    /// (e.g. MIT/ast-finetuned-audioset-10-10-0.4593).
    #[arg(long, value_name = "REPO")]
    pub model: Option<String>,
    /// Compute backend.
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    pub backend: Backend,
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse()
}

impl ModelArgs {
    /// The folder holding the checkpoint, downloading it first for `--model`.
    pub fn folder(&self) -> Result<PathBuf> {
        match (&self.checkpoint, &self.model) {
            (Some(dir), _) => Ok(dir.clone()),
            (None, Some(repo)) => petl_ast::hub::download(repo).map_err(anyhow::Error::msg),
            (None, None) => anyhow::bail!(
                "give --checkpoint DIR (a Hugging Face model folder) or --model REPO (e.g. {})",
                petl_ast::hub::AUDIOSET_AST
            ),
        }
    }

    /// How the checkpoint is named in run files and adapter metadata: the hub id or the folder.
    pub fn name(&self) -> String {
        self.model
            .clone()
            .or_else(|| self.checkpoint.as_ref().map(|p| p.display().to_string()))
            .unwrap_or_else(|| DEMO_NAME.to_string())
    }

    /// Reads the checkpoint; without `--checkpoint` or `--model`, the backbone built into the
    /// binary (`www/models/speech-ast-tiny`: spoken words, digits and sounds).
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        if self.checkpoint.is_none() && self.model.is_none() {
            return Ok(demo_checkpoint()?);
        }
        let dir = self.folder()?;
        Checkpoint::from_dir(&dir)
            .with_context(|| format!("cannot load the checkpoint in {}", dir.display()))
    }
}

/// Name of the built-in backbone.
pub const DEMO_NAME: &str = "speech-ast-tiny (built in)";

/// The backbone trained by `native-train pretrain-demo`, compiled into the binary so that
/// the CLI works offline with no arguments.
pub fn demo_checkpoint() -> Result<Checkpoint, petl_ast::model::LoadError> {
    const CONFIG: &str = include_str!("../../www/models/speech-ast-tiny/config.json");
    const PREPROCESSOR: &str =
        include_str!("../../www/models/speech-ast-tiny/preprocessor_config.json");
    const WEIGHTS: &[u8] = include_bytes!("../../www/models/speech-ast-tiny/model.safetensors");
    Checkpoint::from_parts(
        CONFIG,
        "speech-ast-tiny/config.json",
        Some((
            PREPROCESSOR,
            "speech-ast-tiny/preprocessor_config.json".to_string(),
        )),
        WEIGHTS.to_vec(),
        "speech-ast-tiny/model.safetensors",
    )
}
