//! End-to-end tests of the `native-train` binary against the reference numbers of
//! `scripts/make_fixtures.py`.

use std::path::{Path, PathBuf};
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
    assert_succeeded(&out);
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
    assert_succeeded(&out);
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

    // A GPU backend this build lacks: one line naming it and the backends there are.
    for backend in ["cuda", "libtorch"] {
        let out = native_train(&["classify", "--backend", backend, &wav]);
        assert_refused_with(&out, &format!("no {backend} backend"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("backends in this build: flex"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
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
    assert_succeeded(&out);
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
    assert_succeeded(&out);
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
    assert_succeeded(&out);
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
    assert_succeeded(&out);

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
    assert_succeeded(&out);
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
    let fsdd = fsdd();
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
    // Two per digit drawn with the seed from theo's training takes (index 10–49).
    let config = json_file(&out.join("config.json"));
    assert_eq!(config["few_shot_draw"], "seeded");
    let files: Vec<String> = results["train_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 20);
    for f in &files {
        let name = Path::new(f).file_stem().unwrap().to_str().unwrap();
        let fields: Vec<&str> = name.split('_').collect();
        assert_eq!(fields[1], "theo", "{f}");
        assert!(
            fields[2].parse::<usize>().unwrap() >= 10,
            "{f} is not a training take"
        );
    }
    let first_two: Vec<bool> = files
        .iter()
        .map(|f| f.ends_with("_10.wav") || f.ends_with("_11.wav"))
        .collect();
    assert!(
        first_two.contains(&false),
        "a seeded draw, not the first K: {files:?}"
    );
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
    let fsdd = fsdd();
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
    assert_succeeded(&out);
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

/// The FSDD recordings beside the checkout; the tests that need them fail without them.
fn fsdd() -> PathBuf {
    let fsdd = root().join("../shared/data/fsdd/recordings");
    assert!(
        fsdd.is_dir(),
        "{} is absent: this test needs the FSDD recordings beside the checkout",
        fsdd.display()
    );
    fsdd
}

/// `init` writes a random checkpoint of a config's shape with the asked labels, which
/// `classify` loads like any other.
#[test]
fn init_writes_a_random_checkpoint_that_classifies() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("random");
    let config = fixture("models/ast-tiny-s10/config.json");
    let args: Vec<String> = [
        "init",
        "--config",
        config.to_str().unwrap(),
        "--labels",
        "3",
        "--seed",
        "7",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_succeeded(&run_cli(&args, &[]));
    let written = json_file(&out.join("config.json"));
    let source = json_file(&config);
    assert_eq!(written["hidden_size"], source["hidden_size"]);
    assert_eq!(written["id2label"]["2"], "label 2");
    let clip = clip_paths().remove(0);
    let classify = native_train(&[
        "classify",
        "--json",
        "--checkpoint",
        out.to_str().unwrap(),
        &clip,
    ]);
    assert!(
        classify.status.success(),
        "{}",
        String::from_utf8_lossy(&classify.stderr)
    );
    assert_eq!(logits_of(&classify.stdout).len(), 3);
    let refused = run_cli(
        &[
            "init".into(),
            "--labels".into(),
            "0".into(),
            "--out".into(),
            out.display().to_string(),
        ],
        &[],
    );
    assert_refused_with(&refused, "--labels must be at least 1");
    let mut huge = source.clone();
    huge["hidden_size"] = 16384.into();
    huge["intermediate_size"] = 65536.into();
    huge["num_attention_heads"] = 16.into();
    huge["num_hidden_layers"] = 48.into();
    let huge_config = tmp.path().join("huge.json");
    std::fs::write(&huge_config, huge.to_string()).unwrap();
    let refused = run_cli(
        &[
            "init".into(),
            "--config".into(),
            huge_config.display().to_string(),
            "--out".into(),
            tmp.path().join("huge").display().to_string(),
        ],
        &[],
    );
    assert_refused_with(&refused, "GiB for its weights; init writes at most 16 GiB");
}

/// `train --recipe personalise` runs the page's recipe: each drawn clip also at the page's two
/// other speeds, the head started from the class means.
#[test]
fn the_personalise_recipe_trains_on_speed_changed_copies() {
    let fsdd = fsdd();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args: Vec<String> = [
        "train",
        "--recipe",
        "personalise",
        "--dataset",
        "fsdd",
        "--data",
        fsdd.to_str().unwrap(),
        "--speakers",
        "theo",
        "--few-shot",
        "2",
        "--epochs",
        "1",
        "--no-cache",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_cli(&args, &[]);
    assert_succeeded(&run);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("train: 40 speed-changed copies"),
        "{stderr}"
    );
    let config = json_file(&out.join("config.json"));
    assert_eq!(config["recipe"], "personalise");
    assert_eq!(config["speeds"], serde_json::json!([0.9, 1.1]));
    let results = json_file(&out.join("results.json"));
    assert_eq!(results["train_clips"], 20);
    assert!(results["test_accuracy"].as_f64().unwrap() > 0.3);
}

/// `train` arguments of a small, fast FSDD run into `out` (with SpecAugment, so the generator
/// matters).
fn small_train_args(fsdd: &Path, out: &Path, epochs: &str) -> Vec<String> {
    let checkpoint = fixture("models/ast-tiny-s10");
    [
        "train",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--dataset",
        "fsdd",
        "--data",
        fsdd.to_str().unwrap(),
        "--speakers",
        "theo",
        "--few-shot",
        "2",
        "--epochs",
        epochs,
        "--batch-size",
        "8",
        "--spec-augment",
        "--method",
        "adapter",
        "--reduction-rate",
        "8",
        "--no-cache",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_cli(args: &[String], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_native-train"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

/// The command failed, saying `message` on stderr.
/// Fails with the command's stderr when it did not succeed.
fn assert_succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_refused_with(out: &std::process::Output, message: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded; stderr: {stderr}");
    assert!(stderr.contains(message), "{stderr}");
}

fn json_file(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// `metrics.jsonl` without the wall times.
fn metrics_without_time(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

/// `--gradient-checkpointing` (on the cpu backend: each MLP expansion recomputed in the backward)
/// and `--devices 2` (each batch split over two replicas, gradients added) train to the same
/// losses and accuracies as the plain run.
#[test]
fn gradient_checkpointing_and_two_devices_train_like_the_plain_run() {
    let fsdd = fsdd();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    let out = run_cli(&small_train_args(&fsdd, &plain, "2"), &[]);
    assert_succeeded(&out);
    let a = metrics_without_time(&plain);
    assert_eq!(a.len(), 2);
    for flags in [&["--gradient-checkpointing"][..], &["--devices", "2"]] {
        let variant = dir.path().join(flags[0].trim_start_matches('-'));
        let mut args = small_train_args(&fsdd, &variant, "2");
        args.extend(flags.iter().map(|f| f.to_string()));
        let out = run_cli(&args, &[]);
        assert!(
            out.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let b = metrics_without_time(&variant);
        assert_eq!(a.len(), b.len(), "{flags:?}");
        for (x, y) in a.iter().zip(&b) {
            for key in ["train_loss", "valid_loss"] {
                let (x, y) = (x[key].as_f64().unwrap(), y[key].as_f64().unwrap());
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + x.abs()),
                    "{flags:?} {key}: {x} vs {y}"
                );
            }
            assert_eq!(x["valid_accuracy"], y["valid_accuracy"], "{flags:?}");
        }
    }
}

#[test]
fn a_killed_train_run_resumes_to_the_same_results() {
    let fsdd = fsdd();
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let killed = dir.path().join("killed");
    let out = run_cli(&small_train_args(&fsdd, &whole, "3"), &[]);
    assert_succeeded(&out);

    // Killed right after epoch 1's state was written.
    let args = small_train_args(&fsdd, &killed, "3");
    let out = run_cli(&args, &[("NATIVE_TRAIN_STOP_AFTER_EPOCH", "1")]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(killed.join("train_state.safetensors").is_file());
    assert!(!killed.join("results.json").exists());
    assert_eq!(metrics_without_time(&killed).len(), 1);
    // A write of epoch 2's state that died half-way leaves its temporary file only.
    let state = std::fs::read(killed.join("train_state.safetensors")).unwrap();
    let torn = killed.join(".train_state.safetensors.tmp-999999");
    std::fs::write(&torn, &state[..state.len() / 2]).unwrap();

    let mut resume = args.clone();
    resume.push("--resume".into());
    let out = run_cli(&resume, &[]);
    assert_succeeded(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("after epoch 1 of 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!torn.exists(), "the torn temporary file is cleaned up");

    assert_eq!(
        json_file(&killed.join("results.json")),
        json_file(&whole.join("results.json"))
    );
    assert_eq!(metrics_without_time(&killed), metrics_without_time(&whole));
    assert_eq!(
        json_file(&killed.join("predictions.json")),
        json_file(&whole.join("predictions.json"))
    );
    assert_eq!(
        std::fs::read(killed.join("embeddings.npy")).unwrap(),
        std::fs::read(whole.join("embeddings.npy")).unwrap()
    );

    // Other arguments are refused rather than mixed into the run.
    let mut other = small_train_args(&fsdd, &killed, "4");
    other.push("--resume".into());
    assert_refused_with(&run_cli(&other, &[]), "other arguments");
}

#[test]
fn train_seeds_writes_one_sub_run_per_seed_and_their_mean_and_std() {
    let fsdd = fsdd();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("seeds");
    let mut args = small_train_args(&fsdd, &out_dir, "1");
    args.extend(["--seed", "5", "--seeds", "2"].map(String::from));
    let out = run_cli(&args, &[]);
    assert_succeeded(&out);

    let mut accuracies = Vec::new();
    for seed in [5, 6] {
        let sub = out_dir.join(format!("seed-{seed}"));
        for file in [
            "config.json",
            "metrics.jsonl",
            "adapter.safetensors",
            "train_state.safetensors",
            "predictions.json",
            "embeddings.npy",
            "results.json",
        ] {
            assert!(sub.join(file).is_file(), "seed-{seed}/{file} missing");
        }
        assert_eq!(json_file(&sub.join("config.json"))["train"]["seed"], seed);
        let results = json_file(&sub.join("results.json"));
        accuracies.push(results["test_accuracy"].as_f64().unwrap());

        let predictions = json_file(&sub.join("predictions.json"));
        assert_eq!(predictions["labels"].as_array().unwrap().len(), 10);
        assert_eq!(predictions["targets"].as_array().unwrap().len(), 50);
        assert_eq!(predictions["files"].as_array().unwrap().len(), 50);
        let predicted: Vec<u64> = predictions["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let correct = predicted
            .iter()
            .zip(predictions["targets"].as_array().unwrap())
            .filter(|(p, t)| Some(**p) == t.as_u64())
            .count();
        assert_eq!(correct as f64 / 50.0, accuracies.last().copied().unwrap());
        let bytes = std::fs::read(sub.join("embeddings.npy")).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        // 50 test clips × the tiny model's width 64.
        assert_eq!(npy.shape(), &[50, 64]);
    }
    let summary = json_file(&out_dir.join("results.json"));
    let mean = (accuracies[0] + accuracies[1]) / 2.0;
    // Population std (divisor n, numpy.std): half the distance of two values.
    let std = (accuracies[0] - accuracies[1]).abs() / 2.0;
    let acc = &summary["test_accuracy"];
    assert!(
        (acc["mean"].as_f64().unwrap() - mean).abs() < 1e-12,
        "{summary}"
    );
    assert!(
        (acc["std"].as_f64().unwrap() - std).abs() < 1e-12,
        "{summary}"
    );
    assert_eq!(acc["n"], 2);
    assert_eq!(acc["values"], serde_json::json!(accuracies));
    assert_eq!(summary["std"], "population");
    assert_eq!(summary["runs"][1]["seed"], 6);
    assert_eq!(summary["runs"][1]["dir"], "seed-6");

    // Resuming a finished run keeps every seed.
    let mut resume = args.clone();
    resume.push("--resume".into());
    let out = run_cli(&resume, &[]);
    assert_succeeded(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("finished already")
            .count(),
        2
    );
    assert_eq!(json_file(&out_dir.join("results.json")), summary);
}

/// A run folder as `train` writes it, with made-up numbers.
fn fake_run(dir: &Path, method: serde_json::Value, speaker: &str, seed: u64, accuracy: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let labels = ["zero", "one", "two"];
    let config = serde_json::json!({
        "method": method, "dataset": "Fsdd", "speakers": [speaker], "few_shot": 8,
        "labels": labels, "train": {"seed": seed}, "params": {"trainable": 0},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let trainable = if method["method"] == "LoRA" {
        17_930
    } else {
        11_306
    };
    let results = serde_json::json!({
        "test_accuracy": accuracy, "test_loss": 1.0, "best_valid_accuracy": accuracy + 0.05,
        "epochs": 3, "trainable_params": trainable, "seed": seed,
    });
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
    let metrics: String = (1..=3)
        .map(|e| {
            format!(
                "{{\"epoch\":{e},\"train_loss\":{},\"train_accuracy\":{},\"valid_loss\":{},\"valid_accuracy\":{},\"lr\":0.001,\"seconds\":1.0,\"skipped_steps\":0}}\n",
                2.0 / e as f64,
                0.3 * e as f64,
                2.2 / e as f64,
                0.25 * e as f64
            )
        })
        .collect();
    std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    // 30 test clips, 10 per class, embeddings in three clusters.
    let targets: Vec<usize> = (0..30).map(|i| i % 3).collect();
    let predictions: Vec<usize> = (0..30)
        .map(|i| if i < 6 { (i + 1) % 3 } else { i % 3 })
        .collect();
    let p = serde_json::json!({"labels": labels, "targets": targets, "predictions": predictions});
    std::fs::write(dir.join("predictions.json"), p.to_string()).unwrap();
    let mut values = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        for k in 0..8 {
            let centre = if k == *t { 10.0 } else { 0.0 };
            values.push(centre + ((i * 7 + k * 3) % 5) as f32 * 0.1);
        }
    }
    let mut bytes = Vec::new();
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&[30, 8])
            .writer(&mut bytes)
            .begin_nd()
            .unwrap();
        w.extend(values).unwrap();
        w.finish().unwrap();
    }
    std::fs::write(dir.join("embeddings.npy"), bytes).unwrap();
}

#[test]
fn report_writes_the_table_and_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let pfeiffer = serde_json::json!({"method": "adapter", "adapter_type": "Pfeiffer",
        "seq_or_par": "parallel", "adapter_block": "bottleneck", "reduction_rate": 64});
    let lora = serde_json::json!({"method": "LoRA", "reduction_rate_lora": 128});
    // One single run, and a --seeds run of two seeds summed up by its results.json.
    fake_run(
        &runs.join("pfeiffer-theo"),
        pfeiffer.clone(),
        "theo",
        0,
        0.5,
    );
    fake_run(
        &runs.join("pfeiffer-yweweler"),
        pfeiffer,
        "yweweler",
        0,
        0.625,
    );
    let seeds = runs.join("lora-theo");
    fake_run(&seeds.join("seed-0"), lora.clone(), "theo", 0, 0.7);
    fake_run(&seeds.join("seed-1"), lora, "theo", 1, 0.8);
    let summary = serde_json::json!({"test_accuracy": {"mean": 0.75},
        "runs": [{"dir": "seed-0", "seed": 0}, {"dir": "seed-1", "seed": 1}]});
    std::fs::write(seeds.join("results.json"), summary.to_string()).unwrap();

    let report = dir.path().join("report");
    let mut args: Vec<String> = vec!["report".into()];
    let mut folders: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    folders.sort();
    args.extend(folders);
    args.extend(
        [
            "--out",
            report.to_str().unwrap(),
            "--tsne-iterations",
            "300",
            "--perplexity",
            "5",
        ]
        .map(String::from),
    );
    let out = run_cli(&args, &[]);
    assert_succeeded(&out);

    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("| method | FSDD theo K=8 | FSDD yweweler K=8 | # trainable params |"),
        "{md}"
    );
    // Population std of 70 and 80 (divisor n): 5.00.
    assert!(
        md.contains("| LoRA RR=128 | 75.00 ± 5.00 (2) | – | 17,930 |"),
        "{md}"
    );
    assert!(
        md.contains("| Pfeiffer-par RR=64 | 50.00 ± 0.00 (1) | 62.50 ± 0.00 (1) | 11,306 |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| lora-theo-seed-1 | LoRA RR=128 | FSDD theo K=8 | – | 1 | 3 | 85.00 | 80.00 |"
        ),
        "{md}"
    );

    let mut figures = vec![report.join("accuracy_vs_params")];
    for run in [
        "pfeiffer-theo",
        "pfeiffer-yweweler",
        "lora-theo-seed-0",
        "lora-theo-seed-1",
    ] {
        for figure in ["curves", "confusion", "tsne"] {
            figures.push(report.join(run).join(figure));
            assert!(md.contains(&format!("({run}/{figure}.svg)")), "{md}");
        }
    }
    for stem in figures {
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.len() > 1000,
            "{}",
            stem.display()
        );
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 1000,
            "{}",
            stem.display()
        );
    }
    // No temporary files left behind.
    assert!(std::fs::read_dir(&report).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));
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

#[test]
fn train_esc50_runs_every_fold_with_the_protocol_defaults_and_the_cache() {
    let fsdd = fsdd();
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

    // Every rotation: one sub-run per test fold (and seed: fold-N/seed-0), valid = the fold
    // before, train = the rest.
    for fold in 1..=5 {
        let run = out.join(format!("fold-{fold}/seed-0"));
        for file in [
            "config.json",
            "metrics.jsonl",
            "adapter.safetensors",
            "results.json",
        ] {
            assert!(
                run.join(file).is_file(),
                "fold-{fold}/seed-0/{file} missing"
            );
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
    // The summary over the sub-runs (folds × seeds), population std as the reference's np.std.
    let summary = json_file(&out.join("results.json"));
    let accuracies: Vec<f64> = summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["test_accuracy"].as_f64().unwrap())
        .collect();
    assert_eq!(accuracies.len(), 5);
    let folds: Vec<u64> = summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fold"].as_u64().unwrap())
        .collect();
    assert_eq!(folds, [1, 2, 3, 4, 5]);
    assert_eq!(summary["runs"][2]["dir"], "fold-3/seed-0");
    let mean = accuracies.iter().sum::<f64>() / 5.0;
    let std = (accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
    assert!((summary["test_accuracy"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((summary["test_accuracy"]["std"].as_f64().unwrap() - std).abs() < 1e-12);
    assert_eq!(summary["std"], "population");
    assert_eq!(summary["dataset"], "ESC-50");
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
    assert!(!single.join("fold-3").exists());

    // Folds that do not exist.
    let mut args = common.to_vec();
    args.extend(["--fold", "6", "--no-cache", "--out", &single_s]);
    let result = native_train(&args);
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("ESC-50 has folds 1..=5"));
}

/// The sub-run folders of a `results.json` summary.
fn summary_dirs(summary: &serde_json::Value) -> Vec<String> {
    summary["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dir"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn train_folds_times_seeds_resumes_and_reports() {
    let fsdd = fsdd();
    let checkpoint = fixture("models/ast-tiny-s10").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ESC-50");
    esc50_tree(&fsdd, &data);
    let whole = dir.path().join("whole");
    let killed = dir.path().join("killed");
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--checkpoint",
            &checkpoint,
            "--dataset",
            "esc50",
            "--data",
            data.to_str().unwrap(),
            "--method",
            "adapter",
            "--reduction-rate",
            "8",
            "--epochs",
            "2",
            "--max-length",
            "120",
            "--seed",
            "1",
            "--seeds",
            "2",
            "--no-cache",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let out = run_cli(&args(&whole), &[]);
    assert_succeeded(&out);
    // 5 folds × seeds 1, 2: fold-F/seed-S, folds outer.
    let summary = json_file(&whole.join("results.json"));
    let expected: Vec<String> = (1..=5)
        .flat_map(|f| [1, 2].map(|s| format!("fold-{f}/seed-{s}")))
        .collect();
    assert_eq!(summary_dirs(&summary), expected);
    assert_eq!(summary["test_accuracy"]["n"], 10);
    assert_eq!(summary["std"], "population");
    for (i, dir) in expected.iter().enumerate() {
        let (fold, seed) = ((i / 2 + 1) as u64, (i % 2 + 1) as u64);
        let config = json_file(&whole.join(dir).join("config.json"));
        assert_eq!(config["fold"], fold);
        assert_eq!(config["train"]["seed"], seed);
        assert_eq!(config["dataset"], "Esc50");
        let results = json_file(&whole.join(dir).join("results.json"));
        assert_eq!(
            (results["fold"].as_u64(), results["seed"].as_u64()),
            (Some(fold), Some(seed))
        );
        assert_eq!(summary["runs"][i]["fold"], fold);
        assert_eq!(summary["runs"][i]["seed"], seed);
        assert!(whole.join(dir).join("predictions.json").is_file());
    }

    // Killed in the first sub-run, resumed: the same summary as the uninterrupted run.
    let out = run_cli(&args(&killed), &[("NATIVE_TRAIN_STOP_AFTER_EPOCH", "1")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(killed
        .join("fold-1/seed-1/train_state.safetensors")
        .is_file());
    assert!(!killed.join("fold-1/seed-1/results.json").exists());
    assert!(!killed.join("fold-1/seed-2").exists());
    let mut resume = args(&killed);
    resume.push("--resume".into());
    let out = run_cli(&resume, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("after epoch 1 of 2"), "{stderr}");
    assert_eq!(json_file(&killed.join("results.json")), summary);

    // A sub-run in the middle of the loop that did not finish (its results gone): only it runs
    // again, from its last state; the other nine are kept.
    std::fs::remove_file(killed.join("fold-3/seed-2/results.json")).unwrap();
    std::fs::remove_file(killed.join("results.json")).unwrap();
    let out = run_cli(&resume, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("finished already").count(), 9, "{stderr}");
    assert!(stderr.contains("after epoch 2 of 2"), "{stderr}");
    assert_eq!(json_file(&killed.join("results.json")), summary);
    assert_eq!(
        metrics_without_time(&killed.join("fold-3/seed-2")),
        metrics_without_time(&whole.join("fold-3/seed-2"))
    );

    // The report reads the combined layout: one ESC-50 cell over the 10 runs.
    let report = dir.path().join("report");
    let out = run_cli(
        &[
            "report".to_string(),
            killed.display().to_string(),
            "--out".into(),
            report.display().to_string(),
            "--tsne-iterations".into(),
            "0".into(),
        ],
        &[],
    );
    assert_succeeded(&out);
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    let accuracy = &summary["test_accuracy"];
    assert!(
        md.contains("| method | ESC-50 | # trainable params |"),
        "{md}"
    );
    let cell = format!(
        "| Pfeiffer-par RR=8 | {:.2} ± {:.2} (10) |",
        100.0 * accuracy["mean"].as_f64().unwrap(),
        100.0 * accuracy["std"].as_f64().unwrap()
    );
    assert!(md.contains(&cell), "{cell}\n{md}");
    assert!(
        md.contains("| killed-fold-3-seed-2 | Pfeiffer-par RR=8 | ESC-50 | 3 | 2 | 2 |"),
        "{md}"
    );
}

#[test]
fn a_linear_probe_on_cached_features_ends_like_the_full_forward_and_resumes() {
    let fsdd = fsdd();
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = small_train_args(&fsdd, out, "3")
            .into_iter()
            .filter(|a| a != "--spec-augment")
            .collect();
        let method = a.iter().position(|a| a == "adapter").unwrap();
        a[method] = "linear".into();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (cached, full, killed) = (
        dir.path().join("cached"),
        dir.path().join("full"),
        dir.path().join("killed"),
    );
    for (out, extra) in [(&cached, &[][..]), (&full, &["--full-probe-forward"][..])] {
        let result = run_cli(&args(out, extra), &[]);
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
    }
    assert_eq!(
        json_file(&cached.join("config.json"))["probe_on_cached_features"],
        true
    );
    assert_eq!(
        json_file(&full.join("config.json"))["probe_on_cached_features"],
        false
    );
    let (a, b) = (
        json_file(&cached.join("results.json")),
        json_file(&full.join("results.json")),
    );
    assert_eq!(a["test_accuracy"], b["test_accuracy"]);
    let loss = |r: &serde_json::Value| r["test_loss"].as_f64().unwrap();
    assert!((loss(&a) - loss(&b)).abs() < 1e-4, "{a} vs {b}");
    for (x, y) in metrics_without_time(&cached)
        .iter()
        .zip(metrics_without_time(&full))
    {
        let l = |m: &serde_json::Value| m["train_loss"].as_f64().unwrap();
        assert!((l(x) - l(&y)).abs() < 1e-4, "{x} vs {y}");
    }

    // Killed after epoch 2 and resumed: the probe's own state continues.
    let stopped = run_cli(
        &args(&killed, &[]),
        &[("NATIVE_TRAIN_STOP_AFTER_EPOCH", "2")],
    );
    assert_eq!(stopped.status.code(), Some(3));
    let resumed = run_cli(&args(&killed, &["--resume"]), &[]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        json_file(&killed.join("results.json")),
        json_file(&cached.join("results.json"))
    );
}

/// Runs a command that prints JSON lines (the bench commands); panics with its stderr unless it
/// succeeds.
fn json_lines(args: &[&str]) -> Vec<serde_json::Value> {
    let out = native_train(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The quick forward benchmark names the library its matmuls ran on (the one this build uses).
#[test]
fn bench_quick_records_the_forward_and_its_matmul_library() {
    let lines = json_lines(&["bench", "--quick"]);
    let forward = lines
        .iter()
        .find(|l| l["case"] == "forward")
        .unwrap_or_else(|| panic!("no forward record: {lines:?}"));
    assert_eq!(forward["matmul"], petl_ast::kernels::MATMUL_LIBRARY);
    assert_eq!(
        (forward["batch"].as_u64(), forward["max_length"].as_u64()),
        (Some(1), Some(100))
    );
    assert!(forward["seconds_min"].as_f64().unwrap() > 0.0);
}

/// A training-step benchmark splits its fastest step into forward, backward and optimizer time
/// and names the update it ran (the trainer's fused AdamW on the cpu backend).
#[test]
fn bench_train_splits_the_step_and_names_its_optimizer() {
    let lines = json_lines(&[
        "bench-train",
        "--batch",
        "1",
        "--max-length",
        "100",
        "--repeats",
        "1",
    ]);
    let [step] = lines.as_slice() else {
        panic!("one record expected: {lines:?}");
    };
    assert_eq!(step["optimizer"], "fused AdamW");
    let phases = &step["fastest_step_phases"];
    let seconds = |name: &str| {
        phases[name]
            .as_f64()
            .unwrap_or_else(|| panic!("no {name} in {phases}"))
    };
    let split = seconds("forward") + seconds("backward") + seconds("optimizer");
    assert!(seconds("forward") > 0.0 && seconds("backward") > 0.0);
    let total = step["seconds_min"].as_f64().unwrap();
    assert!(
        split <= total * 1.001 && split > total * 0.9,
        "{split} vs {total}"
    );
}

/// Every op × implementation × pass gives one JSON line with a positive time; a malformed case
/// is refused by name.
#[test]
fn bench_kernels_times_both_implementations_of_every_op() {
    let lines = json_lines(&["bench-kernels", "--cases", "1x100", "--repeats", "1"]);
    assert_eq!(lines.len(), 12, "{lines:?}");
    for op in ["kernel_gelu", "kernel_attention", "kernel_linear"] {
        for pass in ["forward", "forward+backward"] {
            let impls: Vec<&str> = lines
                .iter()
                .filter(|l| l["case"] == op && l["pass"] == pass)
                .map(|l| l["impl"].as_str().unwrap())
                .collect();
            assert_eq!(impls.len(), 2, "{op} {pass}: {impls:?}");
            assert!(impls.contains(&"petl-ast kernel"), "{impls:?}");
        }
    }
    assert!(lines
        .iter()
        .all(|l| l["tokens"] == 110 && l["seconds_median"].as_f64().unwrap() > 0.0));

    let out = native_train(&["bench-kernels", "--cases", "8by500"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("8by500"));
}

/// `pretrain-demo --resume` after a kill ends with the same weights as an uninterrupted run,
/// and refuses a state written with other arguments.
#[test]
fn pretrain_demo_resumes_bit_identically_and_refuses_other_arguments() {
    let fsdd = fsdd();
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path| -> Vec<String> {
        [
            "pretrain-demo",
            "--data",
            &fsdd.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--epochs",
            "2",
            "--hidden-size",
            "32",
            "--layers",
            "1",
            "--heads",
            "2",
            "--max-length",
            "64",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let killed = dir.path().join("killed");
    let whole = dir.path().join("whole");
    let out = run_cli(&args(&killed), &[("NATIVE_TRAIN_STOP_AFTER_EPOCH", "1")]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut other = args(&killed);
    other.extend([
        "--lr".to_string(),
        "1e-3".to_string(),
        "--resume".to_string(),
    ]);
    assert_refused_with(&run_cli(&other, &[]), "other arguments");
    let mut resume = args(&killed);
    resume.push("--resume".to_string());
    let out = run_cli(&resume, &[]);
    assert_succeeded(&out);
    let out = run_cli(&args(&whole), &[]);
    assert_succeeded(&out);
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(
        weights(&killed),
        weights(&whole),
        "resumed run differs from the uninterrupted one"
    );
    assert!(!killed.join("train_state.safetensors").exists());
}

/// `quantize` writes a folder that `classify` loads like any checkpoint, with the same top labels
/// as the f32 one; a missing input folder is one line naming it.
#[test]
fn a_quantized_folder_classifies_like_the_original() {
    let checkpoint = fixture("models/ast-tiny-s10");
    let dir = tempfile::tempdir().unwrap();
    let clips = clip_paths();
    let clips: Vec<&str> = clips.iter().map(String::as_str).collect();
    let top = |folder: &Path| {
        let mut args = vec![
            "classify",
            "--checkpoint",
            folder.to_str().unwrap(),
            "--json",
        ];
        args.extend(&clips);
        let out = native_train(&args);
        assert_succeeded(&out);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .map(|r| r["top"][0]["label"].clone())
            .collect::<Vec<_>>()
    };
    let expected = top(&checkpoint);
    for dtype in ["f16", "bf16", "int8"] {
        let out_dir = dir.path().join(dtype);
        let out = native_train(&[
            "quantize",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--dtype",
            dtype,
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert_succeeded(&out);
        assert!(out_dir.join("config.json").is_file());
        assert_eq!(top(&out_dir), expected, "{dtype}");
    }
    let out = native_train(&[
        "quantize",
        "--checkpoint",
        "/nonexistent/model",
        "--dtype",
        "f16",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_refused_with(&out, "/nonexistent/model");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
}
