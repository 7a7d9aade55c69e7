//! Adapter-only checkpoints: save → load onto the same base gives identical logits; the wrong base
//! or a tampered file is refused with a clear error.

mod common;

use common::petl_cases::{case, model_for};
use common::{device, fixture, values, Reference};
use petl_ast::model::{Checkpoint, LoadError, LoadOptions};
use petl_ast::petl::checkpoint::sha256_hex;
use petl_ast::petl::{AdapterMetadata, PetlModel};

fn base() -> (Checkpoint, String) {
    let checkpoint = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let hash = sha256_hex(&checkpoint.weights);
    (checkpoint, hash)
}

fn metadata(model: &PetlModel, hash: &str) -> AdapterMetadata {
    AdapterMetadata {
        petl: model.config.clone(),
        base_model: "ast-tiny-s10".into(),
        base_sha256: hash.to_string(),
        labels: (0..model.num_classes())
            .map(|i| format!("class {i}"))
            .collect(),
        max_length: model.ast.max_length,
    }
}

fn reload(bytes: &[u8], hash: &str) -> Result<(PetlModel, AdapterMetadata), LoadError> {
    let (checkpoint, _) = base();
    let ast = checkpoint
        .load_backbone(&LoadOptions::default(), &device())
        .unwrap();
    PetlModel::from_adapter_bytes(
        bytes,
        "adapter.safetensors",
        ast,
        &checkpoint.config,
        hash,
        &device(),
    )
}

#[test]
fn save_then_load_gives_identical_logits() {
    let (_, hash) = base();
    let input = Reference::open("models/ast-tiny-s10/reference.safetensors")
        .tensor::<3>("input_values", &device());
    for name in [
        "adapter_houlsby_par",
        "conformer_pfeiffer_par",
        "dpt",
        "bitfit",
        "lora_qkvo",
        "soft_moa_ffn",
    ] {
        let (model, _) = model_for(&case(name), &device());
        let expected = values(model.forward(input.clone()));
        let meta = metadata(&model, &hash);
        let bytes = model.adapter_bytes(&meta);
        // Only trained tensors travel: far smaller than the backbone.
        let (checkpoint, _) = base();
        assert!(
            bytes.len() * 4 < checkpoint.weights.len(),
            "{name}: adapter file is {} bytes",
            bytes.len()
        );
        let (loaded, loaded_meta) = reload(&bytes, &hash).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(loaded_meta, meta);
        assert_eq!(
            values(loaded.forward(input.clone())),
            expected,
            "{name}: logits changed"
        );
    }
}

#[test]
fn an_adapter_for_another_base_is_refused() {
    let (_, hash) = base();
    let (model, _) = model_for(&case("adapter_pfeiffer_par"), &device());
    let bytes = model.adapter_bytes(&metadata(&model, &hash));
    let other = "0".repeat(64);
    let err = reload(&bytes, &other).expect_err("must fail").to_string();
    assert!(
        err.contains("adapter.safetensors") && err.contains("ast-tiny-s10"),
        "{err}"
    );
}

#[test]
fn foreign_and_truncated_files_are_refused() {
    let (_, hash) = base();
    // A PETL_AST state_dict is not our format: the error says which flag to use instead.
    let foreign = std::fs::read(fixture("petl/adapter_pfeiffer_par.safetensors")).unwrap();
    let err = reload(&foreign, &hash).expect_err("must fail").to_string();
    assert!(err.contains("--import-petl-ast"), "{err}");

    let (model, _) = model_for(&case("adapter_pfeiffer_par"), &device());
    let bytes = model.adapter_bytes(&metadata(&model, &hash));
    let err = reload(&bytes[..bytes.len() - 100], &hash).expect_err("must fail");
    assert!(matches!(err, LoadError::Safetensors { .. }), "{err}");
}
