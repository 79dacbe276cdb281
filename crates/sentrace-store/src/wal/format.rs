//! WAL segment and record format.
//!
//! ```text
//! segment   = header record*
//! header    = "SNTRWAL1" ‖ segment_id u64
//! record    = len u32 ‖ len_check u32 ‖ body            (len = body length, check = len ^ 0x5A5A5A5A)
//! body      = version u8 (=1) ‖ tenant_len u8 ‖ tenant ‖ key_id u32 ‖ nonce (12) ‖ ciphertext ‖ tag (16)
//! plaintext = crate::entry::encode_entries(spans)
//! AAD       = field("sentrace wal v1") ‖ field(tenant) ‖ segment_id u64 ‖ record_offset u64 ‖ key_id u32
//! ```
//!
//! All integers are big-endian; `field` is a u16 length prefix plus bytes. The record offset
//! is the file offset of its `len` field, so a record copied to another offset, segment or
//! tenant fails authentication (AES-256-GCM, NIST SP 800-38D).

use std::path::{Path, PathBuf};

use sentrace_core::TenantId;

use crate::StoreError;
use crate::crypto::{AeadKey, SEAL_OVERHEAD, put_field};

/// Segment magic and format version.
pub const MAGIC: &[u8; 8] = b"SNTRWAL1";
/// Length of the segment header.
pub const HEADER_LEN: u64 = 16;
/// Length of a record's length prefix and its check word.
pub const PREFIX_LEN: usize = 8;
/// Largest record body accepted by the writer and by replay.
pub const MAX_RECORD_BYTES: usize = 1 << 30;
/// Record body format version.
pub const RECORD_VERSION: u8 = 1;
const LEN_CHECK: u32 = 0x5A5A_5A5A;

/// File name of segment `id`.
pub fn segment_name(id: u64) -> String {
    format!("{id:020}.wal")
}

/// Path of segment `id` in `dir`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(segment_name(id))
}

/// The segment header bytes.
pub fn header(id: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&id.to_be_bytes());
    h
}

/// Segment ids present in `dir`, ascending (files named `<20 digits>.wal`).
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StoreError::io(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".wal")
            && stem.len() == 20
            && let Ok(id) = stem.parse::<u64>()
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// The associated data of a record.
pub fn aad(tenant: &TenantId, segment: u64, offset: u64, key_id: u32) -> Vec<u8> {
    let mut a = Vec::with_capacity(96);
    put_field(&mut a, b"sentrace wal v1");
    put_field(&mut a, tenant.as_str().as_bytes());
    a.extend_from_slice(&segment.to_be_bytes());
    a.extend_from_slice(&offset.to_be_bytes());
    a.extend_from_slice(&key_id.to_be_bytes());
    a
}

/// Appends one sealed record for `plaintext`, located at file offset `offset`, to `out`.
pub fn encode_record(
    out: &mut Vec<u8>,
    key: &AeadKey,
    tenant: &TenantId,
    key_id: u32,
    segment: u64,
    offset: u64,
    plaintext: &[u8],
) -> Result<(), StoreError> {
    let tenant_bytes = tenant.as_str().as_bytes();
    let body_len = 1 + 1 + tenant_bytes.len() + 4 + SEAL_OVERHEAD + plaintext.len();
    let len = u32::try_from(body_len)
        .ok()
        .filter(|&l| (l as usize) <= MAX_RECORD_BYTES)
        .ok_or(StoreError::RequestTooLarge {
            bytes: body_len,
            max: MAX_RECORD_BYTES,
        })?;
    out.reserve(PREFIX_LEN + body_len);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&(len ^ LEN_CHECK).to_be_bytes());
    out.push(RECORD_VERSION);
    // TenantId::MAX_LEN is 64, so the length fits in a byte.
    out.push(tenant_bytes.len() as u8);
    out.extend_from_slice(tenant_bytes);
    out.extend_from_slice(&key_id.to_be_bytes());
    key.seal_append(&aad(tenant, segment, offset, key_id), plaintext, out)
}

/// A record located in a segment, not yet decrypted.
#[derive(Debug)]
pub struct RawRecord<'a> {
    /// File offset of the record.
    pub offset: u64,
    /// Total bytes of the record (prefix included).
    pub len: u64,
    /// The tenant named in the header.
    pub tenant: TenantId,
    /// The data key id named in the header.
    pub key_id: u32,
    /// `nonce ‖ ciphertext ‖ tag`.
    pub sealed: &'a [u8],
}

/// Why a record could not be framed.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes stop before the record does (a torn write).
    Torn(String),
    /// The bytes are present but inconsistent.
    Bad(String),
}

/// Frames the record starting at `offset` of `buf` (the whole segment file).
pub fn frame(buf: &[u8], offset: u64) -> Result<RawRecord<'_>, FrameError> {
    let start = usize::try_from(offset).map_err(|_| FrameError::Bad("offset overflow".into()))?;
    let rest = buf.get(start..).unwrap_or_default();
    if rest.len() < PREFIX_LEN {
        return Err(FrameError::Torn(format!(
            "{} bytes left, shorter than a record prefix",
            rest.len()
        )));
    }
    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let check = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len ^ LEN_CHECK != check {
        return Err(FrameError::Bad(format!(
            "length {len} fails its check word"
        )));
    }
    let body_len = len as usize;
    if body_len > MAX_RECORD_BYTES {
        return Err(FrameError::Bad(format!("record length {len} over limit")));
    }
    let Some(body) = rest.get(PREFIX_LEN..PREFIX_LEN + body_len) else {
        return Err(FrameError::Torn(format!(
            "record of {len} bytes runs past end of file ({} bytes left)",
            rest.len() - PREFIX_LEN
        )));
    };
    let (&version, body) = body
        .split_first()
        .ok_or_else(|| FrameError::Bad("empty record".into()))?;
    if version != RECORD_VERSION {
        return Err(FrameError::Bad(format!("record version {version}")));
    }
    let (&tlen, body) = body
        .split_first()
        .ok_or_else(|| FrameError::Bad("record too short".into()))?;
    let tlen = usize::from(tlen);
    if body.len() < tlen + 4 + SEAL_OVERHEAD {
        return Err(FrameError::Bad("record too short for its header".into()));
    }
    let (tenant, body) = body.split_at(tlen);
    let tenant = std::str::from_utf8(tenant)
        .ok()
        .and_then(|t| TenantId::new(t).ok())
        .ok_or_else(|| FrameError::Bad("record names an invalid tenant".into()))?;
    let (kid, sealed) = body.split_at(4);
    let key_id = u32::from_be_bytes([kid[0], kid[1], kid[2], kid[3]]);
    Ok(RawRecord {
        offset,
        len: (PREFIX_LEN + body_len) as u64,
        tenant,
        key_id,
        sealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secret32;

    proptest::proptest! {
        #[test]
        fn frame_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256), off in 0u64..300) {
            let _ = frame(&bytes, off);
        }
    }

    #[test]
    fn aad_binds_every_field() {
        let key = AeadKey::new(&Secret32::random().unwrap()).unwrap();
        let t = TenantId::new("acme").unwrap();
        let mut rec = Vec::new();
        encode_record(&mut rec, &key, &t, 3, 7, 16, b"payload").unwrap();
        let r = frame(&rec, 0).unwrap();
        assert_eq!((r.key_id, r.len as usize), (3, rec.len()));
        assert_eq!(
            key.open(&aad(&t, 7, 16, 3), r.sealed, "t").unwrap(),
            b"payload"
        );
        let u = TenantId::new("acmf").unwrap();
        for wrong in [
            aad(&u, 7, 16, 3),
            aad(&t, 8, 16, 3),
            aad(&t, 7, 17, 3),
            aad(&t, 7, 16, 4),
        ] {
            assert!(key.open(&wrong, r.sealed, "t").is_err());
        }
        // A flipped length is caught by its check word.
        let mut bad = rec.clone();
        bad[2] ^= 1;
        assert!(matches!(frame(&bad, 0), Err(FrameError::Bad(_))));
        assert!(matches!(
            frame(&rec[..rec.len() - 1], 0),
            Err(FrameError::Torn(_))
        ));
    }
}
