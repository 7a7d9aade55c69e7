//! The Free Spoken Digit Dataset (`{digit}_{speaker}_{index}.wav`, 8 kHz), whose official test
//! split is indices 0–4 of every speaker and digit.

use std::path::Path;

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
    let mut clips: Vec<(Clip, FsddName)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = parse_name(&entry.file_name().to_string_lossy())?;
            Some((
                Clip {
                    path: entry.path(),
                    label: name.digit,
                    group: Some(name.speaker.clone()),
                },
                name,
            ))
        })
        .collect();
    if clips.is_empty() {
        return Err(DataError::Layout {
            path: dir.display().to_string(),
            message: "no `{digit}_{speaker}_{index}.wav` files: point --data at FSDD's `recordings` folder".into(),
        });
    }
    clips.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    Ok(clips)
}

/// The digit labels `"0"…"9"`.
pub fn labels() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

/// Official split restricted to `speakers`: test = index 0–4, valid = index 5–9, train = the rest.
pub fn splits(dir: &Path, speakers: &[&str]) -> Result<Splits, DataError> {
    let mut out = Splits {
        labels: labels(),
        ..Splits::default()
    };
    for (clip, name) in read(dir)? {
        if !speakers.is_empty() && !speakers.contains(&name.speaker.as_str()) {
            continue;
        }
        match name.index {
            0..=4 => out.test.push(clip),
            5..=9 => out.valid.push(clip),
            _ => out.train.push(clip),
        }
    }
    Ok(out)
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
    }
}
