//! Parameter-efficient transfer learning methods for the AST (Cappellazzo et al., arXiv
//! 2312.03694), one file per method, all applied by one [`PetlModel`] under one [`PetlConfig`].

pub mod adapter;
pub mod checkpoint;
pub mod config;
pub mod ia3;
pub mod import;
pub mod init;
pub mod layer;
pub mod lora;
pub mod method;
pub mod moa;
pub mod model;
pub mod params;
pub mod peft;
pub mod prefix;
pub mod prompt;
pub mod registry;

pub use checkpoint::AdapterMetadata;
pub use config::{
    AdapterBlock, AdapterConfig, Backbone, ConfigError, HeadInput, Insertion, Location, LoraConfig,
    LoraTarget, MoaConfig, MoaKind, PetlConfig, Position, PrefixConfig, PromptConfig,
};
pub use method::{AdapterType, Method, MethodArgs};
pub use model::PetlModel;
pub use params::ParamCounts;
pub use registry::{MethodConfig, PetlMethod};
