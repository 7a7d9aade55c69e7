//! The Free Spoken Digit Dataset (`{digit}_{speaker}_{index}.wav`, 8 kHz), whose official test
//! split is indices 0–4 of every speaker and digit.

use std::path::{Path, PathBuf};

use super::{Clip, DataError, Splits};

/// A parsed FSDD file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsddName {
    /// Spoken digit 0–9.
    pub digit: usize,
    /// Speaker name.
    pub speaker: String,
    /// Take index.
    pub index: usize,
}

/// Parses `{digit}_{speaker}_{index}.wav`; `None` for any other name.
pub fn parse_name(file_name: &str) -> Option<FsddName> {
    let stem = file_name.strip_suffix(".wav")?;
    let mut parts = stem.splitn(3, '_');
    let digit: usize = parts.next()?.parse().ok()?;
    let speaker = parts.next()?.to_string();
    let index: usize = parts.next()?.parse().ok()?;
    (digit <= 9 && !speaker.is_empty()).then_some(FsddName {
        digit,
        speaker,
        index,
    })
}

/// Every FSDD clip in `dir`, sorted by file name (deterministic order), with the digit as label
/// and the speaker as group.
pub fn read(dir: &Path) -> Result<Vec<(Clip, FsddName)>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::Io {
        path: dir.display().to_string(),
        message: format!("cannot list the FSDD recordings folder: {e}"),
    })?;
    let clips = clips_from_paths(entries.filter_map(Result::ok).map(|entry| entry.path()));
    if clips.is_empty() {
        return Err(DataError::Layout {
            path: dir.display().to_string(),
            message: "no `{digit}_{speaker}_{index}.wav` files: point --data at FSDD's `recordings` folder".into(),
        });
    }
    Ok(clips)
}

/// The FSDD clips among `paths` (other file names are skipped), sorted by path.
pub fn clips_from_paths(paths: impl IntoIterator<Item = PathBuf>) -> Vec<(Clip, FsddName)> {
    let mut clips: Vec<(Clip, FsddName)> = paths
        .into_iter()
        .filter_map(|path| {
            let name = parse_name(&path.file_name()?.to_string_lossy())?;
            Some((
                Clip {
                    path,
                    label: name.digit,
                    group: Some(name.speaker.clone()),
                },
                name,
            ))
        })
        .collect();
    clips.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    clips
}

/// The digit labels `"0"…"9"`.
pub fn labels() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

/// Official split restricted to `speakers`: test = index 0–4, valid = index 5–9, train = the rest.
pub fn splits(dir: &Path, speakers: &[&str]) -> Result<Splits, DataError> {
    Ok(split(read(dir)?, speakers))
}

/// [`splits`] of clips already listed (by [`read`] or [`clips_from_paths`]).
pub fn split(clips: Vec<(Clip, FsddName)>, speakers: &[&str]) -> Splits {
    let mut out = Splits {
        labels: labels(),
        ..Splits::default()
    };
    for (clip, name) in clips {
        if !speakers.is_empty() && !speakers.contains(&name.speaker.as_str()) {
            continue;
        }
        match name.index {
            0..=4 => out.test.push(clip),
            5..=9 => out.valid.push(clip),
            _ => out.train.push(clip),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fsdd_names() {
        assert_eq!(
            parse_name("7_yweweler_43.wav"),
            Some(FsddName {
                digit: 7,
                speaker: "yweweler".into(),
                index: 43
            })
        );
        assert_eq!(parse_name("notes.txt"), None);
        assert_eq!(parse_name("12_theo_1.wav"), None);
        assert_eq!(parse_name("a_theo_1.wav"), None);
        assert_eq!(parse_name("1__2.wav"), None);
        assert_eq!(parse_name("1_x_.wav"), None);
        assert_eq!(parse_name("1_x_99999999999999999999999.wav"), None);
    }

    #[test]
    fn listed_paths_split_by_take_index() {
        let paths = [
            "r/0_a_0.wav",
            "r/1_a_7.wav",
            "r/2_b_30.wav",
            "r/readme.md",
            "r/3_c_4.wav",
        ]
        .map(PathBuf::from);
        let clips = clips_from_paths(paths);
        assert_eq!(clips.len(), 4);
        let all = split(clips.clone(), &[]);
        assert_eq!(
            (all.test.len(), all.valid.len(), all.train.len()),
            (2, 1, 1)
        );
        let only_a = split(clips, &["a"]);
        assert_eq!((only_a.test.len(), only_a.valid.len()), (1, 1));
        assert_eq!(only_a.labels.len(), 10);
    }
}
