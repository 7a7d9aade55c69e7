//! `checkpoint`: `model.safetensors` bytes loaded into the tiny AST.

use burn::tensor::Tensor;

use crate::model::{Checkpoint, LoadError, LoadOptions, PositionMode};

use super::tiny::TINY_CONFIG_JSON;
use super::{assert_names, device};

const WEIGHTS: &str = "m/model.safetensors";

/// Loads `data` as the weights of the tiny config one of three ways (picked by the length, so
/// that one input costs one load): the full classifier, the backbone for 64 frames (position
/// embeddings interpolated), or the backbone with a new 3-class head. Contract: errors name the
/// weights file (the header is checked before any tensor is allocated: sizes beyond the file,
/// overlapping or out-of-range offsets, wrong dtypes and shapes are errors); a loaded model has
/// the shapes of the config.
pub fn checkpoint(data: &[u8]) {
    let checkpoint = match Checkpoint::from_parts(
        TINY_CONFIG_JSON,
        "m/config.json",
        None,
        data.to_vec(),
        WEIGHTS,
    ) {
        Ok(c) => c,
        Err(e) => return check(&e),
    };
    let device = device();
    let (options, classes) = match data.len() % 3 {
        0 => (LoadOptions::default(), 10),
        1 => (
            LoadOptions {
                max_length: Some(64),
                position: PositionMode::Adapt,
                new_head: None,
            },
            10,
        ),
        _ => (
            LoadOptions {
                new_head: Some(3),
                ..Default::default()
            },
            3,
        ),
    };
    match checkpoint.load_classifier(&options, &device) {
        Ok(model) => {
            let tokens = if options.max_length == Some(64) {
                62
            } else {
                110
            };
            assert_eq!(model.ast.embeddings.position.dims(), [1, tokens, 64]);
            assert_eq!(model.head.dense.weight.dims(), [64, classes]);
            if data.len().is_multiple_of(7) {
                // Now and then, run it: loaded values (NaN included) must not break the forward.
                let logits = model.forward(Tensor::zeros([1, model.ast.max_length, 128], &device));
                assert_eq!(logits.dims(), [1, classes]);
            }
        }
        Err(e) => check(&e),
    }
}

fn check(e: &LoadError) {
    assert_names(&e.to_string(), WEIGHTS);
}
