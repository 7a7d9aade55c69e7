//! Every float parameter of a burn module under its dotted module path (`hooks.3.lora.q.down`),
//! read or replaced: what adapter files, training states and parameter counts are made of.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

use super::weights::replacement;

/// One parameter as [`visit`] shows it.
pub struct NamedParam<'a> {
    /// Dotted module path.
    pub path: &'a str,
    /// Its id (what the optimizer's state is keyed by).
    pub id: ParamId,
    /// Whether it receives gradients.
    pub trains: bool,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, flattened (still on the device).
    pub value: Tensor<1>,
}

/// Calls `f` with every float parameter of `module`, in module order.
pub fn visit<M: Module>(module: &M, f: impl FnMut(NamedParam)) {
    struct Visitor<F> {
        path: Vec<String>,
        f: F,
    }
    impl<F: FnMut(NamedParam)> ModuleVisitor for Visitor<F> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let shape = value.dims().to_vec();
            (self.f)(NamedParam {
                path: &self.path.join("."),
                id: param.id,
                trains: param.is_require_grad(),
                shape,
                value: value.flatten(0, D - 1),
            });
        }
    }
    module.visit(&mut Visitor {
        path: Vec::new(),
        f,
    });
}

/// What [`map`] puts into a parameter.
pub struct Replacement<'v> {
    /// New values, in the parameter's shape.
    pub values: &'v [f32],
    /// A new id; `None` keeps the parameter's.
    pub id: Option<ParamId>,
}

/// `module` with each float parameter for which `f(path, shape, trains)` answers a
/// [`Replacement`] replaced by it (on the parameter's device, tracked for gradients as it was).
/// `f` must answer values of the parameter's shape.
pub fn map<'v, M: Module>(
    module: M,
    f: impl FnMut(&str, &[usize], bool) -> Option<Replacement<'v>>,
) -> M {
    struct Mapper<F> {
        path: Vec<String>,
        f: F,
    }
    impl<'v, F: FnMut(&str, &[usize], bool) -> Option<Replacement<'v>>> ModuleMapper for Mapper<F> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let shape = param.dims().to_vec();
            let Some(new) = (self.f)(&self.path.join("."), &shape, param.is_require_grad()) else {
                return param;
            };
            let (id, tensor, mapper) = param.consume();
            let value = replacement(&tensor, new.values, &shape);
            Param::from_mapped_value(new.id.unwrap_or(id), value, mapper)
        }
    }
    module.map(&mut Mapper {
        path: Vec::new(),
        f,
    })
}
