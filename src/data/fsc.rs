//! Fluent Speech Commands (Lugosch et al. 2019): 16 kHz spoken commands labelled with an intent
//! (action, object, location); 31 intents.
//!
//! Layout (`--data` pointing at `fluent_speech_commands_dataset/`): `data/train_data.csv`,
//! `data/valid_data.csv`, `data/test_data.csv`, each with the columns
//! `index,path,speakerId,transcription,action,object,location` (the first header cell is empty
//! in the release), `path` relative to the dataset folder (`wavs/speakers/<id>/<uuid>.wav`).
//!
//! Splits: the three official files, as PETL_AST's `fluentspeech.py` reads them. The class is
//! the (action, object, location) triple, named `action/object/location` (e.g.
//! `activate/lights/kitchen`); the label list is the sorted union over all three files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::csv::Table;
use super::{Clip, DataError, Splits};

/// The split files under `data/`, in train, valid, test order.
pub const SPLIT_FILES: [&str; 3] = ["train_data.csv", "valid_data.csv", "test_data.csv"];

/// The class name of an intent.
pub fn intent(action: &str, object: &str, location: &str) -> String {
    format!("{action}/{object}/{location}")
}

/// Reads the three split files; errors name a missing file, a bad line, or the line of a missing
/// wav.
pub fn splits(dir: &Path) -> Result<Splits, DataError> {
    let mut parts: Vec<Vec<(PathBuf, String, String)>> = Vec::with_capacity(3);
    for name in SPLIT_FILES {
        let table = Table::read(
            &dir.join("data").join(name),
            "a Fluent Speech Commands split file (point --data at fluent_speech_commands_dataset/)",
        )?;
        let [path, speaker, action, object, location] =
            table.columns(["path", "speakerId", "action", "object", "location"])?;
        let mut rows = Vec::new();
        for row in table.rows() {
            let wav = dir.join(row.text(path).trim());
            if !wav.is_file() {
                return Err(row.error(format!("missing wav file {}", wav.display())));
            }
            rows.push((
                wav,
                intent(
                    row.text(action).trim(),
                    row.text(object).trim(),
                    row.text(location).trim(),
                ),
                row.text(speaker).trim().to_string(),
            ));
        }
        parts.push(rows);
    }
    let labels: Vec<String> = parts
        .iter()
        .flatten()
        .map(|(_, intent, _)| intent.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let to_clips = |rows: Vec<(PathBuf, String, String)>| -> Vec<Clip> {
        rows.into_iter()
            .map(|(path, intent, speaker)| Clip {
                path,
                label: labels
                    .binary_search(&intent)
                    .expect("the label list holds every intent"),
                group: Some(speaker).filter(|s| !s.is_empty()),
            })
            .collect()
    };
    let [train, valid, test] = <[_; 3]>::try_from(parts)
        .expect("one part per split file")
        .map(to_clips);
    Ok(Splits {
        labels,
        train,
        valid,
        test,
    })
}
