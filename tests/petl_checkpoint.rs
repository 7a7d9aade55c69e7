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

/// A registered method (IA³) travels in adapter files like the paper's: its config in the
/// metadata (`"methods": [{"ia3": …}]`), its vectors by module path.
#[test]
fn a_registered_method_saves_and_loads() {
    use burn::module::Param;
    use burn::tensor::{Distribution, Tensor};
    use petl_ast::petl::registry::LayerAddition;
    use petl_ast::petl::Method;

    let (checkpoint, hash) = base();
    let mut model = common::petl_model(&checkpoint, Method::Ia3, 4);
    let random = |p: Option<Param<Tensor<1>>>| {
        p.map(|p| {
            let n = p.dims()[0];
            Param::from_tensor(Tensor::random(
                [n],
                Distribution::Uniform(0.5, 1.5),
                &device(),
            ))
        })
    };
    for hooks in &mut model.hooks {
        let [LayerAddition::Ia3(ia3)] = hooks.added.as_mut_slice() else {
            panic!("expected one IA3 module per layer");
        };
        ia3.key = random(ia3.key.take());
        ia3.value = random(ia3.value.take());
        ia3.mlp_hidden = random(ia3.mlp_hidden.take());
    }
    let input = Reference::open("models/ast-tiny-s10/reference.safetensors")
        .tensor::<3>("input_values", &device());
    let expected = values(model.forward(input.clone()));
    let meta = metadata(&model, &hash);
    let bytes = model.adapter_bytes(&meta);
    let header = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_string();
    assert!(header.contains("ia3"), "the metadata does not name IA3");
    let (loaded, loaded_meta) = reload(&bytes, &hash).unwrap();
    assert_eq!(loaded_meta, meta);
    assert_eq!(values(loaded.forward(input)), expected, "logits changed");
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

/// An adapter file whose metadata declares sizes to allocate (thousands of millions of prompt
/// tokens, classes, frames) is refused before anything is allocated for them.
#[test]
fn declared_sizes_beyond_the_limits_are_refused_by_name() {
    let (_, hash) = base();
    let (model, _) = model_for(&case("adapter_pfeiffer_par"), &device());
    let rewrite = |edit: &dyn Fn(&mut serde_json::Value)| {
        let bytes = model.adapter_bytes(&metadata(&model, &hash));
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let mut meta = header.metadata().clone().unwrap();
        let mut petl: serde_json::Value = serde_json::from_str(&meta["petl_ast"]).unwrap();
        edit(&mut petl);
        meta.insert("petl_ast".into(), petl.to_string());
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        safetensors::serialize(st.tensors(), Some(meta)).unwrap()
    };
    let huge_prompt =
        rewrite(&|m| m["petl"]["prompt"] = serde_json::json!({"length": 1u64 << 40, "deep": true}));
    let err = reload(&huge_prompt, &hash)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("adapter.safetensors") && err.contains("prompt length must be 1..=4096"),
        "{err}"
    );
    let huge_kernel = rewrite(&|m| {
        m["petl"]["adapters"][0]["block"] = "conformer".into();
        m["petl"]["adapters"][0]["kernel_size"] = (1u64 << 33 | 1).into();
    });
    let err = reload(&huge_kernel, &hash)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("kernel size must be at most 1023"), "{err}");
    let many_labels = rewrite(&|m| m["labels"] = vec![""; 70_000].into());
    let err = reload(&many_labels, &hash)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("70000 labels") && err.contains("corrupt"),
        "{err}"
    );
    let long_input = rewrite(&|m| m["max_length"] = (1u64 << 40).into());
    let err = reload(&long_input, &hash).expect_err("refused").to_string();
    assert!(err.contains("1099511627776 input frames"), "{err}");
}

/// A PETL_AST state_dict whose (empty) head declares 2^40 classes: refused, not allocated.
#[test]
fn a_state_dict_declaring_a_huge_empty_head_is_refused() {
    use petl_ast::pipeline::Classifier;
    use safetensors::{tensor::TensorView, Dtype};
    let (checkpoint, _) = base();
    let head = TensorView::new(Dtype::F32, vec![1 << 40, 0], &[]).unwrap();
    let bytes = safetensors::serialize([("classification_head.weight", head)], None).unwrap();
    let petl = petl_ast::petl::PetlConfig::default();
    let err = Classifier::with_petl_ast(
        &checkpoint,
        &petl,
        None,
        &bytes,
        "sd.safetensors",
        &device(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("sd.safetensors") && err.contains("1..=65536 classes"),
        "{err}"
    );
}
