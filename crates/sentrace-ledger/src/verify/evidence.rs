//! Step 5: the stored spans of each batch against its authentic manifest.

use std::collections::HashMap;

use super::log_check::Authentic;
use super::{Ctx, FindingKind, ObjectKind};
use crate::merkle::{CompactRange, Hash, leaf_hash};

/// What the store holds for one log entry (batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEvidence {
    /// The log index the store files the batch under.
    pub index: u64,
    /// The block (or WAL segment) holding it, for reports.
    pub block: String,
    /// Its spans, or the record that they were erased.
    pub content: EvidenceContent,
}

/// The stored form of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceContent {
    /// The canonical span encodings as stored, in batch order.
    Spans {
        /// The canonical spans (`sentrace_core::canonical`), re-derived from storage.
        spans: Vec<Vec<u8>>,
        /// The span leaf hashes recorded at seal time, if the store keeps them. They are
        /// trusted only if they reproduce the signed span root; then a failure is located
        /// to the exact span.
        recorded_hashes: Option<Vec<Hash>>,
    },
    /// Removed by retention or crypto-shredding; the log entry stays.
    Erased {
        /// Why (for the report).
        reason: String,
    },
}

pub(super) fn check_evidence(
    ctx: &mut Ctx,
    auth: &Authentic,
    size: u64,
    evidence: &mut dyn Iterator<Item = BatchEvidence>,
    progress: &mut dyn FnMut(&'static str, u64, u64),
) {
    let root_index: HashMap<Hash, u64> = auth
        .manifests
        .iter()
        .enumerate()
        .rev()
        .filter_map(|(i, m)| m.as_ref().map(|m| (m.span_root, i as u64)))
        .collect();
    let mut seen: HashMap<u64, String> = HashMap::new();
    // Batches whose spans are another batch's: index -> (block, the other index).
    let mut misplaced: HashMap<u64, (String, u64)> = HashMap::new();
    let mut done = 0u64;
    for ev in evidence {
        done += 1;
        progress("batches", done, size);
        if ev.index >= size {
            let f = ctx.add(
                FindingKind::Truncated,
                ObjectKind::Batch,
                format!(
                    "block {} holds batch {} but the signed log has only {size} entries: the log was truncated",
                    ev.block, ev.index
                ),
            );
            f.index = Some(ev.index);
            f.block = Some(ev.block);
            continue;
        }
        if let Some(first) = seen.get(&ev.index) {
            let detail = format!(
                "batch {} is stored twice, in {first} and in {}",
                ev.index, ev.block
            );
            let f = ctx.add(FindingKind::Replayed, ObjectKind::Batch, detail);
            f.index = Some(ev.index);
            f.block = Some(ev.block);
            continue;
        }
        seen.insert(ev.index, ev.block.clone());
        let spans = match ev.content {
            EvidenceContent::Erased { reason } => {
                ctx.report.batches_erased += 1;
                let f = ctx.add(
                    FindingKind::Erased,
                    ObjectKind::Batch,
                    format!(
                        "batch {} was erased ({reason}); its log entry remains",
                        ev.index
                    ),
                );
                f.index = Some(ev.index);
                f.block = Some(ev.block);
                continue;
            }
            EvidenceContent::Spans {
                spans,
                recorded_hashes,
            } => (spans, recorded_hashes),
        };
        let Some(m) = auth
            .manifests
            .get(ev.index as usize)
            .and_then(Option::as_ref)
        else {
            continue; // the entry itself failed; already reported
        };
        ctx.report.batches_checked += 1;
        let (spans, recorded) = spans;
        let mut range = CompactRange::new();
        let mut stored = Vec::with_capacity(spans.len());
        for s in &spans {
            ctx.report.bytes_hashed += s.len() as u64;
            let h = leaf_hash(s);
            range.push_hash(h);
            stored.push(h);
        }
        ctx.report.spans_checked += spans.len() as u64;
        if range.root() == m.span_root && stored.len() as u64 == u64::from(m.span_count) {
            continue;
        }
        if let Some(&k) = root_index.get(&range.root()) {
            misplaced.insert(ev.index, (ev.block, k));
            continue;
        }
        let recorded = recorded.filter(|r| {
            let mut rr = CompactRange::new();
            r.iter().for_each(|h| rr.push_hash(*h));
            r.len() as u64 == u64::from(m.span_count) && rr.root() == m.span_root
        });
        match recorded {
            Some(r) => locate_spans(ctx, ev.index, &ev.block, &stored, &r),
            None => {
                let count = u64::from(m.span_count);
                let (kind, detail) = if (stored.len() as u64) < count {
                    (
                        FindingKind::Deleted,
                        format!(
                            "batch {} holds {} spans; the signed manifest has {count}",
                            ev.index,
                            stored.len()
                        ),
                    )
                } else {
                    (
                        FindingKind::Modified,
                        format!(
                            "the spans of batch {} do not reproduce its signed span root",
                            ev.index
                        ),
                    )
                };
                let f = ctx.add(kind, ObjectKind::Batch, detail);
                f.index = Some(ev.index);
                f.block = Some(ev.block);
            }
        }
    }
    let mut misplaced_sorted: Vec<_> = misplaced.iter().collect();
    misplaced_sorted.sort_by_key(|(i, _)| **i);
    for (&i, (block, k)) in misplaced_sorted {
        let swapped = misplaced.get(k).is_some_and(|(_, back)| *back == i);
        if swapped && *k < i {
            continue;
        }
        let (kind, detail) = if swapped {
            (
                FindingKind::Reordered,
                format!("the data of batches {i} and {k} were swapped"),
            )
        } else {
            (
                FindingKind::Replayed,
                format!("batch {i} holds a copy of batch {k}"),
            )
        };
        let f = ctx.add(kind, ObjectKind::Batch, detail);
        f.index = Some(i);
        f.other_index = Some(*k);
        f.block = Some(block.clone());
    }
    for (i, m) in auth.manifests.iter().enumerate() {
        if m.is_some() && !seen.contains_key(&(i as u64)) {
            let f = ctx.add(
                FindingKind::Deleted,
                ObjectKind::Batch,
                format!("batch {i} is in the signed log but the store has neither its spans nor an erasure record"),
            );
            f.index = Some(i as u64);
        }
    }
}

/// Locates span failures against authenticated per-span leaf hashes.
fn locate_spans(ctx: &mut Ctx, index: u64, block: &str, stored: &[Hash], recorded: &[Hash]) {
    let pos_of: HashMap<&Hash, usize> = recorded.iter().enumerate().map(|(p, h)| (h, p)).collect();
    let report = |ctx: &mut Ctx, kind, span: usize, other: Option<usize>, detail: String| {
        let f = ctx.add(kind, ObjectKind::Span, detail);
        f.index = Some(index);
        f.span = Some(span as u64);
        f.other_index = other.map(|o| o as u64);
        f.block = Some(block.to_owned());
    };
    let (mut i, mut j) = (0usize, 0usize);
    while i < recorded.len() || j < stored.len() {
        if i < recorded.len() && j < stored.len() && stored[j] == recorded[i] {
            i += 1;
            j += 1;
        } else if stored.len() - j > recorded.len() - i {
            let (kind, what) = match pos_of.get(&stored[j]) {
                Some(_) => (FindingKind::Replayed, "a copy of another span"),
                None => (FindingKind::Modified, "an unknown span"),
            };
            report(
                ctx,
                kind,
                i,
                None,
                format!("batch {index}: {what} was inserted at span {i}"),
            );
            j += 1;
        } else if stored.len() - j < recorded.len() - i {
            report(
                ctx,
                FindingKind::Deleted,
                i,
                None,
                format!("batch {index}: span {i} was removed"),
            );
            i += 1;
        } else {
            match pos_of.get(&stored[j]) {
                Some(&q) if stored.get(q) == Some(&recorded[i]) => {
                    if q > i {
                        report(
                            ctx,
                            FindingKind::Reordered,
                            i,
                            Some(q),
                            format!("batch {index}: spans {i} and {q} were swapped"),
                        );
                    }
                }
                Some(&q) => report(
                    ctx,
                    FindingKind::Replayed,
                    i,
                    Some(q),
                    format!("batch {index}: span {i} was replaced by a copy of span {q}"),
                ),
                None => report(
                    ctx,
                    FindingKind::Modified,
                    i,
                    None,
                    format!("batch {index}: span {i} differs from the signed batch"),
                ),
            }
            i += 1;
            j += 1;
        }
    }
}
