//! The verifier: recomputes a log from its stored objects and the stored spans, checks it
//! against the latest signed checkpoint and previously pinned checkpoints, and names every
//! failure by kind, object and position.
//!
//! Order of work:
//! 1. open the checkpoint under the policy (forged / modified / missing);
//! 2. compare with the pinned checkpoint of the same origin (rolled back / inconsistent);
//! 3. read the level-0 hash tiles and the entry bundles; whichever reproduces the signed
//!    root is authentic, and the other is compared with it entry by entry (modified,
//!    deleted, reordered, replayed entries; modified or deleted tiles);
//! 4. check higher-level tiles, and duplicate (source, sequence) pairs among the entries;
//! 5. if evidence from the store is given, recompute each batch's span root from its
//!    stored canonical spans and compare it with the authentic manifest (modified,
//!    deleted, reordered, replayed batches and spans; erased batches; batches beyond the
//!    checkpoint, which mean the log was truncated).

mod evidence;
mod log_check;
mod pins;

pub use evidence::{BatchEvidence, EvidenceContent};
pub use pins::{Pin, PinState};

use crate::checkpoint::{
    CheckpointError, CheckpointPolicy, VerifiedCheckpoint, has_altered_genuine_signature,
    open_checkpoint,
};
use std::collections::BTreeMap;

use crate::manifest::SourceVerifier;
use crate::tiles::{CHECKPOINT_PATH, LogReader};

/// What went wrong (or, for `Erased`, what was found).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Bytes changed.
    Modified,
    /// Something is gone.
    Deleted,
    /// Two things traded places.
    Reordered,
    /// Something appears twice (a copy of another entry or batch).
    Replayed,
    /// The log is shorter than a pinned checkpoint or than the data it covers (rollback).
    Truncated,
    /// A checkpoint signed by a key that is not the log's.
    Forged,
    /// The log's history is not consistent with a pinned checkpoint (rewritten or forked).
    Inconsistent,
    /// Fewer witness cosignatures than the policy's quorum.
    Unwitnessed,
    /// An object could not be read at all (reader error).
    Unreadable,
    /// Data removed by retention or crypto-shredding: reported, not a failure.
    Erased,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// The signed checkpoint.
    Checkpoint,
    /// A hash tile.
    HashTile,
    /// An entry bundle as a whole (its framing).
    EntryBundle,
    /// One log entry (a batch manifest).
    Entry,
    /// A stored batch (its spans as a whole).
    Batch,
    /// One stored span.
    Span,
    /// The log as a whole.
    Log,
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What happened.
    pub kind: FindingKind,
    /// To what.
    pub object: ObjectKind,
    /// The log (origin: node and tenant).
    pub origin: String,
    /// The log index (batch) concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The other index of a reorder or the original of a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_index: Option<u64>,
    /// The span position within the batch, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<u64>,
    /// The block holding the batch, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<String>,
    /// The other block of a reorder (the block whose content `block` holds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_block: Option<String>,
    /// The tlog-tiles path concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A sentence for people.
    pub detail: String,
}

/// The outcome of a verification, ready for `--json`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The log's origin, if the checkpoint could be read.
    pub origin: Option<String>,
    /// The size of the latest signed checkpoint.
    pub checkpoint_size: Option<u64>,
    /// Its root hash, hex.
    pub checkpoint_root: Option<String>,
    /// Witnesses whose cosignatures verified.
    pub witnesses: Vec<String>,
    /// Log entries recomputed.
    pub entries_checked: u64,
    /// Batches whose spans were recomputed.
    pub batches_checked: u64,
    /// Spans recomputed.
    pub spans_checked: u64,
    /// Bytes hashed (tiles, entries, spans).
    pub bytes_hashed: u64,
    /// Batches found erased.
    pub batches_erased: u64,
    /// Everything found, in the order found (at most [`MAX_FINDINGS`]).
    pub findings: Vec<Finding>,
    /// Findings not listed because of the limit.
    pub findings_omitted: u64,
    /// True if some omitted finding was a failure.
    pub omitted_failures: bool,
    /// True if there is no finding other than `erased`.
    pub ok: bool,
}

impl Report {
    /// The findings that are failures (all but `erased`).
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.kind != FindingKind::Erased)
    }

    fn any_failure(&self) -> bool {
        self.omitted_failures || self.failures().next().is_some()
    }
}

/// Progress callback: `(stage, done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&'static str, u64, u64);

/// Verifies a log.
pub struct Verifier<'a> {
    policy: &'a CheckpointPolicy,
    reader: &'a dyn LogReader,
    progress: Option<Progress<'a>>,
    sources: Option<&'a BTreeMap<String, SourceVerifier>>,
}

impl std::fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

/// The most findings a report lists; further ones are counted in `findings_omitted`.
pub const MAX_FINDINGS: usize = 10_000;
/// The largest log the verifier accepts to recompute (it keeps per-entry state in memory).
pub const MAX_VERIFY_SIZE: u64 = 1 << 32;

/// Internal accumulator shared by the steps.
pub(crate) struct Ctx {
    pub(crate) origin: String,
    pub(crate) report: Report,
    /// Receives findings past [`MAX_FINDINGS`].
    overflow: Option<Finding>,
}

impl Ctx {
    pub(crate) fn add(
        &mut self,
        kind: FindingKind,
        object: ObjectKind,
        detail: String,
    ) -> &mut Finding {
        if self.report.findings.len() >= MAX_FINDINGS {
            self.report.findings_omitted += 1;
            if kind != FindingKind::Erased {
                self.report.omitted_failures = true;
            }
            return self.overflow.insert(Finding {
                kind,
                object,
                origin: String::new(),
                index: None,
                other_index: None,
                span: None,
                block: None,
                other_block: None,
                path: None,
                detail,
            });
        }
        self.report.findings.push(Finding {
            kind,
            object,
            origin: self.origin.clone(),
            index: None,
            other_index: None,
            span: None,
            block: None,
            other_block: None,
            path: None,
            detail,
        });
        let last = self.report.findings.len() - 1;
        &mut self.report.findings[last]
    }
}

impl<'a> Verifier<'a> {
    /// A verifier reading log objects from `reader` and opening checkpoints under `policy`.
    pub fn new(policy: &'a CheckpointPolicy, reader: &'a dyn LogReader) -> Self {
        Self {
            policy,
            reader,
            progress: None,
            sources: None,
        }
    }

    /// Also verifies the source signature of every signed manifest whose source is in
    /// `keys` (source name → its registered keys). A signature that fails is named
    /// `forged` on the entry: the log holds a batch its source did not sign.
    pub fn with_source_keys(mut self, keys: &'a BTreeMap<String, SourceVerifier>) -> Self {
        self.sources = Some(keys);
        self
    }

    /// Reports progress through `f(stage, done, total)`.
    pub fn with_progress(mut self, f: Progress<'a>) -> Self {
        self.progress = Some(f);
        self
    }

    fn tick(&mut self, stage: &'static str, done: u64, total: u64) {
        if let Some(p) = self.progress.as_mut() {
            p(stage, done, total);
        }
    }

    /// Runs every check. `pins` holds previously verified checkpoints; it is updated to the
    /// current checkpoint only if nothing failed. `evidence` is what the store holds for
    /// each batch (any order); `None` checks the log alone.
    pub fn verify(
        &mut self,
        pins: &mut PinState,
        evidence: Option<&mut dyn Iterator<Item = BatchEvidence>>,
    ) -> Report {
        let mut ctx = Ctx {
            origin: self
                .policy
                .origin
                .as_ref()
                .map(|o| o.to_string())
                .unwrap_or_default(),
            report: Report::default(),
            overflow: None,
        };
        if let Some(verified) = self.open(&mut ctx) {
            let cp = &verified.checkpoint;
            ctx.origin = cp.origin.to_string();
            ctx.report.origin = Some(ctx.origin.clone());
            ctx.report.checkpoint_size = Some(cp.size);
            ctx.report.checkpoint_root = Some(hex::encode(cp.root));
            ctx.report.witnesses = verified.witnesses.iter().map(|w| w.to_string()).collect();
            let pinned = pins.get(&ctx.origin).cloned();
            pins::check_rollback(&mut ctx, pinned.as_ref(), cp);
            let reader = self.reader;
            let sources = self.sources;
            let mut progress = |stage, done, total| self.tick(stage, done, total);
            let authentic = log_check::check_log(&mut ctx, reader, cp, &mut progress);
            if let Some(pin) = &pinned {
                pins::check_consistency(&mut ctx, pin, cp, authentic.tree.as_ref());
            }
            if let Some(keys) = sources {
                check_source_signatures(&mut ctx, &authentic, keys);
            }
            if let Some(ev) = evidence {
                evidence::check_evidence(&mut ctx, &authentic, cp.size, ev, &mut progress);
            }
            let ok = !ctx.report.any_failure();
            if ok {
                pins.pin(&verified);
            }
        }
        let ok = !ctx.report.any_failure();
        ctx.report.ok = ok;
        ctx.report
    }

    /// Step 1: read and open the checkpoint, classifying failures.
    fn open(&mut self, ctx: &mut Ctx) -> Option<VerifiedCheckpoint> {
        let bytes = match self.reader.read(CHECKPOINT_PATH) {
            Ok(Some(b)) => b,
            Ok(None) => {
                ctx.add(
                    FindingKind::Deleted,
                    ObjectKind::Checkpoint,
                    "the checkpoint is missing".into(),
                )
                .path = Some(CHECKPOINT_PATH.into());
                return None;
            }
            Err(e) => {
                ctx.add(
                    FindingKind::Unreadable,
                    ObjectKind::Checkpoint,
                    format!("reading the checkpoint: {e}"),
                )
                .path = Some(CHECKPOINT_PATH.into());
                return None;
            }
        };
        ctx.report.bytes_hashed += bytes.len() as u64;
        match open_checkpoint(&bytes, self.policy) {
            Ok(v) if v.checkpoint.size > MAX_VERIFY_SIZE => {
                ctx.add(
                    FindingKind::Unreadable,
                    ObjectKind::Checkpoint,
                    format!(
                        "the log has {} entries; this verifier recomputes at most {MAX_VERIFY_SIZE}",
                        v.checkpoint.size
                    ),
                );
                None
            }
            Ok(v) => Some(v),
            Err(err) => {
                let kind = match &err {
                    CheckpointError::NoTrustedSignature
                        if !has_altered_genuine_signature(&bytes, &self.policy.log) =>
                    {
                        FindingKind::Forged
                    }
                    CheckpointError::Quorum { .. } => FindingKind::Unwitnessed,
                    _ => FindingKind::Modified,
                };
                let detail = match kind {
                    FindingKind::Forged => format!(
                        "the checkpoint carries no signature by the log's keys ({err}); it was signed by another key"
                    ),
                    _ => format!("the checkpoint does not verify: {err}"),
                };
                ctx.add(kind, ObjectKind::Checkpoint, detail).path = Some(CHECKPOINT_PATH.into());
                None
            }
        }
    }
}

/// Source signatures of the authentic manifests, for the sources whose keys are known.
fn check_source_signatures(
    ctx: &mut Ctx,
    auth: &log_check::Authentic,
    keys: &BTreeMap<String, SourceVerifier>,
) {
    for (i, m) in auth.manifests.iter().enumerate() {
        let Some(m) = m else { continue };
        let Some(key) = keys.get(&m.source) else {
            continue;
        };
        if let Err(e) = m.verify_source(key) {
            let f = ctx.add(
                FindingKind::Forged,
                ObjectKind::Entry,
                format!(
                    "entry {i}: the signature of source {:?} sequence {} does not verify ({e})",
                    m.source, m.sequence
                ),
            );
            f.index = Some(i as u64);
        }
    }
}

#[cfg(test)]
mod tests;
