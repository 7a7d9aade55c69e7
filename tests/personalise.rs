//! The web page's personalisation recipe, run natively on real speech: the built-in backbone
//! (pretrained on real and synthetic speech, never on theo) learns three digits of a speaker it never heard from four clips
//! each, one [`TrainSession`] step at a time as the page drives it; the adapter file it exports
//! loads back to the same logits. Also: the utterance detector on real recordings.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use petl_ast::audio::{read_wav, to_16k, AudioLimits, Segmenter, SegmenterConfig};
use petl_ast::model::Checkpoint;
use petl_ast::personalise::{Personalisation, PersonaliseMethod, PersonaliseOptions};
use petl_ast::pipeline::Classifier;

fn fsdd() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fsdd/recordings")
}

fn clip(name: &str) -> Vec<f32> {
    let audio = read_wav(&fsdd().join(name), &AudioLimits::default()).unwrap();
    to_16k(audio).unwrap()
}

fn demo() -> Checkpoint {
    Checkpoint::from_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models/speech-ast-tiny"))
        .unwrap()
}

fn device() -> Device {
    petl_ast::backend::cpu_device().expect("a CPU backend")
}

const DIGITS: [&str; 3] = ["2", "5", "8"];

fn run(method: PersonaliseMethod) -> (Checkpoint, Classifier, Personalisation) {
    let checkpoint = demo();
    let mut clips = Vec::new();
    for (label, digit) in DIGITS.iter().enumerate() {
        for index in 10..14 {
            clips.push((clip(&format!("{digit}_theo_{index}.wav")), label));
        }
    }
    let options = PersonaliseOptions {
        method,
        ..PersonaliseOptions::default()
    };
    let labels = DIGITS.iter().map(|d| format!("digit {d}")).collect();
    let mut run = Personalisation::start(
        &checkpoint,
        "speech-ast-tiny",
        &clips,
        labels,
        &options,
        &device().autodiff(),
    )
    .unwrap();
    let mut losses = Vec::new();
    let start = std::time::Instant::now();
    while let Some(step) = run.session.step() {
        let step = step.unwrap();
        assert!(!step.skipped);
        losses.push(step.loss);
    }
    assert_eq!(losses.len(), run.session.total_steps());
    let first = losses[..3].iter().sum::<f64>() / 3.0;
    let last = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
    eprintln!(
        "{method:?}: loss {first:.3} → {last:.3}; {} steps of {} clips in {:.2} s",
        losses.len(),
        clips.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        last < first * 0.8,
        "{method:?}: loss {first:.3} → {last:.3}"
    );
    let model = run.session.model().clone().valid();
    let classifier =
        Classifier::from_petl(&checkpoint, model, run.labels.clone(), &device()).unwrap();
    (checkpoint, classifier, run)
}

fn held_out_accuracy(classifier: &Classifier) -> Vec<usize> {
    let held_out: Vec<Vec<Vec<f32>>> = DIGITS
        .iter()
        .map(|d| (0..3).map(|i| clip(&format!("{d}_theo_{i}.wav"))).collect())
        .collect();
    right_per_class(classifier, &held_out)
}

/// How many clips of each class (`held_out[c]`: the samples of class `c`) get their own class
/// as top-1.
fn right_per_class(classifier: &Classifier, held_out: &[Vec<Vec<f32>>]) -> Vec<usize> {
    held_out
        .iter()
        .enumerate()
        .map(|(label, clips)| {
            let features: Vec<Vec<f32>> = clips
                .iter()
                .map(|c| classifier.extractor.extract(c))
                .collect();
            classifier
                .logits(&features)
                .iter()
                .filter(|l| classifier.top_k(l, 1)[0].0 == classifier.labels[label])
                .count()
        })
        .collect()
}

#[test]
fn adapter_learns_a_new_speaker_from_four_clips_per_class() {
    let (checkpoint, classifier, run) = run(PersonaliseMethod::Adapter);
    let right = held_out_accuracy(&classifier);
    assert!(
        right.iter().all(|&r| r >= 2),
        "correct of 3 per class: {right:?}"
    );

    assert_reloads(&checkpoint, &classifier, &run);
}

/// The exported adapter file loads back onto the backbone with the same logits.
fn assert_reloads(checkpoint: &Checkpoint, classifier: &Classifier, run: &Personalisation) {
    let petl_ast::pipeline::Network::Petl(model) = &classifier.model else {
        panic!("a personalised classifier wraps a PetlModel")
    };
    let bytes = model.adapter_bytes(&run.metadata);
    let reloaded = Classifier::with_adapter(checkpoint, &bytes, "adapter", &device()).unwrap();
    assert_eq!(reloaded.labels, classifier.labels);
    let features = vec![classifier.extractor.extract(&clip("5_theo_1.wav"))];
    let (a, b) = (classifier.logits(&features), reloaded.logits(&features));
    let diff = a[0]
        .iter()
        .zip(&b[0])
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let method = run.metadata.petl.clone();
    assert!(diff < 1e-5, "{method:?}: {diff}");
}

#[test]
fn every_page_method_learns_and_its_file_reloads() {
    for method in PersonaliseMethod::ALL {
        if method == PersonaliseMethod::Adapter {
            continue; // the test above
        }
        let (checkpoint, classifier, run) = run(method);
        let right: usize = held_out_accuracy(&classifier).iter().sum();
        assert!(right >= 6, "{method:?}: {right} of 9 held-out clips");
        assert_reloads(&checkpoint, &classifier, &run);
    }
}

#[test]
fn the_page_offers_every_method() {
    let html =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("index.html")).unwrap();
    let start = html
        .find("<select id=\"method\">")
        .expect("the method <select>");
    let select = &html[start..start + html[start..].find("</select>").unwrap()];
    let offered: Vec<&str> = select
        .split("<option value=\"")
        .skip(1)
        .map(|option| &option[..option.find('"').unwrap()])
        .collect();
    let all: Vec<&str> = PersonaliseMethod::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(offered, all);
    // The page selects the recipe's default method, listed first.
    let selected = select
        .split("<option value=\"")
        .skip(1)
        .find(|option| option.contains(" selected>"))
        .map(|option| &option[..option.find('"').unwrap()]);
    assert_eq!(selected, Some(PersonaliseOptions::default().method.name()));
    assert_eq!(
        PersonaliseMethod::ALL[0],
        PersonaliseOptions::default().method
    );
}

#[test]
fn personalisation_refuses_bad_class_setups() {
    let checkpoint = demo();
    let options = PersonaliseOptions::default();
    let ad = device().autodiff();
    let one = vec![(clip("1_theo_10.wav"), 0)];
    let err = Personalisation::start(&checkpoint, "demo", &one, vec!["a".into()], &options, &ad)
        .err()
        .unwrap();
    assert!(err.to_string().contains("at least two classes"), "{err}");
    let err = Personalisation::start(
        &checkpoint,
        "demo",
        &one,
        vec!["a".into(), "b".into()],
        &options,
        &ad,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("\"b\" has no clips"), "{err}");
}

#[test]
fn detector_finds_each_word_in_a_stream_of_real_speech() {
    let words = ["3_theo_5.wav", "7_yweweler_2.wav", "0_george_3.wav"];
    let mut stream = vec![0.0f32; 16000];
    let mut lengths = Vec::new();
    for w in words {
        let c = clip(w);
        lengths.push(c.len());
        stream.extend(c);
        stream.extend(vec![0.0f32; 12000]);
    }
    // A little background noise, as a microphone has.
    for (i, x) in stream.iter_mut().enumerate() {
        *x += 0.0005 * (((i * 7919) % 101) as f32 / 50.0 - 1.0);
    }
    let mut seg = Segmenter::new(SegmenterConfig::speech(16000));
    let found: Vec<_> = stream.chunks(1600).flat_map(|c| seg.push(c)).collect();
    assert_eq!(
        found.len(),
        3,
        "{:?}",
        found.iter().map(|u| u.samples.len()).collect::<Vec<_>>()
    );
    for (u, len) in found.iter().zip(lengths) {
        // Each cut holds most of its recording and not much more.
        assert!(
            u.samples.len() as f64 > 0.5 * len as f64,
            "{} vs {len}",
            u.samples.len()
        );
        assert!(
            u.samples.len() < len + 16000,
            "{} vs {len}",
            u.samples.len()
        );
    }
}

/// The browser test's scenario, natively: three new words (espeak-ng, seven voices each), four
/// clips per word to learn from, the other three held out — what a user of the page does.
#[test]
fn adapter_learns_three_new_words_from_four_synthetic_voices() {
    // Held out of the backbone's pretraining corpus (scripts/make_pretrain_corpus.py).
    const WORDS: [&str; 3] = ["apple", "river", "lantern"];
    const VOICES: [(&str, &str); 7] = [
        ("en-us-nyc+Annie", "150"),
        ("en-gb+f4", "135"),
        ("en-us+f5", "165"),
        ("en-gb-scotland+travis", "145"),
        ("en-029+michel", "155"),
        ("en-us+m7", "140"),
        ("en-gb-x-rp+linda", "160"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut spoken = Vec::new();
    for word in WORDS {
        let mut clips = Vec::new();
        for (i, (voice, speed)) in VOICES.iter().enumerate() {
            let out = dir.path().join(format!("{word}-{i}.wav"));
            let status = std::process::Command::new("espeak-ng")
                .args(["-v", voice, "-s", speed, "-w"])
                .arg(&out)
                .arg(word)
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()),
                "espeak-ng failed or is not installed (scripts/setup.sh installs it)"
            );
            let audio = read_wav(&out, &AudioLimits::default()).unwrap();
            clips.push(to_16k(audio).unwrap());
        }
        spoken.push(clips);
    }
    let checkpoint = demo();
    let train: Vec<(Vec<f32>, usize)> = spoken
        .iter()
        .enumerate()
        .flat_map(|(label, clips)| clips[..4].iter().map(move |c| (c.clone(), label)))
        .collect();
    let labels = WORDS.iter().map(|w| w.to_string()).collect();
    let options = PersonaliseOptions::default();
    let mut run = Personalisation::start(
        &checkpoint,
        "speech-ast-tiny",
        &train,
        labels,
        &options,
        &device().autodiff(),
    )
    .unwrap();
    while let Some(step) = run.session.step() {
        step.unwrap();
    }
    let model = run.session.model().clone().valid();
    let classifier =
        Classifier::from_petl(&checkpoint, model, run.labels.clone(), &device()).unwrap();
    let held_out: Vec<Vec<Vec<f32>>> = spoken.iter().map(|clips| clips[4..].to_vec()).collect();
    let right = right_per_class(&classifier, &held_out);
    eprintln!("held-out clips right of 3 per word ({WORDS:?}): {right:?}");
    assert!(
        right.iter().all(|&r| r >= 2) && right.iter().sum::<usize>() >= 8,
        "held-out clips right of 3 per word ({WORDS:?}): {right:?}"
    );
}

/// The prototype head and the leave-one-out estimate against the same arithmetic done on the
/// host in f64 from the model's own pooled embeddings.
#[test]
fn prototype_head_and_leave_one_out_match_a_host_computation() {
    let checkpoint = demo();
    let mut clips = Vec::new();
    for (label, digit) in DIGITS.iter().enumerate() {
        // Class 2 gets a single clip: it cannot be left out, and is not evaluated.
        let takes = if label == 2 { 10..11 } else { 10..14 };
        for index in takes {
            clips.push((clip(&format!("{digit}_theo_{index}.wav")), label));
        }
    }
    let labels: Vec<String> = DIGITS.iter().map(|d| d.to_string()).collect();
    let run = Personalisation::start(
        &checkpoint,
        "speech-ast-tiny",
        &clips,
        labels.clone(),
        &PersonaliseOptions::default(),
        &device().autodiff(),
    )
    .unwrap();
    let model = run.session.model().clone().valid();
    let features: Vec<f32> = clips
        .iter()
        .flat_map(|(s, _)| run.extractor.extract(s))
        .collect();
    let n = clips.len();
    let shape = [n, run.metadata.max_length, 128];
    let input = burn::tensor::Tensor::<3>::from_data(
        burn::tensor::TensorData::new(features, shape),
        &device(),
    );
    let pooled: Vec<f32> = model
        .pooled(input.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let logits: Vec<f32> = model
        .forward(input)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let d = pooled.len() / n;
    let z: Vec<Vec<f64>> = pooled
        .chunks(d)
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    let centre: Vec<f64> = (0..d)
        .map(|j| z.iter().map(|r| r[j]).sum::<f64>() / n as f64)
        .collect();
    let z: Vec<Vec<f64>> = z
        .iter()
        .map(|r| r.iter().zip(&centre).map(|(a, c)| a - c).collect())
        .collect();
    let truth: Vec<usize> = clips.iter().map(|(_, l)| *l).collect();
    let counts: Vec<usize> = (0..3)
        .map(|c| truth.iter().filter(|&&l| l == c).count())
        .collect();
    let means: Vec<Vec<f64>> = (0..3)
        .map(|c| {
            (0..d)
                .map(|j| {
                    (0..n)
                        .filter(|&i| truth[i] == c)
                        .map(|i| z[i][j])
                        .sum::<f64>()
                        / counts[c] as f64
                })
                .collect()
        })
        .collect();
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    // Leave-one-out: the clip's own class mean without it.
    let expected: Vec<i64> = (0..n)
        .map(|i| {
            (0..3)
                .map(|c| {
                    if c != truth[i] {
                        return dist(&z[i], &means[c]);
                    }
                    if counts[c] == 1 {
                        return f64::INFINITY;
                    }
                    let without: Vec<f64> = (0..d)
                        .map(|j| {
                            (means[c][j] * counts[c] as f64 - z[i][j]) / (counts[c] - 1) as f64
                        })
                        .collect();
                    dist(&z[i], &without)
                })
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap()
                .0 as i64
        })
        .collect();
    let estimate = run.held_out.read(&labels);
    let on_device: Vec<i64> = run
        .held_out
        .predicted
        .clone()
        .into_data()
        .try_into_vec_as::<i64>()
        .unwrap();
    assert_eq!(on_device, expected);
    assert_eq!(
        estimate.evaluated, 8,
        "the single clip of class 2 is not evaluated"
    );
    // The head at step 0: softmax of −‖z − μ_c‖² / 2τ, τ = mean ‖z‖² / 4.
    let tau = z
        .iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>())
        .sum::<f64>()
        / n as f64
        / 4.0;
    for i in 0..n {
        let expected = petl_ast::pipeline::softmax(
            &(0..3)
                .map(|c| (-dist(&z[i], &means[c]) / (2.0 * tau)) as f32)
                .collect::<Vec<_>>(),
        );
        let got = petl_ast::pipeline::softmax(&logits[i * 3..(i + 1) * 3]);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-4, "clip {i}: {got:?} vs {expected:?}");
        }
    }
}
