//! `train`'s dataset flags: which layout and folder, which fold(s), the fbank cache. Turns them
//! into one [`Run`] (clip splits + output folder) per fold, featurises clips, and summarises
//! the folds.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use petl_ast::audio::{AudioLimits, FeatureExtractor};
use petl_ast::data::cache::FbankCache;
use petl_ast::data::{self, Clip, DatasetKind, Protocol, Rotation, Splits};
use petl_ast::io::write_atomic;
use petl_ast::train::Example;
use serde::Serialize;
use serde_json::json;

/// Dataset flags of `train`.
#[derive(clap::Args, Debug, Serialize)]
pub struct DataArgs {
    /// Dataset layout; sets the defaults of --epochs, --batch-size, --max-length and
    /// --spec-augment to the paper's protocol for it.
    #[arg(long, value_enum)]
    pub dataset: DatasetKind,
    /// Dataset folder (ESC-50: holding meta/ and audio/; UrbanSound8K: metadata/ and audio/;
    /// GSC: speech_commands_v0.02; FSC: fluent_speech_commands_dataset; FSDD: recordings).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// ESC-50 / UrbanSound8K: run only the rotation that tests on fold N (written to --out
    /// itself). Default: every rotation, one sub-run per fold in --out/foldN plus a summary.
    #[arg(long, value_name = "N")]
    pub fold: Option<usize>,
    /// FSDD: only these speakers (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub speakers: Vec<String>,
    /// Keep only the first K training clips per class.
    #[arg(long, value_name = "K")]
    pub few_shot: Option<usize>,
    /// Folder of the fbank cache (default: $XDG_CACHE_HOME/petl-ast/fbank, else
    /// ~/.cache/petl-ast/fbank).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compute the features of every clip afresh, without the disk cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

/// One training run: a fold's splits and the folder its outputs go to.
#[derive(Debug)]
pub struct Run {
    /// The test fold, for folded datasets.
    pub fold: Option<usize>,
    /// Which folds train, validate and test.
    pub rotation: Option<Rotation>,
    /// The clips.
    pub splits: Splits,
    /// The run folder.
    pub out: PathBuf,
}

impl DataArgs {
    /// The dataset's protocol (defaults of the training flags).
    pub fn protocol(&self) -> &'static Protocol {
        self.dataset.protocol()
    }

    /// The runs to train, in fold order. `paper_compat` selects the reference's US8K protocol
    /// (validation on the test fold).
    pub fn runs(&self, out: &Path, paper_compat: bool) -> Result<Vec<Run>> {
        let protocol = self.protocol();
        let folds: Vec<usize> = match self.fold {
            None => (1..=protocol.folds).collect(),
            Some(n) if protocol.folds == 1 => {
                bail!(
                    "--fold {n}: {} has one fixed train/valid/test split, no folds",
                    protocol.name
                )
            }
            Some(n) if !(1..=protocol.folds).contains(&n) => {
                bail!(
                    "--fold {n}: {} has folds 1..={}",
                    protocol.name,
                    protocol.folds
                )
            }
            Some(n) => vec![n],
        };
        let folded = match self.dataset {
            DatasetKind::Esc50 => Some(data::esc50::read(&self.data)?),
            DatasetKind::Us8k => Some(data::us8k::read(&self.data)?),
            _ => None,
        };
        let mut runs = Vec::with_capacity(folds.len());
        for &fold in &folds {
            let (splits, rotation) = match (&folded, self.dataset) {
                (Some(folded), kind) => {
                    let rotation = match kind {
                        DatasetKind::Esc50 => data::esc50::rotation(fold),
                        _ => data::us8k::rotation(fold, paper_compat),
                    }
                    .expect("fold checked against the protocol");
                    (folded.split(&rotation), Some(rotation))
                }
                (None, DatasetKind::Gsc) => (data::gsc::splits(&self.data)?, None),
                (None, DatasetKind::Fsc) => (data::fsc::splits(&self.data)?, None),
                (None, DatasetKind::Fsdd) => {
                    let speakers: Vec<&str> = self.speakers.iter().map(String::as_str).collect();
                    (data::fsdd::splits(&self.data, &speakers)?, None)
                }
                (None, _) => (folder_splits(&self.data)?, None),
            };
            let mut splits = splits;
            if let Some(k) = self.few_shot {
                splits.train = data::first_k_per_class(&splits.train, k);
            }
            anyhow::ensure!(
                !splits.train.is_empty(),
                "{}: no training clips selected{}",
                self.data.display(),
                folded
                    .as_ref()
                    .map_or(String::new(), |_| format!(" for fold {fold}"))
            );
            let out = if folds.len() > 1 {
                out.join(format!("fold{fold}"))
            } else {
                out.to_path_buf()
            };
            let fold = folded.is_some().then_some(fold);
            runs.push(Run {
                fold,
                rotation,
                splits,
                out,
            });
        }
        Ok(runs)
    }

    /// The fbank cache the flags ask for; `None` with --no-cache or when no cache folder can be
    /// found (said on stderr).
    pub fn cache(&self) -> Option<FbankCache> {
        if self.no_cache {
            return None;
        }
        let dir = self.cache_dir.clone().or_else(FbankCache::default_dir);
        if dir.is_none() {
            eprintln!("note: neither XDG_CACHE_HOME nor HOME is set; fbank cache off (--cache-dir DIR turns it on)");
        }
        dir.map(FbankCache::new)
    }
}

/// The one-folder-per-class layout split by position within each class: every fifth clip
/// (0, 5, …) tests, the next validates, the rest train.
fn folder_splits(dir: &Path) -> Result<Splits> {
    let (labels, clips) = data::folder::read(dir)?;
    let mut s = Splits {
        labels,
        ..Splits::default()
    };
    let mut seen = std::collections::HashMap::new();
    for clip in clips {
        let n = seen.entry(clip.label).or_insert(0usize);
        match *n % 5 {
            0 => s.test.push(clip),
            1 => s.valid.push(clip),
            _ => s.train.push(clip),
        }
        *n += 1;
    }
    Ok(s)
}

/// Featurises clips through the cache when there is one, with a progress message.
pub fn featurise(
    clips: &[Clip],
    extractor: &FeatureExtractor,
    cache: Option<&FbankCache>,
    skip_bad: bool,
    what: &str,
) -> Result<Vec<Example>> {
    let limits = AudioLimits::default();
    let (examples, skipped) = match cache {
        Some(cache) => cache.examples(clips, extractor, &limits, skip_bad)?,
        None => data::features::examples(clips, extractor, &limits, skip_bad)?,
    };
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    eprintln!("{what}: {} clips", examples.len());
    Ok(examples)
}

/// Mean and population standard deviation (numpy's `np.std`, as the reference reports).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Writes `out/results.json` over the folds' results (each with `fold` and `test_accuracy`):
/// the per-fold results and the mean ± std of the test accuracy.
pub fn write_summary(out: &Path, protocol: &Protocol, folds: &[serde_json::Value]) -> Result<()> {
    let accuracies: Vec<f64> = folds
        .iter()
        .filter_map(|r| r["test_accuracy"].as_f64())
        .collect();
    let (mean, std) = mean_std(&accuracies);
    let summary = json!({
        "dataset": protocol.name,
        "folds": folds,
        "test_accuracy_mean": mean,
        "test_accuracy_std": std,
        "std": "population (ddof 0), as PETL_AST's np.std",
    });
    write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!(
        "{}: test accuracy {:.4} ± {:.4} over {} folds; summary in {}",
        protocol.name,
        mean,
        std,
        accuracies.len(),
        out.join("results.json").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_is_numpys_population_std() {
        let (m, s) = mean_std(&[0.8, 0.9, 1.0]);
        assert!((m - 0.9).abs() < 1e-12);
        assert!((s - (0.02f64 / 3.0).sqrt()).abs() < 1e-12);
    }
}
