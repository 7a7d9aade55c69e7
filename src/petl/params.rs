//! Counting parameters: total, trainable, and the paper's split into what the method adds versus
//! the head (classifier + final LayerNorm).

use burn::module::Module;

use serde::Serialize;

use super::model::PetlModel;
use crate::model::named_params;

/// Parameter counts of a [`PetlModel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamCounts {
    /// Every parameter.
    pub total: usize,
    /// Parameters that receive gradients.
    pub trainable: usize,
    /// Trainable parameters the method adds or unfreezes (Table I), head and final LayerNorm
    /// excluded.
    pub method: usize,
    /// Trainable parameters of the classifier and the final LayerNorm.
    pub head: usize,
}

/// `(total, trainable)` of any module.
pub fn count<M: Module>(module: &M) -> (usize, usize) {
    let (mut total, mut trainable) = (0, 0);
    named_params::visit(module, |p| {
        let n: usize = p.shape.iter().product();
        total += n;
        if p.trains {
            trainable += n;
        }
    });
    (total, trainable)
}

impl PetlModel {
    /// Parameter counts as in the paper's Table I.
    ///
    /// Gradient requirements are only effective on an autodiff device, so the counts are taken
    /// on the training view of the model ([`Module::train`]), whatever device it is on.
    pub fn param_counts(&self) -> ParamCounts {
        let model = self.clone().train();
        let (total, trainable) = count(&model);
        let (_, head) = count(&model.head);
        let (_, final_norm) = count(&model.ast.norm);
        ParamCounts {
            total,
            trainable,
            method: trainable - head - final_norm,
            head: head + final_norm,
        }
    }
}
