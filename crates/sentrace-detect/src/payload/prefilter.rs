//! The cheap first look at an input, before any pattern set or tokenizer runs.
//!
//! Most request values are plain: words, numbers, ids, dates, paths made of letters and
//! digits. [`Alphabet`] is that "inert" byte set (lower-case letters, digits, space and
//! `- _ . , /`). When the pattern sets are compiled, each pattern is analysed
//! ([`can_match_over_inert`]): a pattern that needs some byte outside the inert alphabet
//! (`<`, `'`, `(`, `;`, `$`, `%`, ...) can never match an inert input, so inert inputs run
//! only the small set of patterns that can (`/etc/passwd`, `ping 10.0.0.1`, `visudo`).
//! The analysis is conservative: look-around assertions count as satisfiable, so a pattern
//! is only ever moved to the smaller set when it provably cannot match.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Whether `b` is in the inert alphabet.
#[inline]
pub fn inert_byte(b: u8) -> bool {
    b.is_ascii_lowercase()
        || b.is_ascii_digit()
        || matches!(b, b' ' | b'-' | b'_' | b'.' | b',' | b'/')
}

/// Whether a normalized input consists of inert bytes only.
#[inline]
pub fn is_inert(norm: &str) -> bool {
    norm.bytes().all(inert_byte)
}

/// Every inert byte, for range intersection.
fn inert_bytes() -> impl Iterator<Item = u8> {
    (0u8..=0x7f).filter(|b| inert_byte(*b))
}

fn range_has_inert(start: u32, end: u32) -> bool {
    inert_bytes().any(|b| (start..=end).contains(&u32::from(b)))
}

/// Whether the regular expression `h` can match some string made of inert bytes only
/// (assertions are assumed satisfiable, which only errs towards "can").
pub fn hir_can_match_inert(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(l) => l.0.iter().all(|b| inert_byte(*b)),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| range_has_inert(u32::from(r.start()), u32::from(r.end()))),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| range_has_inert(u32::from(r.start()), u32::from(r.end()))),
        HirKind::Repetition(r) => r.min == 0 || hir_can_match_inert(&r.sub),
        HirKind::Capture(c) => hir_can_match_inert(&c.sub),
        HirKind::Concat(v) => v.iter().all(hir_can_match_inert),
        HirKind::Alternation(v) => v.iter().any(hir_can_match_inert),
    }
}

/// Whether `pattern` (compiled as the payload sets compile it: bytes, no Unicode) can
/// match an inert input. A pattern that does not parse here counts as "can".
pub fn can_match_over_inert(pattern: &str) -> bool {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_or(true, |h| hir_can_match_inert(&h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_needing_metacharacters_are_excluded() {
        assert!(!can_match_over_inert(r"<script"));
        assert!(!can_match_over_inert(r"\$\(\s*[a-z/]"));
        assert!(!can_match_over_inert(r"['`]\s*or\b"));
        assert!(!can_match_over_inert(r"(?i)union\s*\(select"));
        assert!(can_match_over_inert(r"/etc/(?:passwd|shadow)"));
        assert!(can_match_over_inert(r"^visudo$"));
        assert!(can_match_over_inert(r"\bping\s+\d+\.\d+"));
        assert!(can_match_over_inert(r"(?:<|x)y"));
        assert!(can_match_over_inert(r"a(?:<)?b"));
        assert!(can_match_over_inert(r"[^<]+"));
        assert!(!can_match_over_inert(r"[<>]+"));
    }

    #[test]
    fn inert_inputs() {
        assert!(is_inert("red running shoes"));
        assert!(is_inert("/api/v1/orders/12"));
        assert!(!is_inert("women's"));
        assert!(!is_inert("<b>"));
    }
}
