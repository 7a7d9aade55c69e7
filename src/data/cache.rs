//! A disk cache of model inputs: each clip's normalised fbank matrix is computed once and
//! stored under a key that covers the audio file's bytes and every front-end parameter, so that
//! re-running a training (another fold, method or seed) skips the front end (native only).
//!
//! Key: SHA-256 over the SHA-256 of the wav file's bytes, the extractor configuration (sample
//! rate, mel bins, `max_length`, normalisation mean/std, …), the fbank settings, the audio
//! limits, the entry format version, [`FRONT_END_REVISION`] and the crate version.
//!
//! Entry `<dir>/<first two hex digits>/<key hex>.fbank`, little-endian:
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `PETLFBK\0` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 32 | key |
//! | 4 + 4 | rows (`max_length`), columns (mel bins) |
//! | 4 · rows · columns | `f32` values, row-major |
//! | 32 | SHA-256 of everything before it |
//!
//! Entries are written with [`write_atomic`]. One that is truncated, corrupt, of another
//! version, key or shape is deleted and recomputed; a cache that cannot be written only costs
//! the recomputation. Nothing here panics on bad files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audio::{read_wav, AudioError, AudioLimits, FeatureExtractor};
use crate::io::write_atomic;
use crate::train::Example;

use super::{features, Clip, DataError};

/// Version of the entry layout.
pub const FORMAT_VERSION: u32 = 1;

/// Bump whenever the numbers the front end computes change (fbank, resampler, wav scaling), so
/// that old entries stop matching. The crate version is part of the key too.
pub const FRONT_END_REVISION: u32 = 1;

const MAGIC: &[u8; 8] = b"PETLFBK\0";
const HEADER_LEN: usize = 8 + 4 + 32 + 4 + 4;
const CHECKSUM_LEN: usize = 32;

/// A cache key: SHA-256 of the audio and the front-end parameters.
pub type Key = [u8; 32];

/// What a cache did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Entries read back.
    pub hits: usize,
    /// Clips featurised (no usable entry).
    pub computed: usize,
    /// Bad entries deleted (then recomputed).
    pub discarded: usize,
    /// Entries that could not be written (the features were still returned).
    pub write_errors: usize,
}

/// The fbank cache in one folder.
#[derive(Debug)]
pub struct FbankCache {
    dir: PathBuf,
    hits: AtomicUsize,
    computed: AtomicUsize,
    discarded: AtomicUsize,
    write_errors: AtomicUsize,
}

impl FbankCache {
    /// A cache in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FbankCache {
            dir: dir.into(),
            hits: AtomicUsize::new(0),
            computed: AtomicUsize::new(0),
            discarded: AtomicUsize::new(0),
            write_errors: AtomicUsize::new(0),
        }
    }

    /// `$XDG_CACHE_HOME/petl-ast/fbank`, else `$HOME/.cache/petl-ast/fbank`; `None` when neither
    /// variable is set (to an absolute path).
    pub fn default_dir() -> Option<PathBuf> {
        let var = |name| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        var("XDG_CACHE_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
            .map(|c| c.join("petl-ast").join("fbank"))
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counts so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            computed: self.computed.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }

    /// The key of audio whose bytes hash to `audio_sha256`, featurised by `extractor` after
    /// reading under `limits`.
    pub fn key(audio_sha256: &[u8; 32], extractor: &FeatureExtractor, limits: &AudioLimits) -> Key {
        let params = format!(
            "petl-ast fbank cache\nformat {FORMAT_VERSION}\nfront end {FRONT_END_REVISION}\n\
             crate {}\nextractor {:?}\nfbank {:?}\nmax_seconds {:?}\n",
            env!("CARGO_PKG_VERSION"),
            extractor.config(),
            extractor.fbank().config(),
            limits.max_seconds,
        );
        let mut h = Sha256::new();
        h.update(audio_sha256);
        h.update(params.as_bytes());
        h.finalize().into()
    }

    /// Where the entry of `key` lives.
    pub fn entry_path(&self, key: &Key) -> PathBuf {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(&hex[..2]).join(format!("{hex}.fbank"))
    }

    /// The entry path of the wav at `path` (hashes the file).
    pub fn entry_for(
        &self,
        path: &Path,
        extractor: &FeatureExtractor,
        limits: &AudioLimits,
    ) -> Result<PathBuf, AudioError> {
        let digest = file_sha256(path)?;
        Ok(self.entry_path(&Self::key(&digest, extractor, limits)))
    }

    /// The features of the wav at `path`: from the cache when a valid entry exists, otherwise
    /// computed (read, resample, fbank, normalise) and stored.
    pub fn features(
        &self,
        path: &Path,
        extractor: &FeatureExtractor,
        limits: &AudioLimits,
    ) -> Result<Vec<f32>, AudioError> {
        let key = Self::key(&file_sha256(path)?, extractor, limits);
        let entry = self.entry_path(&key);
        let (rows, cols) = extractor.input_shape();
        match std::fs::read(&entry) {
            Ok(bytes) => match decode(&bytes, &key, [rows, cols]) {
                Some(values) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(values);
                }
                None => self.discard(&entry),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => self.discard(&entry),
        }
        let audio = read_wav(path, limits)?;
        let values = extractor.extract_audio(&audio)?;
        self.computed.fetch_add(1, Ordering::Relaxed);
        let stored = entry
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write_atomic(&entry, &encode(&key, [rows, cols], &values)));
        if stored.is_err() {
            self.write_errors.fetch_add(1, Ordering::Relaxed);
        }
        Ok(values)
    }

    /// [`features::examples`] through the cache.
    pub fn examples(
        &self,
        clips: &[Clip],
        extractor: &FeatureExtractor,
        limits: &AudioLimits,
        skip_bad: bool,
    ) -> Result<(Vec<Example>, Vec<String>), DataError> {
        features::examples_with(clips, skip_bad, |clip| {
            self.features(&clip.path, extractor, limits)
                .map_err(|e| e.to_string())
        })
    }

    fn discard(&self, entry: &Path) {
        let _ = std::fs::remove_file(entry);
        self.discarded.fetch_add(1, Ordering::Relaxed);
    }
}

/// SHA-256 of a file's bytes, read in blocks.
pub fn file_sha256(path: &Path) -> Result<[u8; 32], AudioError> {
    let io = |error| AudioError::Io {
        origin: path.display().to_string(),
        error,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// The bytes of an entry.
fn encode(key: &Key, [rows, cols]: [usize; 2], values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + values.len() * 4 + CHECKSUM_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    out.extend_from_slice(&(cols as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let checksum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&checksum);
    out
}

/// The values of an entry, or `None` when it is not a complete, intact entry of `key` with
/// `shape`.
fn decode(bytes: &[u8], key: &Key, [rows, cols]: [usize; 2]) -> Option<Vec<f32>> {
    let payload = rows.checked_mul(cols)?.checked_mul(4)?;
    if bytes.len() != HEADER_LEN.checked_add(payload)?.checked_add(CHECKSUM_LEN)? {
        return None;
    }
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().expect("4 bytes"));
    let intact = &body[..8] == MAGIC
        && u32_at(8) == FORMAT_VERSION
        && &body[12..44] == key
        && u32_at(44) as usize == rows
        && u32_at(48) as usize == cols
        && Sha256::digest(body).as_slice() == checksum;
    intact.then(|| {
        body[HEADER_LEN..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_reject_damage() {
        let key = [7u8; 32];
        let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        let bytes = encode(&key, [3, 4], &values);
        assert_eq!(bytes.len(), HEADER_LEN + 48 + CHECKSUM_LEN);
        assert_eq!(decode(&bytes, &key, [3, 4]).unwrap(), values);
        assert!(decode(&bytes, &[8u8; 32], [3, 4]).is_none());
        assert!(decode(&bytes, &key, [4, 3]).is_none());
        assert!(decode(&bytes[..bytes.len() - 1], &key, [3, 4]).is_none());
        assert!(decode(&[], &key, [3, 4]).is_none());
        for i in [0, 9, 20, 45, HEADER_LEN + 5, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad, &key, [3, 4]).is_none(), "flip at {i}");
        }
        assert!(decode(&bytes, &key, [usize::MAX, 2]).is_none());
    }
}
