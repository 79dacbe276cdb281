//! Verifying the audit logs of a data directory (run by `sentrace verify`).
//!
//! For each log:
//! 1. open its latest checkpoint with the node's log key and the log's origin (missing,
//!    forged or modified checkpoints are reported);
//! 2. walk the records in file order: each record's sequence number must be its index
//!    (gaps are `deleted` records, going back is `reordered`, a repeat is `replayed`),
//!    and each must decrypt and parse under the tenant's key (the AAD binds tenant,
//!    journal and index: a changed byte or a record moved in from elsewhere is
//!    `modified`; a crypto-shredded key is only a note, `erased`);
//! 3. recompute the RFC 9162 tree from the records' stored bytes and compare it with the
//!    checkpoint (a shorter log is `deleted` records at the end; another root is
//!    `modified`), and with the pinned checkpoint of an earlier run (`truncated`,
//!    `inconsistent`). A pinned audit log whose files are all gone is `deleted`.

use std::collections::BTreeSet;

use serde::Serialize;

use sentrace_ledger::checkpoint::{
    CheckpointError, CheckpointPolicy, LogVerifier, has_altered_genuine_signature, open_checkpoint,
};
use sentrace_ledger::merkle::{CompactRange, Hash, leaf_hash};
use sentrace_ledger::verify::{FindingKind, PinState};
use sentrace_store::StoreError;

use super::files::{AuditFiles, FilesError, LogName};

/// The most findings listed per log; more are counted.
pub const MAX_FINDINGS: usize = 1000;

/// One problem in an audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditFinding {
    /// What happened (the same words as for span logs).
    pub kind: FindingKind,
    /// The record's index, when one record is concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The other index of a reorder or the original of a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_index: Option<u64>,
    /// A sentence for people.
    pub detail: String,
}

/// The outcome for one audit log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditLogReport {
    /// The tenant, or `_node`.
    pub log: String,
    /// The origin expected.
    pub origin: String,
    /// The size of its signed checkpoint.
    pub checkpoint_size: Option<u64>,
    /// Records found in its file.
    pub records: u64,
    /// Records that decrypted and parsed.
    pub records_read: u64,
    /// Records past the checkpoint (appended since it was signed): not yet covered.
    pub records_unsigned: u64,
    /// Records whose keys were crypto-shredded (unreadable by design).
    pub records_erased: u64,
    /// Problems, in the order found (at most [`MAX_FINDINGS`]).
    pub findings: Vec<AuditFinding>,
    /// Findings not listed.
    pub findings_omitted: u64,
    /// True if nothing but `erased` notes was found.
    pub ok: bool,
}

impl AuditLogReport {
    fn add(&mut self, kind: FindingKind, index: Option<u64>, other: Option<u64>, detail: String) {
        if self.findings.len() >= MAX_FINDINGS {
            self.findings_omitted += 1;
            return;
        }
        self.findings.push(AuditFinding {
            kind,
            index,
            other_index: other,
            detail,
        });
    }
}

/// Verifies every audit log of `files` (or only `only`), and the audit logs pinned in
/// `pins` that have vanished. Pins move forward only for logs that verify.
pub fn verify_all(
    files: &AuditFiles,
    node: &str,
    key: &LogVerifier,
    only: Option<&LogName>,
    pins: &mut PinState,
) -> Result<Vec<AuditLogReport>, FilesError> {
    let mut logs: BTreeSet<LogName> = files.logs()?.into_iter().collect();
    // Pinned audit logs of this node whose files are all gone.
    let suffix = "/audit";
    let prefix = format!("{node}/");
    for origin in pins.logs.keys() {
        if let Some(name) = origin
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(suffix))
            && let Ok(l) = LogName::parse(name)
        {
            logs.insert(l);
        }
    }
    if let Some(o) = only {
        logs.retain(|l| l == o);
    }
    let mut out = Vec::new();
    for log in logs {
        out.push(verify_log(files, node, key, &log, pins)?);
    }
    Ok(out)
}

/// Verifies one audit log.
pub fn verify_log(
    files: &AuditFiles,
    node: &str,
    key: &LogVerifier,
    log: &LogName,
    pins: &mut PinState,
) -> Result<AuditLogReport, FilesError> {
    let origin = log.origin(node).map_err(|e| FilesError::Store {
        log: log.to_string(),
        source: StoreError::Task(format!("origin: {e}")),
    })?;
    let mut rep = AuditLogReport {
        log: log.to_string(),
        origin: origin.to_string(),
        ..Default::default()
    };
    // Step 1: the checkpoint.
    let mut policy = CheckpointPolicy::new(key.clone());
    policy.origin = Some(origin.clone());
    let verified = match files.read_checkpoint(log)? {
        None => {
            rep.add(
                FindingKind::Deleted,
                None,
                None,
                format!(
                    "the checkpoint {} is missing",
                    files.checkpoint_path(log).display()
                ),
            );
            None
        }
        Some(bytes) => match open_checkpoint(&bytes, &policy) {
            Ok(v) => Some(v),
            Err(e) => {
                let kind = match e {
                    CheckpointError::NoTrustedSignature
                        if !has_altered_genuine_signature(&bytes, key) =>
                    {
                        FindingKind::Forged
                    }
                    _ => FindingKind::Modified,
                };
                rep.add(
                    kind,
                    None,
                    None,
                    format!("the checkpoint does not verify: {e}"),
                );
                None
            }
        },
    };
    let cp = verified.as_ref().map(|v| &v.checkpoint);
    rep.checkpoint_size = cp.map(|c| c.size);
    // Step 2: the records.
    let stored = files.stored(log)?;
    rep.records = stored.records.len() as u64;
    let pin = pins.get(origin.as_str()).cloned();
    let mut range = CompactRange::new();
    let root_at = |range: &CompactRange, size: u64, slot: &mut Option<Hash>| {
        if range.size() == size {
            *slot = Some(range.root());
        }
    };
    let mut root_cp = None;
    let mut root_pin = None;
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut prev: Option<u64> = None;
    for r in &stored.records {
        if let Some(c) = cp {
            root_at(&range, c.size, &mut root_cp);
        }
        if let Some(p) = &pin {
            root_at(&range, p.size, &mut root_pin);
        }
        let position = range.size();
        if !seen.insert(r.seq) {
            let original = stored
                .records
                .iter()
                .position(|x| x.seq == r.seq)
                .unwrap_or(0);
            rep.add(
                FindingKind::Replayed,
                Some(r.seq),
                Some(original as u64),
                format!(
                    "record {} appears again at position {position} (a copy of an earlier record)",
                    r.seq
                ),
            );
        } else if prev.is_some_and(|p| r.seq < p) {
            rep.add(
                FindingKind::Reordered,
                Some(r.seq),
                prev,
                format!(
                    "record {} is stored after record {} (at position {position})",
                    r.seq,
                    prev.unwrap_or(0)
                ),
            );
        }
        prev = Some(prev.map_or(r.seq, |p| p.max(r.seq)));
        match files.open_record(log, r) {
            Ok(_) => rep.records_read += 1,
            Err(FilesError::Store {
                source: StoreError::KeyUnavailable { .. },
                ..
            }) => rep.records_erased += 1,
            Err(e) => rep.add(
                FindingKind::Modified,
                Some(r.seq),
                None,
                format!(
                    "record {} at position {position} does not authenticate: {e}",
                    r.seq
                ),
            ),
        }
        range.push_hash(leaf_hash(&r.bytes));
    }
    if let Some(c) = cp {
        root_at(&range, c.size, &mut root_cp);
    }
    if let Some(p) = &pin {
        root_at(&range, p.size, &mut root_pin);
    }
    let expected = cp
        .map_or(0, |c| c.size)
        .max(seen.last().map_or(0, |m| m.saturating_add(1)));
    let mut missing = 0u64;
    for i in 0..expected {
        if !seen.contains(&i) {
            missing += 1;
            rep.add(
                FindingKind::Deleted,
                Some(i),
                None,
                format!("record {i} is missing"),
            );
        }
    }
    if rep.records_erased > 0 {
        rep.add(
            FindingKind::Erased,
            None,
            None,
            format!(
                "{} records are unreadable: the tenant's data keys were crypto-shredded (the tree still verifies)",
                rep.records_erased
            ),
        );
    }
    if let Some(at) = stored.torn_at {
        rep.add(
            FindingKind::Modified,
            None,
            None,
            format!(
                "the file ends in a torn record at byte {at} (a crash mid-write, or bytes appended)"
            ),
        );
    }
    // Step 3: the tree.
    if let Some(c) = cp {
        rep.records_unsigned = range.size().saturating_sub(c.size);
        let located = rep.findings.iter().any(|f| f.kind != FindingKind::Erased);
        if range.size() < c.size {
            if missing == 0 {
                rep.add(
                    FindingKind::Deleted,
                    Some(range.size()),
                    None,
                    format!(
                        "the log holds {} records; its checkpoint covers {}",
                        range.size(),
                        c.size
                    ),
                );
            }
        } else if root_cp != Some(c.root) && !located {
            rep.add(
                FindingKind::Modified,
                None,
                None,
                format!(
                    "the records do not reproduce the checkpoint's root at size {}",
                    c.size
                ),
            );
        }
    }
    if let (Some(p), Some(c)) = (&pin, cp) {
        if c.size < p.size {
            rep.add(
                FindingKind::Truncated,
                None,
                None,
                format!(
                    "the checkpoint covers {} records; an earlier run verified {}",
                    c.size, p.size
                ),
            );
        } else if root_pin.is_none() || root_pin != p.root_hash() {
            rep.add(
                FindingKind::Inconsistent,
                None,
                None,
                format!(
                    "the first {} records no longer match the checkpoint an earlier run verified",
                    p.size
                ),
            );
        }
    } else if let (Some(p), None) = (&pin, cp) {
        rep.add(
            FindingKind::Deleted,
            None,
            None,
            format!(
                "an earlier run verified this log at size {}; its checkpoint is gone",
                p.size
            ),
        );
    }
    rep.ok =
        rep.findings.iter().all(|f| f.kind == FindingKind::Erased) && rep.findings_omitted == 0;
    if rep.ok
        && let Some(v) = &verified
    {
        pins.pin(v);
    }
    Ok(rep)
}
