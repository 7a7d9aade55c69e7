//! Counting parameters: total, trainable, and the paper's split into what the method adds versus
//! the head (classifier + final LayerNorm).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use serde::Serialize;

use super::model::PetlModel;

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

#[derive(Default)]
struct Counter {
    total: usize,
    trainable: usize,
}

impl ModuleVisitor for Counter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.shape().num_elements();
        self.total += n;
        if param.is_require_grad() {
            self.trainable += n;
        }
    }
}

/// `(total, trainable)` of any module.
pub fn count<M: Module>(module: &M) -> (usize, usize) {
    let mut counter = Counter::default();
    module.visit(&mut counter);
    (counter.total, counter.trainable)
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
