//! Small durable file-system helpers, shared by the server and the CLI: [`write_atomic`]
//! is the one atomic file write of the workspace (the pure crates do no file I/O).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreError;

/// fsyncs a directory so that entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Creates `dir` (and parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::io(dir, e))
}

/// Checks that a private key file is a regular file (not a symlink) that neither group nor
/// others may access, as the master key is checked. The error names the file and the fix.
pub fn check_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |reason: String| StoreError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::symlink_metadata(path).map_err(|e| StoreError::io(path, e))?;
    if !meta.file_type().is_file() {
        return Err(bad("not a regular file (symlinks are refused)".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "mode {mode:o} lets group or others read this private key; run `chmod 600` on it"
        )));
    }
    Ok(())
}

/// Distinguishes the temporary files of concurrent writers within one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically and durably with mode 0600 (secrets, wrapped keys,
/// journals rewritten whole). See [`write_atomic`].
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic(path, bytes, 0o600)
}

/// The one atomic file write of the workspace: readers see the old content or the new,
/// never a mix, and once this returns the new content survives a crash.
///
/// 1. create missing parent directories;
/// 2. write a temporary file `.<name>.tmp.<pid>.<n>` in the same directory (so the rename
///    stays within one file system), created with `mode` (subject to the umask, which can
///    only remove bits), and `fsync` it;
/// 3. rename it over `path` (atomic on POSIX file systems);
/// 4. `fsync` the directory, so the rename itself is durable.
///
/// On any error the temporary file is removed (best effort) and the error names the file
/// involved; `path` is then either untouched or already holds the complete new content.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| StoreError::io(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Reads a whole file of at most `max` bytes; a missing file reads as empty. `what` names
/// the file in the error (e.g. "vault file").
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, StoreError> {
    match File::open(path) {
        Ok(f) => {
            let mut bytes = Vec::new();
            f.take(max.saturating_add(1))
                .read_to_end(&mut bytes)
                .map_err(|e| StoreError::io(path, e))?;
            if bytes.len() as u64 > max {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    offset: max,
                    reason: format!("{what} larger than {max} bytes"),
                });
            }
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect()
    }

    #[test]
    fn write_atomic_replaces_whole_with_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secret.key");
        // Missing parents are created; the file gets the mode asked for.
        write_atomic(&path, b"first", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A replacement is whole, and takes the new mode (it is a new inode).
        write_atomic(&path, b"second, longer", 0o640).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o700, 0o600, "owner bits as asked: {mode:o}");
        assert_eq!(mode & 0o007, 0, "no bits for others: {mode:o}");
        assert!(leftovers(&dir.path().join("sub")).is_empty());
        write_atomic_private(&path, b"third").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_failed_write_leaves_the_target_absent_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        // The rename fails: the target is a non-empty directory.
        let target = dir.path().join("occupied");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"x").unwrap();
        let err = write_atomic(&target, b"data", 0o600).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        assert!(target.is_dir(), "the target is untouched");
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
        // A target that never existed stays absent when the write fails (the directory
        // cannot be created: its parent is a file).
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, b"").unwrap();
        let inside = blocked.join("new.key");
        assert!(write_atomic(&inside, b"data", 0o600).is_err());
        assert!(!inside.exists());
        assert!(leftovers(dir.path()).is_empty());
    }
}
