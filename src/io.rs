//! Writing files so that a crash never leaves a torn one (native only).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Makes the temporary names of concurrent writers in one process distinct.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a temporary file in the same folder, syncs it, then renames it over `path`:
/// readers see either the old or the new content, never a mix. Safe to call from several
/// threads or processes at once, also for the same `path` (the last rename wins): every call
/// has its own temporary name, `.NAME.tmp-PID-N`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// [`write_atomic`] with the content written by `write` into the temporary file. When `write`
/// (or the sync or the rename) fails, the temporary file is removed and `path` keeps its old
/// content.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name")
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        write(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_writer_failing_half_way_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adapter.safetensors");
        write_atomic(&path, b"previous adapter").unwrap();
        // The process "dies" after writing half of the new content (disk full, kill, ...).
        let err = write_atomic_with(&path, |file| {
            file.write_all(b"new adap")?;
            Err(std::io::Error::other("simulated crash mid-write"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "simulated crash mid-write");
        assert_eq!(std::fs::read(&path).unwrap(), b"previous adapter");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["adapter.safetensors"], "no temporary file is left");
    }

    #[test]
    fn leftover_temporary_files_of_a_killed_writer_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_atomic(&path, b"old").unwrap();
        // What a process killed between create and rename leaves: ours (same pid) and another's.
        let ours = dir
            .path()
            .join(format!(".a.bin.tmp-{}", std::process::id()));
        let theirs = dir.path().join(".a.bin.tmp-1");
        std::fs::write(&ours, b"torn garbage that is longer than the new content").unwrap();
        std::fs::write(&theirs, b"torn").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        // Each write uses a fresh temporary name (`-PID-N`), so stale files are never read or
        // renamed into place; they stay as they were.
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            b"torn garbage that is longer than the new content"
        );
        assert_eq!(std::fs::read(&theirs).unwrap(), b"torn");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_atomic(&path, b"old").unwrap();
        // Renaming onto a directory fails: the old content must survive and no temp file stay.
        let target = dir.path().join("sub");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"x").unwrap();
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_write_that_dies_half_way_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_atomic(&path, b"old").unwrap();
        let err = write_atomic_with(&path, |file| {
            file.write_all(b"ne")?;
            Err(std::io::Error::other("killed"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "killed");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn every_call_has_its_own_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        let mut names = Vec::new();
        for _ in 0..2 {
            let _ = write_atomic_with(&path, |_| {
                for e in std::fs::read_dir(dir.path()).unwrap() {
                    names.push(e.unwrap().file_name().to_string_lossy().to_string());
                }
                Err(std::io::Error::other("stop"))
            });
        }
        assert_eq!(names.len(), 2);
        assert_ne!(names[0], names[1]);
        let prefix = format!(".a.bin.tmp-{}-", std::process::id());
        assert!(names.iter().all(|n| n.starts_with(&prefix)), "{names:?}");
    }
}
