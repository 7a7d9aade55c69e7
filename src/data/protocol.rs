//! The datasets and the paper's training protocol for each, in one table ([`PROTOCOLS`]).
//!
//! Values from PETL_AST `hparams/train.yaml:26-51` and `main.py:165-208` (MLSP commit
//! `1fe23af`; see `docs/petl_reference.md` §6). FSDD and the one-folder-per-class layout are not
//! in the paper: their row holds this CLI's own defaults. The CLI takes every value as the
//! default of its flag, and every flag overrides it.

use serde::{Deserialize, Serialize};

/// A dataset layout the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// ESC-50: `meta/esc50.csv` + `audio/`, 5 folds.
    Esc50,
    /// UrbanSound8K: `metadata/UrbanSound8K.csv` + `audio/fold1..10/`, 10 folds (with
    /// `--paper-compat`, validation on the test fold as in the reference).
    Us8k,
    /// Google Speech Commands v0.02: word folders + `validation_list.txt` / `testing_list.txt`.
    Gsc,
    /// Fluent Speech Commands: `data/{train,valid,test}_data.csv` + wavs.
    Fsc,
    /// Free Spoken Digit Dataset `recordings/` (official test split: index 0–4; valid: 5–9).
    Fsdd,
    /// FSDD few-shot personalisation of the built-in backbone: the speakers it never heard
    /// ([`FSDD_FEWSHOT_SPEAKERS`]), K training clips per digit (`--few-shot`, default
    /// [`FSDD_FEWSHOT_DEFAULT_K`]), tested on their official test takes.
    FsddFewshot,
    /// One sub-folder of wavs per class.
    Folder,
}

/// How a dataset is trained and evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Protocol {
    /// The dataset.
    pub kind: DatasetKind,
    /// Its usual name.
    pub name: &'static str,
    /// Number of classes, when the dataset fixes it.
    pub classes: Option<usize>,
    /// Cross-validation folds (1: one fixed train/valid/test split).
    pub folds: usize,
    /// Input length in frames (10 ms each).
    pub max_length: usize,
    /// Clips per optimizer step.
    pub batch_size: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// SpecAugment on the training inputs.
    pub spec_augment: bool,
}

#[allow(clippy::too_many_arguments)] // one argument per table column
const fn row(
    kind: DatasetKind,
    name: &'static str,
    classes: Option<usize>,
    folds: usize,
    max_length: usize,
    batch_size: usize,
    epochs: usize,
    spec_augment: bool,
) -> Protocol {
    Protocol {
        kind,
        name,
        classes,
        folds,
        max_length,
        batch_size,
        epochs,
        spec_augment,
    }
}

/// The FSDD speakers the built-in backbone (`www/models/speech-ast-tiny`) was not trained on: the
/// few-shot benchmark personalises to them.
pub const FSDD_FEWSHOT_SPEAKERS: [&str; 2] = ["theo", "yweweler"];

/// Clips per digit of `--dataset fsdd-fewshot` without `--few-shot`.
pub const FSDD_FEWSHOT_DEFAULT_K: usize = 8;

/// Every dataset's protocol.
#[rustfmt::skip]
pub const PROTOCOLS: [Protocol; 7] = [
    //  kind                  name                      classes   folds max_len batch epochs SpecAug
    row(DatasetKind::Esc50,  "ESC-50",                 Some(50),  5,    500,    32,   50,    true),
    row(DatasetKind::Us8k,   "UrbanSound8K",           Some(10),  10,   400,    32,   30,    true),
    row(DatasetKind::Gsc,    "Speech Commands v0.02",  Some(35),  1,    100,    128,  75,    false),
    row(DatasetKind::Fsc,    "Fluent Speech Commands", Some(31),  1,    400,    32,   75,    false),
    row(DatasetKind::Fsdd,   "FSDD",                   Some(10),  1,    100,    32,   10,    false),
    row(DatasetKind::FsddFewshot, "FSDD few-shot",     Some(10),  1,    128,    16,   30,    false),
    row(DatasetKind::Folder, "folder",                 None,      1,    100,    32,   10,    false),
];

impl DatasetKind {
    /// The dataset's row of [`PROTOCOLS`].
    pub fn protocol(self) -> &'static Protocol {
        PROTOCOLS
            .iter()
            .find(|p| p.kind == self)
            .expect("PROTOCOLS has a row per DatasetKind")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_row() {
        for kind in [
            DatasetKind::Esc50,
            DatasetKind::Us8k,
            DatasetKind::Gsc,
            DatasetKind::Fsc,
            DatasetKind::Fsdd,
            DatasetKind::FsddFewshot,
            DatasetKind::Folder,
        ] {
            assert_eq!(PROTOCOLS.iter().filter(|p| p.kind == kind).count(), 1);
            assert_eq!(kind.protocol().kind, kind);
        }
    }
}
