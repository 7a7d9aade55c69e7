//! Dataset readers: clip lists with labels and splits, read from the datasets' own layouts.

#[cfg(not(target_family = "wasm"))]
pub mod cache;
mod csv;
pub mod esc50;
pub mod features;
pub mod folder;
pub mod folds;
pub mod fsc;
pub mod fsdd;
pub mod gsc;
pub mod protocol;
pub mod us8k;

pub use folds::{Folded, Rotation};
pub use protocol::{DatasetKind, Protocol, FSDD_FEWSHOT_DEFAULT_K, FSDD_FEWSHOT_SPEAKERS};

use std::path::PathBuf;

/// One labelled clip on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    /// The wav file.
    pub path: PathBuf,
    /// Class index into the dataset's label list.
    pub label: usize,
    /// Speaker (or other group) when the dataset has one.
    pub group: Option<String>,
}

/// A dataset split into parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Splits {
    /// Class names, in index order.
    pub labels: Vec<String>,
    /// Training clips.
    pub train: Vec<Clip>,
    /// Validation clips (for model selection).
    pub valid: Vec<Clip>,
    /// Test clips.
    pub test: Vec<Clip>,
}

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder is missing or unreadable.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// The layout does not match the dataset.
    #[error("{path}: {message}")]
    Layout {
        /// The folder or file.
        path: String,
        /// What is missing or unexpected.
        message: String,
    },
    /// A line of a metadata file (CSV or file list) is malformed or points at a missing file.
    #[error("{path}:{line}: {message}")]
    Row {
        /// The metadata file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
}

/// Takes the first `k` clips of each class (in the given order), as the reference's few-shot
/// subsets do (`--paper-compat`).
pub fn first_k_per_class(clips: &[Clip], k: usize) -> Vec<Clip> {
    let mut counts = std::collections::HashMap::new();
    clips
        .iter()
        .filter(|c| {
            let n = counts.entry(c.label).or_insert(0usize);
            *n += 1;
            *n <= k
        })
        .cloned()
        .collect()
}

/// Draws `k` clips of each class uniformly without replacement, seeded (`StdRng` from `seed`):
/// the same seed gives the same subset, and `--seeds N` runs see N different subsets. A class
/// with fewer than `k` clips keeps all of them. The kept clips stay in their given order.
pub fn sample_k_per_class(clips: &[Clip], k: usize, seed: u64) -> Vec<Clip> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut by_class: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, c) in clips.iter().enumerate() {
        by_class.entry(c.label).or_default().push(i);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut kept: Vec<usize> = by_class
        .into_values()
        .flat_map(|mut members| {
            members.shuffle(&mut rng);
            members.truncate(k);
            members
        })
        .collect();
    kept.sort_unstable();
    kept.into_iter().map(|i| clips[i].clone()).collect()
}
