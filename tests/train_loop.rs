//! The training loop on the tiny checkpoint: it learns a separable task, keeps the best
//! validation epoch, skips non-finite steps and stops when they pile up.

mod common;

use common::{device, fixture};
use petl_ast::audio::FeatureExtractor;
use petl_ast::model::{Checkpoint, LoadOptions};
use petl_ast::petl::{MethodArgs, PetlModel};
use petl_ast::train::{self, Example, OptimizerConfig, TrainConfig, TrainError};

const SHAPE: [usize; 2] = [100, 128];

/// Two classes of synthetic 16 kHz clips: low tones and high tones, with random phase and level.
fn examples(n: usize, seed: u64) -> Vec<Example> {
    let config = petl_ast::audio::FeatureExtractorConfig {
        max_length: SHAPE[0],
        ..Default::default()
    };
    let extractor = FeatureExtractor::new(config).unwrap();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f32 / (1u64 << 31) as f32
    };
    (0..n)
        .map(|i| {
            let label = i % 2;
            let freq = if label == 0 { 300.0 } else { 3000.0 } * (0.8 + 0.4 * next());
            let level = 0.1 + 0.4 * next();
            let phase = next() * std::f32::consts::TAU;
            let samples: Vec<f32> = (0..12_000)
                .map(|t| level * (phase + t as f32 * freq * std::f32::consts::TAU / 16_000.0).sin())
                .collect();
            Example {
                features: extractor.extract(&samples),
                label,
            }
        })
        .collect()
}

fn model() -> PetlModel {
    let device = device().autodiff();
    let checkpoint = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let ast = checkpoint
        .load_backbone(&LoadOptions::default(), &device)
        .unwrap();
    let args = MethodArgs {
        reduction_rate: 8,
        ..Default::default()
    };
    let petl = args.to_config(64, 2).unwrap();
    PetlModel::new(ast, &checkpoint.config, &petl, 2, &device).unwrap()
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 8,
        optimizer: OptimizerConfig {
            lr: 2e-2,
            beta1: 0.9,
            beta2: 0.98,
            epsilon: 1e-6,
            weight_decay: 0.1,
        },
        seed: 3,
        spec_augment: None,
        max_bad_steps: 2,
        warmup_steps: 0,
    }
}

#[test]
fn an_adapter_learns_a_separable_task() {
    let (train_set, valid) = (examples(48, 1), examples(16, 2));
    let (model, history) = train::train(
        model(),
        &train_set,
        Some(&valid),
        SHAPE,
        &config(15),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(history.len(), 15);
    let first = &history[0];
    let last = history.last().unwrap();
    assert!(
        last.train_loss < first.train_loss,
        "loss did not go down: {history:?}"
    );
    let best = history
        .iter()
        .filter_map(|m| m.valid_accuracy)
        .fold(0.0, f64::max);
    assert!(best >= 0.75, "validation accuracy {best} (chance 0.5)");
    // The returned model is the best epoch's.
    let (_, accuracy, _) = train::evaluate(&model, &valid, 8, SHAPE);
    assert_eq!(accuracy, best);
    // Learning-rate schedule reaches zero at the end.
    assert!(last.lr.abs() < 1e-12);
}

#[test]
fn a_nan_clip_skips_its_step_reports_it_and_leaves_the_weights_finite() {
    // 16 clips in batches of 8: the batch holding the NaN clip is skipped in every epoch.
    let mut train_set = examples(16, 6);
    train_set[5].features[17] = f32::NAN;
    let mut steps = 0;
    let mut reported = Vec::new();
    let (model, history) =
        train::train(
            model(),
            &train_set,
            None,
            SHAPE,
            &config(2),
            &mut |p| match p {
                train::Progress::Step { loss, .. } => {
                    assert!(loss.is_finite());
                    steps += 1;
                }
                train::Progress::Epoch(m) => reported.push(m.skipped_steps),
            },
        )
        .unwrap();
    assert_eq!(reported, [1, 1], "one skipped step per epoch, reported");
    assert_eq!(
        history.iter().map(|m| m.skipped_steps).collect::<Vec<_>>(),
        [1, 1]
    );
    assert_eq!(steps, 2, "only the clean batches stepped");
    assert!(history.iter().all(|m| m.train_loss.is_finite()));
    let (loss, _, _) = train::evaluate(&model, &examples(8, 7), 8, SHAPE);
    assert!(loss.is_finite(), "the NaN reached the weights: loss {loss}");
    // A third epoch is one bad step more than `max_bad_steps` (2) allows.
    let err = train::train(model, &train_set, None, SHAPE, &config(3), &mut |_| {}).err();
    assert_eq!(err, Some(TrainError::Diverged(3)));
}

#[test]
fn non_finite_losses_are_skipped_then_stop_training() {
    let mut train_set = examples(16, 4);
    for e in &mut train_set {
        e.features[0] = f32::NAN;
    }
    let err = train::train(model(), &train_set, None, SHAPE, &config(3), &mut |_| {}).err();
    assert_eq!(err, Some(TrainError::Diverged(3)));

    let mut bad = examples(2, 5);
    bad[1].features.pop();
    let err = train::train(model(), &bad, None, SHAPE, &config(1), &mut |_| {}).err();
    assert!(
        matches!(err, Some(TrainError::BadExample { index: 1, .. })),
        "{err:?}"
    );
    assert_eq!(
        train::train(model(), &[], None, SHAPE, &config(1), &mut |_| {}).err(),
        Some(TrainError::Empty)
    );
}
