//! Dataset readers on real FSDD audio (`../shared/data/fsdd/recordings`; the tests fail when it
//! is absent) and on folder trees built from it.

use std::path::PathBuf;

use petl_ast::data::{self, DataError};

fn fsdd() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fsdd/recordings");
    assert!(
        dir.is_dir(),
        "{} is absent: these tests need the FSDD recordings beside the checkout",
        dir.display()
    );
    dir
}

#[test]
fn fsdd_official_split_sizes() {
    let dir = fsdd();
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
fn seeded_few_shot_draws_k_per_class_reproducibly() {
    let dir = fsdd();
    let pool = data::fsdd::splits(&dir, &["theo", "yweweler"])
        .unwrap()
        .train;
    let paths = |clips: &[data::Clip]| clips.iter().map(|c| c.path.clone()).collect::<Vec<_>>();
    let draw = data::sample_k_per_class(&pool, 4, 7);
    assert_eq!(draw.len(), 40);
    assert!((0..10).all(|d| draw.iter().filter(|c| c.label == d).count() == 4));
    assert!(draw.iter().all(|c| pool.contains(c)), "drawn from the pool");
    let unique: std::collections::BTreeSet<_> = paths(&draw).into_iter().collect();
    assert_eq!(unique.len(), 40, "without replacement");
    assert_eq!(paths(&data::sample_k_per_class(&pool, 4, 7)), paths(&draw));
    assert_ne!(paths(&data::sample_k_per_class(&pool, 4, 8)), paths(&draw));
    assert_ne!(paths(&data::first_k_per_class(&pool, 4)), paths(&draw));
    // Across seeds every take of a class gets drawn, not only the first ones.
    let seen: std::collections::BTreeSet<_> = (0..50)
        .flat_map(|seed| paths(&data::sample_k_per_class(&pool, 1, seed)))
        .collect();
    assert!(
        seen.len() > 100,
        "{} distinct clips over 50 one-shot draws",
        seen.len()
    );
    // More than a class holds: all of it.
    assert_eq!(data::sample_k_per_class(&pool, 1000, 0).len(), pool.len());
}

#[test]
fn folder_layout_reads_classes_in_order_and_reports_bad_layouts() {
    let dir = fsdd();
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
    let dir = fsdd();
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

// ---------------------------------------------------------------------------------------------
// Paper datasets, each in its own on-disk layout, built in a tempdir from FSDD clips.

use std::path::Path;

use petl_ast::audio::{AudioLimits, FeatureExtractor, FeatureExtractorConfig};
use petl_ast::data::{esc50, fsc, gsc, us8k, Clip};

/// FSDD clips to copy (any will do; the readers never look inside).
const SOURCES: [&str; 4] = [
    "0_theo_0.wav",
    "1_jackson_3.wav",
    "2_george_7.wav",
    "3_nicolas_9.wav",
];

fn copy_clip(fsdd: &Path, i: usize, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(fsdd.join(SOURCES[i % SOURCES.len()]), dst).unwrap();
}

fn names(clips: &[Clip]) -> Vec<String> {
    clips
        .iter()
        .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn small_extractor() -> FeatureExtractor {
    FeatureExtractor::new(FeatureExtractorConfig {
        max_length: 100,
        ..FeatureExtractorConfig::default()
    })
    .unwrap()
}

/// ESC-50 with `k` clips in fold `k` (15 clips), targets cycling over dog/rooster/pig.
/// Returns the file names per fold.
fn esc50_tree(fsdd: &Path, root: &Path) -> Vec<Vec<String>> {
    let mut csv = String::from("filename,fold,target,category,esc10,src_file,take\n");
    let mut per_fold = vec![Vec::new(); 5];
    let mut n = 0;
    for fold in 1..=5 {
        for i in 0..fold {
            let target = n % 3;
            let name = format!("{fold}-{}-A-{target}.wav", 1000 + i);
            csv += &format!(
                "{name},{fold},{target},{},False,{},A\n",
                esc50::CLASSES[target],
                1000 + i
            );
            copy_clip(fsdd, n, &root.join("audio").join(&name));
            per_fold[fold - 1].push(name);
            n += 1;
        }
    }
    std::fs::create_dir_all(root.join("meta")).unwrap();
    std::fs::write(root.join("meta/esc50.csv"), csv).unwrap();
    per_fold
}

#[test]
fn esc50_reads_folds_and_rotates_like_the_reference() {
    let fsdd = fsdd();
    let tree = tempfile::tempdir().unwrap();
    let per_fold = esc50_tree(&fsdd, tree.path());
    let folded = esc50::read(tree.path()).unwrap();
    assert_eq!(folded.fold_sizes(), vec![1, 2, 3, 4, 5]);
    assert_eq!(folded.labels.len(), 50);
    assert_eq!(folded.labels[..3], ["dog", "rooster", "pig"]);
    assert_eq!(folded.labels[49], "hand_saw");
    // Labels are the targets, in CSV order (targets cycle 0, 1, 2).
    let labels: Vec<usize> = folded.clips.iter().map(|(c, _)| c.label).collect();
    assert_eq!(labels, (0..15).map(|n| n % 3).collect::<Vec<_>>());
    assert_eq!(folded.clips[3].0.group.as_deref(), Some("1000"));

    // PETL_AST main.py: (test, valid, train) = (5, 4, 123), (1, 5, 234), (2, 1, 345), (3, 2, 451), (4, 3, 512).
    let expected = [
        (1, 5, [2, 3, 4]),
        (2, 1, [3, 4, 5]),
        (3, 2, [4, 5, 1]),
        (4, 3, [5, 1, 2]),
        (5, 4, [1, 2, 3]),
    ];
    for (test, valid, train) in expected {
        let r = esc50::rotation(test).unwrap();
        assert_eq!(
            (r.test, r.valid.as_slice(), r.train.as_slice()),
            (test, &[valid][..], &train[..])
        );
        let s = esc50::splits(tree.path(), test).unwrap();
        assert_eq!(names(&s.test), per_fold[test - 1]);
        assert_eq!(names(&s.valid), per_fold[valid - 1]);
        let mut want: Vec<String> = train.iter().flat_map(|f| per_fold[f - 1].clone()).collect();
        let mut got = names(&s.train);
        want.sort();
        got.sort();
        assert_eq!(got, want, "train of test fold {test}");
    }
    assert!(esc50::rotation(0).is_none() && esc50::rotation(6).is_none());
    assert!(esc50::splits(tree.path(), 6)
        .unwrap_err()
        .to_string()
        .contains("1..=5"));
}

#[test]
fn esc50_bad_layouts_name_the_file_or_line() {
    let fsdd = fsdd();
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    let per_fold = esc50_tree(&fsdd, root);
    let csv = root.join("meta/esc50.csv");
    let text = std::fs::read_to_string(&csv).unwrap();

    // A missing wav: the CSV line and the wav path.
    std::fs::remove_file(root.join("audio").join(&per_fold[1][0])).unwrap();
    let err = esc50::read(root).unwrap_err().to_string();
    assert!(
        err.contains("esc50.csv:3:") && err.contains(&per_fold[1][0]),
        "{err}"
    );
    copy_clip(&fsdd, 0, &root.join("audio").join(&per_fold[1][0]));

    // Malformed rows: a bad fold, a field missing, a category that is not the target's.
    for (bad, needle) in [
        (
            "x.wav,seven,0,dog,False,1,A",
            "esc50.csv:17: column `fold`: `seven`",
        ),
        (
            "x.wav,1,0,dog,False,1",
            "esc50.csv:17: 6 field(s), but the header has 7",
        ),
        ("x.wav,1,0,cat,False,1,A", "esc50.csv:17: target 0 is `dog`"),
        ("x.wav,6,0,dog,False,1,A", "esc50.csv:17: fold 6"),
    ] {
        std::fs::write(&csv, format!("{text}{bad}\n")).unwrap();
        let err = esc50::read(root).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    std::fs::write(&csv, "filename,fold,category\n").unwrap();
    let err = esc50::read(root).unwrap_err().to_string();
    assert!(err.contains("esc50.csv:1: no `target` column"), "{err}");

    // A missing CSV and a missing audio folder.
    std::fs::remove_file(&csv).unwrap();
    let err = esc50::read(root).unwrap_err().to_string();
    assert!(err.contains("meta/esc50.csv"), "{err}");
    std::fs::write(&csv, &text).unwrap();
    std::fs::rename(root.join("audio"), root.join("wavs")).unwrap();
    let err = esc50::read(root).unwrap_err().to_string();
    assert!(
        err.contains(&root.join("audio").display().to_string()),
        "{err}"
    );
}

/// UrbanSound8K with 1 + (k mod 3) clips in fold k (20 clips), classes cycling over all ten.
/// The first clip of fold 2 is rewritten as 44.1 kHz stereo 24-bit. Returns names per fold.
fn us8k_tree(fsdd: &Path, root: &Path) -> Vec<Vec<String>> {
    let mut csv = String::from("slice_file_name,fsID,start,end,salience,fold,classID,class\n");
    let mut per_fold = vec![Vec::new(); 10];
    let mut n = 0;
    for fold in 1..=10 {
        for i in 0..1 + fold % 3 {
            let class = n % 10;
            let name = format!("{}-{class}-0-{i}.wav", 500 + n);
            csv += &format!(
                "{name},{},0.0,4.0,1,{fold},{class},{}\n",
                500 + n,
                us8k::CLASSES[class]
            );
            let path = root.join(format!("audio/fold{fold}")).join(&name);
            copy_clip(fsdd, n, &path);
            if fold == 2 && i == 0 {
                rewrite_stereo_24bit_44k(&path);
            }
            per_fold[fold - 1].push(name);
            n += 1;
        }
    }
    std::fs::create_dir_all(root.join("metadata")).unwrap();
    std::fs::write(root.join("metadata/UrbanSound8K.csv"), csv).unwrap();
    per_fold
}

/// Rewrites a mono 16-bit wav as 44.1 kHz stereo 24-bit (linear interpolation, right = -left/2).
fn rewrite_stereo_24bit_44k(path: &Path) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let rate = reader.spec().sample_rate as f64;
    let samples: Vec<f64> = reader
        .samples::<i16>()
        .map(|s| f64::from(s.unwrap()) / 32768.0)
        .collect();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 24,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    let n = (samples.len() as f64 * 44_100.0 / rate) as usize;
    for i in 0..n {
        let t = i as f64 * rate / 44_100.0;
        let (j, frac) = (t as usize, t.fract());
        let v = samples[j] * (1.0 - frac) + samples[(j + 1).min(samples.len() - 1)] * frac;
        writer.write_sample((v * 8_388_607.0) as i32).unwrap();
        writer.write_sample((-v * 4_194_303.0) as i32).unwrap();
    }
    writer.finalize().unwrap();
}

#[test]
fn us8k_holds_out_a_validation_fold_unless_paper_compat() {
    let fsdd = fsdd();
    let tree = tempfile::tempdir().unwrap();
    let per_fold = us8k_tree(&fsdd, tree.path());
    let folded = us8k::read(tree.path()).unwrap();
    assert_eq!(folded.fold_sizes(), vec![2, 3, 1, 2, 3, 1, 2, 3, 1, 2]);
    assert_eq!(folded.labels[3], "dog_bark");
    assert!(folded
        .clips
        .iter()
        .all(|(c, _)| folded.labels[c.label] == us8k::CLASSES[c.label]
            && c.path
                .to_string_lossy()
                .contains(&format!("-{}-0-", c.label))));

    let size = |folds: &[usize]| folds.iter().map(|f| per_fold[f - 1].len()).sum::<usize>();
    for test in 1..=10 {
        // Default: valid = the fold before, train = the other eight.
        let r = us8k::rotation(test, false).unwrap();
        let before = if test == 1 { 10 } else { test - 1 };
        assert_eq!(r.valid, vec![before]);
        assert_eq!(r.train.len(), 8);
        assert!(!r.train.contains(&test) && !r.train.contains(&before));
        let s = us8k::splits(tree.path(), test, false).unwrap();
        assert_eq!(names(&s.test), per_fold[test - 1]);
        assert_eq!(names(&s.valid), per_fold[before - 1]);
        assert_eq!(s.train.len(), size(&r.train));
        assert_eq!(s.train.len() + s.valid.len() + s.test.len(), 20);

        // paper_compat: nine training folds, "validation" on the test fold itself.
        let r = us8k::rotation(test, true).unwrap();
        assert_eq!(r.valid, vec![test]);
        assert_eq!(r.train.len(), 9);
        let s = us8k::splits(tree.path(), test, true).unwrap();
        assert_eq!(s.valid, s.test);
        assert_eq!(s.train.len(), 20 - per_fold[test - 1].len());
    }
    assert!(us8k::rotation(11, false).is_none());

    // Every clip decodes, the 44.1 kHz stereo 24-bit one included.
    let clips: Vec<Clip> = folded.clips.iter().map(|(c, _)| c.clone()).collect();
    let (examples, skipped) =
        data::features::examples(&clips, &small_extractor(), &AudioLimits::default(), false)
            .unwrap();
    assert_eq!((examples.len(), skipped.len()), (20, 0));
    let stereo = &per_fold[1][0];
    let spec = hound::WavReader::open(tree.path().join("audio/fold2").join(stereo))
        .unwrap()
        .spec();
    assert_eq!(
        (spec.channels, spec.bits_per_sample, spec.sample_rate),
        (2, 24, 44_100)
    );
}

#[test]
fn us8k_bad_layouts_name_the_file_or_line() {
    let fsdd = fsdd();
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    let per_fold = us8k_tree(&fsdd, root);
    let csv = root.join("metadata/UrbanSound8K.csv");
    let text = std::fs::read_to_string(&csv).unwrap();

    let wav = root.join("audio/fold4").join(&per_fold[3][1]);
    std::fs::remove_file(&wav).unwrap();
    let err = us8k::read(root).unwrap_err().to_string();
    assert!(
        err.contains("UrbanSound8K.csv:9:") && err.contains(&wav.display().to_string()),
        "{err}"
    );
    copy_clip(&fsdd, 0, &wav);

    std::fs::rename(root.join("audio/fold7"), root.join("audio/seven")).unwrap();
    let err = us8k::read(root).unwrap_err().to_string();
    assert!(
        err.contains(&root.join("audio/fold7").display().to_string()),
        "{err}"
    );
    std::fs::rename(root.join("audio/seven"), root.join("audio/fold7")).unwrap();

    for (bad, needle) in [
        (
            "a.wav,1,0.0,4.0,1,3,3",
            "UrbanSound8K.csv:22: 7 field(s), but the header has 8",
        ),
        (
            "a.wav,1,0.0,4.0,1,3,3,siren",
            "UrbanSound8K.csv:22: classID 3 is `dog_bark`",
        ),
        (
            "a.wav,1,0.0,4.0,1,11,3,dog_bark",
            "UrbanSound8K.csv:22: fold 11",
        ),
        (
            "a.wav,1,0.0,4.0,1,3,-1,dog_bark",
            "UrbanSound8K.csv:22: column `classID`: `-1`",
        ),
    ] {
        std::fs::write(&csv, format!("{text}{bad}\n")).unwrap();
        let err = us8k::read(root).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    std::fs::remove_file(&csv).unwrap();
    let err = us8k::read(root).unwrap_err().to_string();
    assert!(err.contains("metadata/UrbanSound8K.csv"), "{err}");
}

/// Speech Commands: every word folder (most empty), clips in yes/no/zero, the two lists, and a
/// `_background_noise_` folder that must not be read.
fn gsc_tree(fsdd: &Path, root: &Path) {
    for word in gsc::WORDS {
        std::fs::create_dir_all(root.join(word)).unwrap();
    }
    for (i, rel) in [
        "yes/aaaa1111_nohash_0.wav",
        "yes/aaaa1111_nohash_1.wav",
        "yes/bbbb2222_nohash_0.wav",
        "no/aaaa1111_nohash_0.wav",
        "no/cccc3333_nohash_0.wav",
        "zero/dddd4444_nohash_2.wav",
        "_background_noise_/white_noise.wav",
    ]
    .iter()
    .enumerate()
    {
        copy_clip(fsdd, i, &root.join(rel));
    }
    std::fs::write(root.join("_background_noise_/README.md"), "noise").unwrap();
    std::fs::write(
        root.join("validation_list.txt"),
        "yes/bbbb2222_nohash_0.wav\nno/cccc3333_nohash_0.wav\n",
    )
    .unwrap();
    std::fs::write(
        root.join("testing_list.txt"),
        "zero/dddd4444_nohash_2.wav\n\n",
    )
    .unwrap();
}

#[test]
fn gsc_official_lists_and_the_35_words() {
    let fsdd = fsdd();
    let tree = tempfile::tempdir().unwrap();
    gsc_tree(&fsdd, tree.path());
    let s = gsc::splits(tree.path()).unwrap();
    assert_eq!(s.labels.len(), 35);
    let (yes, no, zero) = (33, 18, 34);
    assert_eq!(
        (
            s.labels[yes].as_str(),
            s.labels[no].as_str(),
            s.labels[zero].as_str()
        ),
        ("yes", "no", "zero")
    );
    let rel = |c: &Clip| {
        c.path
            .strip_prefix(tree.path())
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let train: Vec<_> = s.train.iter().map(|c| (rel(c), c.label)).collect();
    assert_eq!(
        train,
        [
            ("no/aaaa1111_nohash_0.wav".to_string(), no),
            ("yes/aaaa1111_nohash_0.wav".to_string(), yes),
            ("yes/aaaa1111_nohash_1.wav".to_string(), yes),
        ]
    );
    let valid: Vec<_> = s.valid.iter().map(|c| (rel(c), c.label)).collect();
    assert_eq!(
        valid,
        [
            ("yes/bbbb2222_nohash_0.wav".to_string(), yes),
            ("no/cccc3333_nohash_0.wav".to_string(), no),
        ]
    );
    assert_eq!(s.test.len(), 1);
    assert_eq!(
        (rel(&s.test[0]), s.test[0].label),
        ("zero/dddd4444_nohash_2.wav".to_string(), zero)
    );
    assert_eq!(s.test[0].group.as_deref(), Some("dddd4444"));
}

#[test]
fn gsc_bad_layouts_name_the_file_or_line() {
    let fsdd = fsdd();
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    gsc_tree(&fsdd, root);
    let list = root.join("testing_list.txt");

    std::fs::write(
        &list,
        "zero/dddd4444_nohash_2.wav\nzero/eeee_nohash_0.wav\n",
    )
    .unwrap();
    let err = gsc::splits(root).unwrap_err().to_string();
    assert!(
        err.contains("testing_list.txt:2:")
            && err.contains(&root.join("zero/eeee_nohash_0.wav").display().to_string()),
        "{err}"
    );
    std::fs::write(&list, "maybe/x_nohash_0.wav\n").unwrap();
    let err = gsc::splits(root).unwrap_err().to_string();
    assert!(
        err.contains("testing_list.txt:1: `maybe` is not one of the 35 words"),
        "{err}"
    );
    std::fs::write(&list, "yes/bbbb2222_nohash_0.wav\n").unwrap();
    let err = gsc::splits(root).unwrap_err().to_string();
    assert!(
        err.contains("testing_list.txt:1:") && err.contains("validation_list.txt:1"),
        "{err}"
    );

    std::fs::remove_file(&list).unwrap();
    let err = gsc::splits(root).unwrap_err().to_string();
    assert!(err.contains(&list.display().to_string()), "{err}");
    std::fs::write(&list, "").unwrap();
    std::fs::remove_dir(root.join("visual")).unwrap();
    let err = gsc::splits(root).unwrap_err().to_string();
    assert!(
        err.contains(&root.join("visual").display().to_string()),
        "{err}"
    );
}

/// Fluent Speech Commands: three split files with a quoted comma in a transcription.
fn fsc_tree(fsdd: &Path, root: &Path) {
    let header = ",path,speakerId,transcription,action,object,location\n";
    let files = [
        (
            "train_data.csv",
            vec![
                (
                    "S1",
                    "u1",
                    "\"Turn on the lights, kitchen\"",
                    "activate",
                    "lights",
                    "kitchen",
                ),
                ("S1", "u2", "Louder", "increase", "volume", "none"),
                (
                    "S2",
                    "u3",
                    "Lights on in the kitchen",
                    "activate",
                    "lights",
                    "kitchen",
                ),
            ],
        ),
        (
            "valid_data.csv",
            vec![(
                "S3",
                "u4",
                "Less heat in the washroom",
                "decrease",
                "heat",
                "washroom",
            )],
        ),
        (
            "test_data.csv",
            vec![
                (
                    "S4",
                    "u5",
                    "Switch to Chinese",
                    "change language",
                    "Chinese",
                    "none",
                ),
                ("S4", "u6", "Louder please", "increase", "volume", "none"),
            ],
        ),
    ];
    std::fs::create_dir_all(root.join("data")).unwrap();
    let mut n = 0;
    for (file, rows) in files {
        let mut csv = header.to_string();
        for (i, (speaker, id, text, action, object, location)) in rows.into_iter().enumerate() {
            let rel = format!("wavs/speakers/{speaker}/{id}.wav");
            csv += &format!("{i},{rel},{speaker},{text},{action},{object},{location}\n");
            copy_clip(fsdd, n, &root.join(&rel));
            n += 1;
        }
        std::fs::write(root.join("data").join(file), csv).unwrap();
    }
}

#[test]
fn fsc_intents_from_all_splits_sorted() {
    let fsdd = fsdd();
    let tree = tempfile::tempdir().unwrap();
    fsc_tree(&fsdd, tree.path());
    let s = fsc::splits(tree.path()).unwrap();
    assert_eq!(
        s.labels,
        [
            "activate/lights/kitchen",
            "change language/Chinese/none",
            "decrease/heat/washroom",
            "increase/volume/none",
        ]
    );
    let labels = |clips: &[Clip]| clips.iter().map(|c| c.label).collect::<Vec<_>>();
    assert_eq!(labels(&s.train), [0, 3, 0]);
    assert_eq!(labels(&s.valid), [2]);
    assert_eq!(labels(&s.test), [1, 3]);
    assert_eq!(names(&s.test), ["u5.wav", "u6.wav"]);
    assert_eq!(s.train[2].group.as_deref(), Some("S2"));
    assert_eq!(fsc::intent("activate", "lights", "kitchen"), s.labels[0]);
}

#[test]
fn fsc_bad_layouts_name_the_file_or_line() {
    let fsdd = fsdd();
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    fsc_tree(&fsdd, root);
    let test_csv = root.join("data/test_data.csv");
    let text = std::fs::read_to_string(&test_csv).unwrap();

    std::fs::remove_file(root.join("wavs/speakers/S4/u6.wav")).unwrap();
    let err = fsc::splits(root).unwrap_err().to_string();
    assert!(
        err.contains("test_data.csv:3:") && err.contains("wavs/speakers/S4/u6.wav"),
        "{err}"
    );

    std::fs::write(
        &test_csv,
        format!("{text}9,wavs/x.wav,S9,Hi,activate,music\n"),
    )
    .unwrap();
    let err = fsc::splits(root).unwrap_err().to_string();
    assert!(
        err.contains("test_data.csv:4: 6 field(s), but the header has 7"),
        "{err}"
    );

    std::fs::remove_file(root.join("data/valid_data.csv")).unwrap();
    let err = fsc::splits(root).unwrap_err().to_string();
    assert!(err.contains("data/valid_data.csv"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The fbank disk cache.

use petl_ast::data::cache::{CacheStats, FbankCache};

fn clip(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio")
        .join(rel)
}

fn uncached(path: &Path, extractor: &FeatureExtractor) -> Vec<f32> {
    let audio = petl_ast::audio::read_wav(path, &AudioLimits::default()).unwrap();
    extractor.extract_audio(&audio).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn cache_hits_return_identical_features() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FbankCache::new(dir.path().join("fbank"));
    let extractor = small_extractor();
    let limits = AudioLimits::default();
    let wav = clip("0_george_0.wav");
    let fresh = uncached(&wav, &extractor);

    let first = cache.features(&wav, &extractor, &limits).unwrap();
    let second = cache.features(&wav, &extractor, &limits).unwrap();
    assert_eq!(bits(&first), bits(&fresh));
    assert_eq!(bits(&second), bits(&fresh));
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 1,
            computed: 1,
            discarded: 0,
            write_errors: 0
        }
    );
    let entry = cache.entry_for(&wav, &extractor, &limits).unwrap();
    assert!(entry.starts_with(dir.path().join("fbank")) && entry.is_file());
    // Header (52 bytes) + 100 × 128 f32 + checksum (32 bytes).
    assert_eq!(
        std::fs::metadata(&entry).unwrap().len(),
        52 + 100 * 128 * 4 + 32
    );

    // The same bytes under another name hit the same entry (content-addressed).
    let copy = dir.path().join("renamed.wav");
    std::fs::copy(&wav, &copy).unwrap();
    assert_eq!(cache.entry_for(&copy, &extractor, &limits).unwrap(), entry);
    assert_eq!(
        bits(&cache.features(&copy, &extractor, &limits).unwrap()),
        bits(&fresh)
    );
    assert_eq!(cache.stats().hits, 2);

    // Dataset featurisation through the cache equals the plain one.
    let clips: Vec<Clip> = ["0_george_0.wav", "5_jackson_3.wav", "9_theo_1.wav"]
        .iter()
        .enumerate()
        .map(|(label, f)| Clip {
            path: clip(f),
            label,
            group: None,
        })
        .collect();
    let plain = data::features::examples(&clips, &extractor, &limits, false).unwrap();
    let cached = cache.examples(&clips, &extractor, &limits, false).unwrap();
    assert_eq!(plain, cached);
    let again = cache.examples(&clips, &extractor, &limits, false).unwrap();
    assert_eq!(plain, again);
    assert_eq!(cache.stats().computed, 3);
}

#[test]
fn damaged_cache_entries_are_deleted_and_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FbankCache::new(dir.path());
    let extractor = small_extractor();
    let limits = AudioLimits::default();
    let wav = clip("5_jackson_3.wav");
    let fresh = uncached(&wav, &extractor);
    cache.features(&wav, &extractor, &limits).unwrap();
    let entry = cache.entry_for(&wav, &extractor, &limits).unwrap();
    let good = std::fs::read(&entry).unwrap();

    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("payload bit flip", {
            let mut b = good.clone();
            b[52 + 1000] ^= 0x01;
            b
        }),
        ("header bit flip", {
            let mut b = good.clone();
            b[3] ^= 0x80;
            b
        }),
        ("one byte too many", {
            let mut b = good.clone();
            b.push(0);
            b
        }),
    ];
    for (i, (what, bytes)) in damages.into_iter().enumerate() {
        std::fs::write(&entry, bytes).unwrap();
        let v = cache.features(&wav, &extractor, &limits).unwrap();
        assert_eq!(bits(&v), bits(&fresh), "{what}");
        assert_eq!(cache.stats().discarded, i + 1, "{what}");
        assert_eq!(std::fs::read(&entry).unwrap(), good, "{what}: rewritten");
    }
    // A valid entry of another clip under this clip's name (mismatched key).
    let other = clip("9_theo_1.wav");
    cache.features(&other, &extractor, &limits).unwrap();
    let other_entry = cache.entry_for(&other, &extractor, &limits).unwrap();
    std::fs::copy(&other_entry, &entry).unwrap();
    assert_eq!(
        bits(&cache.features(&wav, &extractor, &limits).unwrap()),
        bits(&fresh)
    );
    assert_eq!(cache.stats().discarded, 6);

    // An unwritable cache costs only the recomputation.
    let blocked = dir.path().join("a-file");
    std::fs::write(&blocked, b"not a folder").unwrap();
    let cache = FbankCache::new(&blocked);
    assert_eq!(
        bits(&cache.features(&wav, &extractor, &limits).unwrap()),
        bits(&fresh)
    );
    assert_eq!(cache.stats().write_errors, 1);
    // A missing wav is an error naming it, not a panic.
    let err = cache
        .features(&dir.path().join("gone.wav"), &extractor, &limits)
        .unwrap_err();
    assert!(err.to_string().contains("gone.wav"), "{err}");
}

#[test]
fn every_front_end_parameter_changes_the_key() {
    let cache = FbankCache::new("/nonexistent/cache");
    let limits = AudioLimits::default();
    let wav = clip("0_george_0.wav");
    let base = FeatureExtractorConfig {
        max_length: 100,
        ..FeatureExtractorConfig::default()
    };
    let key = |config: &FeatureExtractorConfig, limits: &AudioLimits, wav: &Path| {
        cache
            .entry_for(wav, &FeatureExtractor::new(config.clone()).unwrap(), limits)
            .unwrap()
    };
    let reference = key(&base, &limits, &wav);
    assert_eq!(reference, key(&base, &limits, &wav));
    let variants = [
        FeatureExtractorConfig {
            max_length: 101,
            ..base.clone()
        },
        FeatureExtractorConfig {
            sampling_rate: 8000,
            ..base.clone()
        },
        FeatureExtractorConfig {
            num_mel_bins: 64,
            ..base.clone()
        },
        FeatureExtractorConfig {
            mean: -4.0,
            ..base.clone()
        },
        FeatureExtractorConfig {
            std: 4.0,
            ..base.clone()
        },
        FeatureExtractorConfig {
            do_normalize: false,
            ..base.clone()
        },
    ];
    let mut keys = vec![reference.clone()];
    for v in &variants {
        keys.push(key(v, &limits, &wav));
    }
    keys.push(key(&base, &AudioLimits { max_seconds: 10.0 }, &wav));
    keys.push(key(&base, &limits, &clip("9_theo_1.wav")));
    let unique: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "{keys:#?}");
}
