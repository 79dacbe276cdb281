//! URLs: keep scheme, host, port and path; minimize user info, query values (by key and
//! by detector), path segments and fragments (by detector).

use super::{Sink, Step, by_class};
use crate::detect::Context;
use crate::keys::KeyClass;
use crate::kind::Kind;

/// A full or relative URL.
pub fn url(sink: &mut dyn Sink, v: &str, out: &mut String) -> Step {
    if v.contains(char::is_whitespace) {
        // Not a URL: a message that mentions one.
        return sink.text(v, Context::default(), out);
    }
    if clean(sink, v) {
        out.push_str(v);
        return Step::Keep;
    }
    let (before_frag, frag) = match v.split_once('#') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let (before_query, query_part) = match before_frag.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (before_frag, None),
    };
    let mut rest = before_query;
    if let Some(i) = rest.find("://")
        && rest[..i]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let auth_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, pass)) => {
                    if sink.text(user, Context::default(), out) == Step::Drop {
                        return Step::Drop;
                    }
                    out.push(':');
                    if sink.value(Kind::Password, pass, out) == Step::Drop {
                        out.push_str("<password>");
                    }
                }
                None => {
                    if sink.text(userinfo, Context::default(), out) == Step::Drop {
                        return Step::Drop;
                    }
                }
            }
            out.push('@');
            out.push_str(&authority[at + 1..]);
        } else {
            out.push_str(authority);
        }
        rest = &rest[auth_end..];
    }
    if path(sink, rest, out) == Step::Drop {
        return Step::Drop;
    }
    if let Some(q) = query_part {
        out.push('?');
        if query(sink, q, out) == Step::Drop {
            return Step::Drop;
        }
    }
    if let Some(f) = frag {
        out.push('#');
        let step = if f.contains('=') {
            query(sink, f, out)
        } else {
            sink.text(f, Context::default(), out)
        };
        if step == Step::Drop {
            return Step::Drop;
        }
    }
    Step::Keep
}

/// Fast path: no user info, no escapes, no fragment, no query key that names a sensitive
/// value, and nothing detected in the whole text: the URL is kept as it is.
fn clean(sink: &mut dyn Sink, v: &str) -> bool {
    if v.bytes().any(|b| matches!(b, b'@' | b'%' | b'#' | b'+')) {
        return false;
    }
    if let Some((_, q)) = v.split_once('?') {
        for param in q.split('&') {
            let k = param.split_once('=').map_or(param, |(k, _)| k);
            if !matches!(sink.classify(k), KeyClass::Plain | KeyClass::Infra) {
                return false;
            }
        }
    }
    let mut probe = String::new();
    sink.text(v, Context::default(), &mut probe) == Step::Keep && probe == v
}

/// A path: each segment goes through the detectors (percent-decoded when that reveals
/// something); separators and clean segments are kept byte for byte.
pub fn path(sink: &mut dyn Sink, v: &str, out: &mut String) -> Step {
    // Fast path: without escapes, detecting over the whole path finds what detecting per
    // segment would ('/' is a boundary for every detector).
    if !v.bytes().any(|b| b == b'%' || b == b'+') {
        let mut probe = String::new();
        if sink.text(v, Context::default(), &mut probe) == Step::Keep && probe == v {
            out.push_str(v);
            return Step::Keep;
        }
    }
    let mut tmp = String::new();
    for (i, seg) in v.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if seg.is_empty() {
            continue;
        }
        tmp.clear();
        if either(sink, KeyClass::Plain, seg, &mut tmp) == Step::Drop {
            tmp.clear();
            tmp.push_str("<redacted>");
        }
        out.push_str(&tmp);
    }
    Step::Keep
}

/// A query string `k=v&k2=v2`: values under sensitive keys get their kind's action (a
/// dropped parameter disappears), other values go through the detectors.
pub fn query(sink: &mut dyn Sink, v: &str, out: &mut String) -> Step {
    let mut first = true;
    let mut tmp = String::new();
    for param in v.split('&') {
        let (k, val) = match param.split_once('=') {
            Some((k, val)) => (k, Some(val)),
            None => (param, None),
        };
        let Some(val) = val else {
            // A bare flag: still may hold a value (`?jane@example.com`).
            tmp.clear();
            if either(sink, KeyClass::Plain, k, &mut tmp) == Step::Drop {
                continue;
            }
            if !first {
                out.push('&');
            }
            first = false;
            out.push_str(&tmp);
            continue;
        };
        let class = match sink.classify(&percent_decode(k, true)) {
            // A query value is one value: a URL-class key does not make it a full URL.
            KeyClass::Path | KeyClass::Body => KeyClass::Plain,
            c => c,
        };
        tmp.clear();
        if either(sink, class, val, &mut tmp) == Step::Drop {
            continue;
        }
        if !first {
            out.push('&');
        }
        first = false;
        out.push_str(k);
        out.push('=');
        out.push_str(&tmp);
    }
    Step::Keep
}

/// Minimizes a percent-encoded component: the decoded form first (it reveals `%40` and
/// `+`), then the raw form if decoding changed nothing, so that neither spelling leaks.
/// Appends the raw component when nothing was found.
fn either(sink: &mut dyn Sink, class: KeyClass, raw: &str, out: &mut String) -> Step {
    let decoded = percent_decode(raw, true);
    let mut tmp = String::new();
    if by_class(sink, class, &decoded, &mut tmp) == Step::Drop {
        return Step::Drop;
    }
    if tmp != decoded {
        encode_minimal(&tmp, out);
        return Step::Keep;
    }
    if decoded != raw {
        return by_class(sink, class, raw, out);
    }
    out.push_str(raw);
    Step::Keep
}

/// Escapes only what would break the query structure.
fn encode_minimal(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("%26"),
            '#' => out.push_str("%23"),
            '=' => out.push_str("%3D"),
            ' ' => out.push_str("%20"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
}

/// Percent-decoding (RFC 3986 section 2.1); `plus` also reads `+` as a space (HTML forms).
/// Invalid escapes are kept as they are; invalid UTF-8 is replaced.
pub fn percent_decode(s: &str, plus: bool) -> std::borrow::Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || (plus && b == b'+')) {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
