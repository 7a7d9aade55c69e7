//! Adapter-only checkpoints: the tensors a PETL method trains (plus the head and any trained
//! backbone tensor), with the method config, the base checkpoint's identity and the label names in
//! the safetensors metadata. Loading one onto the same base model gives identical logits.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::checkpoint::{MAX_CLASSES, MAX_INPUT_FRAMES};
use crate::model::weights::{replacement, serialize_f32, to_f32};
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

/// Collects `(path, values, shape)` of the parameters to save.
struct Collector {
    path: Vec<String>,
    trainable: Option<std::collections::HashSet<String>>,
    out: Vec<(String, Tensor<1>, Vec<usize>)>,
    names: Vec<String>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.path.join(".");
        match &self.trainable {
            // First pass (training view): remember which paths train.
            None => {
                if param.is_require_grad() {
                    self.names.push(name);
                }
            }
            Some(trainable) => {
                let method = METHOD_ROOTS
                    .iter()
                    .any(|r| name == *r || name.starts_with(&format!("{r}.")));
                if method || trainable.contains(&name) {
                    let t = param.val();
                    let shape = t.dims().to_vec();
                    self.out.push((name, t.flatten::<1>(0, D - 1), shape));
                }
            }
        }
    }
}

/// Replaces parameters by the file's tensors, by path.
struct Loader<'a> {
    path: Vec<String>,
    tensors: &'a HashMap<String, (Vec<f32>, Vec<usize>)>,
    used: Vec<String>,
    problems: Vec<TensorProblem>,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        let Some((values, shape)) = self.tensors.get(&name) else {
            return param;
        };
        self.used.push(name.clone());
        let expected = param.dims().to_vec();
        if *shape != expected {
            self.problems.push(TensorProblem::Shape {
                name,
                expected,
                found: shape.clone(),
            });
            return param;
        }
        param.map(|t| replacement(&t, values, shape))
    }
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
        let mut first = Collector {
            path: Vec::new(),
            trainable: None,
            out: Vec::new(),
            names: Vec::new(),
        };
        self.clone().train().visit(&mut first);
        let mut second = Collector {
            path: Vec::new(),
            trainable: Some(first.names.into_iter().collect()),
            out: Vec::new(),
            names: Vec::new(),
        };
        self.visit(&mut second);
        second.out
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
        let mut loader = Loader {
            path: Vec::new(),
            tensors: &tensors,
            used: Vec::new(),
            problems,
        };
        let model = model.map(&mut loader);
        let mut problems = loader.problems;
        let used: std::collections::HashSet<_> = loader.used.into_iter().collect();
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
