//! C2SP `tlog-checkpoint` (c2sp.org/tlog-checkpoint@v1.0.0) bodies, signed as C2SP
//! `signed-note`s with the log's hybrid key (Ed25519 type `0x01` and ML-DSA-44 type `0x06`),
//! and the verifier policy that opens them.
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! [extension lines]
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::keys::{KeyError, NoteSigner, SigError, SigKind, VerifierKey};
use crate::merkle::Hash;
use crate::note::{KeyName, Note, NoteError};

/// The longest checkpoint body accepted, in bytes.
pub const MAX_CHECKPOINT_TEXT: usize = 8 * 1024;
/// The most extension lines accepted.
pub const MAX_EXTENSIONS: usize = 16;
/// The longest origin accepted, in bytes (the ML-DSA-44 message holds it in an
/// `opaque<1..2^8-1>`).
pub const MAX_ORIGIN: usize = 255;

/// Why a checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note around it did not parse.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The body breaks the tlog-checkpoint format.
    #[error("checkpoint body line {line}: {why}")]
    Body {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// The origin is not the one expected.
    #[error("checkpoint origin {found:?} is not the expected {expected:?}")]
    WrongOrigin {
        /// The origin in the checkpoint.
        found: String,
        /// The origin the verifier expects.
        expected: String,
    },
    /// A signature from a trusted key did not verify (signed-note: reject the whole note).
    #[error("signature by trusted key {name} ({kind:?}) does not verify: {err}")]
    BadSignature {
        /// The key's name.
        name: KeyName,
        /// Its type.
        kind: SigKind,
        /// Why.
        err: SigError,
    },
    /// No signature from any trusted log key is present.
    #[error("no signature from a trusted log key")]
    NoTrustedSignature,
    /// The policy requires a signature type that is missing.
    #[error("policy requires a {0:?} signature from the log, and there is none")]
    MissingRequired(SigKind),
    /// Fewer valid witness cosignatures than the quorum.
    #[error(
        "{have} valid witness cosignatures (from: {}); the policy requires {need} (no valid cosignature from: {})",
        names(.cosigned), names(.missing)
    )]
    Quorum {
        /// Valid cosignatures from distinct witnesses.
        have: usize,
        /// The quorum.
        need: usize,
        /// The trusted witnesses whose cosignatures verified.
        cosigned: Vec<String>,
        /// The trusted witnesses with no valid cosignature on the checkpoint.
        missing: Vec<String>,
    },
}

/// Names for an error message: comma-separated, or `none`.
fn names(n: &[String]) -> String {
    if n.is_empty() {
        "none".into()
    } else {
        n.join(", ")
    }
}

/// A log origin: the checkpoint's first line (for Sentrace: node and tenant).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Origin(String);

impl Origin {
    /// Validates an origin: 1 to 255 bytes, printable, no spaces.
    pub fn new(s: &str) -> Result<Self, CheckpointError> {
        let bad = |why| CheckpointError::Body { line: 1, why };
        if s.is_empty() || s.len() > MAX_ORIGIN {
            return Err(bad("origin must be 1 to 255 bytes"));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("origin holds a space or control character"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The conventional origin of a Sentrace log: `<node>/<tenant>`.
    #[cfg(feature = "core")]
    pub fn for_tenant(
        node: &str,
        tenant: &sentrace_core::TenantId,
    ) -> Result<Self, CheckpointError> {
        Self::new(&format!("{node}/{}", tenant.as_str()))
    }

    /// The origin as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checkpoint body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: Origin,
    /// The tree size.
    pub size: u64,
    /// The RFC 9162 root hash of the tree of `size` leaves.
    pub root: Hash,
    /// Extension lines (without newlines). Sentrace writes none.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: Origin, size: u64, root: Hash) -> Self {
        Self {
            origin,
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// Parses a checkpoint body (a note text, ending in a newline).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = |line, why| CheckpointError::Body { line, why };
        if text.len() > MAX_CHECKPOINT_TEXT {
            return Err(bad(0, "checkpoint body is larger than 8 KiB"));
        }
        let body = text.strip_suffix('\n').ok_or(bad(0, "no final newline"))?;
        let mut lines = body.split('\n');
        let origin = Origin::new(lines.next().unwrap_or(""))?;
        let size = lines.next().ok_or(bad(2, "missing tree size"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad(2, "tree size is not a decimal without leading zeros"));
        }
        let size = size
            .parse::<u64>()
            .map_err(|_| bad(2, "tree size does not fit 64 bits"))?;
        let root = lines.next().ok_or(bad(3, "missing root hash"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(bad(3, "root hash is not 32 bytes of standard base64"))?;
        let mut extensions = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(bad(4 + i, "empty extension line"));
            }
            if extensions.len() == MAX_EXTENSIONS {
                return Err(bad(4 + i, "too many extension lines"));
            }
            extensions.push(line.to_owned());
        }
        Ok(Self {
            origin,
            size,
            root,
            extensions,
        })
    }

    /// The checkpoint body.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }
}

/// A log's hybrid signing key: Ed25519 (`0x01`) and ML-DSA-44 (`0x06`) under one name.
#[derive(Debug)]
pub struct LogSigner {
    /// The Ed25519 key.
    pub ed25519: NoteSigner,
    /// The ML-DSA-44 key.
    pub mldsa: NoteSigner,
}

impl LogSigner {
    /// A new random key pair named `name` (conventionally the origin).
    pub fn generate(name: &KeyName) -> Result<Self, KeyError> {
        Ok(Self {
            ed25519: NoteSigner::generate(name.clone(), SigKind::Ed25519)?,
            mldsa: NoteSigner::generate(name.clone(), SigKind::MlDsa44)?,
        })
    }

    /// A key pair from two seeds (tests, or keys re-derived from a wrapped secret).
    pub fn from_seeds(name: &KeyName, ed_seed: [u8; 32], ml_seed: [u8; 32]) -> Self {
        Self {
            ed25519: NoteSigner::from_seed(name.clone(), SigKind::Ed25519, ed_seed),
            mldsa: NoteSigner::from_seed(name.clone(), SigKind::MlDsa44, ml_seed),
        }
    }

    /// Signs a checkpoint with both keys. `timestamp` (POSIX seconds) goes into the
    /// ML-DSA-44 `subtree/v1` message.
    pub fn sign(&self, checkpoint: &Checkpoint, timestamp: u64) -> Result<Note, KeyError> {
        let text = checkpoint.to_text();
        let mut note = Note::new(text.clone())?;
        note.signatures
            .push(self.ed25519.sign_note(&text, timestamp)?);
        note.signatures
            .push(self.mldsa.sign_note(&text, timestamp)?);
        Ok(note)
    }

    /// The public keys.
    pub fn verifier(&self) -> LogVerifier {
        LogVerifier {
            ed25519: self.ed25519.verifier().clone(),
            mldsa: self.mldsa.verifier().clone(),
        }
    }

    /// Both secret key strings, one per line. Keep wrapped. Zeroized on drop.
    pub fn to_secret_string(&self) -> zeroize::Zeroizing<String> {
        let mut out = zeroize::Zeroizing::new(String::with_capacity(4096));
        for k in [&self.ed25519, &self.mldsa] {
            out.push_str(&k.to_secret_string());
            out.push('\n');
        }
        out
    }

    /// Parses [`LogSigner::to_secret_string`] output.
    pub fn from_secret_string(s: &str) -> Result<Self, KeyError> {
        let mut ed = None;
        let mut ml = None;
        for line in s.lines().filter(|l| !l.trim().is_empty()) {
            let k = NoteSigner::from_secret_string(line)?;
            match k.kind() {
                SigKind::Ed25519 => ed = Some(k),
                SigKind::MlDsa44 => ml = Some(k),
                SigKind::Ed25519Cosignature => {
                    return Err(KeyError::Malformed("a log key cannot be a cosignature key"));
                }
            }
        }
        match (ed, ml) {
            (Some(ed25519), Some(mldsa)) if ed25519.name() == mldsa.name() => {
                Ok(Self { ed25519, mldsa })
            }
            _ => Err(KeyError::Malformed(
                "expected one Ed25519 and one ML-DSA-44 key with the same name",
            )),
        }
    }
}

/// A log's public keys.
#[derive(Debug, Clone, PartialEq)]
pub struct LogVerifier {
    /// The Ed25519 (`0x01`) key.
    pub ed25519: VerifierKey,
    /// The ML-DSA-44 (`0x06`) key.
    pub mldsa: VerifierKey,
}

impl LogVerifier {
    /// Both vkeys separated by a space: the `--key` argument of `sentrace verify-proof`.
    pub fn to_vkeys(&self) -> String {
        format!("{} {}", self.ed25519.to_vkey(), self.mldsa.to_vkey())
    }

    /// Parses whitespace-separated vkeys: one Ed25519 and one ML-DSA-44 key.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let mut ed = None;
        let mut ml = None;
        for v in s.split_whitespace() {
            let k = VerifierKey::parse(v)?;
            match k.kind() {
                SigKind::Ed25519 => ed = Some(k),
                SigKind::MlDsa44 => ml = Some(k),
                SigKind::Ed25519Cosignature => {
                    return Err(KeyError::Malformed("a log key cannot be a cosignature key"));
                }
            }
        }
        match (ed, ml) {
            (Some(ed25519), Some(mldsa)) => Ok(Self { ed25519, mldsa }),
            _ => Err(KeyError::Malformed(
                "expected an Ed25519 vkey and an ML-DSA-44 vkey",
            )),
        }
    }
}

/// Which log signatures a verifier requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Require {
    /// The Ed25519 signature must verify.
    Ed25519,
    /// The ML-DSA-44 signature must verify.
    MlDsa,
    /// Both must verify (the default).
    #[default]
    Both,
}

/// How checkpoints are opened.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    /// The log's keys.
    pub log: LogVerifier,
    /// Which log signatures are required.
    pub require: Require,
    /// The expected origin; `None` accepts any origin signed by the log key.
    pub origin: Option<Origin>,
    /// Trusted witness cosigner keys (`0x04` or `0x06`).
    pub witnesses: Vec<VerifierKey>,
    /// How many distinct witnesses (by name) must have cosigned.
    pub quorum: usize,
}

impl CheckpointPolicy {
    /// A policy that requires both log signatures and no witnesses.
    pub fn new(log: LogVerifier) -> Self {
        Self {
            log,
            require: Require::Both,
            origin: None,
            witnesses: Vec::new(),
            quorum: 0,
        }
    }
}

/// A checkpoint whose signatures satisfied a policy.
#[derive(Debug, Clone)]
pub struct VerifiedCheckpoint {
    /// The body.
    pub checkpoint: Checkpoint,
    /// The whole note, as verified.
    pub note: Note,
    /// The names of the witnesses whose cosignatures verified.
    pub witnesses: Vec<KeyName>,
}

/// Parses and verifies a signed checkpoint under `policy`, following signed-note: lines
/// from unknown keys are ignored, any line from a known key must verify.
pub fn open_checkpoint(
    bytes: &[u8],
    policy: &CheckpointPolicy,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let note = Note::parse(bytes)?;
    let checkpoint = Checkpoint::parse(note.text())?;
    if let Some(expected) = &policy.origin
        && &checkpoint.origin != expected
    {
        return Err(CheckpointError::WrongOrigin {
            found: checkpoint.origin.to_string(),
            expected: expected.to_string(),
        });
    }
    let (mut ed_ok, mut ml_ok) = (false, false);
    let mut witnesses: Vec<KeyName> = Vec::new();
    for sig in &note.signatures {
        let log_keys = [&policy.log.ed25519, &policy.log.mldsa];
        let known = log_keys
            .into_iter()
            .chain(policy.witnesses.iter())
            .find(|k| k.matches(sig));
        let Some(key) = known else { continue };
        key.verify_note(note.text(), &sig.signature)
            .map_err(|err| CheckpointError::BadSignature {
                name: key.name().clone(),
                kind: key.kind(),
                err,
            })?;
        if key == &policy.log.ed25519 {
            ed_ok = true;
        } else if key == &policy.log.mldsa {
            ml_ok = true;
        } else if !witnesses.contains(key.name()) {
            witnesses.push(key.name().clone());
        }
    }
    if !ed_ok && !ml_ok {
        return Err(CheckpointError::NoTrustedSignature);
    }
    if matches!(policy.require, Require::Ed25519 | Require::Both) && !ed_ok {
        return Err(CheckpointError::MissingRequired(SigKind::Ed25519));
    }
    if matches!(policy.require, Require::MlDsa | Require::Both) && !ml_ok {
        return Err(CheckpointError::MissingRequired(SigKind::MlDsa44));
    }
    if witnesses.len() < policy.quorum {
        let mut missing: Vec<String> = Vec::new();
        for w in &policy.witnesses {
            let n = w.name().as_str();
            if !witnesses.iter().any(|c| c.as_str() == n) && !missing.iter().any(|m| m == n) {
                missing.push(n.to_owned());
            }
        }
        return Err(CheckpointError::Quorum {
            have: witnesses.len(),
            need: policy.quorum,
            cosigned: witnesses.iter().map(|w| w.to_string()).collect(),
            missing,
        });
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        note,
        witnesses,
    })
}

/// Diagnosis for a note that failed [`open_checkpoint`]: true if some signature line's
/// bytes verify under a trusted log key although its name or key ID does not match, i.e.
/// a genuine signature whose line was altered (tampering), as opposed to a signature by a
/// foreign key (forgery). Never use this to accept a note.
pub fn has_altered_genuine_signature(bytes: &[u8], log: &LogVerifier) -> bool {
    let Ok(note) = Note::parse(bytes) else {
        return false;
    };
    note.signatures.iter().any(|sig| {
        [&log.ed25519, &log.mldsa]
            .into_iter()
            .any(|k| !k.matches(sig) && k.verify_note(note.text(), &sig.signature).is_ok())
    })
}
