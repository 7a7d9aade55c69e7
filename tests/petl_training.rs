//! Gradients of the trainable tensors against PyTorch, frozen tensors untouched by AdamW, and LoRA
//! merging.

mod common;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use common::petl_cases::{case, model_for};
use common::{device, max_abs_diff, values, Reference};
use petl_ast::petl::PetlModel;

/// Mean cross-entropy of `logits` against `labels`.
fn cross_entropy(logits: Tensor<2>, labels: &[usize], device: &Device) -> Tensor<1> {
    let [batch, classes] = logits.dims();
    let mut one_hot = vec![0.0f32; batch * classes];
    for (i, &l) in labels.iter().enumerate() {
        one_hot[i * classes + l] = 1.0;
    }
    let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [batch, classes]), device);
    (log_softmax(logits, 1) * one_hot).sum().neg() / batch as f64
}

fn input(device: &Device) -> Tensor<3> {
    Reference::open("models/ast-tiny-s10/reference.safetensors").tensor::<3>("input_values", device)
}

/// A PyTorch `[out, in]` gradient in burn's `[in, out]` layout.
fn transposed(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let (rows, cols) = (shape[0], shape[1]);
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// Our gradient of the parameter PETL_AST calls `name` (layer-0 tensors and the head).
fn our_grad(model: &PetlModel, name: &str, grads: &burn::tensor::Gradients) -> Vec<f32> {
    let hooks = &model.hooks[0];
    let linear_weight =
        |l: &burn::nn::Linear| values(l.weight.val().grad(grads).expect("has a gradient"));
    let linear_bias = |l: &burn::nn::Linear| {
        values(
            l.bias
                .as_ref()
                .unwrap()
                .val()
                .grad(grads)
                .expect("has a gradient"),
        )
    };
    let adapter = || match &hooks.ffn.parallel.as_ref().unwrap().block {
        petl_ast::petl::adapter::Block::Bottleneck(b) => b,
        _ => unreachable!(),
    };
    let prompts = || model.prompts.as_ref().expect("prompts");
    let layer = &model.ast.layers[0];
    match name {
        "classification_head.weight" => linear_weight(&model.head),
        "classification_head.bias" => linear_bias(&model.head),
        "model.layernorm.weight" => values(model.ast.norm.gamma.val().grad(grads).unwrap()),
        "model.layernorm.bias" => values(
            model
                .ast
                .norm
                .beta
                .as_ref()
                .unwrap()
                .val()
                .grad(grads)
                .unwrap(),
        ),
        "model.encoder.layer.0.layernorm_after.weight" => {
            values(layer.norm_mlp.gamma.val().grad(grads).unwrap())
        }
        "model.encoder.layer.0.layernorm_after.bias" => values(
            layer
                .norm_mlp
                .beta
                .as_ref()
                .unwrap()
                .val()
                .grad(grads)
                .unwrap(),
        ),
        "model.encoder.layer.0.adapter_module_FFN.linear_downsample.weight" => {
            linear_weight(&adapter().down)
        }
        "model.encoder.layer.0.adapter_module_FFN.linear_downsample.bias" => {
            linear_bias(&adapter().down)
        }
        "model.encoder.layer.0.adapter_module_FFN.linear_upsample.weight" => {
            linear_weight(&adapter().up)
        }
        "model.encoder.layer.0.adapter_module_FFN.linear_upsample.bias" => {
            linear_bias(&adapter().up)
        }
        "model.encoder.layer.0.attention.attention.lora_down_q.weight" => {
            linear_weight(&hooks.lora.q.as_ref().unwrap().down)
        }
        "model.encoder.layer.0.attention.attention.lora_up_q.weight" => {
            linear_weight(&hooks.lora.q.as_ref().unwrap().up)
        }
        "model.encoder.layer.0.attention.attention.lora_down_v.weight" => {
            linear_weight(&hooks.lora.v.as_ref().unwrap().down)
        }
        "model.encoder.layer.0.attention.attention.lora_up_v.weight" => {
            linear_weight(&hooks.lora.v.as_ref().unwrap().up)
        }
        "prompt_embeddings" => prompts().shallow.val().grad(grads).map(values).unwrap(),
        "deep_prompt_embeddings" => prompts()
            .deep
            .as_ref()
            .expect("deep prompts")
            .val()
            .grad(grads)
            .map(values)
            .unwrap(),
        other => panic!("no mapping for {other}"),
    }
}

/// Checks every gradient the fixture `name` holds for layer 0 and the head (at least
/// `at_least` of them).
fn check_gradients(name: &str, at_least: usize) {
    let device = device().autodiff();
    let (model, _) = model_for(&case(name), &device);
    let reference = Reference::open(&format!("petl/{name}.safetensors"));
    let labels: Vec<usize> = reference
        .get("labels")
        .0
        .iter()
        .map(|&l| l as usize)
        .collect();
    let loss = cross_entropy(model.forward(input(&device)), &labels, &device);
    let grads = loss.backward();
    let mut checked = 0;
    for key in reference.names() {
        let Some(param) = key.strip_prefix("grad.") else {
            continue;
        };
        if param.contains("layer.1.") {
            continue; // layer 0 and the head cover every kind of tensor
        }
        let (expected, shape) = reference.get(&key);
        let ours = our_grad(&model, param, &grads);
        let expected = if shape.len() == 2 {
            transposed(&expected, &shape)
        } else {
            expected
        };
        let scale = expected
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(1e-12);
        let rel = max_abs_diff(&ours, &expected) / scale;
        println!("{name}: {param}: relative gradient error {rel:.2e}");
        assert!(
            rel <= 1e-4,
            "{name}: gradient of {param} differs by {rel} (relative)"
        );
        checked += 1;
    }
    assert!(
        checked >= at_least,
        "{name}: only {checked} gradients checked"
    );
    // Frozen tensors get no gradient at all.
    let layer = &model.ast.layers[0];
    assert!(layer.attention.query.weight.val().grad(&grads).is_none());
    assert!(layer.mlp_in.weight.val().grad(&grads).is_none());
    assert!(model
        .ast
        .embeddings
        .patch
        .weight
        .val()
        .grad(&grads)
        .is_none());
}

#[test]
fn adapter_gradients_match_pytorch() {
    check_gradients("adapter_pfeiffer_par", 8);
}

#[test]
fn lora_gradients_match_pytorch() {
    check_gradients("lora_qv", 6);
}

/// Deep prompt tuning: layer 0 skips the prompt rows' own outputs, which layer 1 overwrites
/// (`petl::layer::forward_without_rows`); the gradients must still be PyTorch's, which computes
/// them in full.
#[test]
fn deep_prompt_gradients_match_pytorch() {
    check_gradients("dpt", 6);
}

/// The same, with LoRA inside the attention and an adapter at the MLP of the dropping layer.
#[test]
fn deep_prompt_adapter_lora_gradients_match_pytorch() {
    check_gradients("adapter_dpt_lora", 16);
}

#[test]
fn adamw_steps_leave_frozen_tensors_bit_identical() {
    let device = device().autodiff();
    let (mut model, _) = model_for(&case("adapter_houlsby_par"), &device);
    let frozen = |m: &PetlModel| {
        let l = &m.ast.layers[1];
        [
            values(l.attention.query.weight.val()),
            values(l.mlp_out.weight.val()),
            values(m.ast.embeddings.position.val()),
            values(m.ast.embeddings.patch.weight.val()),
        ]
    };
    let trained = |m: &PetlModel| values(m.ast.layers[1].norm_mlp.gamma.val());
    let (frozen_before, trained_before) = (frozen(&model), trained(&model));
    let mut optimizer = AdamWConfig::new()
        .with_beta_2(0.98)
        .with_epsilon(1e-6)
        .with_weight_decay(0.1)
        .init();
    for _ in 0..3 {
        let loss = cross_entropy(model.forward(input(&device)), &[0, 1, 2], &device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(5e-3, model, grads);
    }
    assert_eq!(frozen(&model), frozen_before, "a frozen tensor changed");
    assert_ne!(
        trained(&model),
        trained_before,
        "the trained LayerNorm did not change"
    );
}

#[test]
fn merged_lora_gives_the_same_logits() {
    let device = device();
    for name in ["lora_qv", "lora_qkvo", "adapter_lora"] {
        let (model, _) = model_for(&case(name), &device);
        let unmerged = values(model.forward(input(&device)));
        let merged = model.merge_lora();
        assert!(merged
            .hooks
            .iter()
            .all(|h| h.lora.q.is_none() && h.lora.o.is_none()));
        let err = max_abs_diff(&values(merged.forward(input(&device))), &unmerged);
        assert!(err <= 1e-5, "{name}: merged logits differ by {err}");
    }
}
