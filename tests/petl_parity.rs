//! Every PETL method against an independent PyTorch implementation (`scripts/make_petl_fixtures.py`,
//! cross-checked against the PETL_AST reference classes): the fixture's trained tensors, saved
//! under PETL_AST's key names, are imported onto the Rust model and the logits must match.

mod common;

use common::petl_cases::{cases, model_for};
use common::{device, max_abs_diff, values, Reference};

const TOL: f32 = 1e-4;

#[test]
fn every_method_matches_the_pytorch_reference() {
    let base = Reference::open("models/ast-tiny-s10/reference.safetensors");
    let mut failures = Vec::new();
    for case in cases() {
        let name = case["name"].as_str().unwrap().to_string();
        let (model, max_length) = model_for(&case, &device());
        let key = if max_length == 100 {
            "input_values".to_string()
        } else {
            format!("input_values.L{max_length}")
        };
        let input = base.tensor::<3>(&key, &device());
        let logits = values(model.forward(input));
        let expected = Reference::open(&format!("petl/{name}.safetensors"))
            .get("logits")
            .0;
        let err = max_abs_diff(&logits, &expected);
        println!("{name:32} max |logits - reference| = {err:.2e}");
        if err > TOL {
            failures.push(format!("{name}: {err}"));
        }
    }
    assert!(failures.is_empty(), "logits differ: {failures:#?}");
}

/// With the CLS head, `forward` runs the last layer for the CLS row only; with deep prompts,
/// every earlier layer skips the prompt rows. Logits and the gradients of every trained tensor
/// must equal those of the full computation ([`encode_every_row`]).
#[test]
fn skipping_unread_rows_changes_no_logit_or_gradient() {
    use burn::module::Module;
    use burn::tensor::Tensor;
    use petl_ast::petl::HeadInput;

    let device = device().autodiff();
    let input = Reference::open("models/ast-tiny-s10/reference.safetensors")
        .tensor::<3>("input_values", &device);
    for name in ["dpt", "adapter_dpt_lora", "adapter_pfeiffer_par", "lora_qv"] {
        let (mut model, _) = model_for(&common::petl_cases::case(name), &device);
        for head in [HeadInput::All, HeadInput::Cls] {
            model.config.head = head;
            let skipping = model.forward(input.clone());
            let full = petl_ast::kernels::linear(
                &model.head,
                model.pool(encode_every_row(&model, input.clone())),
            );
            let err = max_abs_diff(&values(skipping.clone()), &values(full.clone()));
            assert!(err <= 1e-5, "{name} {head:?}: logits differ by {err}");
            let grads_of = |logits: Tensor<2>| {
                let grads = logits.powi_scalar(2).sum().backward();
                let mut out = Vec::new();
                model.visit(&mut GradCollector {
                    grads: &grads,
                    out: &mut out,
                });
                out
            };
            let (a, b) = (grads_of(skipping), grads_of(full));
            assert_eq!(a.len(), b.len());
            assert!(!a.is_empty(), "{name}: no trained tensor");
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                let scale = b.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
                let rel = max_abs_diff(a, b) / scale;
                assert!(
                    rel <= 1e-4,
                    "{name} {head:?}: gradient {i} differs by {rel}"
                );
            }
        }
    }
}

/// `PetlModel::encode` with every layer computing every row (no hook here needs the paper-compat
/// double MoA add).
fn encode_every_row(
    model: &petl_ast::petl::PetlModel,
    input: burn::tensor::Tensor<3>,
) -> burn::tensor::Tensor<3> {
    let mut x = model.ast.embeddings.forward(input);
    if let Some(prompts) = &model.prompts {
        x = prompts.insert(x);
    }
    for (i, (base, hooks)) in model.ast.layers.iter().zip(&model.hooks).enumerate() {
        if let Some(prompts) = &model.prompts {
            x = prompts.before_layer(i, x);
        }
        x = petl_ast::petl::layer::forward(base, hooks, x, false);
    }
    model.ast.final_norm(x)
}

/// Every float parameter's gradient, in visiting order.
struct GradCollector<'a> {
    grads: &'a burn::tensor::Gradients,
    out: &'a mut Vec<Vec<f32>>,
}

impl burn::module::ModuleVisitor for GradCollector<'_> {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        if let Some(grad) = param.val().grad(self.grads) {
            self.out.push(values(grad));
        }
    }
}
