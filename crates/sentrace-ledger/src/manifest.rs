//! The batch manifest: one log entry per accepted batch.
//!
//! Binary layout, version 1 (all integers big-endian, every variable field length-prefixed):
//!
//! ```text
//! manifest_v1 =
//!     u8   version = 1
//!     u16  origin length      || origin (UTF-8, 1..=255)
//!     u16  source length      || source identity (UTF-8, 0..=255)
//!     u64  source sequence
//!     u64  source time (Unix ns)
//!     u64  receive time (Unix ns)
//!     u32  span count
//!     [32] span_root          (RFC 9162 root over the canonical spans, in batch order)
//!     u8   policy flag (0|1)  || [32] minimization policy digest, if 1
//!     u8   signature flag     || u16 length || source_signature, if 1
//! source_signature =
//!     u32  source span count  || [32] source span root   (what the source signed)
//!     u32  Ed25519 key ID     || [64] Ed25519 signature
//!     u32  ML-DSA-44 key ID   || [2420] ML-DSA-44 signature
//! ```
//!
//! Decoding is strict: exact lengths, flags 0 or 1, no trailing bytes, at most
//! [`MAX_MANIFEST_SIZE`] bytes. So `encode(decode(b)) == b` for every accepted `b`, and the
//! log leaf is `leaf_hash(encode())`.
//!
//! The source signs a *statement* (source, sequence, source time, its span count and span
//! root) under FIPS 204 context / Ed25519 prefix `sentrace/source-batch/v1`. The server
//! minimizes again, which can change spans, so the manifest keeps the source's count and
//! root next to the sealed ones: a verifier checks the signature and sees whether the
//! server changed the batch.

use crate::checkpoint::{LogSigner, LogVerifier, Origin};
use crate::keys::{KeyError, MLDSA44_SIGNATURE_LEN, SigError};
use crate::merkle::{Hash, leaf_hash};

/// The current manifest version.
pub const MANIFEST_VERSION: u8 = 1;
/// The largest encoded manifest (well below the 65535-byte entry limit of tlog-tiles).
pub const MAX_MANIFEST_SIZE: usize = 8 * 1024;
/// The longest source identity, in bytes.
pub const MAX_SOURCE_LEN: usize = 255;
/// Domain separation for source signatures.
pub const SOURCE_CONTEXT: &[u8] = b"sentrace/source-batch/v1";
const SOURCE_SIG_LEN: usize = 4 + 32 + 4 + 64 + 4 + MLDSA44_SIGNATURE_LEN;

/// A source's hybrid signing key (an edge agent's); the same pair of algorithms as a log.
pub type SourceSigner = LogSigner;
/// A source's public keys.
pub type SourceVerifier = LogVerifier;

/// Why a manifest did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_SIZE`].
    #[error("manifest is {len} bytes; the limit is {MAX_MANIFEST_SIZE}")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// An unknown version byte.
    #[error("manifest version {0} is not supported (expected 1)")]
    Version(u8),
    /// The input ended inside a field.
    #[error("manifest is truncated in field {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A field's value is invalid.
    #[error("manifest field {field} is invalid: {why}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// Bytes after the last field.
    #[error("manifest has {0} trailing bytes")]
    Trailing(usize),
}

/// A source's signature over its batch statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSignature {
    /// The span count the source signed.
    pub span_count: u32,
    /// The span root the source signed.
    pub span_root: Hash,
    /// Key ID of the source's Ed25519 key.
    pub ed25519_key_id: u32,
    /// The Ed25519 signature.
    pub ed25519: [u8; 64],
    /// Key ID of the source's ML-DSA-44 key.
    pub mldsa_key_id: u32,
    /// The ML-DSA-44 signature.
    pub mldsa: Vec<u8>,
}

/// One log entry: what was accepted, from whom, when, and the root of its spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchManifest {
    /// The log's origin (node and tenant).
    pub origin: Origin,
    /// The authenticated source identity (agent or client).
    pub source: String,
    /// The source's sequence number for this batch.
    pub sequence: u64,
    /// When the source sent the batch (Unix ns, as the source claims).
    pub source_time_unix_nanos: u64,
    /// When the server received it (Unix ns).
    pub receive_time_unix_nanos: u64,
    /// Spans sealed.
    pub span_count: u32,
    /// [`crate::merkle::span_root`] over the canonical spans as stored.
    pub span_root: Hash,
    /// Digest of the minimization policy applied, if any.
    pub policy_digest: Option<[u8; 32]>,
    /// The source's signature, if the batch was signed.
    pub source_signature: Option<SourceSignature>,
}

/// The statement a source signs.
pub fn source_statement(
    source: &str,
    sequence: u64,
    source_time: u64,
    count: u32,
    root: &Hash,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(2 + source.len() + 8 + 8 + 4 + 32);
    m.extend_from_slice(&(source.len() as u16).to_be_bytes());
    m.extend_from_slice(source.as_bytes());
    m.extend_from_slice(&sequence.to_be_bytes());
    m.extend_from_slice(&source_time.to_be_bytes());
    m.extend_from_slice(&count.to_be_bytes());
    m.extend_from_slice(root);
    m
}

impl SourceSignature {
    /// Signs a batch statement with the source's hybrid key (run by the agent).
    pub fn sign(
        key: &SourceSigner,
        source: &str,
        sequence: u64,
        source_time: u64,
        span_count: u32,
        span_root: Hash,
    ) -> Result<Self, KeyError> {
        let msg = source_statement(source, sequence, source_time, span_count, &span_root);
        let ed = key.ed25519.sign_raw(SOURCE_CONTEXT, &msg)?;
        let ml = key.mldsa.sign_raw(SOURCE_CONTEXT, &msg)?;
        Ok(Self {
            span_count,
            span_root,
            ed25519_key_id: key.ed25519.verifier().key_id(),
            ed25519: ed
                .try_into()
                .map_err(|_| KeyError::Message("Ed25519 signature length".into()))?,
            mldsa_key_id: key.mldsa.verifier().key_id(),
            mldsa: ml,
        })
    }

    /// The wire form (for gRPC metadata, base64 it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SOURCE_SIG_LEN);
        out.extend_from_slice(&self.span_count.to_be_bytes());
        out.extend_from_slice(&self.span_root);
        out.extend_from_slice(&self.ed25519_key_id.to_be_bytes());
        out.extend_from_slice(&self.ed25519);
        out.extend_from_slice(&self.mldsa_key_id.to_be_bytes());
        out.extend_from_slice(&self.mldsa);
        out
    }

    /// Parses the wire form.
    pub fn decode(b: &[u8]) -> Result<Self, ManifestError> {
        if b.len() != SOURCE_SIG_LEN {
            return Err(ManifestError::Field {
                field: "source_signature",
                why: "wrong length",
            });
        }
        let mut r = Reader { b, pos: 0 };
        Ok(Self {
            span_count: r.u32("source_signature.span_count")?,
            span_root: r.array("source_signature.span_root")?,
            ed25519_key_id: r.u32("source_signature.ed25519_key_id")?,
            ed25519: r.array("source_signature.ed25519")?,
            mldsa_key_id: r.u32("source_signature.mldsa_key_id")?,
            mldsa: r
                .take(MLDSA44_SIGNATURE_LEN, "source_signature.mldsa")?
                .to_vec(),
        })
    }

    /// Verifies both signatures for the given source, sequence and time, with the source's
    /// registered keys. Key IDs must match.
    pub fn verify(
        &self,
        key: &SourceVerifier,
        source: &str,
        sequence: u64,
        source_time: u64,
    ) -> Result<(), SigError> {
        if self.ed25519_key_id != key.ed25519.key_id() || self.mldsa_key_id != key.mldsa.key_id() {
            return Err(SigError::Invalid);
        }
        let msg = source_statement(
            source,
            sequence,
            source_time,
            self.span_count,
            &self.span_root,
        );
        key.ed25519
            .verify_raw(SOURCE_CONTEXT, &msg, &self.ed25519)?;
        key.mldsa.verify_raw(SOURCE_CONTEXT, &msg, &self.mldsa)
    }
}

/// The span count and `span_root` a source signs: the RFC 9162 root over the canonical
/// encoding (`sentrace_core::canonical`, v1) of the spans *as sent*, in request order
/// (resource, then scope, then span). The server recomputes it from the decoded request
/// before any stage changes the spans. One buffer is reused for every span.
#[cfg(feature = "core")]
pub fn batch_span_root(
    resource_spans: &[sentrace_core::proto::trace::v1::ResourceSpans],
) -> (u64, Hash) {
    use sentrace_core::canonical::ResourceEncoder;
    let mut range = crate::merkle::CompactRange::new();
    let mut count = 0u64;
    let mut buf = Vec::with_capacity(1024);
    for rs in resource_spans {
        let encoder = ResourceEncoder::new(rs);
        for ss in &rs.scope_spans {
            let scope = ResourceEncoder::scope(ss);
            for span in &ss.spans {
                buf.clear();
                encoder.encode_into(&mut buf, ss, &scope, span);
                range.push_hash(leaf_hash(&buf));
                count = count.saturating_add(1);
            }
        }
    }
    (count, range.root())
}

/// Signs a whole export request as a source (a client or an edge agent): computes
/// [`batch_span_root`] and signs the statement.
#[cfg(feature = "core")]
pub fn sign_batch(
    key: &SourceSigner,
    source: &str,
    sequence: u64,
    sent_at_unix_nanos: u64,
    resource_spans: &[sentrace_core::proto::trace::v1::ResourceSpans],
) -> Result<SourceSignature, KeyError> {
    let (count, root) = batch_span_root(resource_spans);
    let count = u32::try_from(count)
        .map_err(|_| KeyError::Message("a batch holds at most 2^32 - 1 spans".into()))?;
    SourceSignature::sign(key, source, sequence, sent_at_unix_nanos, count, root)
}

impl BatchManifest {
    /// The manifest of a batch about to be sealed: the source is the signing source's
    /// `source_id` if there is one, else the authenticated principal; the source signature
    /// is decoded from `SourceInfo::signature` when present.
    #[cfg(feature = "core")]
    pub fn from_context(
        origin: Origin,
        ctx: &sentrace_core::BatchContext,
        span_count: u32,
        span_root: Hash,
    ) -> Result<Self, ManifestError> {
        let (source, sequence, source_time, signature) = match &ctx.source {
            Some(s) => (
                s.source_id.clone(),
                s.sequence,
                s.sent_at_unix_nanos,
                if s.signature.is_empty() {
                    None
                } else {
                    Some(SourceSignature::decode(&s.signature)?)
                },
            ),
            None => (ctx.identity.principal.clone(), 0, 0, None),
        };
        if source.len() > MAX_SOURCE_LEN {
            return Err(ManifestError::Field {
                field: "source",
                why: "longer than 255 bytes",
            });
        }
        Ok(Self {
            origin,
            source,
            sequence,
            source_time_unix_nanos: source_time,
            receive_time_unix_nanos: ctx.received_at_unix_nanos,
            span_count,
            span_root,
            policy_digest: ctx.policy_digest,
            source_signature: signature,
        })
    }

    /// The binary encoding (the log entry).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.push(MANIFEST_VERSION);
        put_str(&mut out, self.origin.as_str());
        put_str(&mut out, &self.source);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.source_time_unix_nanos.to_be_bytes());
        out.extend_from_slice(&self.receive_time_unix_nanos.to_be_bytes());
        out.extend_from_slice(&self.span_count.to_be_bytes());
        out.extend_from_slice(&self.span_root);
        match &self.policy_digest {
            Some(d) => {
                out.push(1);
                out.extend_from_slice(d);
            }
            None => out.push(0),
        }
        match &self.source_signature {
            Some(s) => {
                out.push(1);
                let enc = s.encode();
                out.extend_from_slice(&(enc.len() as u16).to_be_bytes());
                out.extend_from_slice(&enc);
            }
            None => out.push(0),
        }
        out
    }

    /// Decodes and validates an encoded manifest.
    pub fn decode(b: &[u8]) -> Result<Self, ManifestError> {
        if b.len() > MAX_MANIFEST_SIZE {
            return Err(ManifestError::TooLarge { len: b.len() });
        }
        let mut r = Reader { b, pos: 0 };
        let version = r.u8("version")?;
        if version != MANIFEST_VERSION {
            return Err(ManifestError::Version(version));
        }
        let origin = r.string("origin")?;
        let origin = Origin::new(&origin).map_err(|_| ManifestError::Field {
            field: "origin",
            why: "not a valid origin",
        })?;
        let source = r.string("source")?;
        if source.len() > MAX_SOURCE_LEN {
            return Err(ManifestError::Field {
                field: "source",
                why: "longer than 255 bytes",
            });
        }
        let m = Self {
            origin,
            source,
            sequence: r.u64("sequence")?,
            source_time_unix_nanos: r.u64("source_time")?,
            receive_time_unix_nanos: r.u64("receive_time")?,
            span_count: r.u32("span_count")?,
            span_root: r.array("span_root")?,
            policy_digest: match r.flag("policy_flag")? {
                true => Some(r.array("policy_digest")?),
                false => None,
            },
            source_signature: match r.flag("signature_flag")? {
                true => {
                    let len = r.u16("signature_length")? as usize;
                    Some(SourceSignature::decode(r.take(len, "source_signature")?)?)
                }
                false => None,
            },
        };
        if r.pos != b.len() {
            return Err(ManifestError::Trailing(b.len() - r.pos));
        }
        Ok(m)
    }

    /// The log leaf hash of this manifest, `leaf_hash(encode())`.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.encode())
    }

    /// Verifies the source signature against the source's keys. `Ok(None)` for an unsigned
    /// batch; `Ok(Some(changed))` tells whether the sealed spans differ from what the
    /// source signed (count or root).
    pub fn verify_source(&self, key: &SourceVerifier) -> Result<Option<bool>, SigError> {
        let Some(sig) = &self.source_signature else {
            return Ok(None);
        };
        sig.verify(
            key,
            &self.source,
            self.sequence,
            self.source_time_unix_nanos,
        )?;
        Ok(Some(
            sig.span_count != self.span_count || sig.span_root != self.span_root,
        ))
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Lengths are bounded (origin ≤ 255, source ≤ 255) by the validating constructors;
    // clamp anyway so encode never writes a length that disagrees with the bytes.
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// A bounds-checked big-endian reader.
pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<&'a [u8], ManifestError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(ManifestError::Truncated { field })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ManifestError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, ManifestError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, ManifestError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, ManifestError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, ManifestError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }
    fn flag(&mut self, field: &'static str) -> Result<bool, ManifestError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ManifestError::Field {
                field,
                why: "flag is neither 0 nor 1",
            }),
        }
    }
    fn string(&mut self, field: &'static str) -> Result<String, ManifestError> {
        let len = self.u16(field)? as usize;
        let b = self.take(len, field)?;
        String::from_utf8(b.to_vec()).map_err(|_| ManifestError::Field {
            field,
            why: "not UTF-8",
        })
    }
}

#[cfg(test)]
mod tests;
