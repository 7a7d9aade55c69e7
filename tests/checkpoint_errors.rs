//! Broken checkpoints give one clear error that names the file and every bad tensor.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{device, fixture};
use petl_ast::model::{Checkpoint, LoadError, LoadOptions, TensorProblem};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// Copies the `ast-tiny-s10` fixture into a temp folder, letting `edit` change the tensor map.
fn broken_copy(
    edit: impl FnOnce(&mut BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>),
) -> tempfile::TempDir {
    let src = fixture("models/ast-tiny-s10");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut map: BTreeMap<_, _> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
            )
        })
        .collect();
    edit(&mut map);
    let views: Vec<(String, TensorView)> = map
        .iter()
        .map(|(name, (dtype, shape, data))| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}

fn load(dir: &Path) -> Result<(), LoadError> {
    Checkpoint::from_dir(dir)?.load_classifier(&LoadOptions::default(), &device())?;
    Ok(())
}

const QUERY: &str =
    "audio_spectrogram_transformer.encoder.layer.1.attention.attention.query.weight";

#[test]
fn every_missing_unexpected_and_misshapen_tensor_is_listed() {
    let dir = broken_copy(|map| {
        map.remove(QUERY);
        let (_, shape, data) = map.get_mut("classifier.dense.bias").unwrap();
        *shape = vec![5];
        data.truncate(5 * 4);
        map.insert("extra.weight".into(), (Dtype::F32, vec![2], vec![0; 8]));
        map.insert(
            "audio_spectrogram_transformer.layernorm.weight".into(),
            (Dtype::I64, vec![64], vec![0; 64 * 8]),
        );
    });
    let err = load(dir.path()).unwrap_err();
    let LoadError::Tensors { file, problems } = &err else {
        panic!("expected a tensor error, got {err}");
    };
    assert!(file.ends_with("model.safetensors"), "{file}");
    assert!(problems.contains(&TensorProblem::Missing {
        name: QUERY.into(),
        expected: vec![64, 64]
    }));
    assert!(problems.contains(&TensorProblem::Shape {
        name: "classifier.dense.bias".into(),
        expected: vec![10],
        found: vec![5]
    }));
    assert!(problems.contains(&TensorProblem::Unexpected {
        name: "extra.weight".into()
    }));
    assert!(problems
        .iter()
        .any(|p| matches!(p, TensorProblem::Dtype { dtype, .. } if dtype == "I64")));
    let message = err.to_string();
    assert!(
        message.contains(QUERY) && message.contains("extra.weight"),
        "{message}"
    );
}

#[test]
fn truncated_and_foreign_weight_files_are_refused() {
    let dir = broken_copy(|_| {});
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, LoadError::Safetensors { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    std::fs::write(&path, b"RIFF\x00\x00\x00\x00WAVEfmt ").unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, LoadError::Safetensors { .. }), "{err}");

    // A header that declares a huge length must not make us allocate it.
    let mut huge = (u64::MAX / 2).to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    std::fs::write(&path, huge).unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, LoadError::Safetensors { .. }), "{err}");
}

#[test]
fn missing_files_and_bad_configs_name_the_file() {
    let dir = broken_copy(|_| {});
    std::fs::write(dir.path().join("config.json"), "{\"hidden_size\": 65}").unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, LoadError::Config { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");

    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(
        matches!(err, LoadError::Io { .. }) && err.to_string().contains("config.json"),
        "{err}"
    );

    let err = load(&dir.path().join("nowhere")).unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
}

#[test]
fn a_new_head_ignores_the_checkpoint_classifier() {
    let dir = broken_copy(|map| {
        map.retain(|name, _| !name.starts_with("classifier"));
    });
    let checkpoint = Checkpoint::from_dir(dir.path()).unwrap();
    let options = LoadOptions {
        new_head: Some(3),
        ..Default::default()
    };
    let model = checkpoint.load_classifier(&options, &device()).unwrap();
    assert_eq!(model.head.dense.weight.dims(), [64, 3]);
    // Without asking for a new head, the missing classifier is an error.
    assert!(load(dir.path()).is_err());
}

/// A `config.json` describing a far larger model than `model.safetensors` holds is refused before
/// the model is built (missing tensors would otherwise be allocated as zeros: here ~1 TB).
#[test]
fn a_config_claiming_a_huge_model_is_refused_before_allocating() {
    let dir = broken_copy(|_| {});
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["hidden_size"] = 65536.into();
    config["intermediate_size"] = 65536.into();
    config["num_hidden_layers"] = 60.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let err = load(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LoadError::Config { .. }), "{message}");
    assert!(
        message.contains("model.safetensors") && message.contains("do not belong together"),
        "{message}"
    );
}

#[test]
fn input_lengths_and_heads_beyond_the_limits_are_refused() {
    let dir = broken_copy(|_| {});
    let checkpoint = Checkpoint::from_dir(dir.path()).unwrap();
    for (max_length, new_head, needle) in [
        (Some(1 << 30), None, "1073741824 frames"),
        (Some(4), None, "4 frames"),
        (None, Some(0), "1..=65536 classes, got 0"),
        (None, Some(1 << 40), "got 1099511627776"),
    ] {
        let options = LoadOptions {
            max_length,
            new_head,
            ..Default::default()
        };
        let err = checkpoint
            .load_classifier(&options, &device())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.safetensors") && err.contains(needle),
            "{err}"
        );
    }
}
