//! UrbanSound8K (Salamon et al. 2014): 8,732 urban sound excerpts of up to 4 s, 10 classes,
//! 10 folds. The wavs mix sample rates, 8/16/24-bit and mono/stereo; the wav reader handles all
//! of them (channels averaged, resampled to 16 kHz).
//!
//! Layout (`--data` pointing at the folder holding `metadata/`): `metadata/UrbanSound8K.csv`
//! with columns `slice_file_name,fsID,start,end,salience,fold,classID,class`, and
//! `audio/fold<fold>/<slice_file_name>`. The label is `classID`; its name must be the `class` of
//! the dataset's fixed list ([`CLASSES`], also PETL_AST's `class_ids` order).
//!
//! Protocol. PETL_AST (`main.py:172-177`, `:317-318`) trains on the other nine folds and, having
//! no validation set, "validates" on the test fold itself, so model selection sees the test
//! data. That is reproduced only with `paper_compat`; by default the fold before the test fold
//! (cyclically) is held out for validation and the other eight train ([`rotation`]).

use std::collections::HashSet;
use std::path::Path;

use super::csv::Table;
use super::{Clip, DataError, Folded, Rotation, Splits};

/// Number of folds.
pub const FOLDS: usize = 10;

/// Class names by `classID`.
pub const CLASSES: [&str; 10] = [
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
];

/// Reads `metadata/UrbanSound8K.csv` and checks that every listed wav exists.
pub fn read(dir: &Path) -> Result<Folded, DataError> {
    let table = Table::read(
        &dir.join("metadata").join("UrbanSound8K.csv"),
        "the UrbanSound8K metadata (point --data at the UrbanSound8K folder holding metadata/ and audio/)",
    )?;
    let [file, fs_id, fold, class_id, class] =
        table.columns(["slice_file_name", "fsID", "fold", "classID", "class"])?;
    let mut checked_folders = HashSet::new();
    let mut clips = Vec::new();
    for row in table.rows() {
        let f: usize = row.number(fold)?;
        if !(1..=FOLDS).contains(&f) {
            return Err(row.error(format!("fold {f} is not in 1..={FOLDS}")));
        }
        let label: usize = row.number(class_id)?;
        let Some(&expected) = CLASSES.get(label) else {
            return Err(row.error(format!("classID {label} is not in 0..=9")));
        };
        if row.text(class) != expected {
            return Err(row.error(format!(
                "classID {label} is `{expected}` in UrbanSound8K, but the class column says `{}`",
                row.text(class)
            )));
        }
        let folder = dir.join("audio").join(format!("fold{f}"));
        if checked_folders.insert(f) && !folder.is_dir() {
            return Err(DataError::Layout {
                path: folder.display().to_string(),
                message: format!(
                    "missing folder (needed by {}:{}): UrbanSound8K keeps fold {f} in audio/fold{f}/",
                    table.path(),
                    row.line()
                ),
            });
        }
        let path = folder.join(row.text(file));
        if !path.is_file() {
            return Err(row.error(format!("missing wav file {}", path.display())));
        }
        let group = Some(row.text(fs_id).to_string()).filter(|s| !s.is_empty());
        clips.push((Clip { path, label, group }, f));
    }
    Ok(Folded {
        labels: CLASSES.iter().map(|c| c.to_string()).collect(),
        folds: FOLDS,
        clips,
    })
}

/// The rotation testing on fold `test` (1–10); `None` outside 1–10.
///
/// Default: valid = the fold before `test` (cyclically), train = the other eight.
/// `paper_compat`: train = the other nine, valid = the test fold (the reference's protocol).
pub fn rotation(test: usize, paper_compat: bool) -> Option<Rotation> {
    let mut rotation = Rotation::cyclic(FOLDS, test, !paper_compat)?;
    if paper_compat {
        rotation.valid = vec![test];
    }
    Some(rotation)
}

/// Reads the dataset and splits it for the rotation testing on `test` (1–10).
pub fn splits(dir: &Path, test: usize, paper_compat: bool) -> Result<Splits, DataError> {
    let rotation = rotation(test, paper_compat).ok_or_else(|| DataError::Layout {
        path: dir.display().to_string(),
        message: format!("UrbanSound8K has folds 1..={FOLDS}; fold {test} does not exist"),
    })?;
    Ok(read(dir)?.split(&rotation))
}
