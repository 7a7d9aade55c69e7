//! A folder with one sub-folder of wav files per class (what a user brings).

use std::path::{Path, PathBuf};

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
    let mut listing = Vec::new();
    for class in classes {
        let files: Vec<PathBuf> = std::fs::read_dir(class.path())
            .map_err(|e| io(&class.path(), e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        listing.push((class.file_name().to_string_lossy().into_owned(), files));
    }
    from_listing(dir, listing)
}

/// Labels and clips from a listing of `dir`: each class folder's name with the paths in it.
/// Files other than `.wav` are ignored, and so are classes without any; classes are sorted by
/// name and files by path; at least two classes are needed.
pub fn from_listing(
    dir: &Path,
    mut listing: Vec<(String, Vec<PathBuf>)>,
) -> Result<(Vec<String>, Vec<Clip>), DataError> {
    listing.sort_by(|a, b| a.0.cmp(&b.0));
    let mut labels = Vec::new();
    let mut clips = Vec::new();
    for (class, files) in listing {
        let mut files: Vec<_> = files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
            .collect();
        if files.is_empty() {
            continue;
        }
        files.sort();
        let label = labels.len();
        labels.push(class);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_to_labels_and_clips() {
        let listing = vec![
            (
                "dog".to_string(),
                vec![PathBuf::from("d/dog/b.WAV"), PathBuf::from("d/dog/a.wav")],
            ),
            ("cat".to_string(), vec![PathBuf::from("d/cat/x.wav")]),
            (
                "notes".to_string(),
                vec![PathBuf::from("d/notes/readme.txt")],
            ),
        ];
        let (labels, clips) = from_listing(Path::new("d"), listing).unwrap();
        assert_eq!(labels, ["cat", "dog"]);
        let order: Vec<_> = clips
            .iter()
            .map(|c| (c.path.to_str().unwrap(), c.label))
            .collect();
        assert_eq!(
            order,
            [("d/cat/x.wav", 0), ("d/dog/a.wav", 1), ("d/dog/b.WAV", 1)]
        );
        let one = vec![("cat".to_string(), vec![PathBuf::from("d/cat/x.wav")])];
        let e = from_listing(Path::new("d"), one).unwrap_err();
        assert!(
            e.to_string().starts_with("d: found 1 class folder(s)"),
            "{e}"
        );
    }
}
