//! The training loop on the tiny checkpoint: it learns a separable task, keeps the best
//! validation epoch, skips non-finite steps and stops when they pile up; a run saved after an
//! epoch and continued ends exactly like the uninterrupted run.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use common::{device, fixture};
use petl_ast::audio::FeatureExtractor;
use petl_ast::model::{Checkpoint, LoadOptions};
use petl_ast::petl::{MethodArgs, PetlModel};
use petl_ast::train::{
    self, EpochMetrics, Example, OptimizerConfig, SpecAugment, StateError, TrainConfig, TrainError,
    TrainState,
};

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
        devices: Vec::new(),
        time_shift: None,
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

/// Every trainable tensor of `model`, by path, as raw bits.
fn trainable_bits<M: Module>(model: &M) -> Vec<(String, Vec<u32>)> {
    #[derive(Default)]
    struct Bits {
        path: Vec<String>,
        out: Vec<(String, Vec<u32>)>,
    }
    impl ModuleVisitor for Bits {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.is_require_grad() {
                let values = param.val().into_data().try_to_vec::<f32>().unwrap();
                self.out.push((
                    self.path.join("."),
                    values.iter().map(|v| v.to_bits()).collect(),
                ));
            }
        }
    }
    let mut bits = Bits::default();
    model.visit(&mut bits);
    assert!(!bits.out.is_empty());
    bits.out
}

/// Recomputing each layer's MLP expansion in the backward (`--gradient-checkpointing` on the
/// cpu backend) changes what the backward keeps, not the gradients: two epochs end at the same
/// adapters and head, up to summation order.
#[test]
fn recomputing_the_mlp_expansion_trains_like_keeping_it() {
    let train_set = examples(16, 4);
    // One initialisation for both runs (clones share it; training makes new tensors).
    let initial = model();
    let trained = |recompute: bool| {
        let model = initial.clone().recompute_mlp_in_backward(recompute);
        assert!(model
            .ast
            .layers
            .iter()
            .all(|l| l.recompute_mlp == recompute));
        let (model, _) =
            train::train(model, &train_set, None, SHAPE, &config(2), &mut |_| {}).unwrap();
        trainable_bits(&model)
    };
    let (kept, recomputed) = (trained(false), trained(true));
    assert_eq!(kept.len(), recomputed.len());
    for ((name, a), (other, b)) in kept.iter().zip(&recomputed) {
        assert_eq!(name, other);
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (f32::from_bits(*x), f32::from_bits(*y));
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
                "{name}: {x} kept vs {y} recomputed"
            );
        }
    }
}

/// Data parallelism: each batch split over two replicas (on the one CPU device, as `train
/// --devices 2` does there), their gradients added, one step. Same global batch, same seed: the
/// losses of every step and the trained weights equal the one-device run's up to summation order,
/// in the CLI's loop and in the page's step-wise session. Batches of 8 and the last one of 4 (of
/// 20 clips) split evenly; a batch of 5 would split 3 + 2.
#[test]
fn two_replicas_train_like_one_device() {
    let train_set = examples(20, 6);
    let initial = model();
    let replicas = vec![device().autodiff(), device().autodiff()];
    let steps = |devices: Vec<burn::tensor::Device>, batch_size: usize| {
        let config = TrainConfig {
            devices,
            batch_size,
            ..config(2)
        };
        let mut losses = Vec::new();
        let (model, history) = train::train(
            initial.clone(),
            &train_set,
            None,
            SHAPE,
            &config,
            &mut |p| {
                if let train::Progress::Step { loss, .. } = p {
                    losses.push(loss);
                }
            },
        )
        .unwrap();
        let mut session =
            train::TrainSession::new(initial.clone(), train_set.clone(), SHAPE, config).unwrap();
        let mut session_losses = Vec::new();
        while let Some(report) = session.step() {
            session_losses.push(report.unwrap().loss);
        }
        let session_model = session.into_model();
        (
            losses,
            history,
            trainable_bits(&model),
            session_losses,
            trainable_bits(&session_model),
        )
    };
    for batch_size in [8, 5] {
        let one = steps(Vec::new(), batch_size);
        let two = steps(replicas.clone(), batch_size);
        for (a, b) in [(&one.0, &two.0), (&one.3, &two.3)] {
            assert_eq!(a.len(), b.len());
            assert!(a.len() >= 4);
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-4, "loss {x} on one device, {y} on two");
            }
        }
        assert_eq!(
            one.1.iter().map(|m| m.train_accuracy).collect::<Vec<_>>(),
            two.1.iter().map(|m| m.train_accuracy).collect::<Vec<_>>()
        );
        for (a, b) in [(&one.2, &two.2), (&one.4, &two.4)] {
            for ((name, a), (_, b)) in a.iter().zip(b) {
                for (x, y) in a.iter().zip(b) {
                    let (x, y) = (f32::from_bits(*x), f32::from_bits(*y));
                    assert!(
                        (x - y).abs() <= 1e-4 * (1.0 + x.abs()),
                        "{name}: {x} on one device, {y} on two"
                    );
                }
            }
        }
    }
}

/// Metrics without the wall time.
fn timeless(history: &[EpochMetrics]) -> Vec<EpochMetrics> {
    history
        .iter()
        .map(|m| EpochMetrics {
            seconds: 0.0,
            ..m.clone()
        })
        .collect()
}

fn resumable_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        // Exercises the generator between epochs.
        spec_augment: Some(SpecAugment {
            freq_mask: 8,
            time_mask: 10,
        }),
        ..config(epochs)
    }
}

/// Runs `config` from a fresh state and returns the bytes of the state after `epoch`, stopping
/// there through the hook.
fn state_after(
    model: PetlModel,
    epoch: usize,
    train_set: &[Example],
    valid: &[Example],
    config: &TrainConfig,
) -> Vec<u8> {
    let mut saved = None;
    let result = train::train_from(
        TrainState::new(model, config),
        train_set,
        Some(valid),
        SHAPE,
        config,
        &mut |_| {},
        &mut |state| {
            saved = Some(state.to_bytes(config).map_err(|e| e.to_string())?);
            if state.epoch == epoch {
                Err("interrupted".into())
            } else {
                Ok(())
            }
        },
    );
    assert_eq!(
        result.err(),
        Some(TrainError::Hook {
            epoch,
            message: "interrupted".into()
        })
    );
    saved.unwrap()
}

/// The CLI's epoch loop and the page's step-by-step session are one loop: the same seed gives
/// the same batches, augmentation, losses and weights, epoch after epoch.
#[test]
fn the_cli_loop_and_the_page_session_make_the_same_run() {
    let train_set = examples(20, 15);
    let config = TrainConfig {
        time_shift: Some(petl_ast::train::TimeShift { max_frames: 10 }),
        ..resumable_config(3)
    };
    let start = model();
    let mut cli_losses = Vec::new();
    let (cli_model, history) =
        train::train(start.clone(), &train_set, None, SHAPE, &config, &mut |p| {
            if let train::Progress::Step { loss, .. } = p {
                cli_losses.push(loss);
            }
        })
        .unwrap();
    let mut session = train::TrainSession::new(start, &train_set, SHAPE, config.clone()).unwrap();
    let mut page_losses = Vec::new();
    let mut correct = vec![0; config.epochs];
    while let Some(report) = session.step() {
        let report = report.unwrap();
        page_losses.push(report.loss);
        correct[report.epoch - 1] += report.correct;
    }
    assert_eq!(page_losses.len(), 9);
    assert_eq!(page_losses, cli_losses);
    let accuracy: Vec<f64> = correct.iter().map(|&c| c as f64 / 20.0).collect();
    let cli_accuracy: Vec<f64> = history.iter().map(|m| m.train_accuracy).collect();
    assert_eq!(accuracy, cli_accuracy);
    assert_eq!(session.state().epoch, 3);
    assert_eq!(
        trainable_bits(&session.into_model()),
        trainable_bits(&cli_model)
    );
}

#[test]
fn three_epochs_equal_two_then_one_resumed() {
    let (train_set, valid) = (examples(24, 11), examples(8, 12));
    let config = resumable_config(3);
    let start = model();
    let full = train::train_from(
        TrainState::new(start.clone(), &config),
        &train_set,
        Some(&valid),
        SHAPE,
        &config,
        &mut |_| {},
        &mut |_| Ok(()),
    )
    .unwrap();

    let bytes = state_after(start, 2, &train_set, &valid, &config);
    // A freshly built model (another random head and adapters): every trained tensor comes from
    // the file.
    let state = TrainState::from_bytes(&bytes, "state", model(), &config).unwrap();
    assert_eq!((state.epoch, state.history.len()), (2, 2));
    let resumed = train::train_from(
        state,
        &train_set,
        Some(&valid),
        SHAPE,
        &config,
        &mut |_| {},
        &mut |_| Ok(()),
    )
    .unwrap();

    assert_eq!(timeless(&resumed.history), timeless(&full.history));
    assert_eq!(
        trainable_bits(&resumed.model),
        trainable_bits(&full.model),
        "final weights differ"
    );
    assert_eq!(resumed.global_step, full.global_step);
    assert_eq!(resumed.order, full.order);
    let (best_resumed, _) = resumed.finish();
    let (best_full, _) = full.finish();
    assert_eq!(trainable_bits(&best_resumed), trainable_bits(&best_full));
    let (loss_a, acc_a, pred_a) = train::evaluate(&best_resumed, &valid, 8, SHAPE);
    let (loss_b, acc_b, pred_b) = train::evaluate(&best_full, &valid, 8, SHAPE);
    assert_eq!((loss_a, acc_a, pred_a), (loss_b, acc_b, pred_b));
}

#[test]
fn a_state_of_another_run_is_refused_and_a_torn_one_never_loads() {
    let (train_set, valid) = (examples(8, 13), examples(4, 14));
    let config = resumable_config(2);
    let bytes = state_after(model(), 1, &train_set, &valid, &config);

    let other = TrainConfig {
        seed: 4,
        ..config.clone()
    };
    let err = TrainState::from_bytes(&bytes, "runs/x/state", model(), &other)
        .err()
        .unwrap();
    assert!(
        matches!(&err, StateError::Mismatch { file, message } if file == "runs/x/state" && message.contains("same arguments")),
        "{err}"
    );
    for cut in [bytes.len() / 2, bytes.len() - 1, 10] {
        let err = TrainState::from_bytes(&bytes[..cut], "torn", model(), &config)
            .err()
            .unwrap();
        assert!(matches!(err, StateError::Format { .. }), "{err}");
    }
}

#[test]
fn an_interrupted_state_write_keeps_the_previous_state() {
    let (train_set, valid) = (examples(8, 15), examples(4, 16));
    let config = resumable_config(2);
    let first = state_after(model(), 1, &train_set, &valid, &config);
    let second = state_after(model(), 2, &train_set, &valid, &config);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train_state.safetensors");
    petl_ast::io::write_atomic(&path, &first).unwrap();
    // The write of the next state dies half-way, before its rename, as when a process is killed
    // mid-write.
    let died = petl_ast::io::write_atomic_with(&path, |file| {
        use std::io::Write;
        file.write_all(&second[..second.len() / 2])?;
        Err(std::io::Error::other("killed"))
    });
    assert!(died.is_err());
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(on_disk, first);
    let state = TrainState::from_bytes(&on_disk, "state", model(), &config).unwrap();
    assert_eq!(state.epoch, 1);
    // Once the write goes through, the new state replaces it whole.
    petl_ast::io::write_atomic(&path, &second).unwrap();
    let state =
        TrainState::from_bytes(&std::fs::read(&path).unwrap(), "state", model(), &config).unwrap();
    assert_eq!(state.epoch, 2);
}

/// A linear probe with the same initial head on every call.
fn linear_probe() -> PetlModel {
    let device = device().autodiff();
    device.seed(11);
    let checkpoint = Checkpoint::from_dir(fixture("models/ast-tiny-s10")).unwrap();
    let ast = checkpoint
        .load_backbone(&LoadOptions::default(), &device)
        .unwrap();
    let args = MethodArgs {
        method: petl_ast::petl::Method::Linear,
        ..Default::default()
    };
    let petl = args.to_config(64, 2).unwrap();
    PetlModel::new(ast, &checkpoint.config, &petl, 2, &device).unwrap()
}

/// The trainable tensors of a model, by name.
fn named_params(model: &PetlModel) -> Vec<(String, Vec<f32>)> {
    let probe = [
        ("norm.gamma", model.ast.norm.gamma.val()),
        ("norm.beta", model.ast.norm.beta.as_ref().unwrap().val()),
        ("head.bias", model.head.bias.as_ref().unwrap().val()),
    ];
    let mut out: Vec<(String, Vec<f32>)> = probe
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.into_data().try_to_vec::<f32>().unwrap()))
        .collect();
    out.push((
        "head.weight".into(),
        model
            .head
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
    ));
    out
}

#[test]
fn a_linear_probe_on_cached_features_trains_like_the_full_forward() {
    let (train_set, valid) = (examples(24, 5), examples(8, 6));
    let config = config(4);
    // One initial head for both runs: other tests draw from the same RNG concurrently, so two
    // seeded constructions need not agree.
    let model = linear_probe();
    let initial = named_params(&model);
    let (full, full_history) = train::train(
        model.clone(),
        &train_set,
        Some(&valid),
        SHAPE,
        &config,
        &mut |_| {},
    )
    .unwrap();

    let probe = train::CachedProbe::of(&model, &config).expect("a linear probe");
    let features = train::CachedProbe::feature_model(&model);
    let cache = |set: &[Example]| {
        let eval = train::predict(&features, set, 8, SHAPE, &mut |_| {});
        train::CachedProbe::cache(&eval, set)
    };
    let (train_cached, valid_cached) = (cache(&train_set), cache(&valid));
    assert_eq!(train_cached[0].features.len(), 64);
    let shape = probe.shape();
    let (probe, probe_history) = train::train(
        probe,
        &train_cached,
        Some(&valid_cached),
        shape,
        &config,
        &mut |_| {},
    )
    .unwrap();
    let cached = probe.into_model(model);

    for (a, b) in full_history.iter().zip(&probe_history) {
        assert!((a.train_loss - b.train_loss).abs() < 1e-4, "{a:?} vs {b:?}");
        assert_eq!(a.valid_accuracy, b.valid_accuracy);
    }
    for ((name, a), (_, b)) in named_params(&full).iter().zip(named_params(&cached)) {
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-4, "{name}: max difference {diff}");
    }
    // The parameters moved: the comparison is not between two untrained models.
    let moved = initial[3].1 != named_params(&cached)[3].1;
    assert!(moved);
    // The full model with the probe's weights gives the probe's logits.
    let logits_full = train::predict(&cached, &valid, 8, SHAPE, &mut |_| {});
    let logits_probe = train::predict(
        &train::CachedProbe::of(&cached, &config).unwrap(),
        &valid_cached,
        8,
        shape,
        &mut |_| {},
    );
    assert!((logits_full.loss - logits_probe.loss).abs() < 1e-5);
}

#[test]
fn augmented_or_adapted_models_are_not_probed_on_cached_features() {
    let mut augmented = config(1);
    augmented.spec_augment = Some(SpecAugment::PAPER);
    assert!(train::CachedProbe::of(&linear_probe(), &augmented).is_none());
    assert!(train::CachedProbe::of(&model(), &config(1)).is_none());
}
