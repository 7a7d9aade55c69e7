//! Prefix tuning (Li & Liang, ACL 2021) as PETL_AST applies it: `p/2` learned key and `p/2`
//! learned value vectors per layer, in the projected space, inserted after the CLS key/value.
//!
//! Reference: <https://github.com/umbertocappellazzo/PETL_AST/blob/1fe23af5d2cf8003722510e55e1dcb36aef173c1/src/AST_prompt_tuning.py#L244-L319>.

use super::config::{ConfigError, PrefixConfig, MAX_TOKENS};
use super::registry::{PetlMethod, PROMPT_LR};
use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};

/// Learned keys and values of one layer, each `[p/2, d]`.
#[derive(Module, Debug)]
pub struct Prefix {
    /// Extra keys.
    pub key: Param<Tensor<2>>,
    /// Extra values.
    pub value: Param<Tensor<2>>,
}

impl Prefix {
    /// Uniform `U(±bound)` vectors (written = effective init in the reference).
    pub fn new(p: usize, d: usize, bound: f64, device: &Device) -> Self {
        let uniform = Distribution::Uniform(-bound, bound);
        Self {
            key: Param::from_tensor(Tensor::random([p / 2, d], uniform, device)),
            value: Param::from_tensor(Tensor::random([p / 2, d], uniform, device)),
        }
    }

    /// Inserts the prefix after the first token of projected keys or values.
    ///
    /// # Shapes
    /// - projected: `[batch, tokens, d]`; output `[batch, tokens + p/2, d]`
    pub fn insert(prefix: &Param<Tensor<2>>, projected: Tensor<3>) -> Tensor<3> {
        let [batch, n, d] = projected.dims();
        let extra = prefix.val();
        let p = extra.dims()[0];
        let extra = extra.unsqueeze_dim::<3>(0).expand([batch, p, d]);
        Tensor::cat(
            vec![
                projected.clone().narrow(1, 0, 1),
                extra,
                projected.narrow(1, 1, n - 1),
            ],
            1,
        )
    }
}

impl PetlMethod for PrefixConfig {
    fn validate(&self, _d: usize, _layers: usize) -> Result<(), ConfigError> {
        if self.length == 0 || !self.length.is_multiple_of(2) || self.length > MAX_TOKENS {
            return Err(ConfigError(format!(
                "prefix length must be a positive even number (p/2 keys + p/2 values) of at \
                 most {MAX_TOKENS}, got {}",
                self.length
            )));
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        PROMPT_LR
    }
}
