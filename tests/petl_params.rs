//! Trainable-parameter counts on the AST-base configuration equal the paper's Table I, and bad
//! method flags are refused with a message naming the value.

mod common;

use common::device;
use petl_ast::model::{AstConfig, AstModel};
use petl_ast::petl::{AdapterBlock, AdapterType, Method, MethodArgs, PetlModel};

fn method_params(args: &MethodArgs, base: &AstModel, config: &AstConfig) -> (usize, usize) {
    let petl = args
        .to_config(config.hidden_size, config.num_hidden_layers)
        .unwrap();
    let model = PetlModel::new(base.clone(), config, &petl, 10, &device()).unwrap();
    let counts = model.param_counts();
    assert_eq!(counts.trainable, counts.method + counts.head);
    (counts.method, counts.head)
}

#[test]
fn table_one_counts() {
    let config = AstConfig::default();
    let base = AstModel::new(&config, 1024, &device());
    let head = 768 * 10 + 10;
    let final_norm = 2 * 768;
    let with = |f: &dyn Fn(&mut MethodArgs)| {
        let mut args = MethodArgs::default();
        f(&mut args);
        method_params(&args, &base, &config)
    };
    let cases: Vec<(&str, (usize, usize), usize)> = vec![
        ("BitFit", with(&|a| a.method = Method::Bitfit), 101_376),
        (
            "SPT-300",
            with(&|a| {
                a.method = Method::PromptTuning;
                a.prompt_len = Some(300);
            }),
            230_400,
        ),
        (
            "DPT-25",
            with(&|a| {
                a.method = Method::PromptTuning;
                a.deep = true;
            }),
            230_400,
        ),
        (
            "Prefix-24",
            with(&|a| a.method = Method::PrefixTuning),
            221_184,
        ),
        (
            "LoRA RR=128 (Wq,Wv)",
            with(&|a| a.method = Method::Lora),
            221_184,
        ),
        ("Bottleneck Pfeiffer RR=64", with(&|_| {}), 248_976),
        (
            "Bottleneck Houlsby RR=64",
            with(&|a| a.adapter_type = AdapterType::Houlsby),
            497_952,
        ),
        (
            "Convpass Pfeiffer RR=64",
            with(&|a| a.adapter_block = AdapterBlock::Convpass),
            254_304,
        ),
        (
            "Convpass Houlsby RR=64",
            with(&|a| {
                a.adapter_block = AdapterBlock::Convpass;
                a.adapter_type = AdapterType::Houlsby;
            }),
            508_608,
        ),
        ("Linear probing", with(&|a| a.method = Method::Linear), 0),
        // Not in Table I: 12 layers × (keys 768 + values 768 + MLP hidden 3,072).
        ("IA3", with(&|a| a.method = Method::Ia3), 55_296),
        // 12 layers × 7,087,872 + patch conv 197,376 + CLS/DIST 1,536 + 1,214 × 768 positions.
        (
            "Full fine-tuning",
            with(&|a| a.method = Method::Full),
            86_185_728,
        ),
    ];
    for (name, (method, head_count), expected) in cases {
        assert_eq!(method, expected, "{name}: method parameters");
        let expected_head = if name == "BitFit" {
            head + 768
        } else {
            head + final_norm
        };
        assert_eq!(head_count, expected_head, "{name}: head + final LayerNorm");
    }
}

#[test]
fn bad_method_flags_are_refused_clearly() {
    let err = |f: &dyn Fn(&mut MethodArgs)| {
        let mut args = MethodArgs::default();
        f(&mut args);
        args.to_config(768, 12).unwrap_err().to_string()
    };
    let message = err(&|a| a.reduction_rate = 100);
    assert!(
        message.contains("100") && message.contains("768"),
        "{message}"
    );
    let message = err(&|a| {
        a.method = Method::Lora;
        a.reduction_rate_lora = 0;
    });
    assert!(message.contains("got 0"), "{message}");
    let message = err(&|a| {
        a.method = Method::PrefixTuning;
        a.prompt_len = Some(25);
    });
    assert!(
        message.contains("even") && message.contains("25"),
        "{message}"
    );
    let message = err(&|a| {
        a.adapter_block = AdapterBlock::Conformer;
        a.kernel_size = 4;
    });
    assert!(
        message.contains("odd") && message.contains('4'),
        "{message}"
    );
}
