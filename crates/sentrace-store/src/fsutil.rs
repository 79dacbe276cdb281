//! Small durable file-system helpers.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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

/// Writes `bytes` to `path` atomically and durably with mode 0600: write a temporary file,
/// fsync it, rename it over `path`, fsync the directory.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| StoreError::io(&tmp, e))?;
    f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
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
