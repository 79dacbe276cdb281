//! C2SP `signed-note` (c2sp.org/signed-note@v1.0.0): text signed by one or more keys.
//!
//! ```text
//! <text ending in a newline>
//! <empty line>
//! — <key name> base64(32-bit key ID || signature)
//! ```
//!
//! Parsing fails closed: at most [`MAX_NOTE_SIZE`] bytes and [`MAX_SIGNATURES`] signature
//! lines (the spec asks verifiers to accept at least 16), valid UTF-8, no ASCII control
//! characters but newline, strict base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The largest note accepted, in bytes. A checkpoint with an Ed25519 and an ML-DSA-44
/// signature is about 3.5 KiB; 16 ML-DSA-44 cosignatures fit several times over.
pub const MAX_NOTE_SIZE: usize = 256 * 1024;
/// The most signature lines accepted on one note.
pub const MAX_SIGNATURES: usize = 64;
/// The longest key name accepted, in bytes (the ML-DSA-44 cosigned message holds the name
/// in a vector of at most 255 bytes).
pub const MAX_KEY_NAME: usize = 255;

const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note or a key name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Larger than [`MAX_NOTE_SIZE`].
    #[error("note is {len} bytes; the limit is {MAX_NOTE_SIZE}")]
    TooLarge {
        /// The note's length.
        len: usize,
    },
    /// Not UTF-8.
    #[error("note is not valid UTF-8 (at byte {at})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// An ASCII control character other than newline.
    #[error("note holds control character {byte:#04x} at byte {at}")]
    ControlChar {
        /// The character.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// The note does not end in a newline.
    #[error("note does not end in a newline")]
    NoFinalNewline,
    /// No empty line separates text from signatures, or no signature follows it.
    #[error("note has no signature lines")]
    NoSignatures,
    /// The note text is empty.
    #[error("note text is empty")]
    EmptyText,
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature line is not `— <name> <base64>`.
    #[error("signature line {line} is malformed: {why}")]
    BadSignatureLine {
        /// 1-based number of the signature line.
        line: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A key name breaks the rules of the spec.
    #[error("key name {name:?} is invalid: {why}")]
    BadKeyName {
        /// The name.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// A key name: non-empty, at most [`MAX_KEY_NAME`] bytes, no Unicode spaces, no `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct KeyName(String);

impl KeyName {
    /// Validates a key name.
    pub fn new(name: &str) -> Result<Self, NoteError> {
        let bad = |why| NoteError::BadKeyName {
            name: name.chars().take(64).collect(),
            why,
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if name.len() > MAX_KEY_NAME {
            return Err(bad("longer than 255 bytes"));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains a space or control character"));
        }
        if name.contains('+') {
            return Err(bad("contains '+'"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The recommended key ID: `SHA-256(key name || 0x0A || signature type || public key)[:4]`
/// as a big-endian `u32`.
pub fn key_id(name: &KeyName, sig_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_str().as_bytes());
    h.update([b'\n', sig_type]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's key name.
    pub name: KeyName,
    /// The signer's key ID.
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, with its final newline.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }

    /// Parses one signature line without its newline. `line` numbers errors.
    pub fn parse_line(text: &str, line: usize) -> Result<Self, NoteError> {
        let bad = |why| NoteError::BadSignatureLine { line, why };
        let rest = text
            .strip_prefix(SIG_PREFIX)
            .ok_or(bad("does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or(bad("no space between key name and signature"))?;
        let name = KeyName::new(name)?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| bad("signature is not standard base64"))?;
        if raw.len() < 5 {
            return Err(bad("signature shorter than a key ID and one byte"));
        }
        let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        Ok(Self {
            name,
            key_id,
            signature: raw[4..].to_vec(),
        })
    }
}

/// A signed note: its text (ending in a newline) and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

/// Checks the character rules of the spec on `s`, reporting offsets from `base`.
fn check_chars(s: &str, base: usize) -> Result<(), NoteError> {
    match s.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(at) => Err(NoteError::ControlChar {
            byte: s.as_bytes()[at],
            at: base + at,
        }),
        None => Ok(()),
    }
}

impl Note {
    /// An unsigned note over `text`, which must be non-empty, end in a newline, and hold no
    /// control characters but newlines.
    pub fn new(text: impl Into<String>) -> Result<Self, NoteError> {
        let text = text.into();
        if text.is_empty() {
            return Err(NoteError::EmptyText);
        }
        if !text.ends_with('\n') {
            return Err(NoteError::NoFinalNewline);
        }
        check_chars(&text, 0)?;
        Ok(Self {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge { len: bytes.len() });
        }
        let s = std::str::from_utf8(bytes).map_err(|e| NoteError::NotUtf8 {
            at: e.valid_up_to(),
        })?;
        check_chars(s, 0)?;
        if !s.ends_with('\n') {
            return Err(NoteError::NoFinalNewline);
        }
        // The text is separated from the signatures by the last empty line.
        let split = s.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
        let text = &s[..=split];
        let sigs = &s[split + 2..];
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let mut signatures = Vec::new();
        for (i, line) in sigs.split_terminator('\n').enumerate() {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(NoteSignature::parse_line(line, i + 1)?);
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The whole note: text, empty line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 1 + 3600 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out
    }

    /// Parses signature lines (for example a witness response) and adds them to this note.
    pub fn add_signature_lines(&mut self, lines: &str) -> Result<usize, NoteError> {
        check_chars(lines, 0)?;
        if lines.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge { len: lines.len() });
        }
        let mut added = 0;
        for (i, line) in lines.split_terminator('\n').enumerate() {
            if self.signatures.len() >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            self.signatures
                .push(NoteSignature::parse_line(line, i + 1)?);
            added += 1;
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_parses_and_round_trips() {
        // The example note of c2sp.org/signed-note.
        let text = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
        let n = Note::parse(text.as_bytes()).unwrap();
        assert_eq!(
            n.text(),
            "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
        );
        assert_eq!(n.signatures.len(), 1);
        assert_eq!(n.signatures[0].name.as_str(), "quasimodo.example/salvatore");
        assert_eq!(n.signatures[0].key_id, 0x367ba04b);
        assert_eq!(n.signatures[0].signature.len(), 64);
        assert_eq!(n.to_text(), text);
    }

    #[test]
    fn rejects_bad_notes() {
        let sig = "— a/b AAAAAAAA\n";
        let ok = format!("hello\n\n{sig}");
        assert!(Note::parse(ok.as_bytes()).is_ok());
        assert_eq!(Note::parse(b"hello\n\n"), Err(NoteError::NoSignatures));
        assert_eq!(Note::parse(b"hello\n"), Err(NoteError::NoSignatures));
        assert!(matches!(
            Note::parse(format!("he\tllo\n\n{sig}").as_bytes()),
            Err(NoteError::ControlChar { byte: 9, at: 2 })
        ));
        assert!(matches!(
            Note::parse(b"\xff\n\n"),
            Err(NoteError::NotUtf8 { at: 0 })
        ));
        assert!(matches!(
            Note::parse(b"hello\n\n- a/b AAAAAAAA\n"),
            Err(NoteError::BadSignatureLine { line: 1, .. })
        ));
        assert!(matches!(
            Note::parse("hello\n\n— a+b AAAAAAAA\n".as_bytes()),
            Err(NoteError::BadKeyName { .. })
        ));
        assert!(matches!(
            Note::parse("hello\n\n— a/b AAAA\n".as_bytes()),
            Err(NoteError::BadSignatureLine { .. })
        ));
        // Non-canonical base64 (trailing bits set) is rejected.
        assert!(Note::parse("hello\n\n— a/b AAAAAAAB==\n".as_bytes()).is_err());
        let many = format!("hello\n\n{}", sig.repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            Note::parse(many.as_bytes()),
            Err(NoteError::TooManySignatures)
        );
        let big = vec![b'a'; MAX_NOTE_SIZE + 1];
        assert!(matches!(Note::parse(&big), Err(NoteError::TooLarge { .. })));
        assert_eq!(Note::new("no newline"), Err(NoteError::NoFinalNewline));
    }

    #[test]
    fn key_id_follows_the_spec() {
        let name = KeyName::new("example.com/log").unwrap();
        let pk = [7u8; 32];
        let mut h = Sha256::new();
        h.update(b"example.com/log\n\x01");
        h.update(pk);
        let d = h.finalize();
        assert_eq!(key_id(&name, 1, &pk).to_be_bytes(), d[..4]);
        assert!(KeyName::new("a b").is_err());
        assert!(KeyName::new("a\u{00a0}b").is_err());
        assert!(KeyName::new("").is_err());
        assert!(KeyName::new(&"x".repeat(256)).is_err());
    }
}
