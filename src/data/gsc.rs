//! Google Speech Commands v0.02 (Warden 2018): one-second 16 kHz utterances of 35 words.
//!
//! Layout (the `speech_commands_v0.02` archive, `--data` pointing at its folder): one folder per
//! word holding `<speaker>_nohash_<n>.wav`, `validation_list.txt` and `testing_list.txt` (one
//! `word/file.wav` per line), and `_background_noise_/`, which is not read.
//!
//! Splits (the official ones, as PETL_AST's `google_speech_commands_v2.py` reads them): valid and
//! test are the two lists in file order; train is every other wav of the 35 word folders, by word
//! then file name. Labels are the 35 words in sorted order ([`WORDS`], PETL_AST's `class_ids`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{Clip, DataError, Splits};

/// The 35 words of v0.02, sorted; label `i` is `WORDS[i]`.
pub const WORDS: [&str; 35] = [
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four",
    "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right",
    "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
];

/// The speaker id of a Speech Commands file name (`<speaker>_nohash_<n>.wav`).
fn speaker(file_name: &str) -> Option<String> {
    file_name
        .split_once("_nohash_")
        .map(|(speaker, _)| speaker.to_string())
}

/// Reads a split list: `(1-based line, "word/file.wav")` of every non-blank line.
fn read_list(path: &Path) -> Result<Vec<(usize, String)>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::Io {
        path: path.display().to_string(),
        message: format!(
            "cannot read the Speech Commands split list (point --data at the speech_commands_v0.02 folder): {e}"
        ),
    })?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty())
        .collect())
}

/// Reads the dataset into its official splits; errors name a missing list, a missing word
/// folder, or the list line of a missing or unknown file.
pub fn splits(dir: &Path) -> Result<Splits, DataError> {
    let valid_list = dir.join("validation_list.txt");
    let test_list = dir.join("testing_list.txt");
    let valid_lines = read_list(&valid_list)?;
    let test_lines = read_list(&test_list)?;

    // Every wav on disk, per word, sorted.
    let mut on_disk: Vec<Vec<String>> = Vec::with_capacity(WORDS.len());
    for word in WORDS {
        let folder = dir.join(word);
        let entries = std::fs::read_dir(&folder).map_err(|e| DataError::Layout {
            path: folder.display().to_string(),
            message: format!(
                "missing word folder ({e}): Speech Commands v0.02 has one folder per word for 35 words \
                 (v0.01 lacks backward, follow, forward, learn, visual)"
            ),
        })?;
        let mut files: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.to_ascii_lowercase().ends_with(".wav"))
            .collect();
        files.sort();
        on_disk.push(files);
    }
    let present: HashSet<String> = WORDS
        .iter()
        .zip(&on_disk)
        .flat_map(|(w, files)| files.iter().map(move |f| format!("{w}/{f}")))
        .collect();
    let label_of: HashMap<&str, usize> = WORDS.iter().enumerate().map(|(i, w)| (*w, i)).collect();

    let mut listed = HashMap::new();
    let mut clips_of = |list: &Path, lines: &[(usize, String)]| -> Result<Vec<Clip>, DataError> {
        let row = |line: usize, message: String| DataError::Row {
            path: list.display().to_string(),
            line,
            message,
        };
        let mut clips = Vec::with_capacity(lines.len());
        for (line, entry) in lines {
            let Some((word, file)) = entry.split_once('/') else {
                return Err(row(*line, format!("`{entry}` is not `word/file.wav`")));
            };
            let Some(&label) = label_of.get(word) else {
                return Err(row(*line, format!("`{word}` is not one of the 35 words")));
            };
            if !present.contains(entry.as_str()) {
                return Err(row(
                    *line,
                    format!("missing wav file {}", dir.join(word).join(file).display()),
                ));
            }
            if let Some(first) = listed.insert(entry.clone(), (list.to_path_buf(), *line)) {
                return Err(row(
                    *line,
                    format!(
                        "`{entry}` is already listed at {}:{}",
                        first.0.display(),
                        first.1
                    ),
                ));
            }
            clips.push(Clip {
                path: dir.join(word).join(file),
                label,
                group: speaker(file),
            });
        }
        Ok(clips)
    };
    let valid = clips_of(&valid_list, &valid_lines)?;
    let test = clips_of(&test_list, &test_lines)?;

    let mut train = Vec::new();
    for (label, (word, files)) in WORDS.iter().zip(&on_disk).enumerate() {
        for file in files {
            if !listed.contains_key(&format!("{word}/{file}")) {
                train.push(Clip {
                    path: dir.join(word).join(file),
                    label,
                    group: speaker(file),
                });
            }
        }
    }
    Ok(Splits {
        labels: WORDS.iter().map(|w| w.to_string()).collect(),
        train,
        valid,
        test,
    })
}
