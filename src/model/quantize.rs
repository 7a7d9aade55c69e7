//! Smaller `model.safetensors` files: half-precision storage, or int8 Linear weights.
//!
//! - `f16` / `bf16`: every floating-point tensor stored in half precision, as the hub's fp16
//!   exports; the loader widens them to f32.
//! - `int8`: per-output-channel symmetric quantisation of the 2-D Linear weights of the encoder
//!   (`W[o, :] ≈ scale[o] · q[o, :]`, `q` in −127…127, `scale[o] = max |W[o, :]| / 127`), stored as
//!   an `I8` tensor under the weight's name and an f32 `[out]` tensor under `<name>_scale`; the
//!   loader ([`super::weights::Weights`]) dequantises them. Embeddings, LayerNorms, biases and the
//!   classifier head stay f32.

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::error::LoadError;

/// Storage of a quantised file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum StorageDtype {
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
    /// int8 Linear weights with per-output-channel f32 scales.
    Int8,
}

/// Suffix of the scale tensor that goes with an int8 weight.
pub const SCALE_SUFFIX: &str = "_scale";

/// Whether `name` (shape `shape`) is quantised to int8: a 2-D `.weight` outside the embeddings
/// and the classifier head.
fn is_int8_weight(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2
        && name.ends_with(".weight")
        && !name.contains("embeddings.")
        && !name.starts_with("classifier.")
}

/// `model.safetensors` bytes (`source` names them in errors) rewritten with `dtype` storage.
pub fn quantize(bytes: &[u8], source: &str, dtype: StorageDtype) -> Result<Vec<u8>, LoadError> {
    let bad = |message: String| LoadError::Safetensors {
        file: source.to_string(),
        message,
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let mut out: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in tensors.tensors() {
        let shape = view.shape().to_vec();
        let Some(values) = super::weights::to_f32(view.dtype(), view.data()) else {
            // Integer tensors (none in an AST checkpoint) are copied as they are.
            out.push((name, view.dtype(), shape, view.data().to_vec()));
            continue;
        };
        match dtype {
            StorageDtype::F16 => out.push((
                name,
                Dtype::F16,
                shape,
                values
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect(),
            )),
            StorageDtype::Bf16 => out.push((
                name,
                Dtype::BF16,
                shape,
                values
                    .iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect(),
            )),
            StorageDtype::Int8 if is_int8_weight(&name, &shape) => {
                let (q, scales) = quantize_rows(&values, shape[1].max(1));
                out.push((
                    format!("{name}{SCALE_SUFFIX}"),
                    Dtype::F32,
                    vec![shape[0]],
                    scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
                ));
                out.push((name, Dtype::I8, shape, q.iter().map(|&v| v as u8).collect()));
            }
            StorageDtype::Int8 => out.push((
                name,
                Dtype::F32,
                shape,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )),
        }
    }
    let views = out
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|view| (name.clone(), view))
                .map_err(|e| bad(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut metadata: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
    metadata.insert(
        "petl_ast_storage".into(),
        format!("{dtype:?}").to_lowercase(),
    );
    safetensors::serialize(views, Some(metadata)).map_err(|e| bad(e.to_string()))
}

/// Symmetric int8 quantisation of each row of a row-major matrix with `cols` columns: the values
/// and one scale per row (`max |row| / 127`; 1 for an all-zero row).
pub fn quantize_rows(values: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / cols);
    for row in values.chunks(cols) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 && max.is_finite() {
            max / 127.0
        } else {
            1.0
        };
        scales.push(scale);
        q.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

/// The f32 values of int8 rows (`q` row-major, one scale per row).
pub fn dequantize_rows(q: &[i8], scales: &[f32]) -> Option<Vec<f32>> {
    if scales.is_empty() || !q.len().is_multiple_of(scales.len()) {
        return None;
    }
    let cols = q.len() / scales.len();
    Some(
        q.iter()
            .enumerate()
            .map(|(i, &v)| v as f32 * scales[i / cols.max(1)])
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_rows_round_trip_within_half_a_step() {
        let values: Vec<f32> = (0..24).map(|i| ((i * 37) % 11) as f32 - 5.3).collect();
        let (q, scales) = quantize_rows(&values, 6);
        assert_eq!(scales.len(), 4);
        let back = dequantize_rows(&q, &scales).unwrap();
        for (i, (a, b)) in values.iter().zip(&back).enumerate() {
            assert!((a - b).abs() <= scales[i / 6] / 2.0 + 1e-6, "{a} vs {b}");
        }
        // The largest value of each row is exact.
        assert!(q.iter().any(|&v| v == 127 || v == -127));
        assert_eq!(dequantize_rows(&q, &[1.0; 5]), None);
    }

    #[test]
    fn only_encoder_linear_weights_become_int8() {
        assert!(is_int8_weight(
            "encoder.layer.0.attention.attention.query.weight",
            &[768, 768]
        ));
        assert!(is_int8_weight(
            "encoder.layer.3.intermediate.dense.weight",
            &[3072, 768]
        ));
        assert!(!is_int8_weight(
            "encoder.layer.0.attention.attention.query.bias",
            &[768]
        ));
        assert!(!is_int8_weight(
            "encoder.layer.0.layernorm_before.weight",
            &[768]
        ));
        assert!(!is_int8_weight("classifier.dense.weight", &[527, 768]));
        assert!(!is_int8_weight(
            "embeddings.patch_embeddings.projection.weight",
            &[768, 1, 16, 16]
        ));
    }
}
