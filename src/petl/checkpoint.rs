//! Adapter-only checkpoints: the tensors a PETL method trains (plus the head and any trained
//! backbone tensor), with the method config, the base checkpoint's identity and the label names in
//! the safetensors metadata. Loading one onto the same base model gives identical logits.

use std::collections::{BTreeMap, HashMap};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::checkpoint::{MAX_CLASSES, MAX_INPUT_FRAMES};
use crate::model::named_params::{self, Replacement};
use crate::model::weights::{serialize_f32, to_f32};
use crate::model::{AstConfig, AstModel, LoadError, TensorProblem};

use super::config::PetlConfig;
use super::model::PetlModel;

/// `format` value in the metadata.
pub const FORMAT: &str = "petl-ast-adapter";
/// Version of the layout.
pub const VERSION: u32 = 1;

/// What an adapter file says about itself (the safetensors `__metadata__`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterMetadata {
    /// The method and its settings.
    pub petl: PetlConfig,
    /// Name of the base checkpoint (hub id or folder name).
    pub base_model: String,
    /// SHA-256 of the base checkpoint's `model.safetensors`.
    pub base_sha256: String,
    /// Label of each output.
    pub labels: Vec<String>,
    /// Input length in frames.
    pub max_length: usize,
}

/// Module subtrees saved whole: everything the methods add, and the head.
const METHOD_ROOTS: &[&str] = &["hooks", "prompts", "head"];

/// Whether `path` lies in a subtree an adapter file saves whole ([`METHOD_ROOTS`]).
fn in_method_roots(path: &str) -> bool {
    METHOD_ROOTS
        .iter()
        .any(|r| path == *r || path.starts_with(&format!("{r}.")))
}

/// The safetensors bytes of an adapter file.
fn encode_adapter(
    values: Vec<(String, Vec<f32>, Vec<usize>)>,
    metadata: &AdapterMetadata,
) -> Vec<u8> {
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("version".to_string(), VERSION.to_string());
    meta.insert(
        "petl_ast".to_string(),
        serde_json::to_string(metadata).expect("metadata serialises"),
    );
    serialize_f32(values, meta)
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl PetlModel {
    /// The tensors an adapter file holds, flattened, with their names and shapes (not read back
    /// from the device yet).
    pub fn adapter_tensors(&self) -> Vec<(String, Tensor<1>, Vec<usize>)> {
        // Which parameters train is only visible on the training view of the model.
        let mut trainable = std::collections::HashSet::new();
        named_params::visit(&self.clone().train(), |p| {
            if p.trains {
                trainable.insert(p.path.to_string());
            }
        });
        let mut out = Vec::new();
        named_params::visit(self, |p| {
            if in_method_roots(p.path) || trainable.contains(p.path) {
                out.push((p.path.to_string(), p.value, p.shape));
            }
        });
        out
    }

    /// Serialises the trained tensors with `metadata` into safetensors bytes (blocking readback).
    #[cfg(not(target_family = "wasm"))]
    pub fn adapter_bytes(&self, metadata: &AdapterMetadata) -> Vec<u8> {
        let values = self
            .adapter_tensors()
            .into_iter()
            .map(|(name, t, shape)| {
                let values = t.into_data().try_to_vec::<f32>().unwrap_or_default();
                (name, values, shape)
            })
            .collect();
        encode_adapter(values, metadata)
    }

    /// [`Self::adapter_bytes`] with asynchronous readback (WebGPU in the browser).
    pub async fn adapter_bytes_async(&self, metadata: &AdapterMetadata) -> Result<Vec<u8>, String> {
        let mut values = Vec::new();
        for (name, t, shape) in self.adapter_tensors() {
            let data = t
                .into_data_async()
                .await
                .map_err(|e| format!("reading `{name}` back from the device failed: {e:?}"))?;
            let data = data
                .try_to_vec::<f32>()
                .map_err(|e| format!("`{name}` is not f32: {e:?}"))?;
            values.push((name, data, shape));
        }
        Ok(encode_adapter(values, metadata))
    }

    /// Builds the model an adapter file describes on `base` (the backbone of the checkpoint whose
    /// `model.safetensors` has hash `base_sha256`) and loads its tensors.
    pub fn from_adapter_bytes(
        bytes: &[u8],
        source: &str,
        base: AstModel,
        base_config: &AstConfig,
        base_sha256: &str,
        device: &Device,
    ) -> Result<(Self, AdapterMetadata), LoadError> {
        let metadata = read_metadata(bytes, source)?;
        if metadata.base_sha256 != base_sha256 {
            return Err(LoadError::Config {
                file: source.to_string(),
                message: format!(
                    "this adapter was trained on base model `{}` (sha256 {}…), not on this checkpoint \
                     (sha256 {}…); load it with the base it was made for",
                    metadata.base_model,
                    &metadata.base_sha256.get(..12).unwrap_or(""),
                    &base_sha256.get(..12).unwrap_or("")
                ),
            });
        }
        if base.max_length != metadata.max_length {
            return Err(LoadError::Config {
                file: source.to_string(),
                message: format!(
                    "the adapter expects inputs of {} frames but the base was built for {}",
                    metadata.max_length, base.max_length
                ),
            });
        }
        let classes = metadata.labels.len();
        let model =
            PetlModel::new(base, base_config, &metadata.petl, classes, device).map_err(|e| {
                LoadError::Config {
                    file: source.to_string(),
                    message: e.to_string(),
                }
            })?;
        let st =
            safetensors::SafeTensors::deserialize(bytes).map_err(|e| LoadError::Safetensors {
                file: source.to_string(),
                message: e.to_string(),
            })?;
        let mut tensors = HashMap::new();
        let mut problems = Vec::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                problems.push(TensorProblem::Dtype {
                    name,
                    dtype: format!("{:?}", view.dtype()),
                });
                continue;
            }
            let values = to_f32(view.dtype(), view.data()).expect("an f32 tensor");
            tensors.insert(name, (values, view.shape().to_vec()));
        }
        let mut used = std::collections::HashSet::new();
        let model = named_params::map(model, |path, expected, _| {
            let (values, shape) = tensors.get(path)?;
            used.insert(path.to_string());
            if shape != expected {
                problems.push(TensorProblem::Shape {
                    name: path.to_string(),
                    expected: expected.to_vec(),
                    found: shape.clone(),
                });
                return None;
            }
            Some(Replacement { values, id: None })
        });
        let mut unexpected: Vec<_> = tensors
            .keys()
            .filter(|n| !used.contains(*n))
            .cloned()
            .collect();
        unexpected.sort();
        problems.extend(
            unexpected
                .into_iter()
                .map(|name| TensorProblem::Unexpected { name }),
        );
        if !problems.is_empty() {
            return Err(LoadError::Tensors {
                file: source.to_string(),
                problems,
            });
        }
        Ok((model, metadata))
    }
}

/// Reads and checks the metadata of an adapter file.
pub fn read_metadata(bytes: &[u8], source: &str) -> Result<AdapterMetadata, LoadError> {
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| LoadError::Safetensors {
            file: source.to_string(),
            message: e.to_string(),
        })?;
    let meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(LoadError::Config {
            file: source.to_string(),
            message: format!(
                "not a petl-ast adapter file (metadata `format` is {:?}); for PETL_AST state_dicts use \
                 --import-petl-ast, for PEFT folders --import-peft",
                meta.get("format")
            ),
        });
    }
    let text = meta.get("petl_ast").ok_or_else(|| LoadError::Config {
        file: source.to_string(),
        message: "adapter metadata lacks the `petl_ast` entry".into(),
    })?;
    let metadata: AdapterMetadata = serde_json::from_str(text).map_err(|e| LoadError::Json {
        file: source.to_string(),
        message: format!("adapter metadata: {e}"),
    })?;
    let (frames, classes) = (MAX_INPUT_FRAMES, MAX_CLASSES);
    if !(1..=frames).contains(&metadata.max_length)
        || !(1..=classes).contains(&metadata.labels.len())
    {
        return Err(LoadError::Config {
            file: source.to_string(),
            message: format!(
                "adapter metadata declares {} input frames and {} labels; expected 1..={frames} \
                 and 1..={classes}: the file is corrupt",
                metadata.max_length,
                metadata.labels.len()
            ),
        });
    }
    Ok(metadata)
}
