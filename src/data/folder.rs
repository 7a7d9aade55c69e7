//! A folder with one sub-folder of wav files per class (what a user brings).

use std::path::Path;

use super::{Clip, DataError};

/// Reads `dir/<class>/*.wav`; classes are the sub-folder names in sorted order.
pub fn read(dir: &Path) -> Result<(Vec<String>, Vec<Clip>), DataError> {
    let io = |path: &Path, e: std::io::Error| DataError::Io {
        path: path.display().to_string(),
        message: format!("cannot list: {e}"),
    };
    let mut classes: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    classes.sort_by_key(|e| e.file_name());
    let mut labels = Vec::new();
    let mut clips = Vec::new();
    for class in classes {
        let mut files: Vec<_> = std::fs::read_dir(class.path())
            .map_err(|e| io(&class.path(), e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
            .collect();
        if files.is_empty() {
            continue;
        }
        files.sort();
        let label = labels.len();
        labels.push(class.file_name().to_string_lossy().into_owned());
        clips.extend(files.into_iter().map(|path| Clip {
            path,
            label,
            group: None,
        }));
    }
    if labels.len() < 2 {
        return Err(DataError::Layout {
            path: dir.display().to_string(),
            message: format!(
                "found {} class folder(s) with .wav files; expected one sub-folder per class, at least two",
                labels.len()
            ),
        });
    }
    Ok((labels, clips))
}
