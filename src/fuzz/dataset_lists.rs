//! `dataset_lists`: the parsers of dataset file lists in [`crate::data`].
//!
//! Byte 0 of an input picks a parser from [`PARSERS`] (modulo), the rest is its text. A new
//! dataset reader (a CSV of ESC-50, UrbanSound8K, ...) adds one line to [`PARSERS`] with a
//! function checking its contract, and seed files named `<parser>-*` in
//! `fuzz/corpus/dataset_lists/` (the first byte of each is the parser's index).

use std::path::{Path, PathBuf};

use crate::data::{folder, fsdd, DataError};

/// A parser under test: its name and a function checking its contract on some text.
pub type Parser = (&'static str, fn(&str));

/// The parsers, by name; the index is the first byte of an input.
pub const PARSERS: &[Parser] = &[("fsdd", fsdd_names), ("folder", folder_listing)];

/// Runs the parser the first byte picks on the rest, as UTF-8 (lossily: file names need not be).
pub fn dataset_lists(data: &[u8]) {
    let [choice, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    (PARSERS[usize::from(*choice) % PARSERS.len()].1)(&text);
}

/// One FSDD file name per line. Contract: a parsed name has a digit 0–9 and a speaker, and
/// prints back to a name that parses the same; the official split puts every clip in exactly
/// one part.
fn fsdd_names(text: &str) {
    for line in text.lines() {
        if let Some(name) = fsdd::parse_name(line) {
            assert!(name.digit <= 9 && !name.speaker.is_empty(), "{line:?}");
            let again = format!("{}_{}_{}.wav", name.digit, name.speaker, name.index);
            assert_eq!(fsdd::parse_name(&again).as_ref(), Some(&name), "{line:?}");
        }
    }
    let clips = fsdd::clips_from_paths(text.lines().map(|l| Path::new("rec").join(l)));
    let n = clips.len();
    assert!(clips.iter().all(|(c, _)| c.label <= 9));
    let splits = fsdd::split(clips, &[]);
    assert_eq!(
        splits.train.len() + splits.valid.len() + splits.test.len(),
        n
    );
    assert_eq!(splits.labels.len(), 10);
}

/// One `class/file` path per line, as a folder dataset lists. Contract: at least two classes,
/// sorted and distinct; every clip is a `.wav` with a label in range; or a layout error naming
/// the folder.
fn folder_listing(text: &str) {
    let root = Path::new("data");
    let mut listing: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for line in text.lines() {
        let (class, file) = line.split_once('/').unwrap_or((line, ""));
        let path = root.join(class).join(file);
        match listing.iter_mut().find(|(c, _)| c == class) {
            Some((_, files)) => files.push(path),
            None => listing.push((class.to_string(), vec![path])),
        }
    }
    match folder::from_listing(root, listing) {
        Ok((labels, clips)) => {
            assert!(labels.len() >= 2);
            assert!(labels.windows(2).all(|w| w[0] < w[1]), "{labels:?}");
            for clip in &clips {
                assert!(clip.label < labels.len());
                let ext = clip.path.extension().and_then(|e| e.to_str()).unwrap_or("");
                assert!(ext.eq_ignore_ascii_case("wav"), "{:?}", clip.path);
            }
        }
        Err(e @ DataError::Layout { .. }) => assert!(e.to_string().starts_with("data: ")),
        Err(e) => panic!("{e}"),
    }
}
