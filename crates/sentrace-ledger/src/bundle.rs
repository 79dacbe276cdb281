//! Offline-verifiable proof bundles for `sentrace proof TRACE_ID`, in the spirit of C2SP
//! `tlog-proof` (c2sp.org/tlog-proof@v1): spans, their inclusion in their batch's span
//! tree, each batch manifest's inclusion in the log, and the signed checkpoint.
//!
//! ```text
//! sentrace.dev/proof-bundle@v1
//! entry <log index> <base64 manifest>
//! <base64 hash>                        (log inclusion proof, leaf sibling first; 0..64 lines)
//! span <position> <base64 canonical span>
//! <base64 hash>                        (span inclusion proof in the batch; 0..64 lines)
//! ...more spans, more entries...
//!
//! <signed checkpoint, verbatim>
//! ```
//!
//! The header holds no empty line, so the first empty line starts the checkpoint.
//! [`BundleEntry::to_tlog_proof`] renders one entry as a plain C2SP `tlog-proof` with the
//! manifest as its `extra` data.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::{CheckpointError, CheckpointPolicy, LogVerifier, open_checkpoint};
use crate::manifest::{BatchManifest, ManifestError};
use crate::merkle::{
    Hash, MAX_PROOF_HASHES, ProofError, Tree, TreeError, leaf_hash, verify_inclusion,
};

/// The first line of a bundle.
pub const BUNDLE_HEADER: &str = "sentrace.dev/proof-bundle@v1";
/// The largest bundle accepted, in bytes.
pub const MAX_BUNDLE_SIZE: usize = 64 * 1024 * 1024;
/// The most entries (batches) in one bundle.
pub const MAX_BUNDLE_ENTRIES: usize = 10_000;
/// The most spans in one bundle.
pub const MAX_BUNDLE_SPANS: usize = 1_000_000;

/// Why a bundle did not parse or verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Larger than [`MAX_BUNDLE_SIZE`].
    #[error("bundle is {0} bytes; the limit is {MAX_BUNDLE_SIZE}")]
    TooLarge(usize),
    /// The text breaks the format.
    #[error("bundle line {line}: {why}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// The checkpoint did not verify.
    #[error("bundle checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A manifest did not decode.
    #[error("entry {index}: {err}")]
    Manifest {
        /// The log index.
        index: u64,
        /// Why.
        err: ManifestError,
    },
    /// A manifest belongs to another log.
    #[error("entry {index} belongs to log {found:?}, not {expected:?}")]
    WrongLog {
        /// The log index.
        index: u64,
        /// The manifest's origin.
        found: String,
        /// The checkpoint's origin.
        expected: String,
    },
    /// A manifest is not in the checkpointed log.
    #[error("entry {index} is not in the log of the checkpoint: {err}")]
    EntryProof {
        /// The log index.
        index: u64,
        /// Why.
        err: ProofError,
    },
    /// A span is not in its batch.
    #[error("span {position} of entry {index} is not in that batch: {err}")]
    SpanProof {
        /// The log index.
        index: u64,
        /// The span's position in the batch.
        position: u64,
        /// Why.
        err: ProofError,
    },
    /// Building a proof failed.
    #[error("building the bundle: {0}")]
    Build(#[from] TreeError),
}

/// One span and its inclusion proof in its batch's span tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSpan {
    /// Position of the span in the batch.
    pub position: u64,
    /// The canonical span encoding.
    pub canonical: Vec<u8>,
    /// Inclusion proof in the span tree of `span_count` leaves.
    pub proof: Vec<Hash>,
}

/// One batch: its manifest, the manifest's inclusion proof in the log, and spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEntry {
    /// Log index.
    pub index: u64,
    /// The encoded manifest (the log entry).
    pub manifest: Vec<u8>,
    /// Inclusion proof of the manifest in the tree of the checkpoint.
    pub proof: Vec<Hash>,
    /// The spans proven.
    pub spans: Vec<BundleSpan>,
}

/// A proof bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofBundle {
    /// The entries.
    pub entries: Vec<BundleEntry>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// What a verified bundle proves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleSummary {
    /// The log.
    pub origin: String,
    /// The checkpoint's tree size.
    pub size: u64,
    /// `(log index, span positions)` proven.
    pub entries: Vec<(u64, Vec<u64>)>,
    /// Witnesses whose cosignatures verified.
    pub witnesses: Vec<String>,
}

impl BundleEntry {
    /// Builds an entry from a batch's spans (all of them, in batch order, as stored) and the
    /// positions to include.
    pub fn build(
        index: u64,
        manifest: Vec<u8>,
        log_proof: Vec<Hash>,
        batch_spans: &[&[u8]],
        positions: &[u64],
    ) -> Result<Self, BundleError> {
        let tree = Tree::from_leaf_hashes(batch_spans.iter().map(|s| leaf_hash(s)));
        let mut spans = Vec::with_capacity(positions.len());
        for &p in positions {
            let canonical = usize::try_from(p)
                .ok()
                .and_then(|i| batch_spans.get(i))
                .ok_or(TreeError::IndexOutOfRange {
                    index: p,
                    size: tree.size(),
                })?
                .to_vec();
            spans.push(BundleSpan {
                position: p,
                canonical,
                proof: tree.inclusion_proof(p, tree.size())?,
            });
        }
        Ok(Self {
            index,
            manifest,
            proof: log_proof,
            spans,
        })
    }

    /// This entry as a C2SP `tlog-proof`, with the manifest as extra data.
    pub fn to_tlog_proof(&self, checkpoint: &str) -> String {
        let mut s = format!(
            "c2sp.org/tlog-proof@v1\nextra {}\nindex {}\n",
            STANDARD.encode(&self.manifest),
            self.index
        );
        for h in &self.proof {
            s.push_str(&STANDARD.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(checkpoint);
        s
    }
}

fn parse_hash(line: &str, n: usize) -> Result<Hash, BundleError> {
    STANDARD
        .decode(line)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(BundleError::Syntax {
            line: n,
            why: "expected a base64 SHA-256 hash",
        })
}

fn parse_num(s: &str, n: usize) -> Result<u64, BundleError> {
    let bad = BundleError::Syntax {
        line: n,
        why: "expected a decimal number without leading zeros",
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(bad);
    }
    s.parse().map_err(|_| bad)
}

impl ProofBundle {
    /// The text form.
    pub fn encode(&self) -> String {
        let mut s = format!("{BUNDLE_HEADER}\n");
        for e in &self.entries {
            s.push_str(&format!(
                "entry {} {}\n",
                e.index,
                STANDARD.encode(&e.manifest)
            ));
            for h in &e.proof {
                s.push_str(&STANDARD.encode(h));
                s.push('\n');
            }
            for sp in &e.spans {
                s.push_str(&format!(
                    "span {} {}\n",
                    sp.position,
                    STANDARD.encode(&sp.canonical)
                ));
                for h in &sp.proof {
                    s.push_str(&STANDARD.encode(h));
                    s.push('\n');
                }
            }
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses the text form (syntax and limits only; [`verify_bundle`] checks it).
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_SIZE {
            return Err(BundleError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| BundleError::Syntax {
            line: 0,
            why: "not UTF-8",
        })?;
        let (head, checkpoint) = text.split_once("\n\n").ok_or(BundleError::Syntax {
            line: 0,
            why: "no empty line before the checkpoint",
        })?;
        let mut lines = head.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        if lines.next().map(|(_, l)| l) != Some(BUNDLE_HEADER) {
            return Err(BundleError::Syntax {
                line: 1,
                why: "not a sentrace.dev/proof-bundle@v1",
            });
        }
        let mut entries: Vec<BundleEntry> = Vec::new();
        let mut span_total = 0usize;
        for (n, line) in lines {
            let syntax = |why| BundleError::Syntax { line: n, why };
            if let Some(rest) = line.strip_prefix("entry ") {
                if entries.len() == MAX_BUNDLE_ENTRIES {
                    return Err(syntax("too many entries"));
                }
                let (idx, b64) = rest
                    .split_once(' ')
                    .ok_or(syntax("expected: entry <index> <manifest>"))?;
                entries.push(BundleEntry {
                    index: parse_num(idx, n)?,
                    manifest: STANDARD
                        .decode(b64)
                        .map_err(|_| syntax("manifest is not base64"))?,
                    proof: Vec::new(),
                    spans: Vec::new(),
                });
            } else if let Some(rest) = line.strip_prefix("span ") {
                let entry = entries.last_mut().ok_or(syntax("span before any entry"))?;
                span_total += 1;
                if span_total > MAX_BUNDLE_SPANS {
                    return Err(syntax("too many spans"));
                }
                let (pos, b64) = rest
                    .split_once(' ')
                    .ok_or(syntax("expected: span <position> <span>"))?;
                entry.spans.push(BundleSpan {
                    position: parse_num(pos, n)?,
                    canonical: STANDARD
                        .decode(b64)
                        .map_err(|_| syntax("span is not base64"))?,
                    proof: Vec::new(),
                });
            } else {
                let h = parse_hash(line, n)?;
                let entry = entries.last_mut().ok_or(syntax("hash before any entry"))?;
                let proof = match entry.spans.last_mut() {
                    Some(s) => &mut s.proof,
                    None => &mut entry.proof,
                };
                if proof.len() == MAX_PROOF_HASHES {
                    return Err(syntax("proof longer than 64 hashes"));
                }
                proof.push(h);
            }
        }
        if entries.is_empty() {
            return Err(BundleError::Syntax {
                line: 2,
                why: "the bundle proves no entry",
            });
        }
        Ok(Self {
            entries,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

/// Verifies a bundle with nothing but the log's public keys (both signatures required).
pub fn verify_bundle(bytes: &[u8], key: &LogVerifier) -> Result<BundleSummary, BundleError> {
    verify_bundle_with_policy(bytes, &CheckpointPolicy::new(key.clone()))
}

/// Verifies a bundle under a checkpoint policy (for example with a witness quorum).
pub fn verify_bundle_with_policy(
    bytes: &[u8],
    policy: &CheckpointPolicy,
) -> Result<BundleSummary, BundleError> {
    let bundle = ProofBundle::parse(bytes)?;
    // 1. The checkpoint is signed by the log (and witnesses, per policy).
    let v = open_checkpoint(bundle.checkpoint.as_bytes(), policy)?;
    let cp = &v.checkpoint;
    let mut entries = Vec::with_capacity(bundle.entries.len());
    for e in &bundle.entries {
        // 2. Each manifest is in the checkpointed log and belongs to it.
        verify_inclusion(
            &leaf_hash(&e.manifest),
            e.index,
            cp.size,
            &e.proof,
            &cp.root,
        )
        .map_err(|err| BundleError::EntryProof {
            index: e.index,
            err,
        })?;
        let m = BatchManifest::decode(&e.manifest).map_err(|err| BundleError::Manifest {
            index: e.index,
            err,
        })?;
        if m.origin != cp.origin {
            return Err(BundleError::WrongLog {
                index: e.index,
                found: m.origin.to_string(),
                expected: cp.origin.to_string(),
            });
        }
        // 3. Each span is in its batch's span tree.
        let mut positions = Vec::with_capacity(e.spans.len());
        for s in &e.spans {
            verify_inclusion(
                &leaf_hash(&s.canonical),
                s.position,
                u64::from(m.span_count),
                &s.proof,
                &m.span_root,
            )
            .map_err(|err| BundleError::SpanProof {
                index: e.index,
                position: s.position,
                err,
            })?;
            positions.push(s.position);
        }
        entries.push((e.index, positions));
    }
    Ok(BundleSummary {
        origin: cp.origin.to_string(),
        size: cp.size,
        entries,
        witnesses: v.witnesses.iter().map(|w| w.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests;
