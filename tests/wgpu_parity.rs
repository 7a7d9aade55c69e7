//! The AST on burn-wgpu against the same `transformers` numbers (≤ 1e-3). Built only with
//! `--features wgpu` (`cargo test --release --features wgpu --test wgpu_parity`); needs a GPU
//! adapter (Mesa lavapipe gives a Vulkan device on CPU-only machines).

#![cfg(feature = "wgpu")]

mod common;

use burn::tensor::Device;
use common::{fixture, max_abs_diff, values, Reference};
use petl_ast::model::{Checkpoint, LoadOptions};

#[test]
fn logits_on_wgpu_match_transformers() {
    let device = Device::wgpu(Default::default());
    for name in ["ast-tiny-s10", "ast-tiny-f16t12"] {
        let checkpoint = Checkpoint::from_dir(fixture(&format!("models/{name}"))).unwrap();
        let model = checkpoint
            .load_classifier(&LoadOptions::default(), &device)
            .unwrap();
        let reference = Reference::open(&format!("models/{name}/reference.safetensors"));
        let logits = values(model.forward(reference.tensor::<3>("input_values", &device)));
        let err = max_abs_diff(&logits, &reference.get("logits").0);
        println!("{name} on wgpu: max |logits - transformers| = {err:e}");
        assert!(err <= 1e-3, "{name}: logits differ by {err}");
    }
}
