//! Quantised checkpoints (`petl_ast::model::quantize`): each storage loads through the ordinary
//! loader and gives `transformers`' logits within its precision, with the same top class; an int8
//! weight without its scales is refused with the tensor's name.

mod common;

use common::{device, fixture, max_abs_diff, values, Reference};
use petl_ast::model::quantize::{quantize, StorageDtype, SCALE_SUFFIX};
use petl_ast::model::{Checkpoint, LoadError, LoadOptions};
use safetensors::SafeTensors;

fn with_weights(base: &Checkpoint, weights: Vec<u8>) -> Result<Checkpoint, LoadError> {
    Checkpoint::from_parts(
        &base.config.to_json(),
        "config.json",
        None,
        weights,
        "quantized/model.safetensors",
    )
}

fn argmax_rows(logits: &[f32], classes: usize) -> Vec<usize> {
    logits
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0
        })
        .collect()
}

#[test]
fn quantised_checkpoints_keep_the_logits_within_their_precision() {
    let device = device();
    let dir = fixture("models/ast-tiny-s10");
    let base = Checkpoint::from_dir(&dir).unwrap();
    let reference = Reference::open("models/ast-tiny-s10/reference.safetensors");
    let (expected, _) = reference.get("logits");
    let classes = base.config.num_labels();
    for (dtype, tolerance, max_bytes) in [
        (StorageDtype::F16, 5e-3, 0.55),
        (StorageDtype::Bf16, 5e-2, 0.55),
        (StorageDtype::Int8, 5e-2, 0.5),
    ] {
        let bytes = quantize(&base.weights, "model.safetensors", dtype).unwrap();
        let ratio = bytes.len() as f64 / base.weights.len() as f64;
        assert!(ratio <= max_bytes, "{dtype:?}: {ratio} of the f32 size");
        let checkpoint = with_weights(&base, bytes).unwrap();
        let model = checkpoint
            .load_classifier(&LoadOptions::default(), &device)
            .unwrap();
        let logits = values(model.forward(reference.tensor::<3>("input_values", &device)));
        let err = max_abs_diff(&logits, &expected);
        assert!(err <= tolerance, "{dtype:?}: logits differ by {err}");
        assert!(err > 0.0, "{dtype:?}: nothing was quantised");
        assert_eq!(
            argmax_rows(&logits, classes),
            argmax_rows(&expected, classes),
            "{dtype:?}"
        );
    }
}

#[test]
fn int8_stores_linear_weights_with_scales_and_keeps_the_rest_f32() {
    let base = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let bytes = quantize(&base.weights, "model.safetensors", StorageDtype::Int8).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let query = file
        .names()
        .into_iter()
        .find(|n| n.ends_with("attention.attention.query.weight"))
        .unwrap()
        .to_string();
    assert_eq!(file.tensor(&query).unwrap().dtype(), safetensors::Dtype::I8);
    let scale = file.tensor(&format!("{query}{SCALE_SUFFIX}")).unwrap();
    assert_eq!(scale.dtype(), safetensors::Dtype::F32);
    assert_eq!(scale.shape(), &[base.config.hidden_size]);
    for name in file.names() {
        let dtype = file.tensor(name).unwrap().dtype();
        if name.starts_with("classifier.") || name.contains("layernorm") || name.ends_with("bias") {
            assert_eq!(dtype, safetensors::Dtype::F32, "{name}");
        }
    }

    // The same file without the query's scales: refused, naming the weight and its scales.
    let kept: Vec<(String, safetensors::tensor::TensorView)> = file
        .tensors()
        .into_iter()
        .filter(|(n, _)| *n != format!("{query}{SCALE_SUFFIX}"))
        .collect();
    let broken = safetensors::serialize(kept, None).unwrap();
    let err = with_weights(&base, broken)
        .unwrap()
        .load_classifier(&LoadOptions::default(), &device())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&query) && err.contains(SCALE_SUFFIX), "{err}");
}
