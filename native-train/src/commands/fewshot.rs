//! `native-train fewshot`: the web page's personalisation recipe ([`petl_ast::personalise`], the
//! code the browser runs) measured the way a user meets it, on voices and words the backbone
//! never heard:
//!
//! - `fsdd`: the held-out FSDD speakers (theo, yweweler) learn the ten digits from K clips per
//!   digit drawn from their takes 5–49; tested on their official test takes (index 0–4).
//! - `words`: new words by new voices (`scripts/make_pretrain_corpus.py`'s `eval/<word>/*.wav`,
//!   words and voices kept out of pretraining). Each seed draws `--word-classes` words and K clips
//!   per word; the test clips are every other clip of those words whose voice is in no training
//!   clip.
//!
//! Every method × K × seed is one personalisation run from scratch; the table gives the mean ±
//! population std over seeds, and `--json` writes every number.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::Module;
use indicatif::{ProgressBar, ProgressStyle};
use petl_ast::audio::{read_wav, to_16k, AudioLimits};
use petl_ast::data::{self, Clip};
use petl_ast::io::write_atomic;
use petl_ast::personalise::{Personalisation, PersonaliseMethod, PersonaliseOptions};
use petl_ast::pipeline::Classifier;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::model_source::ModelArgs;

/// Arguments of `fewshot`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// FSDD `recordings/` folder: the held-out-speaker task.
    #[arg(long, value_name = "DIR")]
    fsdd: Option<PathBuf>,
    /// FSDD speakers the backbone never heard.
    #[arg(long, value_delimiter = ',', default_value = "theo,yweweler")]
    speakers: Vec<String>,
    /// Clips per digit of the FSDD task.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    fsdd_shots: Vec<usize>,
    /// Held-out words folder, `<word>/<NNN>-<voice>.wav` (the corpus's `eval/`): the new-word task.
    #[arg(long, value_name = "DIR")]
    words: Option<PathBuf>,
    /// Clips per word of the new-word task.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    word_shots: Vec<usize>,
    /// Words a user teaches at once (drawn per seed).
    #[arg(long, default_value_t = 5)]
    word_classes: usize,
    /// Personalisation methods (the page's).
    #[arg(long, value_delimiter = ',', default_value = "adapter,lora,linear")]
    methods: Vec<PersonaliseMethod>,
    /// Seeds 0…N−1: each draws its own clips and initialisation.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Passes over the clips (default: the page's).
    #[arg(long)]
    epochs: Option<usize>,
    /// The methods' main size (adapter width, LoRA rank, prompt tokens; `PersonaliseOptions::size`;
    /// default: the page's).
    #[arg(long)]
    size: Option<usize>,
    /// Time shift and SpecAugment masks during personalisation (`PersonaliseOptions::augment`).
    #[arg(long)]
    augment: bool,
    /// Leave out the page's speed perturbation of the clips
    /// (`PersonaliseOptions::speed_perturb`).
    #[arg(long)]
    no_speed_perturb: bool,
    /// Write every run's numbers as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// One few-shot task: labelled clips to learn from and to test on.
struct Episode {
    labels: Vec<String>,
    train: Vec<(Vec<f32>, usize)>,
    test: Vec<(Vec<f32>, usize)>,
}

fn samples(path: &Path) -> Result<Vec<f32>> {
    let audio = read_wav(path, &AudioLimits::default())?;
    Ok(to_16k(audio)?)
}

fn load(clips: &[Clip]) -> Result<Vec<(Vec<f32>, usize)>> {
    clips
        .iter()
        .map(|c| Ok((samples(&c.path)?, c.label)))
        .collect()
}

/// The FSDD task for `seed`: K clips per digit of `speakers` (takes 5–49), tested on takes 0–4.
fn fsdd_episode(dir: &Path, speakers: &[String], k: usize, seed: u64) -> Result<Episode> {
    let speakers: Vec<&str> = speakers.iter().map(String::as_str).collect();
    let splits = data::fsdd::splits(dir, &speakers)?;
    if splits.test.is_empty() {
        bail!("{}: no recordings of {speakers:?}", dir.display());
    }
    let pool: Vec<Clip> = splits.train.iter().chain(&splits.valid).cloned().collect();
    let train = data::sample_k_per_class(&pool, k, seed);
    Ok(Episode {
        labels: splits.labels,
        train: load(&train)?,
        test: load(&splits.test)?,
    })
}

/// The voice of a corpus clip: its file name without the rendition number.
fn voice_of(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    stem.split_once('-')
        .map_or(stem.to_string(), |(_, v)| v.to_string())
}

/// The new-word task for `seed`: `classes` words, K clips each; tested on the other clips of
/// those words by voices that are in no training clip.
fn words_episode(dir: &Path, classes: usize, k: usize, seed: u64) -> Result<Episode> {
    let (labels, clips) = data::folder::read(dir)?;
    if labels.len() < classes {
        bail!(
            "{}: {} word folders, --word-classes asks for {classes}",
            dir.display(),
            labels.len()
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut chosen: Vec<usize> = (0..labels.len()).collect();
    chosen.shuffle(&mut rng);
    chosen.truncate(classes);
    chosen.sort_unstable();
    let mut train = Vec::new();
    let mut rest = Vec::new();
    for (new_label, &label) in chosen.iter().enumerate() {
        let mut of_word: Vec<Clip> = clips.iter().filter(|c| c.label == label).cloned().collect();
        of_word.shuffle(&mut rng);
        let split = k.min(of_word.len().saturating_sub(1));
        for (i, clip) in of_word.into_iter().enumerate() {
            let clip = Clip {
                label: new_label,
                ..clip
            };
            if i < split {
                train.push(clip)
            } else {
                rest.push(clip)
            }
        }
    }
    let train_voices: BTreeSet<String> = train.iter().map(|c| voice_of(&c.path)).collect();
    let test: Vec<Clip> = rest
        .into_iter()
        .filter(|c| !train_voices.contains(&voice_of(&c.path)))
        .collect();
    if test.is_empty() {
        bail!(
            "{}: no test clip by a voice outside the training clips",
            dir.display()
        );
    }
    Ok(Episode {
        labels: chosen.iter().map(|&l| labels[l].clone()).collect(),
        train: load(&train)?,
        test: load(&test)?,
    })
}

/// Personalises `checkpoint` on the episode's training clips; returns the test accuracy and the
/// recipe's own leave-one-out estimate over the training clips (what the page shows).
fn accuracy(
    checkpoint: &petl_ast::model::Checkpoint,
    name: &str,
    episode: &Episode,
    options: &PersonaliseOptions,
    device: &burn::tensor::Device,
) -> Result<(f64, Option<f64>)> {
    let mut run = Personalisation::start(
        checkpoint,
        name,
        &episode.train,
        episode.labels.clone(),
        options,
        &device.clone().autodiff(),
    )?;
    let estimate = run.held_out.read(&run.labels).accuracy;
    while let Some(step) = run.session.step() {
        step?;
    }
    let model = run.session.model().clone().valid();
    let classifier = Classifier::from_petl(checkpoint, model, run.labels.clone(), device)?;
    let features: Vec<Vec<f32>> = episode
        .test
        .iter()
        .map(|(s, _)| classifier.extractor.extract(s))
        .collect();
    let mut right = 0;
    for (chunk, clips) in features.chunks(32).zip(episode.test.chunks(32)) {
        for (logits, (_, label)) in classifier.logits(chunk).iter().zip(clips) {
            let best = (0..logits.len())
                .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
                .unwrap_or(0);
            right += usize::from(best == *label);
        }
    }
    Ok((right as f64 / episode.test.len() as f64, estimate))
}

/// Mean and population standard deviation.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Runs `fewshot`.
pub fn run(args: Args) -> Result<()> {
    if args.fsdd.is_none() && args.words.is_none() {
        bail!("give --fsdd DIR (FSDD recordings) and/or --words DIR (held-out words, the corpus's eval/)");
    }
    let checkpoint = args.model.checkpoint()?;
    let name = args.model.name();
    let device = args.model.backend.device().map_err(anyhow::Error::msg)?;
    let mut tasks: Vec<(&str, usize)> = Vec::new();
    if args.fsdd.is_some() {
        tasks.extend(args.fsdd_shots.iter().map(|&k| ("fsdd", k)));
    }
    if args.words.is_some() {
        tasks.extend(args.word_shots.iter().map(|&k| ("words", k)));
    }
    let total = (tasks.len() * args.methods.len()) as u64 * args.seeds;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} runs ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    println!("| task | K | method | accuracy (mean ± std) | per seed |");
    println!("|---|---|---|---|---|");
    for &(task, k) in &tasks {
        let episodes: Vec<Episode> = (0..args.seeds)
            .map(|seed| match task {
                "fsdd" => {
                    fsdd_episode(args.fsdd.as_deref().expect("task"), &args.speakers, k, seed)
                }
                _ => words_episode(
                    args.words.as_deref().expect("task"),
                    args.word_classes,
                    k,
                    seed,
                ),
            })
            .collect::<Result<_>>()?;
        for &method in &args.methods {
            bar.set_message(format!("{task} K={k} {method:?}"));
            let mut values = Vec::new();
            let mut estimates = Vec::new();
            for (seed, episode) in episodes.iter().enumerate() {
                let mut options = PersonaliseOptions {
                    method,
                    seed: seed as u64,
                    augment: args.augment,
                    speed_perturb: !args.no_speed_perturb,
                    size: args.size,
                    ..PersonaliseOptions::default()
                };
                if let Some(epochs) = args.epochs {
                    options.epochs = epochs;
                }
                let (acc, estimate) = accuracy(&checkpoint, &name, episode, &options, &device)
                    .with_context(|| format!("{task} K={k} {method:?} seed {seed}"))?;
                values.push(acc);
                estimates.extend(estimate);
                bar.inc(1);
            }
            let (mean, std) = mean_std(&values);
            let per_seed: Vec<String> =
                values.iter().map(|v| format!("{:.1}", 100.0 * v)).collect();
            bar.suspend(|| {
                println!(
                    "| {task} | {k} | {method:?} | {:.1} ± {:.1} % | {} |",
                    100.0 * mean,
                    100.0 * std,
                    per_seed.join(", ")
                )
            });
            rows.push(json!({
                "task": task, "k": k, "method": method, "mean": mean, "std": std,
                "values": values, "leave_one_out_estimates": estimates, "test_clips": episodes.iter().map(|e| e.test.len()).collect::<Vec<_>>(),
            }));
        }
    }
    bar.finish_and_clear();
    if let Some(path) = &args.json {
        let report: Value = json!({
            "model": name, "seeds": args.seeds, "word_classes": args.word_classes,
            "epochs": args.epochs.unwrap_or(PersonaliseOptions::default().epochs),
            "std": "population", "runs": rows,
            "command": std::env::args().collect::<Vec<_>>().join(" "),
        });
        write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
