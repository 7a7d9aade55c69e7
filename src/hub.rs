//! Downloading a checkpoint folder from the Hugging Face hub into its local cache (native only).

use std::path::PathBuf;

use crate::model::checkpoint::{CONFIG_FILE, PREPROCESSOR_FILE, WEIGHTS_FILE};

/// The AudioSet-finetuned AST of the paper (Gong et al., 527 AudioSet labels).
pub const AUDIOSET_AST: &str = "MIT/ast-finetuned-audioset-10-10-0.4593";

/// Downloads (or finds in the cache, `$HF_HOME`) `config.json`, `model.safetensors` and, when
/// present, `preprocessor_config.json` of `repo_id`, showing progress bars, and returns the folder
/// that holds them.
pub fn download(repo_id: &str) -> Result<PathBuf, String> {
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_progress(true)
        .build()
        .map_err(|e| format!("cannot set up the Hugging Face hub client: {e}"))?;
    let repo = api.model(repo_id.to_string());
    let fetch = |file: &str| {
        repo.get(file).map_err(|e| {
            format!("cannot download {file} of `{repo_id}` from the Hugging Face hub: {e}")
        })
    };
    let config = fetch(CONFIG_FILE)?;
    fetch(WEIGHTS_FILE)?;
    // Optional: AST checkpoints usually have one, fine-tuned copies sometimes do not.
    let _ = fetch(PREPROCESSOR_FILE);
    config
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| format!("hub cache path {} has no parent", config.display()))
}
