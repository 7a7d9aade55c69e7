//! Per method: the default (sound) initialisation leaves the base model's logits unchanged at
//! step 0, and `--paper-compat` draws the added Linear weights from N(0, 0.02²) as the reference
//! code's `from_pretrained` leaves them.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Distribution, Tensor};
use common::{device, fixture, max_abs_diff, values};
use petl_ast::model::{AstConfig, AstModel, Checkpoint, LoadOptions};
use petl_ast::petl::{AdapterBlock, AdapterType, Method, MethodArgs, PetlModel};

/// Every method with its sound initialisation, by name. Prompt and prefix tuning are left out:
/// their tokens take part in the attention from the start, so no initialisation of theirs can be
/// the identity.
fn sound_methods() -> Vec<(&'static str, MethodArgs)> {
    let with = |f: &dyn Fn(&mut MethodArgs)| {
        let mut args = MethodArgs::default();
        f(&mut args);
        args
    };
    vec![
        ("adapter Pfeiffer", with(&|_| {})),
        (
            "adapter Houlsby",
            with(&|a| a.adapter_type = AdapterType::Houlsby),
        ),
        (
            "adapter HOU-mixed",
            with(&|a| a.adapter_type = AdapterType::HouMixed),
        ),
        (
            "Convpass",
            with(&|a| a.adapter_block = AdapterBlock::Convpass),
        ),
        (
            "Conformer",
            with(&|a| {
                a.adapter_block = AdapterBlock::Conformer;
                a.kernel_size = 3;
            }),
        ),
        ("Hydra", with(&|a| a.method = Method::Hydra)),
        ("LoRA", with(&|a| a.method = Method::Lora)),
        ("Dense-MoA", with(&|a| a.method = Method::DenseMoa)),
        ("Soft-MoA", with(&|a| a.method = Method::SoftMoa)),
        ("BitFit", with(&|a| a.method = Method::Bitfit)),
        ("full fine-tuning", with(&|a| a.method = Method::Full)),
        ("IA3", with(&|a| a.method = Method::Ia3)),
    ]
}

#[test]
fn sound_initialisation_leaves_the_logits_unchanged() {
    let checkpoint = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let config = &checkpoint.config;
    let ast = checkpoint
        .load_backbone(&LoadOptions::default(), &device())
        .unwrap();
    let build = |args: &MethodArgs| {
        let args = MethodArgs {
            reduction_rate: 8,
            reduction_rate_lora: 8,
            ..args.clone()
        };
        let petl = args
            .to_config(config.hidden_size, config.num_hidden_layers)
            .unwrap();
        PetlModel::new(ast.clone(), config, &petl, 5, &device()).unwrap()
    };
    let probe = build(&MethodArgs::for_method(Method::Linear));
    let input = Tensor::<3>::random(
        [2, ast.max_length, config.num_mel_bins],
        Distribution::Normal(0.0, 1.0),
        &device(),
    );
    let expected = values(probe.forward(input.clone()));
    let mut failures = Vec::new();
    for (name, args) in sound_methods() {
        let model = PetlModel {
            head: probe.head.clone(),
            ..build(&args)
        };
        let err = max_abs_diff(&values(model.forward(input.clone())), &expected);
        if err > 1e-5 {
            failures.push(format!("{name}: logits moved by {err}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Collects the Linear weights (`…weight` with two axes) under `hooks`.
#[derive(Default)]
struct HookWeights {
    path: Vec<String>,
    values: Vec<f32>,
}

impl ModuleVisitor for HookWeights {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let in_hooks = self.path.first().is_some_and(|p| p == "hooks");
        if in_hooks && D == 2 && self.path.last().is_some_and(|p| p == "weight") {
            self.values.extend(values(param.val()));
        }
    }
}

#[test]
fn paper_compat_draws_added_weights_from_a_normal_of_std_0_02() {
    let config = AstConfig {
        num_hidden_layers: 2,
        ..AstConfig::default()
    };
    let ast = AstModel::new(&config, 100, &device());
    for method in [Method::Adapter, Method::Lora, Method::DenseMoa] {
        let petl = MethodArgs {
            paper_compat: true,
            ..MethodArgs::for_method(method)
        }
        .to_config(config.hidden_size, config.num_hidden_layers)
        .unwrap();
        let model = PetlModel::new(ast.clone(), &config, &petl, 5, &device()).unwrap();
        let mut weights = HookWeights::default();
        model.visit(&mut weights);
        let n = weights.values.len() as f64;
        assert!(n > 10_000.0, "{method:?}: only {n} weights");
        let mean = weights.values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = weights
            .values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        // With n ≥ 10⁴ draws, the mean is within 4 standard errors (4 · 0.02 / √n ≤ 8e-4) and
        // the standard deviation within 5 %.
        assert!(mean.abs() < 8e-4, "{method:?}: mean {mean}");
        let std = var.sqrt();
        assert!((std - 0.02).abs() < 1e-3, "{method:?}: std {std}");
    }
}
