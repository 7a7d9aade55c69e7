//! Dataset readers on real FSDD audio (`../shared/data/fsdd/recordings`, skipped with a note when
//! absent) and on folder trees built from it.

use std::path::PathBuf;

use petl_ast::data::{self, DataError};

fn fsdd() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fsdd/recordings");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "note: {} is absent; FSDD reader test skipped",
            dir.display()
        );
        None
    }
}

#[test]
fn fsdd_official_split_sizes() {
    let Some(dir) = fsdd() else { return };
    let all = data::fsdd::read(&dir).unwrap();
    assert_eq!(all.len(), 3000);
    let splits = data::fsdd::splits(&dir, &["george", "jackson", "lucas", "nicolas"]).unwrap();
    // 4 speakers × 10 digits × 50 takes: indices 0–4 test, 5–9 valid, 10–49 train.
    assert_eq!(
        (splits.train.len(), splits.valid.len(), splits.test.len()),
        (1600, 200, 200)
    );
    assert_eq!(splits.labels.len(), 10);
    assert!(splits
        .test
        .iter()
        .all(|c| c.group.as_deref() != Some("theo")));
    let few = data::first_k_per_class(&splits.train, 4);
    assert_eq!(few.len(), 40);
    assert!((0..10).all(|d| few.iter().filter(|c| c.label == d).count() == 4));
}

#[test]
fn folder_layout_reads_classes_in_order_and_reports_bad_layouts() {
    let Some(dir) = fsdd() else { return };
    let tree = tempfile::tempdir().unwrap();
    for (class, files) in [
        ("yes", ["0_theo_0.wav", "0_theo_1.wav"]),
        ("no", ["1_theo_0.wav", "1_theo_1.wav"]),
    ] {
        std::fs::create_dir(tree.path().join(class)).unwrap();
        for f in files {
            std::fs::copy(dir.join(f), tree.path().join(class).join(f)).unwrap();
        }
    }
    std::fs::write(tree.path().join("README.txt"), "not a class").unwrap();
    let (labels, clips) = data::folder::read(tree.path()).unwrap();
    assert_eq!(labels, vec!["no", "yes"]);
    assert_eq!(clips.len(), 4);
    assert_eq!(clips.iter().filter(|c| c.label == 1).count(), 2);

    let empty = tempfile::tempdir().unwrap();
    let err = data::folder::read(empty.path()).unwrap_err();
    assert!(
        matches!(err, DataError::Layout { .. }) && err.to_string().contains("sub-folder"),
        "{err}"
    );
    let err = data::fsdd::read(empty.path()).unwrap_err();
    assert!(err.to_string().contains("recordings"), "{err}");
}

#[test]
fn a_corrupt_wav_in_a_dataset_is_named_or_skipped() {
    let Some(dir) = fsdd() else { return };
    let tree = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("3_theo_0.wav"), tree.path().join("3_theo_0.wav")).unwrap();
    std::fs::write(tree.path().join("4_theo_0.wav"), b"RIFF....WAVEjunk").unwrap();
    let clips: Vec<_> = data::fsdd::read(tree.path())
        .unwrap()
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let extractor = petl_ast::audio::FeatureExtractor::default();
    let limits = petl_ast::audio::AudioLimits::default();
    let err = data::features::examples(&clips, &extractor, &limits, false).unwrap_err();
    assert!(err.to_string().contains("4_theo_0.wav"), "{err}");
    let (examples, skipped) = data::features::examples(&clips, &extractor, &limits, true).unwrap();
    assert_eq!(examples.len(), 1);
    assert_eq!(skipped.len(), 1);
}
