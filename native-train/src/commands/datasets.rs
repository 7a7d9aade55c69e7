//! `train`'s dataset flags: which layout and folder, which fold(s), the fbank cache. Turns them
//! into one [`Fold`] (the clip splits of one rotation) per fold to run and featurises clips.
//! Where each fold × seed writes and the summary over them are [`super::aggregate`]'s.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use petl_ast::audio::{AudioLimits, FeatureExtractor};
use petl_ast::data::cache::FbankCache;
use petl_ast::data::{self, Clip, DatasetKind, Protocol, Rotation, Splits};
use petl_ast::train::Example;

/// Dataset flags of `train`.
#[derive(clap::Args, Debug)]
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
    /// itself with one seed). Default: every rotation, one sub-run per fold and seed in
    /// --out/fold-N/seed-S plus a summary.
    #[arg(long, value_name = "N")]
    pub fold: Option<usize>,
    /// FSDD: only these speakers (comma-separated; fsdd-fewshot default: theo,yweweler).
    #[arg(long, value_delimiter = ',')]
    pub speakers: Vec<String>,
    /// Train on K clips per class (fsdd-fewshot default: 8), drawn at random with each run's
    /// --seed (so --seeds N averages over N subsets); with --paper-compat the first K per class,
    /// as the reference.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub few_shot: Option<u64>,
    /// Folder of the fbank cache (default: $XDG_CACHE_HOME/petl-ast/fbank, else
    /// ~/.cache/petl-ast/fbank).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compute the features of every clip afresh, without the disk cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

/// How a run picks its training clips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FewShot {
    /// Every training clip.
    All,
    /// The first K per class (the reference's subsets), fixed across seeds.
    FirstK(usize),
    /// K per class drawn with the run's seed.
    Sampled(usize),
}

impl FewShot {
    /// The training clips of a run with `seed` out of the fold's `train` pool; `None` when the
    /// whole pool trains.
    pub fn select(self, train: &[Clip], seed: u64) -> Option<Vec<Clip>> {
        match self {
            FewShot::All => None,
            FewShot::FirstK(k) => Some(data::first_k_per_class(train, k)),
            FewShot::Sampled(k) => Some(data::sample_k_per_class(train, k, seed)),
        }
    }

    /// What `config.json` records: `"first"` or `"seeded"` (absent for full training sets).
    pub fn draw(self) -> Option<&'static str> {
        match self {
            FewShot::All => None,
            FewShot::FirstK(_) => Some("first"),
            FewShot::Sampled(_) => Some("seeded"),
        }
    }
}

/// The clips of one fold's rotation (or of the dataset's one fixed split).
#[derive(Debug)]
pub struct Fold {
    /// The test fold, for folded datasets.
    pub fold: Option<usize>,
    /// Which folds train, validate and test.
    pub rotation: Option<Rotation>,
    /// The clips.
    pub splits: Splits,
}

impl DataArgs {
    /// The dataset's protocol (defaults of the training flags).
    pub fn protocol(&self) -> &'static Protocol {
        self.dataset.protocol()
    }

    /// Training clips per class: `--few-shot`, or the few-shot benchmark's default.
    pub fn few_shot_k(&self) -> Option<usize> {
        match (self.few_shot, self.dataset) {
            (None, DatasetKind::FsddFewshot) => Some(data::FSDD_FEWSHOT_DEFAULT_K),
            (k, _) => k.map(|k| k as usize),
        }
    }

    /// How each run chooses its training clips from the fold's pool ([`FewShot::select`]): all
    /// of them, the first K per class (`paper_compat`) or K per class drawn with the run's seed.
    pub fn few_shot(&self, paper_compat: bool) -> FewShot {
        match self.few_shot_k() {
            None => FewShot::All,
            Some(k) if paper_compat => FewShot::FirstK(k),
            Some(k) => FewShot::Sampled(k),
        }
    }

    /// The FSDD speakers the run uses: `--speakers`, or fsdd-fewshot's default pair (empty =
    /// every speaker, for `fsdd`).
    pub fn speakers(&self) -> Vec<&str> {
        match (self.speakers.is_empty(), self.dataset) {
            (true, DatasetKind::FsddFewshot) => data::FSDD_FEWSHOT_SPEAKERS.to_vec(),
            _ => self.speakers.iter().map(String::as_str).collect(),
        }
    }

    /// The folds to train, in fold order (one for datasets with a fixed split). `paper_compat`
    /// selects the reference's US8K protocol (validation on the test fold). The training split
    /// is the whole pool; a few-shot run picks from it ([`Self::few_shot`]).
    pub fn folds(&self, paper_compat: bool) -> Result<Vec<Fold>> {
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
        let mut selected = Vec::with_capacity(folds.len());
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
                (None, DatasetKind::Fsdd | DatasetKind::FsddFewshot) => {
                    (data::fsdd::splits(&self.data, &self.speakers())?, None)
                }
                (None, _) => (folder_splits(&self.data)?, None),
            };
            anyhow::ensure!(
                !splits.train.is_empty(),
                "{}: no training clips selected{}",
                self.data.display(),
                folded
                    .as_ref()
                    .map_or(String::new(), |_| format!(" for fold {fold}"))
            );
            let fold = folded.is_some().then_some(fold);
            selected.push(Fold {
                fold,
                rotation,
                splits,
            });
        }
        Ok(selected)
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

/// Featurises clips through the cache when there is one, with a progress message; also returns
/// the messages of the files left out by `skip_bad`.
pub fn featurise(
    clips: &[Clip],
    extractor: &FeatureExtractor,
    cache: Option<&FbankCache>,
    limits: &AudioLimits,
    skip_bad: bool,
    what: &str,
) -> Result<(Vec<Example>, Vec<String>)> {
    let (examples, skipped) = match cache {
        Some(cache) => cache.examples(clips, extractor, limits, skip_bad)?,
        None => data::features::examples(clips, extractor, limits, skip_bad)?,
    };
    for s in &skipped {
        eprintln!("skipped: {s}");
    }
    eprintln!("{what}: {} clips", examples.len());
    Ok((examples, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dataset: DatasetKind, few_shot: Option<u64>, speakers: &[&str]) -> DataArgs {
        DataArgs {
            dataset,
            data: PathBuf::from("/nowhere"),
            fold: None,
            speakers: speakers.iter().map(|s| s.to_string()).collect(),
            few_shot,
            cache_dir: None,
            no_cache: true,
        }
    }

    #[test]
    fn few_shot_is_drawn_per_seed_unless_paper_compat() {
        let fewshot = args(DatasetKind::FsddFewshot, None, &[]);
        let k = data::FSDD_FEWSHOT_DEFAULT_K;
        assert_eq!(fewshot.few_shot(false), FewShot::Sampled(k));
        assert_eq!(fewshot.few_shot(true), FewShot::FirstK(k));
        assert_eq!(
            args(DatasetKind::Fsdd, Some(2), &[]).few_shot(false),
            FewShot::Sampled(2)
        );
        assert_eq!(
            args(DatasetKind::Fsdd, None, &[]).few_shot(false),
            FewShot::All
        );
        assert_eq!(FewShot::All.draw(), None);

        let clip = |label, i| Clip {
            path: PathBuf::from(format!("{label}_{i}.wav")),
            label,
            group: None,
        };
        let pool: Vec<Clip> = (0..3)
            .flat_map(|l| (0..20).map(move |i| clip(l, i)))
            .collect();
        let a = FewShot::Sampled(2).select(&pool, 0).unwrap();
        assert_eq!(a.len(), 6);
        assert_ne!(Some(a), FewShot::Sampled(2).select(&pool, 1));
        let first = FewShot::FirstK(2).select(&pool, 0).unwrap();
        assert_eq!(Some(first.clone()), FewShot::FirstK(2).select(&pool, 1));
        assert_eq!(first[..2], pool[..2]);
        assert_eq!(FewShot::All.select(&pool, 0), None);
    }

    #[test]
    fn fewshot_records_its_default_speakers() {
        assert_eq!(
            args(DatasetKind::FsddFewshot, None, &[]).speakers(),
            data::FSDD_FEWSHOT_SPEAKERS.to_vec()
        );
        assert_eq!(
            args(DatasetKind::FsddFewshot, None, &["jackson"]).speakers(),
            vec!["jackson"]
        );
        assert!(args(DatasetKind::Fsdd, None, &[]).speakers().is_empty());
    }
}
