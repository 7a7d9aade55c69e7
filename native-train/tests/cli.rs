//! End-to-end tests of the `native-train` binary against the reference numbers of
//! `scripts/make_fixtures.py`.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

fn native_train(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_native-train"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn reference(rel: &str, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixture(rel)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

const CLIPS: [&str; 3] = ["0_george_0", "5_jackson_3", "9_theo_1"];

#[test]
fn classify_json_gives_the_transformers_logits() {
    let checkpoint = fixture("models/ast-tiny-s10");
    let files: Vec<String> = CLIPS
        .iter()
        .map(|c| fixture(&format!("audio/{c}.wav")).display().to_string())
        .collect();
    let mut args = vec!["classify", "--json", "--top-k", "3", "--checkpoint"];
    let checkpoint = checkpoint.display().to_string();
    args.push(&checkpoint);
    args.extend(files.iter().map(String::as_str));
    let out = native_train(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 3);
    let expected = reference("models/ast-tiny-s10/reference.safetensors", "logits");
    let labels = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["file"], files[i]);
        let logits: Vec<f32> = result["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let want = &expected[i * 10..(i + 1) * 10];
        let err = logits
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err <= 1e-4, "clip {i}: logits differ by {err}");
        // The top-3 labels are the arg-max order of the reference logits.
        let mut order: Vec<usize> = (0..10).collect();
        order.sort_by(|&a, &b| want[b].total_cmp(&want[a]));
        let top: Vec<&str> = result["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            top,
            order[..3].iter().map(|&j| labels[j]).collect::<Vec<_>>()
        );
    }
}

#[test]
fn features_writes_the_extractor_output_as_npy() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("x.npy");
    let wav = fixture("audio/5_jackson_3.wav");
    let out = native_train(&[
        "features",
        "--max-length",
        "100",
        "--npy",
        npy.to_str().unwrap(),
        wav.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&npy).unwrap();
    let array = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(array.shape(), &[100, 128]);
    let values: Vec<f32> = array.into_vec().unwrap();
    let expected = reference("fbank.safetensors", "input_values.5_jackson_3.L100");
    let err = values
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(err <= 1e-3, "features differ by {err}");
}

#[test]
fn bad_inputs_exit_non_zero_with_one_readable_line() {
    let checkpoint = fixture("models/ast-tiny-s10").display().to_string();
    let not_wav = root().join("Cargo.toml").display().to_string();
    let out = native_train(&["classify", "--checkpoint", &checkpoint, &not_wav]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Cargo.toml") && stderr.contains("RIFF"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());

    let wav = fixture("audio/0_george_0.wav").display().to_string();
    let out = native_train(&["classify", "--checkpoint", "/nonexistent/model", &wav]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model"));

    let out = native_train(&[
        "classify",
        "--backend",
        "tpu",
        "--checkpoint",
        &checkpoint,
        &wav,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tpu"));
}

fn logits_of(stdout: &[u8]) -> Vec<f32> {
    let results: serde_json::Value = serde_json::from_slice(stdout).expect("stdout is only JSON");
    results
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn clip_paths() -> Vec<String> {
    CLIPS
        .iter()
        .map(|c| fixture(&format!("audio/{c}.wav")).display().to_string())
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn params_json_is_one_object_with_the_counts() {
    let checkpoint = fixture("models/ast-tiny-s10").display().to_string();
    let out = native_train(&[
        "params",
        "--checkpoint",
        &checkpoint,
        "--method",
        "adapter",
        "--adapter-type",
        "Houlsby",
        "--reduction-rate",
        "8",
        "--num-classes",
        "10",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{v}");
    // Per layer: 2 adapters × (64·8 + 8 + 8·64 + 64) + LN_b + LN_a = 2,448; two layers.
    assert_eq!(v["method"], 4_896);
    // Head 64·10 + 10 and the final LayerNorm 128.
    assert_eq!(v["head"], 778);
    assert_eq!(v["trainable"], 4_896 + 778);

    let out = native_train(&[
        "params",
        "--checkpoint",
        &checkpoint,
        "--method",
        "prefix-tuning",
        "--prompt-len",
        "5",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("even"));
}

#[test]
fn classify_imports_petl_ast_and_peft_files() {
    let checkpoint = fixture("models/ast-tiny-s10").display().to_string();
    let clips = clip_paths();
    let petl = fixture("petl/adapter_houlsby_par.safetensors")
        .display()
        .to_string();
    let mut args = vec![
        "classify",
        "--json",
        "--checkpoint",
        &checkpoint,
        "--import-petl-ast",
        &petl,
        "--method",
        "adapter",
        "--adapter-type",
        "Houlsby",
        "--reduction-rate",
        "8",
    ];
    args.extend(clips.iter().map(String::as_str));
    let out = native_train(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = reference("petl/adapter_houlsby_par.safetensors", "logits");
    let err = max_diff(&logits_of(&out.stdout), &expected);
    assert!(err <= 1e-3, "PETL_AST import: logits differ by {err}");

    // The same file with the wrong method flags is refused, naming the file.
    let mut args = vec![
        "classify",
        "--checkpoint",
        &checkpoint,
        "--import-petl-ast",
        &petl,
        "--method",
        "LoRA",
        "--reduction-rate-lora",
        "16",
    ];
    args.extend(clips.iter().map(String::as_str));
    let out = native_train(&args);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("adapter_houlsby_par"));

    let peft = fixture("peft/lora-qv").display().to_string();
    let mut args = vec![
        "classify",
        "--json",
        "--checkpoint",
        &checkpoint,
        "--import-peft",
        &peft,
    ];
    args.extend(clips.iter().map(String::as_str));
    let out = native_train(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = reference("peft/lora-qv/reference.safetensors", "logits");
    let err = max_diff(&logits_of(&out.stdout), &expected);
    assert!(err <= 1e-3, "PEFT import: logits differ by {err}");
}

#[test]
fn a_converted_adapter_classifies_like_its_source() {
    let checkpoint = fixture("models/ast-tiny-s10").display().to_string();
    let petl = fixture("petl/conformer_pfeiffer_par.safetensors")
        .display()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir
        .path()
        .join("conformer.safetensors")
        .display()
        .to_string();
    let method = [
        "--method",
        "adapter",
        "--adapter-block",
        "conformer",
        "--kernel-size",
        "5",
        "--reduction-rate",
        "8",
    ];
    let mut args = vec![
        "convert",
        "--checkpoint",
        &checkpoint,
        "--import-petl-ast",
        &petl,
        "--out",
        &adapter,
    ];
    args.extend(method);
    args.extend(["--labels", "a,b,c,d,e"]);
    let out = native_train(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let clips = clip_paths();
    let mut args = vec![
        "classify",
        "--json",
        "--top-k",
        "2",
        "--checkpoint",
        &checkpoint,
        "--adapter",
        &adapter,
    ];
    args.extend(clips.iter().map(String::as_str));
    let out = native_train(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = reference("petl/conformer_pfeiffer_par.safetensors", "logits");
    let err = max_diff(&logits_of(&out.stdout), &expected);
    assert!(err <= 1e-3, "converted adapter: logits differ by {err}");
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let label = results[0]["labels"][0].as_str().unwrap();
    assert!(["a", "b", "c", "d", "e"].contains(&label), "{label}");

    // The adapter on another base is refused with the base's name.
    let other = fixture("models/ast-tiny-f16t12").display().to_string();
    let out = native_train(&[
        "classify",
        "--checkpoint",
        &other,
        "--adapter",
        &adapter,
        &clips[0],
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ast-tiny-s10"));
}

#[test]
fn train_writes_a_run_folder_whose_adapter_classifies() {
    let fsdd = root().join("../shared/data/fsdd/recordings");
    if !fsdd.is_dir() {
        eprintln!("note: {} is absent; train CLI test skipped", fsdd.display());
        return;
    }
    let checkpoint = fixture("models/ast-tiny-s10").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let result = native_train(&[
        "train",
        "--checkpoint",
        &checkpoint,
        "--dataset",
        "fsdd",
        "--data",
        fsdd.to_str().unwrap(),
        "--speakers",
        "theo",
        "--few-shot",
        "2",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--method",
        "adapter",
        "--reduction-rate",
        "8",
        "--no-cache",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    for file in [
        "config.json",
        "metrics.jsonl",
        "adapter.safetensors",
        "results.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["train_clips"], 20);
    assert_eq!(results["test_clips"], 50);
    let accuracy = results["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));

    // The adapter classifies with the dataset's labels and no method flags.
    let adapter = out.join("adapter.safetensors").display().to_string();
    let clip = fsdd.join("4_theo_0.wav").display().to_string();
    let result = native_train(&[
        "classify",
        "--json",
        "--checkpoint",
        &checkpoint,
        "--adapter",
        &adapter,
        &clip,
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(v[0]["logits"].as_array().unwrap().len(), 10);
    let digit: usize = v[0]["labels"][0].as_str().unwrap().parse().unwrap();
    assert!(digit <= 9);
}

#[test]
fn the_built_in_demo_backbone_recognises_digits() {
    let fsdd = root().join("../shared/data/fsdd/recordings");
    if !fsdd.is_dir() {
        eprintln!(
            "note: {} is absent; demo backbone test skipped",
            fsdd.display()
        );
        return;
    }
    // Official test takes (index 0–4) of the demo's own speakers: never trained on.
    let clips: Vec<String> = [
        "7_jackson_2.wav",
        "5_lucas_4.wav",
        "0_nicolas_1.wav",
        "9_george_3.wav",
    ]
    .iter()
    .map(|f| fsdd.join(f).display().to_string())
    .collect();
    let mut args = vec!["classify", "--json", "--top-k", "1"];
    args.extend(clips.iter().map(String::as_str));
    let out = native_train(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let predicted: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["labels"][0].as_str().unwrap())
        .collect();
    let correct = predicted
        .iter()
        .zip(["7", "5", "0", "9"])
        .filter(|(p, t)| *p == t)
        .count();
    assert!(correct >= 3, "predicted {predicted:?}");
}

/// An ESC-50 tree (`meta/esc50.csv` + `audio/`) of two FSDD clips per fold, targets 0 and 1.
fn esc50_tree(fsdd: &std::path::Path, root: &std::path::Path) {
    let mut csv = String::from("filename,fold,target,category,esc10,src_file,take\n");
    std::fs::create_dir_all(root.join("meta")).unwrap();
    std::fs::create_dir_all(root.join("audio")).unwrap();
    for fold in 1..=5 {
        for (target, category) in [(0, "dog"), (1, "rooster")] {
            let name = format!("{fold}-{target}-A-{target}.wav");
            csv += &format!("{name},{fold},{target},{category},True,{fold},A\n");
            let source = format!("{}_theo_{fold}.wav", target * 7);
            std::fs::copy(fsdd.join(source), root.join("audio").join(&name)).unwrap();
        }
    }
    std::fs::write(root.join("meta/esc50.csv"), csv).unwrap();
}

fn json_file(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn train_esc50_runs_every_fold_with_the_protocol_defaults_and_the_cache() {
    let fsdd = root().join("../shared/data/fsdd/recordings");
    if !fsdd.is_dir() {
        eprintln!(
            "note: {} is absent; ESC-50 CLI test skipped",
            fsdd.display()
        );
        return;
    }
    let checkpoint = fixture("models/ast-tiny-s10").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ESC-50");
    esc50_tree(&fsdd, &data);
    let cache = dir.path().join("cache");
    let out = dir.path().join("runs/esc");
    let (data_s, cache_s, out_s) = (
        data.display().to_string(),
        cache.display().to_string(),
        out.display().to_string(),
    );
    let common = [
        "train",
        "--checkpoint",
        &checkpoint,
        "--dataset",
        "esc50",
        "--data",
        &data_s,
        "--method",
        "linear",
        "--epochs",
        "1",
    ];
    let mut args = common.to_vec();
    args.extend(["--cache-dir", &cache_s, "--out", &out_s]);
    let result = native_train(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");

    // Every rotation: one sub-run per test fold, valid = the fold before, train = the rest.
    for fold in 1..=5 {
        let run = out.join(format!("fold{fold}"));
        for file in [
            "config.json",
            "metrics.jsonl",
            "adapter.safetensors",
            "results.json",
        ] {
            assert!(run.join(file).is_file(), "fold{fold}/{file} missing");
        }
        let config = json_file(&run.join("config.json"));
        let valid = if fold == 1 { 5 } else { fold - 1 };
        assert_eq!(config["rotation"]["test"], fold);
        assert_eq!(config["rotation"]["valid"], serde_json::json!([valid]));
        // The protocol's defaults: 500 frames, batch 32, SpecAugment on.
        assert_eq!(config["max_length"], 500);
        assert_eq!(config["train"]["batch_size"], 32);
        assert!(config["train"]["spec_augment"].is_object(), "{config}");
        let results = json_file(&run.join("results.json"));
        assert_eq!(results["fold"], fold);
        assert_eq!(results["train_clips"], 6);
        assert_eq!(results["test_clips"], 2);
    }
    let summary = json_file(&out.join("results.json"));
    let accuracies: Vec<f64> = summary["folds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["test_accuracy"].as_f64().unwrap())
        .collect();
    assert_eq!(accuracies.len(), 5);
    let mean = accuracies.iter().sum::<f64>() / 5.0;
    let std = (accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
    assert!((summary["test_accuracy_mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((summary["test_accuracy_std"].as_f64().unwrap() - std).abs() < 1e-12);
    // Fold 1 featurises all ten clips; folds 2–5 read them back.
    assert!(
        stderr.contains("40 read, 10 computed, 0 bad entries replaced"),
        "{stderr}"
    );

    // One fold, into --out itself, with flags overriding the protocol.
    let single = dir.path().join("runs/fold3");
    let single_s = single.display().to_string();
    let mut args = common.to_vec();
    args.extend([
        "--fold",
        "3",
        "--max-length",
        "120",
        "--spec-augment",
        "false",
        "--no-cache",
        "--out",
        &single_s,
    ]);
    let result = native_train(&args);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let config = json_file(&single.join("config.json"));
    assert_eq!(config["max_length"], 120);
    assert!(config["train"]["spec_augment"].is_null(), "{config}");
    assert_eq!(json_file(&single.join("results.json"))["fold"], 3);
    assert!(!single.join("fold3").exists());

    // Folds that do not exist.
    let mut args = common.to_vec();
    args.extend(["--fold", "6", "--no-cache", "--out", &single_s]);
    let result = native_train(&args);
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("ESC-50 has folds 1..=5"));
}
