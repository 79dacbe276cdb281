//! SQL: literals become `?` so that the statement keeps its shape (the OpenTelemetry
//! database semantic conventions' "sanitized query text"). Identifiers, keywords,
//! placeholders and operators are kept; comments go through the detectors.

use super::{Sink, Step};
use crate::detect::Context;

/// Replaces string, numeric, hex, bit and dollar-quoted literals with `?`.
pub fn sql(sink: &mut dyn Sink, v: &str, out: &mut String) -> Step {
    let b = v.as_bytes();
    let mut i = 0usize;
    // Start of the run of bytes not yet copied.
    let mut copied = 0usize;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => {
                out.push_str(&v[copied..i]);
                // A literal prefix letter (N'', E'', X'', B'') goes with the literal.
                if i > 0
                    && matches!(
                        b[i - 1],
                        b'N' | b'n' | b'E' | b'e' | b'X' | b'x' | b'B' | b'b'
                    )
                    && (i < 2 || !is_ident(b[i - 2]))
                {
                    out.pop();
                }
                i = skip_quoted(b, i, b'\'');
                out.push('?');
                sink.sql_literal();
                copied = i;
            }
            b'"' | b'`' => {
                // Quoted identifier: kept.
                i = skip_quoted(b, i, c);
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                out.push_str(&v[copied..i]);
                let end = v[i..].find('\n').map_or(b.len(), |n| i + n);
                if sink.text(&v[i..end], Context::default(), out) == Step::Drop {
                    out.push_str("-- <redacted>");
                }
                i = end;
                copied = i;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                out.push_str(&v[copied..i]);
                let end = v[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                if sink.text(&v[i..end], Context::default(), out) == Step::Drop {
                    out.push_str("/* <redacted> */");
                }
                i = end;
                copied = i;
            }
            b'$' => {
                // $1 and $name are placeholders; $$...$$ and $tag$...$tag$ are strings.
                let tag_end = b[i + 1..]
                    .iter()
                    .position(|x| !(x.is_ascii_alphanumeric() || *x == b'_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(t)
                        if b[t] == b'$' && !b[i + 1..t].first().is_some_and(u8::is_ascii_digit) =>
                    {
                        let tag = &v[i..=t];
                        out.push_str(&v[copied..i]);
                        let body_start = t + 1;
                        let end = v[body_start..]
                            .find(tag)
                            .map_or(b.len(), |n| body_start + n + tag.len());
                        out.push('?');
                        sink.sql_literal();
                        i = end;
                        copied = i;
                    }
                    _ => {
                        i += 1;
                        while i < b.len() && is_ident(b[i]) {
                            i += 1;
                        }
                    }
                }
            }
            b'0'..=b'9' | b'.'
                if (c != b'.' || b.get(i + 1).is_some_and(u8::is_ascii_digit))
                    && (i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b'.')) =>
            {
                out.push_str(&v[copied..i]);
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                out.push('?');
                sink.sql_literal();
                copied = i;
            }
            c if is_ident(c) => {
                // Skip whole identifiers so that digits inside them are kept.
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&v[copied.min(v.len())..]);
    Step::Keep
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Index just past the closing quote (doubled quotes and backslash escapes stay inside);
/// the end of the text when the quote is not closed.
fn skip_quoted(b: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' && q == b'\'' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}
