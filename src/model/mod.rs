//! The Audio Spectrogram Transformer, equal to Hugging Face `ASTForAudioClassification`.

pub mod activation;
pub mod ast;
pub mod attention;
pub mod checkpoint;
pub mod config;
pub mod embeddings;
pub mod error;
pub mod init;
pub mod layer;
pub mod named_params;
pub mod norm;
pub mod position;
pub mod quantize;
pub mod save;
pub mod weights;

pub use ast::{AstForAudioClassification, AstModel, AstOutput, ClassifierHead};
pub use checkpoint::{Checkpoint, LoadOptions};
pub use config::{Activation, AstConfig};
pub use error::{LoadError, TensorProblem};
pub use position::PositionMode;
