//! What a PETL method is to the rest of the crate, and the registry of methods that attach to the
//! encoder layers through the layer's hook points.
//!
//! Every method answers the questions of the model builder and the trainer through
//! [`PetlMethod`]: its validation, its learning rate, the LayerNorms it trains. A method added
//! since the paper's set is one file (its config, implementing [`PetlMethod`] and
//! [`RegisteredMethod`], and its per-layer module, implementing [`LayerHook`]) plus one line in
//! [`registry!`] below. [`ia3`](super::ia3) is the example to copy.
//!
//! The paper's methods keep their own typed slots in [`PetlConfig`](super::PetlConfig) and
//! [`LayerHooks`](super::layer::LayerHooks), so the tensor names of every adapter file and
//! PETL_AST checkpoint stay as they are.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::config::{ConfigError, Location};
use super::init::Init;

/// The paper's peak learning rate of full fine-tuning.
pub const FULL_LR: f64 = 5e-5;
/// The paper's peak learning rate of a method that adds modules (adapters, LoRA, MoA) or trains
/// the biases (BitFit).
pub const MODULE_LR: f64 = 5e-3;
/// The paper's peak learning rate of prompt and prefix tuning.
pub const PROMPT_LR: f64 = 1e-2;
/// The peak learning rate of a linear probe, the head alone.
pub const HEAD_LR: f64 = 1e-3;

/// What the model builder and the trainer ask of a PETL method.
pub trait PetlMethod {
    /// Checks the settings against a model of width `d` with `layers` encoder layers. Adapter
    /// files carry their config, so sizes must be bounded: a corrupt file is refused, not
    /// allocated.
    fn validate(&self, d: usize, layers: usize) -> Result<(), ConfigError>;

    /// The paper's peak learning rate for this method; a combination of methods trains at the
    /// smallest of theirs.
    fn learning_rate(&self) -> f64;

    /// Whether the LayerNorm in front of the sub-layer at `location` trains with this method.
    fn trains_norm_at(&self, _location: Location) -> bool {
        false
    }
}

/// A method that adds one module to every encoder layer, built from its config.
pub trait RegisteredMethod: PetlMethod {
    /// The module one encoder layer gains.
    type Layer: LayerHook;

    /// One layer's module for a model of width `d` with an MLP of width `intermediate`. Under
    /// [`Init::Sound`] it must start as the identity: the model's outputs before training are
    /// the base model's.
    fn layer(&self, d: usize, intermediate: usize, init: Init, device: &Device) -> Self::Layer;
}

/// An attention projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Queries `Wq x`.
    Query,
    /// Keys `Wk x`.
    Key,
    /// Values `Wv x`.
    Value,
    /// The output projection `Wo c` of the attention context.
    Output,
}

/// The hook points of an encoder layer. Each defaults to the identity; a method overrides the
/// ones it changes. The layer calls them in this order:
/// `h₁ = h + sublayer_output(MHSA, z₁, Wo·attend(q, keys_values(k, v)))` with
/// `q, k, v = projection(W x)`, then
/// `out = h₁ + sublayer_output(FFN, z₂, W2 · mlp_hidden(act(W1 z₂)))`.
pub trait LayerHook {
    /// An attention projection's output `[batch, tokens, d]`.
    fn projection(&self, _which: Projection, y: Tensor<3>) -> Tensor<3> {
        y
    }

    /// The keys and values `[batch, tokens, d]` every query attends over (extra rows may be
    /// added).
    fn keys_values(&self, keys: Tensor<3>, values: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        (keys, values)
    }

    /// Whether [`Self::mlp_hidden`] changes anything (otherwise the MLP runs fused).
    fn changes_mlp_hidden(&self) -> bool {
        false
    }

    /// The MLP's hidden activation `[batch, tokens, intermediate]`.
    fn mlp_hidden(&self, hidden: Tensor<3>) -> Tensor<3> {
        hidden
    }

    /// A sub-layer's output `[batch, tokens, d]` before the layer's residual; `input` is the
    /// layer-normed sub-layer input.
    fn sublayer_output(&self, _at: Location, _input: &Tensor<3>, output: Tensor<3>) -> Tensor<3> {
        output
    }

    /// Whether each token's output depends on that token's input alone (so a layer may skip the
    /// rows nobody reads).
    fn is_token_wise(&self) -> bool {
        true
    }
}

/// Declares the registered methods (at least one: burn cannot derive a module for an empty
/// enum): `Variant(Config, Layer)`, where `Config` is the method's
/// [`RegisteredMethod`] and `Layer` its per-layer module. In config files a method is written
/// `{"<variant in snake_case>": {…its config…}}`; its tensors are saved under
/// `hooks.<layer>.added.<index>.<Variant>.`.
macro_rules! registry {
    ($($variant:ident($config:ty, $layer:ty)),+ $(,)?) => {
        /// The config of a registered method.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum MethodConfig {
            $(
                #[doc = concat!("[`", stringify!($config), "`].")]
                $variant($config),
            )*
        }

        /// The module a registered method adds to one encoder layer.
        #[derive(Module, Debug)]
        pub enum LayerAddition {
            $(
                #[doc = concat!("[`", stringify!($layer), "`].")]
                $variant($layer),
            )*
        }

        impl MethodConfig {
            /// The method's answers to the model builder and the trainer.
            pub fn method(&self) -> &dyn PetlMethod {
                match *self {
                    $(Self::$variant(ref config) => config,)*
                }
            }

            /// One encoder layer's module.
            pub fn layer(
                &self,
                d: usize,
                intermediate: usize,
                init: Init,
                device: &Device,
            ) -> LayerAddition {
                match *self {
                    $(Self::$variant(ref config) => {
                        LayerAddition::$variant(config.layer(d, intermediate, init, device))
                    })*
                }
            }
        }

        impl LayerAddition {
            /// The module's hook points.
            pub fn hook(&self) -> &dyn LayerHook {
                match *self {
                    $(Self::$variant(ref layer) => layer,)*
                }
            }
        }
    };
}

registry! {
    Ia3(super::ia3::Ia3Config, super::ia3::Ia3Layer),
}
