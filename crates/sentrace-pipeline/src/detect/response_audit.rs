//! The writer thread of the response audit log (`responses/audit.jsonl`): JSON lines,
//! appended with group commit ([`sentrace_store::group_commit`]), so that putting a response
//! action in force never makes an async worker wait on `fsync`.
//!
//! Each group is one write of all its lines and one `fdatasync` (and an fsync of the
//! directory when the file was created). A failed write cuts what it wrote (best effort) and
//! reopens the file on the next group, so a failure leaves no torn line in the middle of the
//! log. `sentrace response undo` appends to the same file from another process; `O_APPEND`
//! keeps both writers' lines whole.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sentrace_store::StoreError;
use sentrace_store::group_commit::{GroupOutcome, GroupWriter};

struct Lines {
    path: PathBuf,
    file: Option<File>,
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

impl Lines {
    fn open(&mut self) -> Result<(&mut File, u64), StoreError> {
        if self.file.is_none() {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)
                .map_err(|e| io(&self.path, e))?;
            if f.metadata().map_err(|e| io(&self.path, e))?.len() == 0 {
                sentrace_store::fsutil::sync_dir(dir)?;
            }
            self.file = Some(f);
        }
        let path = self.path.clone();
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| StoreError::Task("audit handle missing".into()))?;
        let len = f.metadata().map_err(|e| io(&path, e))?.len();
        Ok((f, len))
    }

    fn commit(&mut self, lines: &[Vec<u8>]) -> Result<(), StoreError> {
        let buf = lines.concat();
        let path = self.path.clone();
        let (f, start) = self.open()?;
        if let Err(e) = f.write_all(&buf).and_then(|_| f.sync_data()) {
            let _ = f.set_len(start).and_then(|_| f.sync_all());
            self.file = None;
            return Err(io(&path, e));
        }
        Ok(())
    }
}

/// Starts the writer of the audit log at `path`; each job is one line, newline included.
pub(crate) fn start(path: PathBuf) -> Result<GroupWriter<Vec<u8>>, StoreError> {
    let mut lines = Lines { path, file: None };
    GroupWriter::start("response-audit", move |jobs: &mut Vec<Vec<u8>>| {
        let r = lines.commit(jobs);
        let reason = r.as_ref().err().map(ToString::to_string);
        GroupOutcome {
            results: jobs
                .iter()
                .map(|_| match &reason {
                    None => Ok(()),
                    Some(why) => Err(StoreError::Task(format!("response audit: {why}"))),
                })
                .collect(),
            fsyncs: 1,
        }
    })
}
