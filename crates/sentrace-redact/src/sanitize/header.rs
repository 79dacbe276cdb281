//! HTTP headers: `Authorization` keeps its scheme, `Cookie` keeps cookie names,
//! `Set-Cookie` keeps name and attributes.

use super::{Sink, Step};
use crate::keys::KeyClass;
use crate::kind::Kind;

/// `Authorization` / `Proxy-Authorization`: `Scheme credentials`.
pub fn authorization(sink: &mut dyn Sink, v: &str, out: &mut String) -> Step {
    let t = v.trim();
    let Some((scheme, cred)) = t.split_once(char::is_whitespace) else {
        return sink.value(Kind::Secret, t, out);
    };
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Kind::Bearer,
        "basic" => Kind::BasicAuth,
        _ => Kind::Secret,
    };
    out.push_str(scheme);
    out.push(' ');
    sink.value(kind, cred.trim(), out)
}

/// `Cookie: a=1; b=2`: every value minimized, names kept. Session cookies (by name) are
/// session ids; others are cookies.
pub fn cookie(sink: &mut dyn Sink, v: &str, out: &mut String) -> Step {
    let mut first = true;
    let mut tmp = String::new();
    for pair in v.split(';') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        tmp.clear();
        let step = match pair.split_once('=') {
            Some((name, val)) => {
                tmp.push_str(name);
                tmp.push('=');
                let kind = cookie_kind(sink, name);
                sink.value(kind, val, &mut tmp)
            }
            None => sink.value(Kind::Cookie, pair, &mut tmp),
        };
        if step == Step::Drop {
            continue;
        }
        if !first {
            out.push_str("; ");
        }
        first = false;
        out.push_str(&tmp);
    }
    Step::Keep
}

/// `Set-Cookie: name=value; Path=/; HttpOnly`: only the value is minimized.
pub fn set_cookie(sink: &mut dyn Sink, v: &str, out: &mut String) -> Step {
    let (first, attrs) = match v.split_once(';') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    match first.split_once('=') {
        Some((name, val)) => {
            out.push_str(name);
            out.push('=');
            let kind = cookie_kind(sink, name);
            if sink.value(kind, val, out) == Step::Drop {
                return Step::Drop;
            }
        }
        None => {
            if sink.value(Kind::Cookie, first, out) == Step::Drop {
                return Step::Drop;
            }
        }
    }
    if let Some(a) = attrs {
        out.push(';');
        out.push_str(a);
    }
    Step::Keep
}

fn cookie_kind(sink: &mut dyn Sink, name: &str) -> Kind {
    let lower = name.trim().to_ascii_lowercase();
    if lower.contains("sess") || lower.ends_with("sid") || lower == "sid" {
        return Kind::SessionId;
    }
    match sink.classify(name.trim()) {
        KeyClass::Sensitive(k) => k,
        _ => Kind::Cookie,
    }
}
