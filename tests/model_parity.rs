//! The AST against Hugging Face `transformers`: embeddings, every hidden state and the logits of
//! random-initialised checkpoints made by `scripts/make_fixtures.py`.

mod common;

use common::{device, fixture, max_abs_diff, values, Reference};
use petl_ast::model::{AstModel, Checkpoint, LoadOptions, PositionMode};

const LOGITS_TOL: f32 = 1e-4;
const HIDDEN_TOL: f32 = 1e-4;

fn check_model(name: &str) {
    let device = device();
    let checkpoint = Checkpoint::from_dir(fixture(&format!("models/{name}"))).unwrap();
    let model = checkpoint
        .load_classifier(&LoadOptions::default(), &device)
        .unwrap();
    let reference = Reference::open(&format!("models/{name}/reference.safetensors"));
    let input = reference.tensor::<3>("input_values", &device);

    let embeddings = model.ast.embeddings.forward(input.clone());
    let err = max_abs_diff(&values(embeddings), &reference.get("embeddings").0);
    assert!(err <= HIDDEN_TOL, "{name}: embeddings differ by {err}");

    let out = model.ast.forward_all(input.clone());
    assert_eq!(
        out.hidden_states.len(),
        checkpoint.config.num_hidden_layers + 1
    );
    for (i, h) in out.hidden_states.iter().enumerate() {
        let err = max_abs_diff(
            &values(h.clone()),
            &reference.get(&format!("hidden_states.{i}")).0,
        );
        assert!(
            err <= HIDDEN_TOL,
            "{name}: hidden state {i} differs by {err}"
        );
    }
    let err = max_abs_diff(
        &values(out.last_hidden_state.clone()),
        &reference.get("last_hidden_state").0,
    );
    assert!(
        err <= HIDDEN_TOL,
        "{name}: last hidden state differs by {err}"
    );
    let pooled = AstModel::pool(out.last_hidden_state);
    let err = max_abs_diff(&values(pooled), &reference.get("pooler_output").0);
    assert!(err <= HIDDEN_TOL, "{name}: pooled output differs by {err}");

    let logits = model.forward(input);
    let (expected, shape) = reference.get("logits");
    assert_eq!(logits.dims().to_vec(), shape);
    let err = max_abs_diff(&values(logits), &expected);
    println!("{name}: max |logits - transformers| = {err:e}");
    assert!(err <= LOGITS_TOL, "{name}: logits differ by {err}");
}

#[test]
fn real_patching_stride_10_matches_transformers() {
    check_model("ast-tiny-s10");
}

#[test]
fn unequal_strides_match_transformers() {
    check_model("ast-tiny-f16t12");
}

#[test]
fn half_precision_checkpoints_load() {
    let device = device();
    let input = Reference::open("models/ast-tiny-s10/reference.safetensors")
        .tensor::<3>("input_values", &device);
    for name in ["ast-tiny-s10-f16", "ast-tiny-s10-bf16"] {
        let checkpoint = Checkpoint::from_dir(fixture(&format!("models/{name}"))).unwrap();
        let model = checkpoint
            .load_classifier(&LoadOptions::default(), &device)
            .unwrap();
        let expected = Reference::open(&format!("models/{name}/reference.safetensors"))
            .get("logits")
            .0;
        let err = max_abs_diff(&values(model.forward(input.clone())), &expected);
        println!("{name}: max |logits - transformers| = {err:e}");
        assert!(err <= LOGITS_TOL, "{name}: logits differ by {err}");
    }
}

fn logits_at(max_length: usize, position: PositionMode) -> (Vec<f32>, Vec<f32>) {
    let device = device();
    let checkpoint = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let options = LoadOptions {
        max_length: Some(max_length),
        position,
        new_head: None,
    };
    let model = checkpoint.load_classifier(&options, &device).unwrap();
    let reference = Reference::open("models/ast-tiny-s10/reference.safetensors");
    let input = reference.tensor::<3>(&format!("input_values.L{max_length}"), &device);
    let key = match position {
        PositionMode::Adapt => {
            let pos = values(model.ast.embeddings.position.val());
            let err = max_abs_diff(
                &pos,
                &reference
                    .get(&format!("position_embeddings.L{max_length}"))
                    .0,
            );
            assert!(
                err <= 1e-6,
                "position embeddings at L={max_length} differ by {err}"
            );
            format!("logits.L{max_length}")
        }
        PositionMode::Zero => format!("logits.L{max_length}.zero_pos"),
    };
    (values(model.forward(input)), reference.get(&key).0)
}

#[test]
fn shorter_inputs_crop_the_position_grid_like_the_ast_code() {
    let (ours, theirs) = logits_at(64, PositionMode::Adapt);
    let err = max_abs_diff(&ours, &theirs);
    assert!(err <= LOGITS_TOL, "L=64: logits differ by {err}");
}

#[test]
fn longer_inputs_interpolate_the_position_grid_like_the_ast_code() {
    let (ours, theirs) = logits_at(160, PositionMode::Adapt);
    let err = max_abs_diff(&ours, &theirs);
    assert!(err <= LOGITS_TOL, "L=160: logits differ by {err}");
}

#[test]
fn paper_compat_zeroes_resized_position_embeddings() {
    let (ours, theirs) = logits_at(64, PositionMode::Zero);
    let err = max_abs_diff(&ours, &theirs);
    assert!(err <= LOGITS_TOL, "L=64 zeroed: logits differ by {err}");
}
