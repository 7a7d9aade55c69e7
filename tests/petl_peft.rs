//! A Hugging Face PEFT LoRA folder (made by `scripts/make_peft_fixture.py` with peft) merged into
//! the base classifier reproduces PEFT's logits, in both the transformers-5 and the hub spelling.

mod common;

use common::{device, fixture, max_abs_diff, values, Reference};
use petl_ast::model::{Checkpoint, LoadError, LoadOptions};
use petl_ast::petl::peft::merge_peft_lora;

#[test]
fn peft_lora_reproduces_peft_logits() {
    let checkpoint = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let input = Reference::open("models/ast-tiny-s10/reference.safetensors")
        .tensor::<3>("input_values", &device());
    let base = values(
        checkpoint
            .load_classifier(&LoadOptions::default(), &device())
            .unwrap()
            .forward(input.clone()),
    );
    for folder in ["lora-qv", "lora-qv-hubnames"] {
        let model = checkpoint
            .load_classifier(&LoadOptions::default(), &device())
            .unwrap();
        let model = merge_peft_lora(model, &fixture(&format!("peft/{folder}"))).unwrap();
        let logits = values(model.forward(input.clone()));
        let expected = Reference::open(&format!("peft/{folder}/reference.safetensors"))
            .get("logits")
            .0;
        let err = max_abs_diff(&logits, &expected);
        assert!(err <= 1e-4, "{folder}: logits differ by {err}");
        assert!(
            max_abs_diff(&logits, &base) > 1e-2,
            "{folder}: the adapter changed nothing"
        );
    }
}

#[test]
fn a_broken_peft_folder_names_the_file() {
    let checkpoint = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let model = checkpoint
        .load_classifier(&LoadOptions::default(), &device())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("adapter_config.json"),
        r#"{"r": 0, "lora_alpha": 8}"#,
    )
    .unwrap();
    let err = merge_peft_lora(model, dir.path()).unwrap_err();
    assert!(
        matches!(err, LoadError::Config { .. }) && err.to_string().contains("got 0"),
        "{err}"
    );
}
