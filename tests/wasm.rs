//! The fbank and the AST forward pass compiled to wasm and run in a browser (headless Chromium
//! via `wasm-bindgen-test-runner`), checked against the same torchaudio / transformers numbers as
//! the native tests.

#![cfg(target_family = "wasm")]

use burn::tensor::{Tensor, TensorData};
use petl_ast::audio::{decode_wav, AudioLimits, FeatureExtractor};
use petl_ast::model::{Checkpoint, LoadOptions};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const FBANK_REFERENCE: &[u8] = include_bytes!("fixtures/fbank.safetensors");
const CONFIG: &str = include_str!("fixtures/models/ast-tiny-s10/config.json");
const WEIGHTS: &[u8] = include_bytes!("fixtures/models/ast-tiny-s10/model.safetensors");
const MODEL_REFERENCE: &[u8] = include_bytes!("fixtures/models/ast-tiny-s10/reference.safetensors");
const CLIPS: [(&str, &[u8]); 3] = [
    (
        "0_george_0",
        include_bytes!("fixtures/audio/0_george_0.wav"),
    ),
    (
        "5_jackson_3",
        include_bytes!("fixtures/audio/5_jackson_3.wav"),
    ),
    ("9_theo_1", include_bytes!("fixtures/audio/9_theo_1.wav")),
];

fn reference(bytes: &[u8], name: &str) -> Vec<f32> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn inputs(max_length: usize) -> Vec<f32> {
    let mut config = petl_ast::audio::FeatureExtractorConfig::default();
    config.max_length = max_length;
    let extractor = FeatureExtractor::new(config).unwrap();
    CLIPS
        .iter()
        .flat_map(|(name, wav)| {
            let audio = decode_wav(wav, name, &AudioLimits::default()).unwrap();
            extractor.extract_audio(&audio).unwrap()
        })
        .collect()
}

#[wasm_bindgen_test]
fn fbank_matches_torchaudio_in_the_browser() {
    let extractor = FeatureExtractor::default();
    for (name, wav) in CLIPS {
        let audio = decode_wav(wav, name, &AudioLimits::default()).unwrap();
        let fbank = extractor.fbank().compute(&audio.samples);
        let err = max_abs_diff(
            &fbank.data,
            &reference(FBANK_REFERENCE, &format!("fbank.{name}")),
        );
        assert!(err <= 1e-3, "{name}: fbank differs by {err}");
    }
    let ours = inputs(100);
    let theirs = reference(MODEL_REFERENCE, "input_values");
    let err = max_abs_diff(&ours, &theirs);
    assert!(err <= 1e-3, "input values differ by {err}");
}

#[wasm_bindgen_test]
fn tiny_ast_matches_transformers_in_the_browser() {
    let device = petl_ast::backend::cpu_device().unwrap();
    let checkpoint = Checkpoint::from_parts(
        CONFIG,
        "config.json",
        None,
        WEIGHTS.to_vec(),
        "model.safetensors",
    )
    .unwrap();
    let model = checkpoint
        .load_classifier(&LoadOptions::default(), &device)
        .unwrap();
    let input = Tensor::<3>::from_data(TensorData::new(inputs(100), [3, 100, 128]), &device);
    let logits = model
        .forward(input)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let err = max_abs_diff(&logits, &reference(MODEL_REFERENCE, "logits"));
    assert!(err <= 1e-4, "logits differ by {err}");
}
