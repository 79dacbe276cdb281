//! AES-256-GCM and HKDF-SHA-256 primitives over aws-lc-rs.
//!
//! - AES-256-GCM: NIST SP 800-38D, 96-bit random nonces (§8.2.2 "RBG-based construction"),
//!   128-bit tags. The sealed form is `nonce (12) ‖ ciphertext ‖ tag (16)`.
//! - HKDF: RFC 5869 with SHA-256, used to derive purpose-bound subkeys from a data key.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};

use crate::StoreError;

/// Key length of AES-256 in bytes.
pub const KEY_LEN: usize = 32;
/// GCM tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// 32 secret bytes that are wiped from memory when dropped and never printed.
#[derive(Clone)]
pub struct Secret32(pub(crate) [u8; KEY_LEN]);

impl Secret32 {
    /// Fresh random bytes from the system CSPRNG.
    pub fn random() -> Result<Self, StoreError> {
        let mut k = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut k).map_err(|_| StoreError::crypto("random key generation"))?;
        Ok(Self(k))
    }

    /// The raw bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for Secret32 {
    fn drop(&mut self) {
        // zeroize's volatile writes: not elided by the optimizer.
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl std::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret32(<redacted>)")
    }
}

/// An AES-256-GCM key ready for use.
pub struct AeadKey(LessSafeKey);

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

impl AeadKey {
    /// Wraps 32 key bytes.
    pub fn new(key: &Secret32) -> Result<Self, StoreError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose())
            .map_err(|_| StoreError::crypto("AES-256-GCM key setup"))?;
        Ok(Self(LessSafeKey::new(unbound)))
    }

    /// Seals `plaintext` with a fresh random nonce and appends
    /// `nonce ‖ ciphertext ‖ tag` to `out`.
    ///
    /// SP 800-38D §8.2.2: with random 96-bit nonces a key must not seal more than 2^32
    /// messages; data keys are rotated per period well below that.
    pub fn seal_append(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| StoreError::crypto("nonce generation"))?;
        out.reserve(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[start..],
            )
            .map_err(|_| StoreError::crypto("AES-256-GCM seal"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens `nonce ‖ ciphertext ‖ tag` and returns the plaintext.
    pub fn open(&self, aad: &[u8], sealed: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(StoreError::crypto(format!(
                "{context}: sealed data too short"
            )));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| StoreError::crypto(format!("{context}: bad nonce")))?;
        let mut buf = body.to_vec();
        let plain_len = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| StoreError::crypto(context.to_string()))?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

struct Len32;

impl KeyType for Len32 {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// HKDF-SHA-256 (RFC 5869) of `ikm` with an all-zero salt (§2.2: "if not provided, it is
/// set to a string of HashLen zeros") and `info` given as parts that are concatenated.
///
/// Step 1 (§2.2, extract): PRK = HMAC-Hash(salt, IKM).
/// Step 2 (§2.3, expand): OKM = first 32 bytes of T(1) = HMAC-Hash(PRK, info ‖ 0x01).
pub fn hkdf32(ikm: &[u8; KEY_LEN], info: &[&[u8]]) -> Result<Secret32, StoreError> {
    let prk = Salt::new(HKDF_SHA256, &[0u8; 32]).extract(ikm);
    let okm = prk
        .expand(info, Len32)
        .map_err(|_| StoreError::crypto("HKDF expand"))?;
    let mut out = [0u8; KEY_LEN];
    okm.fill(&mut out)
        .map_err(|_| StoreError::crypto("HKDF fill"))?;
    Ok(Secret32(out))
}

/// Appends a length-prefixed (u16 big-endian) field, so AAD and HKDF info parts cannot be
/// confused by shifting bytes between neighbouring fields.
pub fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&field[..usize::from(len)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let key = AeadKey::new(&Secret32::random().unwrap()).unwrap();
        let mut sealed = Vec::new();
        key.seal_append(b"aad", b"hello", &mut sealed).unwrap();
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(key.open(b"aad", &sealed, "t").unwrap(), b"hello");
        assert!(key.open(b"aae", &sealed, "t").is_err());
        sealed[13] ^= 1;
        assert!(key.open(b"aad", &sealed, "t").is_err());
        let other = AeadKey::new(&Secret32::random().unwrap()).unwrap();
        sealed[13] ^= 1;
        assert!(other.open(b"aad", &sealed, "t").is_err());
    }

    #[test]
    fn hkdf_matches_rfc5869_built_from_hmac() {
        // Independent construction of RFC 5869 from HMAC-SHA-256 (RustCrypto `hmac`).
        use hmac::{Hmac, Mac};
        type H = Hmac<sha2::Sha256>;
        let ikm = [7u8; 32];
        let mut ext = H::new_from_slice(&[0u8; 32]).unwrap();
        ext.update(&ikm);
        let prk = ext.finalize().into_bytes();
        let mut exp = H::new_from_slice(&prk).unwrap();
        exp.update(b"xy");
        exp.update(&[1u8]);
        let t1 = exp.finalize().into_bytes();
        let ours = hkdf32(&ikm, &[b"x", b"y"]).unwrap();
        assert_eq!(ours.expose().as_slice(), t1.as_slice());
        assert_ne!(hkdf32(&ikm, &[b"xz"]).unwrap().expose(), ours.expose());
    }
}
