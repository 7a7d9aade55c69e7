//! ESC-50 (Piczak 2015): 2,000 five-second environmental clips, 50 classes, 5 folds.
//!
//! Layout (the dataset's GitHub archive, `--data` pointing at the folder holding `meta/`):
//! `meta/esc50.csv` with columns `filename,fold,target,category,esc10,src_file,take`, and
//! `audio/<filename>` (44.1 kHz mono wavs). The label is `target`; its name must be the
//! `category` of the dataset's fixed class list ([`CLASSES`], which is also PETL_AST's
//! `class_ids` order).
//!
//! Protocol (PETL_AST `main.py:167-171` at the MLSP commit `1fe23af`): five rotations, each
//! testing on one fold, validating on the fold before it (cyclically) and training on the other
//! three: test 5 / valid 4 / train 1,2,3; test 1 / valid 5 / train 2,3,4; … ([`rotation`]).

use std::path::Path;

use super::csv::Table;
use super::{Clip, DataError, Folded, Rotation, Splits};

/// Number of folds.
pub const FOLDS: usize = 5;

/// Class names by `target` index.
pub const CLASSES: [&str; 50] = [
    "dog",
    "rooster",
    "pig",
    "cow",
    "frog",
    "cat",
    "hen",
    "insects",
    "sheep",
    "crow",
    "rain",
    "sea_waves",
    "crackling_fire",
    "crickets",
    "chirping_birds",
    "water_drops",
    "wind",
    "pouring_water",
    "toilet_flush",
    "thunderstorm",
    "crying_baby",
    "sneezing",
    "clapping",
    "breathing",
    "coughing",
    "footsteps",
    "laughing",
    "brushing_teeth",
    "snoring",
    "drinking_sipping",
    "door_wood_knock",
    "mouse_click",
    "keyboard_typing",
    "door_wood_creaks",
    "can_opening",
    "washing_machine",
    "vacuum_cleaner",
    "clock_alarm",
    "clock_tick",
    "glass_breaking",
    "helicopter",
    "chainsaw",
    "siren",
    "car_horn",
    "engine",
    "train",
    "church_bells",
    "airplane",
    "fireworks",
    "hand_saw",
];

/// Reads `meta/esc50.csv` and checks that every listed wav exists under `audio/`.
pub fn read(dir: &Path) -> Result<Folded, DataError> {
    let table = Table::read(
        &dir.join("meta").join("esc50.csv"),
        "the ESC-50 metadata (point --data at the ESC-50 folder holding meta/ and audio/)",
    )?;
    let audio = dir.join("audio");
    if !audio.is_dir() {
        return Err(DataError::Layout {
            path: audio.display().to_string(),
            message: "missing folder: ESC-50 keeps its wav files in audio/".into(),
        });
    }
    let [filename, fold, target, category, src_file] =
        table.columns(["filename", "fold", "target", "category", "src_file"])?;
    let mut clips = Vec::new();
    for row in table.rows() {
        let f: usize = row.number(fold)?;
        if !(1..=FOLDS).contains(&f) {
            return Err(row.error(format!("fold {f} is not in 1..={FOLDS}")));
        }
        let label: usize = row.number(target)?;
        let Some(&expected) = CLASSES.get(label) else {
            return Err(row.error(format!("target {label} is not in 0..=49")));
        };
        if row.text(category) != expected {
            return Err(row.error(format!(
                "target {label} is `{expected}` in ESC-50, but the category column says `{}`",
                row.text(category)
            )));
        }
        let path = audio.join(row.text(filename));
        if !path.is_file() {
            return Err(row.error(format!("missing wav file {}", path.display())));
        }
        let group = Some(row.text(src_file).to_string()).filter(|s| !s.is_empty());
        clips.push((Clip { path, label, group }, f));
    }
    Ok(Folded {
        labels: CLASSES.iter().map(|c| c.to_string()).collect(),
        folds: FOLDS,
        clips,
    })
}

/// The rotation testing on fold `test` (1–5): validation on the fold before it, training on the
/// other three; `None` outside 1–5.
pub fn rotation(test: usize) -> Option<Rotation> {
    Rotation::cyclic(FOLDS, test, true)
}

/// Reads the dataset and splits it for the rotation testing on `test` (1–5).
pub fn splits(dir: &Path, test: usize) -> Result<Splits, DataError> {
    let rotation = rotation(test).ok_or_else(|| DataError::Layout {
        path: dir.display().to_string(),
        message: format!("ESC-50 has folds 1..={FOLDS}; fold {test} does not exist"),
    })?;
    Ok(read(dir)?.split(&rotation))
}
