//! `adapter`: petl-ast adapter files, PETL_AST state_dicts and PEFT LoRA folders on the tiny base.

use std::sync::OnceLock;

use crate::model::{AstForAudioClassification, Checkpoint, LoadError, LoadOptions};
use crate::petl::checkpoint::read_metadata;
use crate::petl::peft::merge_peft_lora_bytes;
use crate::petl::{PetlConfig, PetlModel};
use crate::pipeline::{Classifier, PipelineError};

use super::tiny::{tiny_config, tiny_weights, TINY_CONFIG_JSON};
use super::{assert_names, device};

const ADAPTER: &str = "a/adapter.safetensors";
const STATE_DICT: &str = "a/petl_ast.safetensors";
const PEFT_CONFIG: &str = "p/adapter_config.json";
const PEFT_WEIGHTS: &str = "p/adapter_model.safetensors";

/// How the bytes of an `adapter` input are read: byte 0 (modulo 3) picks the importer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AdapterInput {
    /// The rest is a petl-ast adapter file (`--adapter`).
    PetlAst = 0,
    /// Byte 1 picks the method ([`PETL_AST_METHODS`], modulo), the rest is a PETL_AST
    /// state_dict (`--import-petl-ast`).
    PetlAstStateDict = 1,
    /// `json_len: u16 LE`, then `adapter_config.json`, then `adapter_model.safetensors`
    /// (`--import-peft`).
    Peft = 2,
}

/// Method configurations of the PETL_AST fixtures (`tests/fixtures/petl/<name>.safetensors`),
/// by fixture name.
pub const PETL_AST_METHODS: &[(&str, &str)] = &[
    ("linear_all", r#"{}"#),
    ("bitfit", r#"{"backbone": "bitfit"}"#),
    ("dpt", r#"{"prompt": {"length": 4, "deep": true}}"#),
    ("prefix", r#"{"prefix": {"length": 4}}"#),
    (
        "lora_qkvo",
        r#"{"lora": {"reduction_rate": 16, "alpha": 8, "targets": ["q", "k", "v", "o"]}}"#,
    ),
    (
        "adapter_houlsby_par",
        r#"{"adapters": [
            {"location": "MHSA", "block": "bottleneck", "insertion": "parallel", "position": "before", "reduction_rate": 8},
            {"location": "FFN", "block": "bottleneck", "insertion": "parallel", "position": "before", "reduction_rate": 8}]}"#,
    ),
    (
        "ablation_mhsa_seq_before",
        r#"{"adapters": [{"location": "MHSA", "block": "bottleneck", "insertion": "sequential", "position": "before", "residual": true, "reduction_rate": 8}]}"#,
    ),
    (
        "convpass_pfeiffer_par",
        r#"{"adapters": [{"location": "FFN", "block": "convpass", "insertion": "parallel", "position": "before", "reduction_rate": 8}]}"#,
    ),
    (
        "conformer_pfeiffer_par",
        r#"{"adapters": [{"location": "FFN", "block": "conformer", "insertion": "parallel", "position": "before", "reduction_rate": 8, "kernel_size": 5}]}"#,
    ),
    (
        "hydra_ffn",
        r#"{"adapters": [
            {"location": "FFN", "block": "bottleneck", "insertion": "sequential", "position": "after", "residual": true, "reduction_rate": 8},
            {"location": "FFN", "block": "bottleneck", "insertion": "parallel", "position": "before", "reduction_rate": 8}]}"#,
    ),
    (
        "adapter_dpt_lora",
        r#"{"prompt": {"length": 4, "deep": true},
            "lora": {"reduction_rate": 16, "alpha": 8, "targets": ["q", "v"]},
            "adapters": [{"location": "FFN", "block": "bottleneck", "insertion": "parallel", "position": "before", "reduction_rate": 8}]}"#,
    ),
    (
        "dense_moa_ffn",
        r#"{"moa": {"kind": "dense", "location": "FFN", "experts": 3, "reduction_rate": 16}}"#,
    ),
    (
        "soft_moa_ffn",
        r#"{"moa": {"kind": "soft", "location": "FFN", "experts": 3, "reduction_rate": 16, "slots": 2}}"#,
    ),
];

/// The tiny base checkpoint.
fn base() -> &'static Checkpoint {
    static BASE: OnceLock<Checkpoint> = OnceLock::new();
    BASE.get_or_init(|| {
        Checkpoint::from_parts(
            TINY_CONFIG_JSON,
            "tiny/config.json",
            None,
            tiny_weights().to_vec(),
            "tiny/model.safetensors",
        )
        .expect("valid tiny checkpoint")
    })
}

/// The tiny classifier PEFT updates merge into.
fn base_classifier() -> &'static AstForAudioClassification {
    static MODEL: OnceLock<AstForAudioClassification> = OnceLock::new();
    MODEL.get_or_init(|| {
        base()
            .load_classifier(&LoadOptions::default(), &device())
            .expect("tiny base loads")
    })
}

/// Feeds `data` to one importer (see [`AdapterInput`]). Contract: errors name the file at
/// fault; sizes declared by a file (prompt lengths, kernel sizes, experts, classes, shapes)
/// are refused before anything is allocated for them; an imported model runs and gives one
/// logit per class.
pub fn adapter(data: &[u8]) {
    let [kind, rest @ ..] = data else {
        return;
    };
    match kind % 3 {
        0 => petl_ast_adapter(rest),
        1 => {
            let [method, bytes @ ..] = rest else {
                return;
            };
            petl_ast_state_dict(usize::from(*method), bytes);
        }
        _ => peft(rest),
    }
}

fn run(model: &PetlModel, classes: usize) {
    let input = burn::tensor::Tensor::zeros([1, model.ast.max_length, 128], &device());
    assert_eq!(model.forward(input).dims(), [1, classes]);
}

fn petl_ast_adapter(bytes: &[u8]) {
    let metadata = match read_metadata(bytes, ADAPTER) {
        Ok(m) => m,
        Err(e) => return assert_names(&e.to_string(), ADAPTER),
    };
    let options = LoadOptions {
        max_length: Some(metadata.max_length),
        position: metadata.petl.position_mode(),
        new_head: None,
    };
    let device = device();
    let ast = match base().load_backbone(&options, &device) {
        Ok(ast) => ast,
        // An input length the base cannot take is refused in the base's name.
        Err(e) => return assert_names(&e.to_string(), "tiny/model.safetensors"),
    };
    // A wrong base is refused; the file's own hash lets the fuzzer past that check.
    let wrong =
        PetlModel::from_adapter_bytes(bytes, ADAPTER, ast.clone(), tiny_config(), "0", &device);
    assert!(wrong.is_err() || metadata.base_sha256 == "0");
    match PetlModel::from_adapter_bytes(
        bytes,
        ADAPTER,
        ast,
        tiny_config(),
        &metadata.base_sha256,
        &device,
    ) {
        Ok((model, metadata)) => run(&model, metadata.labels.len()),
        Err(e) => assert_names(&e.to_string(), ADAPTER),
    }
}

fn petl_ast_state_dict(method: usize, bytes: &[u8]) {
    let (_, json) = PETL_AST_METHODS[method % PETL_AST_METHODS.len()];
    let petl: PetlConfig = serde_json::from_str(json).expect("valid method config");
    match Classifier::with_petl_ast(base(), &petl, None, bytes, STATE_DICT, &device()) {
        Ok(classifier) => {
            let crate::pipeline::Network::Petl(model) = &classifier.model else {
                panic!("a PETL_AST import gives a PETL model");
            };
            run(model, model.num_classes());
        }
        Err(PipelineError::Load(e)) => assert_names(&e.to_string(), STATE_DICT),
        Err(e) => panic!("{e}"),
    }
}

fn peft(data: &[u8]) {
    let [lo, hi, rest @ ..] = data else {
        return;
    };
    let n = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
    let (json, weights) = rest.split_at(n);
    let Ok(json) = std::str::from_utf8(json) else {
        return;
    };
    match merge_peft_lora_bytes(
        base_classifier().clone(),
        json,
        PEFT_CONFIG,
        weights,
        PEFT_WEIGHTS,
    ) {
        Ok(model) => {
            let input = burn::tensor::Tensor::zeros([1, 100, 128], &device());
            assert_eq!(model.forward(input).dims(), [1, 10]);
        }
        Err(e @ (LoadError::Json { .. } | LoadError::Config { .. })) => {
            assert_names(&e.to_string(), PEFT_CONFIG)
        }
        Err(e) => assert_names(&e.to_string(), PEFT_WEIGHTS),
    }
}
