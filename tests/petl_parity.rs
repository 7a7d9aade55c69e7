//! Every PETL method against an independent PyTorch implementation (`scripts/make_petl_fixtures.py`,
//! cross-checked against the PETL_AST reference classes): the fixture's trained tensors, saved
//! under PETL_AST's key names, are imported onto the Rust model and the logits must match.

mod common;

use common::petl_cases::{cases, model_for};
use common::{device, max_abs_diff, values, Reference};

const TOL: f32 = 1e-4;

#[test]
fn every_method_matches_the_pytorch_reference() {
    let base = Reference::open("models/ast-tiny-s10/reference.safetensors");
    let mut failures = Vec::new();
    for case in cases() {
        let name = case["name"].as_str().unwrap().to_string();
        let (model, max_length) = model_for(&case, &device());
        let key = if max_length == 100 {
            "input_values".to_string()
        } else {
            format!("input_values.L{max_length}")
        };
        let input = base.tensor::<3>(&key, &device());
        let logits = values(model.forward(input));
        let expected = Reference::open(&format!("petl/{name}.safetensors"))
            .get("logits")
            .0;
        let err = max_abs_diff(&logits, &expected);
        println!("{name:32} max |logits - reference| = {err:.2e}");
        if err > TOL {
            failures.push(format!("{name}: {err}"));
        }
    }
    assert!(failures.is_empty(), "logits differ: {failures:#?}");
}
