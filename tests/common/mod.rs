//! Helpers shared by the integration tests: fixture paths and reading reference tensors.

#![allow(dead_code)]

pub mod petl_cases;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};

/// `fuzz/` of the repository (the cargo-fuzz crate and its committed inputs).
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Files of `fuzz/<kind>/<target>/` (`kind`: corpus, regressions, seeds), sorted; none when the
/// folder is missing.
pub fn fuzz_inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(fuzz_dir().join(kind).join(target)) {
        Ok(entries) => entries
            .map(|e| e.expect("readable entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A PETL model of `method` (its default flags) on `checkpoint`'s backbone with a fresh head of
/// `classes` classes, on the tests' CPU device.
pub fn petl_model(
    checkpoint: &petl_ast::model::Checkpoint,
    method: petl_ast::petl::Method,
    classes: usize,
) -> petl_ast::petl::PetlModel {
    let config = &checkpoint.config;
    let petl = petl_ast::petl::MethodArgs::for_method(method)
        .to_config(config.hidden_size, config.num_hidden_layers)
        .unwrap();
    let ast = checkpoint
        .load_backbone(&petl_ast::model::LoadOptions::default(), &device())
        .unwrap();
    petl_ast::petl::PetlModel::new(ast, config, &petl, classes, &device()).unwrap()
}

/// The CPU device of the tests (the build's default CPU backend).
pub fn device() -> Device {
    petl_ast::backend::cpu_device().expect("a CPU backend")
}

/// A reference tensor from a safetensors file written by `scripts/make_fixtures.py`.
pub struct Reference {
    bytes: Vec<u8>,
    path: PathBuf,
}

impl Reference {
    /// Opens `tests/fixtures/<rel>`.
    pub fn open(rel: &str) -> Self {
        let path = fixture(rel);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { bytes, path }
    }

    /// Names of every tensor.
    pub fn names(&self) -> Vec<String> {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).expect("valid fixture");
        let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
        names.sort();
        names
    }

    /// Values and shape of `name` (f32 only).
    pub fn get(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).expect("valid fixture");
        let view = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("{} has no tensor `{name}`", self.path.display()));
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (data, view.shape().to_vec())
    }

    /// `name` as a burn tensor.
    pub fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D> {
        let (data, shape) = self.get(name);
        Tensor::from_data(TensorData::new(data, shape), device)
    }
}

/// Largest absolute difference; panics on a shape mismatch.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Values of a tensor.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 tensor")
}
