//! Personal data: e-mail, phone, payment card, SSN, IBAN, IP addresses.

use std::net::Ipv6Addr;

use regex::Regex;

use super::{Context, DetectorBuildError, Found, checks, compile};
use crate::kind::Kind;

/// Words that, shortly before a number, say it is a phone number.
const PHONE_BEFORE: &[&str] = &[
    "phone",
    "tel",
    "call",
    "mobile",
    "cell",
    "fax",
    "desk",
    "sms",
    "text me",
    "whatsapp",
    "messages to",
    "message to",
    "reach me",
    "contact",
    "number",
    "answering at",
    "dial",
    "ring",
    "landline",
    "handy",
    "telefon",
    "portable",
];

/// Words that, right after a number, say it is a phone number.
const PHONE_AFTER: &[&str] = &["office", "mobile", "fax", "cell", "home", "work", "desk"];

#[derive(Debug)]
pub(super) struct Pii {
    email: Regex,
    iban_seed: Regex,
    ipv4: Regex,
    ipv6: Regex,
}

impl Pii {
    pub(super) fn new() -> Result<Self, DetectorBuildError> {
        Ok(Self {
            email: compile(
                "email",
                r"[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}\.)+[A-Za-z]{2,24}",
            )?,
            iban_seed: compile("iban", r"\b[A-Za-z]{2}\d{2}[ ]?[A-Za-z0-9]")?,
            ipv4: compile(
                "ipv4",
                r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}",
            )?,
            ipv6: compile("ipv6", r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}")?,
        })
    }

    pub(super) fn find(&self, text: &str, ctx: Context, out: &mut Vec<Found>) {
        // One pass over the bytes decides which detectors can match at all.
        let bytes = text.as_bytes();
        let mut digits = 0usize;
        let mut at = false;
        // Digits in the current run of digits and phone separators, and the longest run.
        let mut run = 0usize;
        let mut best_run = 0usize;
        // Dotted digit groups in the current run of digits and dots ("203.0.113" has 2).
        let mut dotted = 0usize;
        let mut ipv4 = false;
        // ':' next to a hex digit; letter-letter-digit-digit (an IBAN's start).
        let mut hex_colons = 0usize;
        let mut iban = false;
        let mut prev = [0u8; 3];
        for &b in bytes {
            match b {
                b'0'..=b'9' => {
                    digits += 1;
                    run += 1;
                    best_run = best_run.max(run);
                    if prev[2] == b'.' && prev[1].is_ascii_digit() {
                        dotted += 1;
                        ipv4 |= dotted >= 3;
                    }
                    iban |= prev[2].is_ascii_digit()
                        && prev[1].is_ascii_alphabetic()
                        && prev[0].is_ascii_alphabetic();
                }
                b'.' => {}
                b' ' | b'-' | b'(' | b')' | b'+' | b'/' => dotted = 0,
                b'@' => {
                    at = true;
                    run = 0;
                    dotted = 0;
                }
                b':' => {
                    if prev[2].is_ascii_hexdigit() || prev[2] == b':' {
                        hex_colons += 1;
                    }
                    run = 0;
                    dotted = 0;
                }
                _ => {
                    run = 0;
                    dotted = 0;
                }
            }
            prev = [prev[1], prev[2], b];
        }
        if at {
            self.find_email(text, out);
        }
        if best_run >= 7 || (ctx.phone_key && digits >= 7) {
            self.find_numbers(text, ctx, out);
        }
        if iban && digits >= 8 && bytes.len() >= 15 {
            self.find_iban(text, out);
        }
        if !ctx.infra_key {
            if ipv4 {
                self.find_ipv4(text, out);
            }
            if hex_colons >= 2 {
                self.find_ipv6(text, out);
            }
        }
    }

    fn find_email(&self, text: &str, out: &mut Vec<Found>) {
        for m in self.email.find_iter(text) {
            let domain = m.as_str().rsplit('.').next().unwrap_or("");
            let lower = domain.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "png" | "jpg" | "jpeg" | "gif" | "svg" | "webp" | "js" | "css" | "ico"
            ) {
                continue;
            }
            out.push(Found {
                start: m.start(),
                end: m.end(),
                kind: Kind::Email,
                rule: "email",
            });
        }
    }

    fn find_numbers(&self, text: &str, ctx: Context, out: &mut Vec<Found>) {
        let bytes = text.as_bytes();
        let mut at = 0usize;
        while let Some((start, mut end, ndigits)) = next_number(bytes, at) {
            at = end;
            // Nothing this detector reports has fewer than 7 digits.
            if ndigits < 7 {
                continue;
            }
            // A trailing ')' that does not close a '(' of the match belongs to the text.
            if bytes.get(end.wrapping_sub(1)) == Some(&b')') && !bytes[start..end].contains(&b'(') {
                end -= 1;
            }
            if !standalone(bytes, start, end) {
                continue;
            }
            // The run may glue unrelated numbers with spaces ("x=1 123-45-6789"): try the
            // whole run, then shorter runs cut at spaces, longest first.
            let mut cuts: Vec<(usize, usize)> = vec![(start, end)];
            for (i, b) in bytes[start..end].iter().enumerate() {
                if *b == b' ' {
                    cuts.push((start + i + 1, end));
                    cuts.push((start, start + i));
                }
            }
            cuts.sort_by_key(|(s, e)| std::cmp::Reverse(e - s));
            for (s, e) in cuts {
                if let Some(kind) = classify_number(text, s, e, &text[s..e], ctx) {
                    out.push(Found {
                        start: s,
                        end: e,
                        kind,
                        rule: kind.as_str(),
                    });
                    break;
                }
            }
        }
    }

    fn find_iban(&self, text: &str, out: &mut Vec<Found>) {
        let bytes = text.as_bytes();
        for m in self.iban_seed.find_iter(text) {
            let start = m.start();
            let cc = [
                bytes[start].to_ascii_uppercase(),
                bytes[start + 1].to_ascii_uppercase(),
            ];
            let Some(want) = checks::iban_length(&cc) else {
                continue;
            };
            // Walk alphanumerics, allowing single spaces, up to the country's length.
            let mut n = 0usize;
            let mut i = start;
            while i < bytes.len() && n < want {
                let b = bytes[i];
                if b.is_ascii_alphanumeric() {
                    n += 1;
                } else if !(b == b' ' && i > start && bytes[i - 1] != b' ') {
                    break;
                }
                i += 1;
            }
            if n == want
                && bytes.get(i).is_none_or(|b| !b.is_ascii_alphanumeric())
                && checks::iban(&text[start..i])
            {
                out.push(Found {
                    start,
                    end: i,
                    kind: Kind::Iban,
                    rule: "iban",
                });
            }
        }
    }

    fn find_ipv4(&self, text: &str, out: &mut Vec<Found>) {
        let bytes = text.as_bytes();
        for m in self.ipv4.find_iter(text) {
            let (s, e) = (m.start(), m.end());
            let before_ok = s == 0 || {
                let b = bytes[s - 1];
                !(b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
            };
            let after_ok = e == bytes.len() || {
                let b = bytes[e];
                !(b.is_ascii_alphanumeric()
                    || b == b'_'
                    || (b == b'.' && bytes.get(e + 1).is_some_and(u8::is_ascii_digit)))
            };
            let ip = m.as_str();
            if before_ok
                && after_ok
                && !ip.starts_with("127.")
                && ip != "0.0.0.0"
                && ip != "255.255.255.255"
            {
                out.push(Found {
                    start: s,
                    end: e,
                    kind: Kind::Ip,
                    rule: "ipv4",
                });
            }
        }
    }

    fn find_ipv6(&self, text: &str, out: &mut Vec<Found>) {
        let bytes = text.as_bytes();
        for m in self.ipv6.find_iter(text) {
            let (s, e) = (m.start(), m.end());
            if m.as_str().len() < 3 {
                continue;
            }
            let edge = |b: u8| b.is_ascii_alphanumeric() || b == b':' || b == b'_';
            if (s > 0 && edge(bytes[s - 1])) || (e < bytes.len() && edge(bytes[e])) {
                continue;
            }
            let Ok(addr) = m.as_str().parse::<Ipv6Addr>() else {
                continue;
            };
            if addr.is_loopback() || addr.is_unspecified() {
                continue;
            }
            out.push(Found {
                start: s,
                end: e,
                kind: Kind::Ip,
                rule: "ipv6",
            });
        }
    }
}

/// The next run of digits and phone separators at or after `from`: `[+(]?` digit, then
/// digits, a separator (` .-/`) or `)` (with an optional following separator) or `(` each
/// directly followed by a digit, an optional closing `)`, and an optional extension
/// (`x123`, `ext. 123`, `#123`). Returns (start, end, digits in the run).
fn next_number(b: &[u8], from: usize) -> Option<(usize, usize, usize)> {
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = from;
    let start = loop {
        if i >= b.len() {
            return None;
        }
        if b[i].is_ascii_digit() || ((b[i] == b'+' || b[i] == b'(') && digit(i + 1)) {
            break i;
        }
        i += 1;
    };
    let mut j = if b[start].is_ascii_digit() {
        start
    } else {
        start + 1
    };
    let mut n = 0usize;
    loop {
        if digit(j) {
            n += 1;
            j += 1;
            continue;
        }
        let step = match b.get(j) {
            Some(b' ' | b'.' | b'-' | b'/') if digit(j + 1) => 1,
            Some(b' ' | b'.' | b'-' | b'/') if b.get(j + 1) == Some(&b'(') && digit(j + 2) => 2,
            Some(b')') if digit(j + 1) => 1,
            Some(b')') if matches!(b.get(j + 1), Some(b' ' | b'.' | b'-')) && digit(j + 2) => 2,
            Some(b'(') if digit(j + 1) => 1,
            _ => 0,
        };
        if step == 0 {
            break;
        }
        j += step;
    }
    if b.get(j) == Some(&b')') {
        j += 1;
    }
    // Extension.
    let mut k = j;
    if b.get(k) == Some(&b' ') {
        k += 1;
    }
    let ext_len = if b.get(k..k + 4) == Some(b"ext.") {
        4
    } else if b.get(k..k + 3) == Some(b"ext") {
        3
    } else if matches!(b.get(k), Some(b'x' | b'#')) {
        1
    } else {
        0
    };
    if ext_len > 0 {
        k += ext_len;
        if b.get(k) == Some(&b' ') {
            k += 1;
        }
        let tail = b.get(k..).unwrap_or_default();
        let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if (1..=6).contains(&digits) {
            j = k + digits;
        }
    }
    Some((start, j, n))
}

/// Whether `[start, end)` is a token of its own: not glued to letters, digits, or to a
/// longer token through `-`, `_`, `.` or `/` (UUIDs, hashes, versions, paths).
fn standalone(b: &[u8], start: usize, end: usize) -> bool {
    let glue = |c: u8| matches!(c, b'-' | b'_' | b'.' | b'/' | b':');
    if start > 0 {
        let p = b[start - 1];
        if p.is_ascii_alphanumeric() || p == b'_' {
            return false;
        }
        if glue(p) && start > 1 && b[start - 2].is_ascii_alphanumeric() {
            return false;
        }
    }
    if end < b.len() {
        let n = b[end];
        if n.is_ascii_alphanumeric() || n == b'_' {
            return false;
        }
        if glue(n) && b.get(end + 1).is_some_and(u8::is_ascii_alphanumeric) {
            // "555-1234-Office" and "... 555 1234." are fine; "1.2.3-beta" is not.
            let rest = &b[end + 1..];
            let word_after = PHONE_AFTER
                .iter()
                .any(|w| starts_with_ignore_case(rest, w.as_bytes()));
            if !word_after {
                return false;
            }
        }
    }
    true
}

fn starts_with_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

/// Decides what a run of digits and separators is: an SSN, a card, a phone, or nothing.
fn classify_number(text: &str, start: usize, end: usize, cand: &str, ctx: Context) -> Option<Kind> {
    let (main, ext) = split_extension(cand);
    let d: Vec<u8> = main.bytes().filter(u8::is_ascii_digit).collect();
    let n = d.len();
    let seps: Vec<u8> = main.bytes().filter(|b| !b.is_ascii_digit()).collect();
    let only = |allowed: &[u8]| seps.iter().all(|b| allowed.contains(b));

    // SSN: exactly AAA-GG-SSSS.
    if n == 9 && ext.is_none() && is_ssn_shape(main) && checks::ssn(main) {
        return Some(Kind::Ssn);
    }
    // Card: 12-19 digits with at most spaces or dashes, IIN range and Luhn.
    if (12..=19).contains(&n) && ext.is_none() && only(b" -") && checks::card(main) {
        return Some(Kind::Card);
    }
    if !(7..=15).contains(&n) || looks_like_date_or_version(main) {
        return None;
    }
    let plus = main.starts_with('+');
    let formatted = !seps.is_empty();
    let groups = main
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .count();
    if plus && n >= 8 {
        return Some(Kind::Phone);
    }
    if main.starts_with("00") && formatted && n >= 9 {
        return Some(Kind::Phone);
    }
    if is_nanp(main) {
        return Some(Kind::Phone);
    }
    // National formats with a trunk prefix 0 (UK, DE, FR, IN, ...): 9 to 11 digits in
    // groups, e.g. 07700 900 123, 030 1234567, 01 23 45 67 89, 0 98765 43210.
    if main.starts_with('0') && formatted && groups >= 2 && (9..=11).contains(&n) {
        return Some(Kind::Phone);
    }
    if ctx.phone_key || phone_context(text, start, end) {
        return Some(Kind::Phone);
    }
    None
}

fn split_extension(cand: &str) -> (&str, Option<&str>) {
    for sep in ["ext.", "ext", "x", "#"] {
        if let Some(i) = cand.rfind(sep) {
            return (cand[..i].trim_end(), Some(&cand[i + sep.len()..]));
        }
    }
    (cand, None)
}

fn is_ssn_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11
        && b[3] == b'-'
        && b[6] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 3 || i == 6 || c.is_ascii_digit())
}

/// NANP: optional 1 / +1, area code 2-9xx (optionally in parentheses), exchange, line,
/// with separators: (415) 555-2671, 415-555-2671, 415.555.2671, 1-415-555-2671.
fn is_nanp(s: &str) -> bool {
    let groups: Vec<&str> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let g = match groups.as_slice() {
        [a, b, c] => [*a, *b, *c],
        ["1", a, b, c] | ["001", a, b, c] => [*a, *b, *c],
        _ => return false,
    };
    g[0].len() == 3
        && g[1].len() == 3
        && g[2].len() == 4
        && g[0].as_bytes()[0] >= b'2'
        && s.bytes().any(|b| !b.is_ascii_digit())
}

fn looks_like_date_or_version(s: &str) -> bool {
    let groups: Vec<&str> = s.split(['-', '/', '.']).collect();
    if groups.len() == 3
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
    {
        let lens = [groups[0].len(), groups[1].len(), groups[2].len()];
        // YYYY-MM-DD, DD/MM/YYYY, MM-DD-YYYY.
        if (lens[0] == 4 && lens[1] <= 2 && lens[2] <= 2)
            || (lens[0] <= 2 && lens[1] <= 2 && lens[2] == 4)
        {
            return true;
        }
    }
    false
}

/// A phone keyword within 40 bytes before the number, or a label word right after it.
fn phone_context(text: &str, start: usize, end: usize) -> bool {
    let mut from = start.saturating_sub(40);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let before = text[from..start].to_ascii_lowercase();
    if PHONE_BEFORE.iter().any(|w| before.contains(w)) {
        return true;
    }
    let after = text.as_bytes().get(end..).unwrap_or_default();
    let after = after
        .iter()
        .position(|b| b.is_ascii_alphabetic())
        .filter(|p| *p <= 2)
        .map(|p| &after[p..])
        .unwrap_or_default();
    PHONE_AFTER
        .iter()
        .any(|w| starts_with_ignore_case(after, w.as_bytes()))
}
