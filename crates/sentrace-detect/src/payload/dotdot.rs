//! Dot-dot with a separator in any spelling: `..%c1%8s..%c1%8setc`, `..%uF025..%uF025`,
//! `.%00.0x5c.%00.0x5c`, `..%bg%qf..%bg%qfboot.ini`.
//!
//! Traversal lists spell the path separator in ways that only some decoder reads as `/`
//! or `\` (malformed overlong forms, private-use code points, `0x2f`, bad hex that one
//! server's decoder accepted). The normalizer cannot know every such decoder; the
//! structure gives them away whatever the spelling: a dot-dot followed by a short token
//! that comes back, as the separator of the path, right after the next dot-dot
//! (`..X..X`). The check:
//!
//! 1. finds each dot-dot (exactly two dots; a NUL or space between them, as the
//!    `.%00.` truncation trick leaves it after normalization, also counts);
//! 2. takes the token after it, one to eight characters, at least one of them neither a
//!    letter, a digit nor white space (a separator is punctuation or an encoding, never
//!    a word: `no.. no.. no` repeats a word), or a byte in hex (`0x2f`);
//! 3. reports when the same dot-dot and token follow at once.
//!
//! Ranges (`1..2..3`), ellipses (`wait... what...`) and version strings do not repeat a
//! punctuation token after a dot-dot.

/// Longest separator token considered, in characters.
const MAX_SEPARATOR: usize = 8;
/// Longest input read, in bytes.
const MAX_BYTES: usize = 4096;

/// Length in bytes of a dot-dot at `i` (`..`, `. .`, `.\0.`), if there is one that is
/// not part of a longer run of dots.
fn dot_dot(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'.') || (i > 0 && b[i - 1] == b'.') {
        return None;
    }
    let n = match b.get(i + 1) {
        Some(b'.') => 2,
        Some(b' ' | 0) if b.get(i + 2) == Some(&b'.') => 3,
        _ => return None,
    };
    (b.get(i + n) != Some(&b'.')).then_some(n)
}

/// The reason if `norm` holds a dot-dot whose separator token repeats (see the module
/// documentation).
pub fn detect(norm: &str) -> Option<&'static str> {
    let b = &norm.as_bytes()[..norm.len().min(MAX_BYTES)];
    let mut i = 0;
    while i + 2 < b.len() {
        let Some(n) = dot_dot(b, i) else {
            i += 1;
            continue;
        };
        let start = i + n;
        // Candidate tokens of one to eight characters.
        let rest = norm.get(start..).unwrap_or("");
        let ends = rest
            .char_indices()
            .map(|(e, _)| e)
            .skip(1)
            .chain(std::iter::once(rest.len()));
        for end in ends.take(MAX_SEPARATOR) {
            let token = &rest[..end];
            // `0x2f`, `0x5c`: a byte written in hex is an encoding, not a word.
            let hex_byte = token.len() == 4
                && token.starts_with("0x")
                && token[2..].bytes().all(|c| c.is_ascii_hexdigit());
            if token.contains('.')
                || (!hex_byte
                    && token
                        .chars()
                        .all(|c| c.is_alphanumeric() || c.is_whitespace()))
            {
                continue;
            }
            let after = &b[(start + end).min(b.len())..];
            if let Some(m) = dot_dot(after, 0)
                && after[m..].starts_with(token.as_bytes())
            {
                return Some("dot-dot with a repeated separator");
            }
        }
        i = start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    #[test]
    fn repeated_separators() {
        for s in [
            "..%c1%8s..%c1%8setc%c1%8spasswd",
            "..%c0%qf..%c0%qfetc%c0%qfissue",
            "..%bg%qf..%bg%qf..%bg%qfboot.ini",
            "..%uF025..%uF025windows",
            "..%uEFC8..%uEFC8etc%uEFC8issue",
            ".%00.0x2f.%00.0x2fetc0x2fpasswd",
            ".%00.%c1%9c.%00.%c1%9cetc",
            "..\\..\\windows\\win.ini",
            "..;/..;/admin",
        ] {
            assert!(detect(&normalize(s)).is_some(), "missed {s:?}");
        }
    }

    #[test]
    fn not_repeated_separators() {
        for s in [
            "1..2..3",
            "wait... what... really...",
            "see pages 10..20, 30..40",
            "v1.2..v1.3..v1.4",
            "a..b..c",
            "Hmm.. ok.. fine",
            "…and then.. nothing.",
            "x..-y",
            "no.. no.. no..",
        ] {
            assert!(detect(&normalize(s)).is_none(), "false positive on {s:?}");
        }
    }
}
