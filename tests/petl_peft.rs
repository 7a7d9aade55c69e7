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

/// IA³ against PEFT's `IA3Config` (`scripts/make_ia3_fixture.py`): PEFT's trained vectors, set
/// on the Rust model, give PEFT's encoder output; a fresh IA³ model is the base model.
#[test]
fn ia3_reproduces_peft_ia3() {
    use burn::module::Param;
    use petl_ast::petl::registry::LayerAddition;
    use petl_ast::petl::Method;

    let checkpoint = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let reference = Reference::open("peft/ia3/reference.safetensors");
    let input = Reference::open("models/ast-tiny-s10/reference.safetensors")
        .tensor::<3>("input_values", &device());
    let mut model = common::petl_model(&checkpoint, Method::Ia3, 3);

    let fresh = values(model.encode(input.clone()));
    let base = reference.get("base_last_hidden_state").0;
    let err = max_abs_diff(&fresh, &base);
    assert!(
        err <= 1e-4,
        "a fresh IA3 model differs from the base by {err}"
    );

    let vectors = Reference::open("peft/ia3/adapter_model.safetensors");
    let vector = |layer: usize, module: &str| {
        let name =
            format!("base_model.model.audio_spectrogram_transformer.layers.{layer}.{module}.ia3_l");
        let (values, _) = vectors.get(&name);
        let n = values.len();
        Some(Param::from_tensor(burn::tensor::Tensor::<1>::from_data(
            burn::tensor::TensorData::new(values, [n]),
            &device(),
        )))
    };
    for (i, hooks) in model.hooks.iter_mut().enumerate() {
        let [LayerAddition::Ia3(ia3)] = hooks.added.as_mut_slice() else {
            panic!("layer {i}: expected one IA3 module, got {:?}", hooks.added);
        };
        ia3.key = vector(i, "attention.k_proj");
        ia3.value = vector(i, "attention.v_proj");
        ia3.mlp_hidden = vector(i, "mlp.fc2");
    }
    let hidden = values(model.encode(input));
    let expected = reference.get("last_hidden_state").0;
    let err = max_abs_diff(&hidden, &expected);
    assert!(err <= 1e-4, "encoder output differs from PEFT's by {err}");
    assert!(
        max_abs_diff(&hidden, &base) > 1e-2,
        "the IA3 vectors changed nothing"
    );
}
