//! # petl-ast
//!
//! Parameter-efficient transfer learning for Audio Spectrogram Transformers
//! (Cappellazzo et al., arXiv 2312.03694), in [burn](https://burn.dev).
//!
//! - [`audio`]: wav decoding, resampling and the Kaldi fbank of the AST feature extractor
//!   (pure Rust, shared by the native CLI and the web app).
//! - [`model`]: the AST, equal to Hugging Face `ASTForAudioClassification`, loaded from
//!   `config.json` + `model.safetensors`.
//! - [`petl`]: every PETL method of the paper under one [`petl::PetlConfig`].
//! - [`personalise`]: few-shot personalisation (the web page's recipe).
//! - [`backend`]: choosing the compute device at run time.
//! - `web` (wasm only): the browser API behind the page in `www/`.

pub mod audio;
pub mod backend;
pub mod data;
#[cfg(all(
    any(feature = "flex", feature = "ndarray"),
    not(target_family = "wasm")
))]
pub mod fuzz;
#[cfg(not(target_family = "wasm"))]
pub mod io;
pub mod kernels;
pub mod model;
pub mod personalise;
pub mod petl;
pub mod pipeline;
pub mod prototypes;
pub mod train;
#[cfg(target_family = "wasm")]
pub mod web;

#[cfg(all(feature = "hub", not(target_family = "wasm")))]
pub mod hub;
