//! `native-train bench-kernels`: this crate's CPU kernels (`petl_ast::kernels`) against the burn
//! ops they replace, at the shapes of one AST-base layer (GELU, attention, the MLP expansion
//! `768 → 3072` Linear), inference and training (forward + backward under autodiff). JSON lines on stdout, tabulated by `scripts/bench_table.py`.

use anyhow::{bail, Result};
use burn::module::{Param, ParamId};
use burn::nn::Linear;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Distribution, Tensor};
use petl_ast::backend::Backend;
use petl_ast::kernels;
use petl_ast::model::AstConfig;
use serde_json::json;

use super::bench::{peak_rss_mb, timed};

/// Arguments of `bench-kernels`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Timed runs per case (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// `batch×max_length` cases (AST-base tokens of that input length).
    #[arg(long, value_delimiter = ',', default_values_t = ["1x1024".to_string(), "8x500".to_string()])]
    cases: Vec<String>,
}

type Op = fn(&[Tensor<4>; 3]) -> Tensor<4>;

const GELU_OPS: [(&str, Op); 2] = [
    ("petl-ast kernel", |x| kernels::gelu(x[0].clone())),
    ("burn ops (erf composed)", |x| {
        kernels::gelu_composed(x[0].clone())
    }),
];

const ATTENTION_OPS: [(&str, Op); 2] = [
    ("petl-ast kernel", |[q, k, v]| {
        kernels::attention(q.clone(), k.clone(), v.clone())
    }),
    ("burn attention op", |[q, k, v]| {
        attention(
            q.clone(),
            k.clone(),
            v.clone(),
            None,
            None,
            AttentionModuleOptions::default(),
        )
    }),
];

const LINEAR_OPS: [(&str, Op); 2] = [
    ("petl-ast kernel", |[x, w, b]| {
        kernels::linear(&as_linear(w, b), x.clone())
    }),
    ("burn-flex linear", |[x, w, b]| {
        #[allow(clippy::disallowed_methods)] // burn's own op, the baseline
        as_linear(w, b).forward(x.clone())
    }),
];

/// The MLP expansion `[1, 1, d, mlp]` weight and `[1, 1, 1, mlp]` bias operands as a Linear
/// (the same autodiff nodes: their gradients are the operands').
fn as_linear(weight: &Tensor<4>, bias: &Tensor<4>) -> Linear {
    let [.., d_in, d_out] = weight.dims();
    Linear {
        weight: Param::initialized(ParamId::new(), weight.clone().reshape([d_in, d_out])),
        bias: Some(Param::initialized(
            ParamId::new(),
            bias.clone().reshape([d_out]),
        )),
    }
}

/// `[batch, heads, tokens, dh]` operands made the way the model makes them (a head split of
/// `[batch, tokens, d]`), or the `[batch, 1, tokens, mlp]` GELU input as the first of three, or
/// the MLP expansion's input, weight and bias.
fn operands(
    op: &str,
    config: &AstConfig,
    batch: usize,
    tokens: usize,
    device: &Device,
) -> [Tensor<4>; 3] {
    let heads = config.num_attention_heads;
    let make = |width: usize| {
        Tensor::<3>::random(
            [batch, tokens, width],
            Distribution::Normal(0.0, 1.0),
            device,
        )
    };
    if op == "linear" {
        let (d, mlp) = (config.hidden_size, config.intermediate_size);
        let x = make(d).unsqueeze_dim(1);
        let normal = Distribution::Normal(0.0, 0.02);
        return [
            x,
            Tensor::random([1, 1, d, mlp], normal, device),
            Tensor::random([1, 1, 1, mlp], normal, device),
        ];
    }
    if op == "gelu" {
        let x = make(config.intermediate_size).unsqueeze_dim(1);
        return [x.clone(), x.clone(), x];
    }
    let split = |x: Tensor<3>| {
        x.reshape([batch, tokens, heads, config.head_dim()])
            .swap_dims(1, 2)
    };
    [0, 1, 2].map(|_| split(make(config.hidden_size)))
}

/// Runs `bench-kernels`.
pub fn run(args: Args) -> Result<()> {
    let device = Backend::Flex.device().map_err(anyhow::Error::msg)?;
    let config = AstConfig::default();
    let repeats = args.repeats.max(1);
    for case in &args.cases {
        let Some((batch, max_length)) = case
            .split_once('x')
            .and_then(|(b, l)| Some((b.parse::<usize>().ok()?, l.parse::<usize>().ok()?)))
        else {
            bail!("--cases: `{case}` is not BATCHxMAX_LENGTH (e.g. 8x500)");
        };
        let tokens = config.num_tokens(max_length);
        for (op, impls) in [
            ("gelu", GELU_OPS),
            ("attention", ATTENTION_OPS),
            ("linear", LINEAR_OPS),
        ] {
            for (name, f) in impls {
                for training in [false, true] {
                    let device = if training {
                        device.clone().autodiff()
                    } else {
                        device.clone()
                    };
                    let inputs = operands(op, &config, batch, tokens, &device);
                    let times = if training {
                        let inputs = inputs.map(|x| x.require_grad());
                        timed(repeats, || {
                            let grads = f(&inputs).sum().backward();
                            for x in &inputs {
                                std::hint::black_box(x.grad(&grads).map(|g| g.into_data()));
                            }
                        })
                    } else {
                        timed(repeats, || {
                            std::hint::black_box(f(&inputs).into_data());
                        })
                    };
                    let line = json!({
                        "impl": name,
                        "case": format!("kernel_{op}"),
                        "pass": if training { "forward+backward" } else { "forward" },
                        "batch": batch,
                        "max_length": max_length,
                        "tokens": tokens,
                        "seconds_median": times.0,
                        "seconds_min": times.1,
                        "repeats": repeats,
                        "peak_rss_mb": peak_rss_mb(),
                    });
                    println!("{line}");
                }
            }
        }
    }
    Ok(())
}
