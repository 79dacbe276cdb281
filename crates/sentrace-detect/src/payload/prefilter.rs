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

fn range_has(start: u32, end: u32, alphabet: &dyn Fn(u8) -> bool) -> bool {
    (0u8..=0x7f).any(|b| alphabet(b) && (start..=end).contains(&u32::from(b)))
}

/// Whether the regular expression `h` can match some string made only of bytes in
/// `alphabet` (ASCII) (assertions are assumed satisfiable, which only errs towards "can").
pub fn hir_can_match_over(h: &Hir, alphabet: &dyn Fn(u8) -> bool) -> bool {
    let sub = |h: &Hir| hir_can_match_over(h, alphabet);
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(l) => l.0.iter().all(|b| alphabet(*b)),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| range_has(u32::from(r.start()), u32::from(r.end()), alphabet)),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| range_has(u32::from(r.start()), u32::from(r.end()), alphabet)),
        HirKind::Repetition(r) => r.min == 0 || sub(&r.sub),
        HirKind::Capture(c) => sub(&c.sub),
        HirKind::Concat(v) => v.iter().all(sub),
        HirKind::Alternation(v) => v.iter().any(sub),
    }
}

/// Whether `pattern` (compiled as the payload sets compile it: bytes, no Unicode) can
/// match a text made only of bytes in `alphabet`. A pattern that does not parse here
/// counts as "can".
pub fn can_match_over(pattern: &str, alphabet: &dyn Fn(u8) -> bool) -> bool {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_or(true, |h| hir_can_match_over(&h, alphabet))
}

/// Whether `pattern` can match an inert input.
pub fn can_match_over_inert(pattern: &str) -> bool {
    can_match_over(pattern, &inert_byte)
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
    fn default_ruleset_splits() {
        let rs = crate::rules::Ruleset::default_ruleset().expect("default rules");
        let pats: Vec<&str> = rs
            .rules
            .iter()
            .flat_map(|r| r.patterns.iter().map(String::as_str))
            .collect();
        let inert = pats.iter().filter(|p| can_match_over_inert(p)).count();
        // Most patterns need a metacharacter; the sensitive-file ones do not.
        assert!(
            inert > 0 && inert * 2 < pats.len(),
            "{inert} of {}",
            pats.len()
        );
        assert!(
            pats.iter()
                .any(|p| p.contains("passwd") && can_match_over_inert(p))
        );
    }

    #[test]
    fn inert_inputs() {
        assert!(is_inert("red running shoes"));
        assert!(is_inert("/api/v1/orders/12"));
        assert!(!is_inert("women's"));
        assert!(!is_inert("<b>"));
    }
}
