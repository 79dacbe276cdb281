//! Request and response bodies: JSON is walked and its values minimized by key and by
//! detector (the shape is kept); `application/x-www-form-urlencoded` bodies are treated
//! as query strings; anything else is free text.

use serde_json::Value;

use super::{Sink, Step, by_class, url};
use crate::detect::Context;
use crate::keys::KeyClass;

/// Largest body parsed as JSON; larger bodies are treated as free text.
pub const MAX_JSON_BYTES: usize = 1 << 20;

/// Deepest JSON nesting walked (serde_json itself stops at 128).
const MAX_DEPTH: usize = 64;

/// A body of unknown type.
pub fn body(sink: &mut dyn Sink, v: &str, out: &mut String) -> Step {
    let t = v.trim_start();
    if (t.starts_with('{') || t.starts_with('[')) && v.len() <= MAX_JSON_BYTES {
        if let Ok(mut doc) = serde_json::from_str::<Value>(v) {
            let mut changed = false;
            if json(sink, KeyClass::Plain, &mut doc, &mut changed, 0) == Step::Drop {
                return Step::Drop;
            }
            if changed {
                out.push_str(&serde_json::to_string(&doc).unwrap_or_else(|_| "<body>".into()));
            } else {
                out.push_str(v);
            }
            return Step::Keep;
        }
    } else if looks_like_form(v) {
        return url::query(sink, v, out);
    }
    sink.text(v, Context::default(), out)
}

fn looks_like_form(v: &str) -> bool {
    v.contains('=')
        && !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'{' && b != b'<')
}

/// Minimizes a JSON value in place. `class` is what the enclosing key says.
fn json(
    sink: &mut dyn Sink,
    class: KeyClass,
    v: &mut Value,
    changed: &mut bool,
    depth: usize,
) -> Step {
    if depth > MAX_DEPTH {
        *v = Value::String("<too_deep>".into());
        *changed = true;
        return Step::Keep;
    }
    match v {
        Value::Null | Value::Bool(_) => Step::Keep,
        Value::String(s) => {
            let mut out = String::with_capacity(s.len());
            let step = by_class(sink, class, s, &mut out);
            if step == Step::Keep && out != *s {
                *s = out;
                *changed = true;
            }
            if step == Step::Drop {
                *changed = true;
            }
            step
        }
        Value::Number(n) => {
            let text = n.to_string();
            let mut out = String::new();
            let step = match class {
                KeyClass::Sensitive(kind) => sink.value(kind, &text, &mut out),
                _ => sink.text(&text, Context::default(), &mut out),
            };
            if step == Step::Drop {
                *changed = true;
            } else if out != text {
                *v = Value::String(out);
                *changed = true;
            }
            step
        }
        Value::Array(items) => {
            let before = items.len();
            items.retain_mut(|item| json(sink, class, item, changed, depth + 1) == Step::Keep);
            if items.len() != before {
                *changed = true;
            }
            Step::Keep
        }
        Value::Object(map) => {
            let before = map.len();
            map.retain(|k, item| {
                let c = match class {
                    KeyClass::Sensitive(_) => class,
                    _ => sink.classify(k),
                };
                json(sink, c, item, changed, depth + 1) == Step::Keep
            });
            if map.len() != before {
                *changed = true;
            }
            Step::Keep
        }
    }
}
