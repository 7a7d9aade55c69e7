//! Reading named tensors out of a safetensors file into burn modules.
//!
//! Hugging Face key strings appear only where a layer is loaded (`path.pp("attention")`); the
//! reader collects every problem (missing, wrong shape, unsupported dtype) and reports them all at
//! once in [`Weights::finish`], together with the tensors nobody asked for.

use std::cell::RefCell;
use std::collections::BTreeSet;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::error::{LoadError, TensorProblem};
use super::norm::LayerNorm;

/// A parsed safetensors file on its way into a model.
pub struct Weights<'a> {
    tensors: SafeTensors<'a>,
    source: String,
    device: Device,
    used: RefCell<BTreeSet<String>>,
    problems: RefCell<Vec<TensorProblem>>,
}

/// A name prefix inside [`Weights`], e.g. `encoder.layer.3`.
#[derive(Clone)]
pub struct WeightPath<'w, 'a> {
    weights: &'w Weights<'a>,
    prefix: String,
}

/// Host copy of one tensor, converted to `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Values in row-major order.
    pub data: Vec<f32>,
    /// Shape.
    pub shape: Vec<usize>,
}

impl<'a> Weights<'a> {
    /// Parses the safetensors header of `bytes`; `source` names the file in errors.
    pub fn from_bytes(bytes: &'a [u8], source: &str, device: &Device) -> Result<Self, LoadError> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| LoadError::Safetensors {
            file: source.to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            tensors,
            source: source.to_string(),
            device: device.clone(),
            used: RefCell::default(),
            problems: RefCell::default(),
        })
    }

    /// The file name given at construction.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The device tensors are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the file has a tensor of this full name.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.names().contains(&name)
    }

    /// Number of values (elements) of every tensor in the file, from the header alone.
    pub fn total_values(&self) -> u128 {
        self.tensors
            .iter()
            .map(|(_, view)| view.shape().iter().map(|&n| n as u128).product::<u128>())
            .sum()
    }

    /// All tensor names in the file.
    pub fn names(&self) -> Vec<String> {
        self.tensors.names().into_iter().map(String::from).collect()
    }

    /// The root path (no prefix).
    pub fn root<'w>(&'w self) -> WeightPath<'w, 'a> {
        WeightPath {
            weights: self,
            prefix: String::new(),
        }
    }

    /// Marks every tensor whose name starts with `prefix` as deliberately unused.
    pub fn skip_prefix(&self, prefix: &str) {
        let mut used = self.used.borrow_mut();
        for name in self.tensors.names() {
            if name.starts_with(prefix) {
                used.insert(name.to_string());
            }
        }
    }

    /// Reads a tensor to the host as `f32`, recording it as used. `None` (and a recorded problem)
    /// when it is missing or has an unsupported dtype; `expected` only serves the message.
    pub fn host(&self, name: &str, expected: &[usize]) -> Option<HostTensor> {
        let view = match self.tensors.tensor(name) {
            Ok(view) => view,
            Err(_) => {
                self.problem(TensorProblem::Missing {
                    name: name.to_string(),
                    expected: expected.to_vec(),
                });
                return None;
            }
        };
        self.used.borrow_mut().insert(name.to_string());
        let data = match view.dtype() {
            Dtype::I8 => self.dequantized(name, view.data()),
            dtype => to_f32(dtype, view.data()),
        };
        let data = match data {
            Some(data) => data,
            None if view.dtype() == Dtype::I8 => {
                self.problem(TensorProblem::Dtype {
                    name: name.to_string(),
                    dtype: format!(
                        "I8 without a matching f32 scale tensor {name}{}",
                        super::quantize::SCALE_SUFFIX
                    ),
                });
                return None;
            }
            None => {
                self.problem(TensorProblem::Dtype {
                    name: name.to_string(),
                    dtype: format!("{:?}", view.dtype()),
                });
                return None;
            }
        };
        Some(HostTensor {
            data,
            shape: view.shape().to_vec(),
        })
    }

    /// The f32 values of the int8 tensor `name` (bytes `q`) and its per-row scales
    /// (`<name>_scale`, [`super::quantize`]), marking the scales used; `None` when they are
    /// missing or do not fit.
    fn dequantized(&self, name: &str, q: &[u8]) -> Option<Vec<f32>> {
        let scale_name = format!("{name}{}", super::quantize::SCALE_SUFFIX);
        let scales = self.tensors.tensor(&scale_name).ok()?;
        self.used.borrow_mut().insert(scale_name);
        let scales = to_f32(scales.dtype(), scales.data())?;
        let q: Vec<i8> = q.iter().map(|&b| b as i8).collect();
        super::quantize::dequantize_rows(&q, &scales)
    }

    /// Reads a tensor of exactly `shape`. On any problem, records it and returns zeros so that
    /// loading can go on and report every problem at once.
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Tensor<D> {
        match self.host_with_shape(name, &shape) {
            Some(host) => Tensor::from_data(TensorData::new(host.data, shape), &self.device),
            None => Tensor::zeros(shape, &self.device),
        }
    }

    /// [`Weights::host`] that also checks the shape.
    pub fn host_with_shape(&self, name: &str, shape: &[usize]) -> Option<HostTensor> {
        let host = self.host(name, shape)?;
        if host.shape != shape {
            self.problem(TensorProblem::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: host.shape,
            });
            return None;
        }
        Some(host)
    }

    /// Records a problem to be reported by [`Weights::finish`].
    pub fn problem(&self, problem: TensorProblem) {
        self.problems.borrow_mut().push(problem);
    }

    /// Ends loading: an error listing every problem and every tensor of the file that was not
    /// used, or `Ok`.
    pub fn finish(self) -> Result<(), LoadError> {
        let used = self.used.into_inner();
        let mut problems = self.problems.into_inner();
        let mut unexpected: Vec<_> = self
            .tensors
            .names()
            .into_iter()
            .filter(|n| !used.contains(*n))
            .map(|n| TensorProblem::Unexpected {
                name: n.to_string(),
            })
            .collect();
        unexpected.sort_by_key(|p| p.to_string());
        problems.extend(unexpected);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LoadError::Tensors {
                file: self.source,
                problems,
            })
        }
    }
}

impl<'w, 'a> WeightPath<'w, 'a> {
    /// The full name of `name` under this path.
    pub fn name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The sub-path `name` under this path (`pp` as in candle's `VarBuilder`).
    pub fn pp(&self, name: impl std::fmt::Display) -> WeightPath<'w, 'a> {
        WeightPath {
            weights: self.weights,
            prefix: self.name(&name.to_string()),
        }
    }

    /// The reader behind this path.
    pub fn weights(&self) -> &'w Weights<'a> {
        self.weights
    }

    /// A tensor of exactly `shape` named `name` under this path.
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Param<Tensor<D>> {
        Param::from_tensor(self.weights.tensor(&self.name(name), shape))
    }

    /// A PyTorch `nn.Linear` stored as `weight` `[d_output, d_input]` and `bias` `[d_output]`,
    /// as a burn [`Linear`] (weight `[d_input, d_output]`).
    pub fn linear(&self, d_input: usize, d_output: usize, bias: bool) -> Linear {
        let name = self.name("weight");
        let weight = match self.weights.host_with_shape(&name, &[d_output, d_input]) {
            Some(host) => {
                let transposed = transpose(&host.data, d_output, d_input);
                Tensor::from_data(
                    TensorData::new(transposed, [d_input, d_output]),
                    &self.weights.device,
                )
            }
            None => Tensor::zeros([d_input, d_output], &self.weights.device),
        };
        Linear {
            weight: Param::from_tensor(weight),
            bias: bias.then(|| self.tensor("bias", [d_output])),
        }
    }

    /// A PyTorch `nn.LayerNorm` stored as `weight` and `bias`.
    pub fn layer_norm(&self, d: usize, epsilon: f64) -> LayerNorm {
        LayerNorm {
            gamma: self.tensor("weight", [d]),
            beta: Some(self.tensor("bias", [d])),
            epsilon,
        }
    }
}

/// A named f32 tensor on the host: `(name, values, shape)`.
pub type NamedTensor = (String, Vec<f32>, Vec<usize>);

/// A tensor of `values` in `shape`, on `like`'s device and tracked for gradients when `like` is:
/// what replaces a parameter's value when a file is loaded into it.
pub fn replacement<const D: usize>(like: &Tensor<D>, values: &[f32], shape: &[usize]) -> Tensor<D> {
    let fresh = Tensor::from_data(
        TensorData::new(values.to_vec(), shape.to_vec()),
        &like.device(),
    );
    if like.is_require_grad() {
        fresh.require_grad()
    } else {
        fresh
    }
}

/// Serialises f32 tensors (and string metadata) into safetensors bytes.
pub fn serialize_f32(
    tensors: Vec<NamedTensor>,
    metadata: std::collections::HashMap<String, String>,
) -> Vec<u8> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .into_iter()
        .map(|(name, values, shape)| {
            (
                name,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                shape,
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(name, data, shape)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .expect("shape and data agree");
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, Some(metadata)).expect("valid tensors serialise")
}

/// Transposes a row-major `rows × cols` matrix.
pub(crate) fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// Converts little-endian tensor bytes to `f32`; `None` for non-float dtypes.
pub(crate) fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let values = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        _ => return None,
    };
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_rows_and_columns() {
        assert_eq!(
            transpose(&[1., 2., 3., 4., 5., 6.], 2, 3),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }

    #[test]
    fn converts_half_precision() {
        let bytes: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        assert_eq!(to_f32(Dtype::BF16, &bytes), Some(vec![1.5, -2.0]));
        let bytes: Vec<u8> = [0.25f32]
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        assert_eq!(to_f32(Dtype::F16, &bytes), Some(vec![0.25]));
        assert_eq!(to_f32(Dtype::I64, &[0; 8]), None);
    }
}
