//! Note signing keys and verifier keys: Ed25519 (RFC 8032) and ML-DSA-44 (FIPS 204).
//!
//! Signature types (the identifier byte of c2sp.org/signed-note, which also enters the
//! key ID):
//!
//! | type | algorithm | signed message | signature bytes |
//! |---|---|---|---|
//! | `0x01` | Ed25519 | the note text (signed-note §Ed25519) | 64 |
//! | `0x04` | Ed25519 | `cosignature/v1` message (c2sp.org/tlog-cosignature) | 8 (timestamp) + 64 |
//! | `0x06` | ML-DSA-44 | `subtree/v1` `cosigned_message` (c2sp.org/tlog-cosignature) | 8 (timestamp) + 2420 |
//!
//! C2SP specifies ML-DSA for notes only through `tlog-cosignature`, and there it chose
//! ML-DSA-44 (NIST level 2) with type `0x06`. A Sentrace log therefore signs its own
//! checkpoints with ML-DSA-44 in exactly that format, with `start = 0`, `end = size`, the
//! log's key name as `cosigner_name` and a non-zero timestamp; witnesses use the same format.
//! As the spec says, the ML-DSA-44 message does not cover checkpoint extension lines;
//! Sentrace checkpoints carry none.
//!
//! Keys are derived from 32-byte seeds (RFC 8032 secret key; FIPS 204 `ξ`), so a secret key
//! serializes as its seed, in Go's `PRIVATE+KEY+<name>+<hex id>+<base64(type || seed)>`
//! form. Verifier keys use the `vkey` form `<name>+<hex id>+<base64(type || public key)>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use ml_dsa::{EncodedVerifyingKey, Keypair as _, MlDsa44};
use zeroize::Zeroizing;

use crate::checkpoint::Checkpoint;
use crate::note::{KeyName, NoteError, NoteSignature, key_id};

/// Signature type `0x01`: Ed25519 over the note text.
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type `0x04`: timestamped Ed25519 cosignature (`cosignature/v1`).
pub const TYPE_COSIG_ED25519: u8 = 0x04;
/// Signature type `0x06`: timestamped ML-DSA-44 subtree cosignature (`subtree/v1`).
pub const TYPE_MLDSA44: u8 = 0x06;

/// ML-DSA-44 public key length (FIPS 204 Table 2).
pub const MLDSA44_PUBLIC_KEY_LEN: usize = 1312;
/// ML-DSA-44 signature length (FIPS 204 Table 2).
pub const MLDSA44_SIGNATURE_LEN: usize = 2420;
const SUBTREE_LABEL: &[u8; 12] = b"subtree/v1\n\0";
/// The largest timestamp a cosignature may carry (tlog-cosignature: at most 2^63 - 1).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// A key or signature problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key string is not in the expected form.
    #[error("key string is malformed: {0}")]
    Malformed(&'static str),
    /// The key name is invalid.
    #[error(transparent)]
    Name(#[from] NoteError),
    /// The signature type byte is not one this crate implements.
    #[error("signature type {0:#04x} is not supported (0x01, 0x04, 0x06 are)")]
    UnsupportedType(u8),
    /// The key ID in the string does not match the key.
    #[error("key ID {claimed:08x} does not match the key (expected {actual:08x})")]
    KeyIdMismatch {
        /// The ID written in the string.
        claimed: u32,
        /// The ID computed from name, type and key.
        actual: u32,
    },
    /// The public key bytes are not a valid key.
    #[error("public key is invalid for its algorithm")]
    BadPublicKey,
    /// The operating system RNG failed.
    #[error("the operating system random number generator failed")]
    Rng,
    /// A message to be signed does not fit the format (for `0x06`, the note text must be a
    /// checkpoint with an origin of at most 255 bytes).
    #[error("cannot build the signed message: {0}")]
    Message(String),
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// The signature has the wrong length for its type.
    #[error("signature is {len} bytes; type {sig_type:#04x} needs {expected}")]
    Length {
        /// The type.
        sig_type: u8,
        /// Bytes found.
        len: usize,
        /// Bytes needed.
        expected: usize,
    },
    /// The cosignature timestamp exceeds 2^63 - 1.
    #[error("cosignature timestamp is above 2^63 - 1")]
    Timestamp,
    /// The signed message could not be rebuilt from the note text.
    #[error("note text is not a checkpoint: {0}")]
    NotCheckpoint(String),
    /// The cryptographic check failed.
    #[error("signature does not verify")]
    Invalid,
}

/// What a key signs: its signature type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SigKind {
    /// `0x01`: Ed25519 over the note text.
    Ed25519,
    /// `0x04`: Ed25519 `cosignature/v1`.
    Ed25519Cosignature,
    /// `0x06`: ML-DSA-44 `subtree/v1`.
    MlDsa44,
}

impl SigKind {
    /// The signature type byte.
    pub fn type_byte(self) -> u8 {
        match self {
            SigKind::Ed25519 => TYPE_ED25519,
            SigKind::Ed25519Cosignature => TYPE_COSIG_ED25519,
            SigKind::MlDsa44 => TYPE_MLDSA44,
        }
    }

    /// The kind for a type byte.
    pub fn from_type_byte(b: u8) -> Result<Self, KeyError> {
        match b {
            TYPE_ED25519 => Ok(SigKind::Ed25519),
            TYPE_COSIG_ED25519 => Ok(SigKind::Ed25519Cosignature),
            TYPE_MLDSA44 => Ok(SigKind::MlDsa44),
            other => Err(KeyError::UnsupportedType(other)),
        }
    }

    /// True for ML-DSA.
    pub fn is_post_quantum(self) -> bool {
        self == SigKind::MlDsa44
    }
}

/// The `cosignature/v1` message (tlog-cosignature, Ed25519 signed message).
pub fn cosignature_v1_message(timestamp: u64, note_text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{note_text}").into_bytes()
}

/// The `subtree/v1` `cosigned_message` (tlog-cosignature, ML-DSA-44 signed message), in the
/// RFC 8446 §3 presentation: fixed label, `opaque<1..2^8-1>` vectors, big-endian integers.
pub fn subtree_v1_message(
    cosigner: &KeyName,
    timestamp: u64,
    origin: &str,
    start: u64,
    end: u64,
    hash: &[u8; 32],
) -> Result<Vec<u8>, KeyError> {
    let name = cosigner.as_str().as_bytes();
    let origin = origin.as_bytes();
    if origin.is_empty() || origin.len() > 255 || name.len() > 255 {
        return Err(KeyError::Message(
            "origin and cosigner name must be 1 to 255 bytes".into(),
        ));
    }
    let mut m = Vec::with_capacity(12 + 2 + name.len() + origin.len() + 8 * 3 + 32);
    m.extend_from_slice(SUBTREE_LABEL);
    m.push(name.len() as u8);
    m.extend_from_slice(name);
    m.extend_from_slice(&timestamp.to_be_bytes());
    m.push(origin.len() as u8);
    m.extend_from_slice(origin);
    m.extend_from_slice(&start.to_be_bytes());
    m.extend_from_slice(&end.to_be_bytes());
    m.extend_from_slice(hash);
    Ok(m)
}

fn checkpoint_message(name: &KeyName, timestamp: u64, text: &str) -> Result<Vec<u8>, String> {
    let cp = Checkpoint::parse(text).map_err(|e| e.to_string())?;
    subtree_v1_message(name, timestamp, cp.origin.as_str(), 0, cp.size, &cp.root)
        .map_err(|e| e.to_string())
}

enum Secret {
    Ed(Box<ed25519_dalek::SigningKey>),
    Ml(Box<ml_dsa::SigningKey<MlDsa44>>),
}

/// A note signing key: a key name, a signature type and the secret seed.
pub struct NoteSigner {
    name: KeyName,
    kind: SigKind,
    seed: [u8; 32],
    secret: Secret,
    verifier: VerifierKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("key_id", &format_args!("{:08x}", self.verifier.key_id))
            .finish_non_exhaustive()
    }
}

impl Drop for NoteSigner {
    fn drop(&mut self) {
        // The dalek and ml-dsa keys zeroize themselves; wipe our copy of the seed.
        zeroize::Zeroize::zeroize(&mut self.seed);
    }
}

/// 32 bytes from the operating system RNG.
pub fn random_seed() -> Result<[u8; 32], KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| KeyError::Rng)?;
    Ok(seed)
}

impl NoteSigner {
    /// A key derived from a 32-byte seed.
    pub fn from_seed(name: KeyName, kind: SigKind, seed: [u8; 32]) -> Self {
        let (secret, public) = match kind {
            SigKind::Ed25519 | SigKind::Ed25519Cosignature => {
                let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
                let pk = PublicKey::Ed(sk.verifying_key());
                (Secret::Ed(Box::new(sk)), pk)
            }
            SigKind::MlDsa44 => {
                let kp = ml_dsa::SigningKey::<MlDsa44>::from_seed(&seed.into());
                let pk = PublicKey::Ml(Box::new(kp.verifying_key().clone()));
                (Secret::Ml(Box::new(kp)), pk)
            }
        };
        let verifier = VerifierKey::new(name.clone(), kind, public);
        Self {
            name,
            kind,
            seed,
            secret,
            verifier,
        }
    }

    /// A new random key.
    pub fn generate(name: KeyName, kind: SigKind) -> Result<Self, KeyError> {
        Ok(Self::from_seed(name, kind, random_seed()?))
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The signature type.
    pub fn kind(&self) -> SigKind {
        self.kind
    }

    /// The public half.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Signs a note text. `timestamp` (POSIX seconds) is used by the timestamped types
    /// (`0x04`, `0x06`) and ignored by `0x01`. For `0x06` the text must be a checkpoint.
    pub fn sign_note(&self, text: &str, timestamp: u64) -> Result<NoteSignature, KeyError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(KeyError::Message("timestamp above 2^63 - 1".into()));
        }
        let signature = match (self.kind, &self.secret) {
            (SigKind::Ed25519, Secret::Ed(sk)) => sk.sign(text.as_bytes()).to_bytes().to_vec(),
            (SigKind::Ed25519Cosignature, Secret::Ed(sk)) => {
                let mut out = timestamp.to_be_bytes().to_vec();
                let msg = cosignature_v1_message(timestamp, text);
                out.extend_from_slice(&sk.sign(&msg).to_bytes());
                out
            }
            (SigKind::MlDsa44, Secret::Ml(sk)) => {
                let msg =
                    checkpoint_message(&self.name, timestamp, text).map_err(KeyError::Message)?;
                let sig = sk
                    .expanded_key()
                    .sign_deterministic(&msg, &[])
                    .map_err(|_| KeyError::Message("ML-DSA signing failed".into()))?;
                let mut out = timestamp.to_be_bytes().to_vec();
                out.extend_from_slice(sig.encode().as_slice());
                out
            }
            _ => return Err(KeyError::Message("key kind and secret disagree".into())),
        };
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.verifier.key_id,
            signature,
        })
    }

    /// Signs an arbitrary message with domain-separation `context` (not a note). ML-DSA
    /// uses `context` as the FIPS 204 context string; Ed25519 signs `context || msg`.
    pub fn sign_raw(&self, context: &[u8], msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.secret {
            Secret::Ed(sk) => {
                let mut m = context.to_vec();
                m.extend_from_slice(msg);
                Ok(sk.sign(&m).to_bytes().to_vec())
            }
            Secret::Ml(sk) => sk
                .expanded_key()
                .sign_deterministic(msg, context)
                .map(|s| s.encode().as_slice().to_vec())
                .map_err(|_| KeyError::Message("ML-DSA signing failed".into())),
        }
    }

    /// The secret key string `PRIVATE+KEY+<name>+<hex id>+<base64(type || seed)>`. Keep
    /// it wrapped (the store encrypts it under the master key). Zeroized on drop, like
    /// every intermediate copy of the seed made here.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(33));
        raw.push(self.kind.type_byte());
        raw.extend_from_slice(&self.seed);
        let b64 = Zeroizing::new(STANDARD.encode(&*raw));
        let mut out = Zeroizing::new(String::with_capacity(64 + b64.len()));
        out.push_str("PRIVATE+KEY+");
        out.push_str(self.name.as_str());
        out.push_str(&format!("+{:08x}+", self.verifier.key_id));
        out.push_str(&b64);
        out
    }

    /// Parses a secret key string and checks its key ID.
    pub fn from_secret_string(s: &str) -> Result<Self, KeyError> {
        let rest = s
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(KeyError::Malformed("no PRIVATE+KEY+ prefix"))?;
        let (name, id, raw) = split_key(rest)?;
        if raw.len() != 33 {
            return Err(KeyError::Malformed("seed is not 32 bytes"));
        }
        let kind = SigKind::from_type_byte(raw[0])?;
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&raw[1..]);
        let signer = Self::from_seed(name, kind, *seed);
        if signer.verifier.key_id != id {
            return Err(KeyError::KeyIdMismatch {
                claimed: id,
                actual: signer.verifier.key_id,
            });
        }
        Ok(signer)
    }
}

/// Splits `<name>+<hex id>+<base64>` into its parts.
fn split_key(s: &str) -> Result<(KeyName, u32, Zeroizing<Vec<u8>>), KeyError> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(KeyError::Malformed("expected <name>+<hex id>+<base64>"));
    };
    let name = KeyName::new(name)?;
    if id.len() != 8 {
        return Err(KeyError::Malformed("key ID is not 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| KeyError::Malformed("key ID is not hex"))?;
    // Zeroized: for a secret key string, these are the seed's bytes.
    let raw = Zeroizing::new(
        STANDARD
            .decode(b64)
            .map_err(|_| KeyError::Malformed("key is not standard base64"))?,
    );
    if raw.is_empty() {
        return Err(KeyError::Malformed("empty key"));
    }
    Ok((name, id, raw))
}

/// A public key.
#[derive(Clone, PartialEq)]
enum PublicKey {
    Ed(ed25519_dalek::VerifyingKey),
    Ml(Box<ml_dsa::VerifyingKey<MlDsa44>>),
}

impl PublicKey {
    fn bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed(k) => k.to_bytes().to_vec(),
            PublicKey::Ml(k) => k.encode().as_slice().to_vec(),
        }
    }
}

/// A verifier key: name, signature type, key ID and public key.
#[derive(Clone)]
pub struct VerifierKey {
    name: KeyName,
    kind: SigKind,
    key_id: u32,
    public: PublicKey,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VerifierKey({}+{:08x}, {:?})",
            self.name, self.key_id, self.kind
        )
    }
}

impl PartialEq for VerifierKey {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.name == other.name && self.public == other.public
    }
}

impl VerifierKey {
    fn new(name: KeyName, kind: SigKind, public: PublicKey) -> Self {
        let key_id = key_id(&name, kind.type_byte(), &public.bytes());
        Self {
            name,
            kind,
            key_id,
            public,
        }
    }

    /// Parses a `vkey` string `<name>+<hex id>+<base64(type || public key)>`.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let (name, id, raw) = split_key(vkey.trim())?;
        let kind = SigKind::from_type_byte(raw[0])?;
        let pk = &raw[1..];
        let public = match kind {
            SigKind::Ed25519 | SigKind::Ed25519Cosignature => {
                let b: [u8; 32] = pk.try_into().map_err(|_| KeyError::BadPublicKey)?;
                PublicKey::Ed(
                    ed25519_dalek::VerifyingKey::from_bytes(&b)
                        .map_err(|_| KeyError::BadPublicKey)?,
                )
            }
            SigKind::MlDsa44 => {
                let enc = EncodedVerifyingKey::<MlDsa44>::try_from(pk)
                    .map_err(|_| KeyError::BadPublicKey)?;
                PublicKey::Ml(Box::new(ml_dsa::VerifyingKey::decode(&enc)))
            }
        };
        let key = Self::new(name, kind, public);
        if key.key_id != id {
            return Err(KeyError::KeyIdMismatch {
                claimed: id,
                actual: key.key_id,
            });
        }
        Ok(key)
    }

    /// The `vkey` string.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![self.kind.type_byte()];
        raw.extend_from_slice(&self.public.bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(raw))
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature type.
    pub fn kind(&self) -> SigKind {
        self.kind
    }

    /// True if the signature line names this key (name and key ID both match).
    pub fn matches(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_id == self.key_id
    }

    /// Verifies signature bytes (after the key ID) over a note text. Returns the timestamp
    /// for the timestamped types, `None` for `0x01`.
    pub fn verify_note(&self, text: &str, sig: &[u8]) -> Result<Option<u64>, SigError> {
        let split_ts = |expected: usize| -> Result<(u64, &[u8]), SigError> {
            if sig.len() != 8 + expected {
                return Err(SigError::Length {
                    sig_type: self.kind.type_byte(),
                    len: sig.len(),
                    expected: 8 + expected,
                });
            }
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&sig[..8]);
            let ts = u64::from_be_bytes(ts);
            if ts > MAX_TIMESTAMP {
                return Err(SigError::Timestamp);
            }
            Ok((ts, &sig[8..]))
        };
        match (&self.public, self.kind) {
            (PublicKey::Ed(pk), SigKind::Ed25519) => {
                verify_ed(pk, text.as_bytes(), sig)?;
                Ok(None)
            }
            (PublicKey::Ed(pk), SigKind::Ed25519Cosignature) => {
                let (ts, s) = split_ts(64)?;
                verify_ed(pk, &cosignature_v1_message(ts, text), s)?;
                Ok(Some(ts))
            }
            (PublicKey::Ml(pk), SigKind::MlDsa44) => {
                let (ts, s) = split_ts(MLDSA44_SIGNATURE_LEN)?;
                let msg =
                    checkpoint_message(&self.name, ts, text).map_err(SigError::NotCheckpoint)?;
                verify_ml(pk, &[], &msg, s)?;
                Ok(Some(ts))
            }
            _ => Err(SigError::Invalid),
        }
    }

    /// Verifies a signature made by [`NoteSigner::sign_raw`].
    pub fn verify_raw(&self, context: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), SigError> {
        match &self.public {
            PublicKey::Ed(pk) => {
                let mut m = context.to_vec();
                m.extend_from_slice(msg);
                verify_ed(pk, &m, sig)
            }
            PublicKey::Ml(pk) => verify_ml(pk, context, msg, sig),
        }
    }
}

fn verify_ed(pk: &ed25519_dalek::VerifyingKey, msg: &[u8], sig: &[u8]) -> Result<(), SigError> {
    let b: [u8; 64] = sig.try_into().map_err(|_| SigError::Length {
        sig_type: TYPE_ED25519,
        len: sig.len(),
        expected: 64,
    })?;
    pk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&b))
        .map_err(|_| SigError::Invalid)
}

fn verify_ml(
    pk: &ml_dsa::VerifyingKey<MlDsa44>,
    ctx: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> Result<(), SigError> {
    let sig = ml_dsa::Signature::<MlDsa44>::try_from(sig).map_err(|_| SigError::Length {
        sig_type: TYPE_MLDSA44,
        len: sig.len(),
        expected: MLDSA44_SIGNATURE_LEN,
    })?;
    if pk.verify_with_context(msg, ctx, &sig) {
        Ok(())
    } else {
        Err(SigError::Invalid)
    }
}

#[cfg(test)]
mod tests;
