//! The bodies of the cargo-fuzz targets in `fuzz/`, as plain functions.
//!
//! Each function takes arbitrary bytes, feeds them to a reader of outside data and checks its
//! contract: no panic, no allocation out of proportion to the input, errors that name the input,
//! and the documented invariants of what it returns (e.g. decoded audio is finite and within the
//! length limit). A violated contract panics: that is a finding. The same functions replay the
//! committed corpora and crash regressions on stable Rust in `tests/fuzz_corpus_replay.rs`.
//!
//! | target | reads |
//! |---|---|
//! | [`wav`] | WAV bytes, then the feature extractor on what they decode to |
//! | [`fbank`] | `f32` sample buffers (any bit pattern, special values, square waves) |
//! | [`config`] | `config.json` and `preprocessor_config.json` text |
//! | [`checkpoint`] | `model.safetensors` bytes with a fixed tiny `config.json` |
//! | [`adapter`] | petl-ast adapter files, PETL_AST state_dicts, PEFT LoRA folders |
//! | [`dataset_lists`] | dataset file lists ([`dataset_lists::PARSERS`]) |
//!
//! See `docs/robustness.md` for how to run them and what they found.

mod adapter;
mod checkpoint;
mod config;
pub mod dataset_lists;
mod fbank;
mod tiny;
mod wav;

pub use adapter::{adapter, AdapterInput, PETL_AST_METHODS};
pub use checkpoint::checkpoint;
pub use config::config;
pub use dataset_lists::dataset_lists;
pub use fbank::{fbank, FbankInput};
pub use tiny::{tiny_config, tiny_weights, TINY_CONFIG_JSON};
pub use wav::wav;

/// A fuzz target: its name and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` name it.
pub const TARGETS: &[Target] = &[
    ("wav", wav),
    ("fbank", fbank),
    ("config", config),
    ("checkpoint", checkpoint),
    ("adapter", adapter),
    ("dataset_lists", dataset_lists),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Asserts that an error message names `origin` (every reader's contract).
fn assert_names(message: &str, origin: &str) {
    assert!(
        message.contains(origin),
        "error message does not name `{origin}`: {message}"
    );
}

/// The CPU device every target loads models on.
fn device() -> burn::tensor::Device {
    crate::backend::cpu_device().expect("the fuzz module is built with a CPU backend")
}
