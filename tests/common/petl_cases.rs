//! The PETL fixture cases of `scripts/make_petl_fixtures.py` (`tests/fixtures/petl/cases.json`)
//! as Rust configurations and models.

use burn::tensor::Device;
use petl_ast::model::{Checkpoint, LoadOptions};
use petl_ast::petl::{
    AdapterBlock, AdapterConfig, Backbone, HeadInput, Insertion, Location, LoraConfig, LoraTarget,
    MoaConfig, MoaKind, PetlConfig, PetlModel, Position, PrefixConfig, PromptConfig,
};
use serde_json::Value;

use super::fixture;

pub fn location(v: &Value) -> Location {
    match v.as_str().unwrap() {
        "MHSA" => Location::Mhsa,
        "FFN" => Location::Ffn,
        other => panic!("location {other}"),
    }
}

/// The fixture's case description as a [`PetlConfig`].
pub fn petl_config(case: &Value) -> PetlConfig {
    let backbone = if case["full"].as_bool().unwrap() {
        Backbone::Full
    } else if case["bitfit"].as_bool().unwrap() {
        Backbone::Bitfit
    } else {
        Backbone::Frozen
    };
    let adapters = case["adapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| AdapterConfig {
            location: location(&a["location"]),
            block: match a["block"].as_str().unwrap() {
                "bottleneck" => AdapterBlock::Bottleneck,
                "convpass" => AdapterBlock::Convpass,
                "conformer" => AdapterBlock::Conformer,
                other => panic!("block {other}"),
            },
            insertion: match a["insertion"].as_str().unwrap() {
                "parallel" => Insertion::Parallel,
                _ => Insertion::Sequential,
            },
            position: match a["position"].as_str().unwrap() {
                "before" => Position::Before,
                _ => Position::After,
            },
            residual: a["residual"].as_bool().unwrap(),
            reduction_rate: a["rr"].as_u64().unwrap() as usize,
            kernel_size: a["kernel_size"].as_u64().unwrap_or(31) as usize,
        })
        .collect();
    let lora = case["lora"].as_object().map(|l| LoraConfig {
        reduction_rate: l["rr"].as_u64().unwrap() as usize,
        alpha: l["alpha"].as_f64().unwrap(),
        targets: l["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| match t.as_str().unwrap() {
                "q" => LoraTarget::Q,
                "k" => LoraTarget::K,
                "v" => LoraTarget::V,
                _ => LoraTarget::O,
            })
            .collect(),
    });
    let prompt = case["prompt"].as_object().map(|p| PromptConfig {
        length: p["len"].as_u64().unwrap() as usize,
        deep: p["deep"].as_bool().unwrap(),
    });
    let prefix = case["prefix"].as_object().map(|p| PrefixConfig {
        length: p["len"].as_u64().unwrap() as usize,
    });
    let moa = case["moa"].as_object().map(|m| MoaConfig {
        kind: if m["kind"] == "dense" {
            MoaKind::Dense
        } else {
            MoaKind::Soft
        },
        location: location(&m["location"]),
        experts: m["experts"].as_u64().unwrap() as usize,
        reduction_rate: m["rr"].as_u64().unwrap() as usize,
        slots: m["slots"].as_u64().unwrap_or(1) as usize,
    });
    PetlConfig {
        backbone,
        head: if case["head"] == "CLS" {
            HeadInput::Cls
        } else {
            HeadInput::All
        },
        adapters,
        lora,
        prompt,
        prefix,
        moa,
        methods: Vec::new(),
        paper_compat: case["paper_compat"].as_bool().unwrap(),
    }
}

pub fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(fixture("petl/cases.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The case with this name.
pub fn case(name: &str) -> Value {
    cases()
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

/// Builds the case's model on the tiny base checkpoint (on `device`) and imports its trained
/// tensors; returns it with the case's input length.
pub fn model_for(case: &Value, device: &Device) -> (PetlModel, usize) {
    let checkpoint = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let config = petl_config(case);
    let max_length = case["max_length"].as_u64().unwrap() as usize;
    let options = LoadOptions {
        max_length: Some(max_length),
        position: config.position_mode(),
        new_head: None,
    };
    let ast = checkpoint.load_backbone(&options, device).unwrap();
    let classes = case["num_classes"].as_u64().unwrap() as usize;
    let model = PetlModel::new(ast, &checkpoint.config, &config, classes, device).unwrap();
    let name = case["name"].as_str().unwrap();
    let path = fixture(&format!("petl/{name}.safetensors"));
    let bytes = state_dict_only(&std::fs::read(&path).unwrap());
    let model = model
        .import_petl_ast(&checkpoint.config, &bytes, &path.display().to_string())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (model, max_length)
}

/// The fixture file without the reference outputs stored beside the state_dict
/// (`logits`, `labels`, `grad.*`).
pub fn state_dict_only(bytes: &[u8]) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let kept: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("grad.") && name != "logits" && name != "labels")
        .collect();
    safetensors::serialize(kept, None).unwrap()
}
