//! WAL replay at open.
//!
//! Policy (documented in the crate docs):
//! - A damaged record at the very end of the **last** segment is a torn write from a crash:
//!   a record prefix or body that runs past end of file, zero-filled trailing bytes, or a
//!   final record whose tag fails and that ends exactly at end of file. The file is
//!   truncated there and the cut is reported in [`RecoveryReport::cut`]. Nothing after a
//!   cut is ever interpreted.
//! - Any other damage (a bad record followed by more data, or damage in an older, already
//!   fsynced segment) is corruption. By default [`crate::Store::open`] refuses to start with
//!   [`StoreError::Corrupt`]. With `quarantine_corrupt_wal`, the records before the damage
//!   are kept, the segment is renamed to `*.corrupt` for forensics and listed in
//!   [`RecoveryReport::corrupt`]; replay goes on with the next segment.
//! - A record whose tenant has no such data key (crypto-shredded) is skipped and counted.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sentrace_core::TenantId;

use super::format::{self, FrameError, HEADER_LEN};
use crate::entry::decode_entries;
use crate::{KeyRing, SpanEntry, StoreError};

/// What replay found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments read.
    pub segments: usize,
    /// Records recovered.
    pub records: u64,
    /// Spans recovered into memory.
    pub spans: u64,
    /// A torn tail that was cut off, if any.
    pub cut: Option<TailCut>,
    /// Segments set aside because of corruption (only with `quarantine_corrupt_wal`).
    pub corrupt: Vec<CorruptSegment>,
    /// Records skipped because their data key no longer exists (shredded tenants).
    pub unreadable_records: u64,
    /// Blocks found in the object store.
    pub blocks: usize,
    /// Blocks of other nodes sharing the bucket, found at start.
    pub peer_blocks: usize,
    /// Batch manifests found in the replayed records (sealed batches), in WAL order. The
    /// seal stage re-appends those its log does not hold yet.
    pub manifests: Vec<RecoveredManifest>,
}

/// A batch manifest recovered from the WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredManifest {
    /// The tenant whose log it belongs to.
    pub tenant: TenantId,
    /// Its log index.
    pub index: u64,
    /// The encoded manifest.
    pub manifest: bytes::Bytes,
}

/// A torn tail cut off the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailCut {
    /// Segment id.
    pub segment: u64,
    /// Offset at which the file was truncated.
    pub offset: u64,
    /// Bytes removed.
    pub bytes: u64,
    /// What was wrong with the tail.
    pub reason: String,
}

/// A corrupt segment kept aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptSegment {
    /// Segment id.
    pub segment: u64,
    /// Offset of the first bad record.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
    /// Where the segment file was moved.
    pub moved_to: PathBuf,
}

/// Spans recovered for one tenant from one record.
pub(crate) type Recovered = (TenantId, Vec<SpanEntry>);

/// Replays every segment in `dir` in order. Returns the recovered records, the report and
/// the next unused segment id.
pub(crate) fn replay(
    dir: &Path,
    keys: &KeyRing,
    quarantine: bool,
) -> Result<(Vec<Recovered>, RecoveryReport, u64), StoreError> {
    let ids = format::list_segments(dir)?;
    let mut report = RecoveryReport::default();
    let mut out = Vec::new();
    let next = ids.last().map_or(Ok(1), |last| {
        last.checked_add(1).ok_or_else(|| StoreError::Corrupt {
            path: dir.to_path_buf(),
            offset: 0,
            reason: "segment ids exhausted".into(),
        })
    })?;
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let path = format::segment_path(dir, id);
        report.segments += 1;
        let buf = std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        match replay_segment(&buf, id, is_last, keys, &mut out, &mut report)? {
            Outcome::Clean => {}
            Outcome::Cut { offset, reason } => {
                let bytes = (buf.len() as u64).saturating_sub(offset);
                tracing::warn!(segment = id, offset, bytes, %reason, "cutting torn WAL tail");
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| StoreError::io(&path, e))?;
                f.set_len(offset)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| StoreError::io(&path, e))?;
                report.cut = Some(TailCut {
                    segment: id,
                    offset,
                    bytes,
                    reason,
                });
            }
            Outcome::Corrupt { offset, reason } => {
                if !quarantine {
                    return Err(StoreError::Corrupt {
                        path,
                        offset,
                        reason: format!(
                            "{reason}; refusing to start (set quarantine_corrupt_wal to keep the \
                             records before it and move the segment aside)"
                        ),
                    });
                }
                let moved_to = path.with_extension("wal.corrupt");
                tracing::error!(segment = id, offset, %reason, "corrupt WAL segment quarantined");
                std::fs::rename(&path, &moved_to).map_err(|e| StoreError::io(&path, e))?;
                crate::fsutil::sync_dir(dir)?;
                report.corrupt.push(CorruptSegment {
                    segment: id,
                    offset,
                    reason,
                    moved_to,
                });
            }
        }
    }
    Ok((out, report, next))
}

pub(crate) enum Outcome {
    Clean,
    Cut { offset: u64, reason: String },
    Corrupt { offset: u64, reason: String },
}

pub(crate) fn replay_segment(
    buf: &[u8],
    id: u64,
    is_last: bool,
    keys: &KeyRing,
    out: &mut Vec<Recovered>,
    report: &mut RecoveryReport,
) -> Result<Outcome, StoreError> {
    let file_len = buf.len() as u64;
    let damaged = |offset: u64, reason: String, torn: bool| {
        let tail = buf.get(offset as usize..).unwrap_or_default();
        if is_last && (torn || tail.iter().all(|&b| b == 0)) {
            Outcome::Cut { offset, reason }
        } else {
            Outcome::Corrupt { offset, reason }
        }
    };
    if file_len < HEADER_LEN {
        return Ok(damaged(0, "segment header is incomplete".into(), true));
    }
    if buf[..HEADER_LEN as usize] != format::header(id) {
        return Ok(damaged(
            0,
            "segment header does not match its file name".into(),
            false,
        ));
    }
    let mut offset = HEADER_LEN;
    while offset < file_len {
        let rec = match format::frame(buf, offset) {
            Ok(r) => r,
            Err(FrameError::Torn(reason)) => return Ok(damaged(offset, reason, true)),
            Err(FrameError::Bad(reason)) => return Ok(damaged(offset, reason, false)),
        };
        let end = offset.saturating_add(rec.len);
        let dek = match keys.dek(&rec.tenant, rec.key_id) {
            Ok(d) => d,
            Err(StoreError::KeyUnavailable { .. }) => {
                report.unreadable_records += 1;
                offset = end;
                continue;
            }
            Err(e) => return Err(e),
        };
        let aad = format::aad(&rec.tenant, id, offset, rec.key_id);
        let plain = match dek.wal_key().open(&aad, rec.sealed, "WAL record") {
            Ok(p) => p,
            Err(_) => {
                let reason = format!(
                    "record of tenant {} under data key {} fails authentication (tampered, moved or torn)",
                    rec.tenant, rec.key_id
                );
                return Ok(damaged(offset, reason, end == file_len));
            }
        };
        let spans = match decode_entries(Bytes::from(plain)) {
            Ok(s) => s,
            Err(reason) => return Ok(damaged(offset, reason, false)),
        };
        report.records += 1;
        report.spans += spans.len() as u64;
        for s in &spans {
            if let Some(seal) = &s.seal
                && let Some(m) = &seal.manifest
            {
                report.manifests.push(RecoveredManifest {
                    tenant: rec.tenant.clone(),
                    index: seal.index,
                    manifest: m.clone(),
                });
            }
        }
        out.push((rec.tenant, spans));
        offset = end;
    }
    Ok(Outcome::Clean)
}
