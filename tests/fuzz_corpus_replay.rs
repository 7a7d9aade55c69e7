//! Replays every committed fuzz input through the target bodies of `petl_ast::fuzz`, on stable
//! Rust and without cargo-fuzz: the minimised corpora `fuzz/corpus/<target>/` and the crash
//! regressions `fuzz/regressions/<target>/` (inputs that once crashed, hung or over-allocated).
//!
//! `cargo test --release --test fuzz_corpus_replay -- --ignored write_seeds` regenerates the
//! seeds from `tests/fixtures` into `fuzz/seeds/<target>/` (then `scripts/fuzz.sh` minimises
//! them into the corpora with `cargo fuzz cmin`).

mod common;

use std::collections::HashMap;

use common::{device, fixture, fuzz_dir, fuzz_inputs};
use petl_ast::fuzz;

/// Runs every committed input of `target`; fails listing each input that panics.
fn replay(target: &str) {
    let body = fuzz::target(target).expect("known target");
    let corpus = fuzz_inputs("corpus", target);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty: the committed corpus was lost"
    );
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&fuzz_inputs("regressions", target)) {
        let bytes = std::fs::read(path).expect("readable input");
        if std::panic::catch_unwind(|| body(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: inputs that fail:\n{}",
        failed.join("\n")
    );
}

#[test]
fn wav() {
    replay("wav");
}

#[test]
fn fbank() {
    replay("fbank");
}

#[test]
fn config() {
    replay("config");
}

#[test]
fn checkpoint() {
    replay("checkpoint");
}

#[test]
fn adapter() {
    replay("adapter");
}

#[test]
fn dataset_lists() {
    replay("dataset_lists");
}

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<&str> = fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "wav",
            "fbank",
            "config",
            "checkpoint",
            "adapter",
            "dataset_lists"
        ]
    );
    for name in names {
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{name}.rs"))
                .exists(),
            "fuzz/fuzz_targets/{name}.rs"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds from the fixtures.

/// A canonical 44-byte WAV header plus `data`.
fn wav_bytes(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let block_align = channels * bits.div_ceil(8);
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt \x10\x00\x00\x00");
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn seeds() -> HashMap<&'static str, Vec<(String, Vec<u8>)>> {
    let read = |rel: &str| std::fs::read(fixture(rel)).expect(rel);
    let mut seeds: HashMap<&str, Vec<(String, Vec<u8>)>> = HashMap::new();

    // wav: the fixture clips, each sample encoding, and headers that lie.
    let wav = seeds.entry("wav").or_default();
    for name in ["short399", "short401", "0_george_0", "noise"] {
        wav.push((name.into(), read(&format!("audio/{name}.wav"))));
    }
    let pcm16: Vec<u8> = (0..800i16).flat_map(|i| (i * 40).to_le_bytes()).collect();
    wav.push(("u8-8k".into(), wav_bytes(1, 1, 8000, 8, &[128; 600])));
    wav.push(("s16-stereo-44k1".into(), wav_bytes(1, 2, 44100, 16, &pcm16)));
    wav.push(("s24-22k05".into(), wav_bytes(1, 1, 22050, 24, &[1; 1500])));
    wav.push(("s32-48k".into(), wav_bytes(1, 1, 48000, 32, &[7; 2000])));
    let floats = f32_bytes(&[0.0, 0.5, -1.0, f32::MAX, 1e-40, f32::NAN, 0.0]);
    wav.push(("f32-nan".into(), wav_bytes(3, 1, 16000, 32, &floats)));
    wav.push(("f64".into(), wav_bytes(3, 1, 16000, 64, &[0; 64])));
    wav.push(("rate-1hz".into(), wav_bytes(1, 1, 1, 16, &[1; 64])));
    let mut claim = wav_bytes(3, 2, 8000, 32, &[0; 64]);
    claim[40..44].copy_from_slice(&0xFFFF_FFF8u32.to_le_bytes());
    wav.push(("claims-4gb".into(), claim));

    // fbank: [filterbank, generator, parameters...] (see petl_ast::fuzz::FbankInput).
    let fbank = seeds.entry("fbank").or_default();
    let clip = read("audio/0_george_0.wav");
    let speech: Vec<f32> = clip[44..]
        .chunks_exact(2)
        .take(4000)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    for bank in 0..4u8 {
        let mut raw = vec![bank, 0];
        raw.extend(f32_bytes(&speech));
        fbank.push((format!("speech-{bank}"), raw));
    }
    fbank.push((
        "specials".into(),
        vec![
            0, 1, 0, 100, 5, 100, 6, 100, 8, 100, 10, 1, 0, 100, 11, 1, 12, 1, 13, 200,
        ],
    ));
    fbank.push(("square-full-scale".into(), vec![0, 2, 8, 0, 5, 0x40, 0x1F]));
    fbank.push(("square-one".into(), vec![1, 2, 1, 0, 2, 0x40, 0x1F]));
    for n in [0u16, 1, 400, 8000] {
        let mut silence = vec![0, 3];
        silence.extend(n.to_le_bytes());
        fbank.push((format!("silence-{n}"), silence));
    }

    // config: the fixture configs (each file goes to both parsers).
    let config = seeds.entry("config").or_default();
    for rel in [
        "models/ast-tiny-s10/config.json",
        "models/ast-tiny-f16t12/config.json",
        "models/ast-tiny-s10/preprocessor_config.json",
    ] {
        config.push((rel.replace('/', "-"), read(rel)));
    }
    config.push(("empty-object".into(), b"{}".to_vec()));

    // checkpoint: the tiny checkpoint in f32 and f16.
    let checkpoint = seeds.entry("checkpoint").or_default();
    checkpoint.push((
        "s10-f32".into(),
        read("models/ast-tiny-s10/model.safetensors"),
    ));
    checkpoint.push((
        "s10-f16".into(),
        read("models/ast-tiny-s10-f16/model.safetensors"),
    ));
    let mut huge = (u64::MAX / 2).to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    checkpoint.push(("header-claims-huge".into(), huge));

    // adapter: [importer, ...] (see petl_ast::fuzz::AdapterInput).
    let adapter = seeds.entry("adapter").or_default();
    for (i, (name, _)) in fuzz::PETL_AST_METHODS.iter().enumerate() {
        let mut bytes = vec![1, i as u8];
        bytes.extend(common::petl_cases::state_dict_only(&read(&format!(
            "petl/{name}.safetensors"
        ))));
        adapter.push((format!("petl-ast-{name}"), bytes));
    }
    for dir in ["peft/lora-qv", "peft/lora-qv-hubnames"] {
        let json = read(&format!("{dir}/adapter_config.json"));
        let mut bytes = vec![2];
        bytes.extend((json.len() as u16).to_le_bytes());
        bytes.extend(json);
        bytes.extend(read(&format!("{dir}/adapter_model.safetensors")));
        adapter.push((dir.replace('/', "-"), bytes));
    }
    for (i, (name, json)) in fuzz::PETL_AST_METHODS.iter().enumerate() {
        if i % 3 != 0 {
            continue; // a few methods are enough for the adapter-file layout
        }
        let mut bytes = vec![0];
        bytes.extend(adapter_file(json));
        adapter.push((format!("adapter-file-{name}"), bytes));
    }

    // dataset_lists: [parser, text...] (see petl_ast::fuzz::dataset_lists::PARSERS).
    let lists = seeds.entry("dataset_lists").or_default();
    let fsdd = "0_george_0.wav\n7_jackson_49.wav\n9_theo_12.wav\nnotes.txt\n12_x_1.wav\n3__4.wav\n";
    lists.push(("fsdd-names".into(), [&[0u8][..], fsdd.as_bytes()].concat()));
    let folder = "dog/a.wav\ndog/b.WAV\ncat/x.wav\ncat/readme.txt\nempty/\nbird\n";
    lists.push((
        "folder-listing".into(),
        [&[1u8][..], folder.as_bytes()].concat(),
    ));
    seeds
}

/// A petl-ast adapter file of the method `json` on the tiny base of the fuzz targets.
fn adapter_file(json: &str) -> Vec<u8> {
    use petl_ast::model::{Checkpoint, LoadOptions};
    use petl_ast::petl::{AdapterMetadata, PetlModel};
    let device = device();
    let checkpoint = Checkpoint::from_parts(
        fuzz::TINY_CONFIG_JSON,
        "config.json",
        None,
        fuzz::tiny_weights().to_vec(),
        "model.safetensors",
    )
    .unwrap();
    let ast = checkpoint
        .load_backbone(&LoadOptions::default(), &device)
        .unwrap();
    let petl = serde_json::from_str(json).unwrap();
    let model = PetlModel::new(ast, &checkpoint.config, &petl, 3, &device).unwrap();
    model.adapter_bytes(&AdapterMetadata {
        petl,
        base_model: "tiny".into(),
        base_sha256: petl_ast::petl::checkpoint::sha256_hex(&checkpoint.weights),
        labels: vec!["a".into(), "b".into(), "c".into()],
        max_length: 100,
    })
}

#[test]
#[ignore = "writes fuzz/seeds/; run by hand when the fixtures change"]
fn write_seeds() {
    for (target, files) in seeds() {
        let dir = fuzz_dir().join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn the_seeds_pass_too() {
    for (target, files) in seeds() {
        let body = fuzz::target(target).unwrap();
        for (name, bytes) in files {
            assert!(
                std::panic::catch_unwind(|| body(&bytes)).is_ok(),
                "{target}/{name}"
            );
        }
    }
}
