//! The per-span record of minimized places, written as [`MINIMIZED_ATTRIBUTE`]: which
//! top-level key (or span name, status message, event name) held a sensitive value, and
//! the value's class. Grammar and bounds are in [`sentrace_core::sensitivity`].
//!
//! The walk records into one buffer that it reuses for every span: resource and scope
//! entries are recorded once and kept as a prefix ([`Mark`]) for each of their spans.
//! Nothing is allocated for a span that had nothing recorded.

#[cfg(test)]
use sentrace_core::AttributeClass;
use sentrace_core::ClassSet;
use sentrace_core::proto::common::v1::{AnyValue, any_value::Value};
use sentrace_core::sensitivity::{
    MAX_MINIMIZED_BYTES, MAX_MINIMIZED_ENTRIES, MAX_MINIMIZED_KEY_BYTES, Place, parse_minimized,
};

use crate::kind::Kind;

/// The entries of the span being walked.
#[derive(Default)]
pub(crate) struct Record {
    /// Entries so far, `;`-separated, in list form.
    buf: String,
    entries: usize,
    /// Classes that did not fit (written as `*=class`).
    overflow: ClassSet,
    scratch: String,
}

/// A point to return to: the end of the resource's (or scope's) entries.
#[derive(Clone, Copy, Default)]
pub(crate) struct Mark {
    len: usize,
    entries: usize,
    overflow: ClassSet,
}

impl Record {
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            entries: self.entries,
            overflow: self.overflow,
        }
    }

    /// Forgets every entry recorded after `m`.
    pub(crate) fn reset_to(&mut self, m: Mark) {
        self.buf.truncate(m.len);
        self.entries = m.entries;
        self.overflow = m.overflow;
    }

    /// Records `place` once per class of `classes`; what does not fit the bounds (or has
    /// a key longer than [`MAX_MINIMIZED_KEY_BYTES`]) becomes `*=class`.
    pub(crate) fn add(&mut self, place: &Place<'_>, classes: ClassSet) {
        for class in classes.iter() {
            let full = self.entries >= MAX_MINIMIZED_ENTRIES;
            if place
                .key()
                .is_some_and(|k| k.len() > MAX_MINIMIZED_KEY_BYTES)
                || (full && self.overflow.contains(class))
            {
                self.overflow.insert(class);
                continue;
            }
            self.scratch.clear();
            place.write_to(&mut self.scratch);
            self.scratch.push('=');
            self.scratch.push_str(class.as_str());
            if self.buf.split(';').any(|e| e == self.scratch) {
                continue;
            }
            if full || self.buf.len() + 1 + self.scratch.len() > MAX_MINIMIZED_BYTES {
                self.overflow.insert(class);
                continue;
            }
            if !self.buf.is_empty() {
                self.buf.push(';');
            }
            self.buf.push_str(&self.scratch);
            self.entries += 1;
        }
    }

    /// Merges the list a span arrived with (from an agent that minimized it first). A list
    /// that is not a string or does not parse marks every class anywhere (fail closed).
    pub(crate) fn merge(&mut self, value: Option<&AnyValue>) {
        let parsed = match value.and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => parse_minimized(s).ok(),
            _ => None,
        };
        match parsed {
            Some(entries) => {
                for e in entries {
                    self.add(&e.place, ClassSet::EMPTY.with(e.class));
                }
            }
            None => self.overflow.extend(ClassSet::all()),
        }
    }

    /// The list value, or `None` when nothing was recorded.
    pub(crate) fn value(&self) -> Option<String> {
        if self.buf.is_empty() && self.overflow.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(self.buf.len() + 32);
        out.push_str(&self.buf);
        for c in self.overflow.iter() {
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str("*=");
            out.push_str(c.as_str());
        }
        Some(out)
    }
}

/// Classes of the values minimized upstream that `s` holds: `<kind>`, `<kind:…tail>`,
/// `pse:kind:…` and `tok:kind:…` anywhere in it, for a known kind with a class.
pub(crate) fn edge_markers(s: &str) -> ClassSet {
    let b = s.as_bytes();
    let mut set = ClassSet::EMPTY;
    for i in memchr::memchr2_iter(b'<', b':', b) {
        let opening = b[i] == b'<';
        let prefixed = i >= 3 && matches!(&b[i - 3..i], b"pse" | b"tok");
        if !(opening || prefixed) {
            continue;
        }
        let rest = &b[i + 1..];
        // The longest kind name has 11 bytes; its terminator must follow within 12.
        let Some(len) = rest
            .iter()
            .take(12)
            .position(|c| !(c.is_ascii_lowercase() || *c == b'_'))
        else {
            continue;
        };
        let ends = match rest[len] {
            b':' => true,
            b'>' => opening,
            _ => false,
        };
        if len == 0 || !ends {
            continue;
        }
        // ASCII letters and `_` only, so this slice is on char boundaries.
        if let Some(class) = s
            .get(i + 1..i + 1 + len)
            .and_then(Kind::parse)
            .and_then(Kind::class)
        {
            set.insert(class);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(s: &str) -> Vec<AttributeClass> {
        edge_markers(s).iter().collect()
    }

    #[test]
    fn edge_markers_are_found_anywhere() {
        use AttributeClass::*;
        assert_eq!(classes("<email>"), [Pii]);
        assert_eq!(
            classes("mail to <email> with <card:…1111>"),
            [Pii, Financial]
        );
        assert_eq!(classes("pse:user_id:0a1b"), [Pii]);
        assert_eq!(classes("Bearer tok:bearer:XYZ"), [Secret]);
        assert_eq!(
            classes("a=pse:iban:00;b=tok:password:1"),
            [Secret, Financial]
        );
        for clean in [
            "<html>",
            "<p>hi</p>",
            "a < b",
            "<too_long>",
            "<sql_literal>",
            "http://x:80/tok",
            "stock:email",
            "pse:email",
            "<email",
            "<private_keys>",
            "12:00:00",
            "",
            "<",
            "tok:",
        ] {
            assert!(edge_markers(clean).is_empty(), "{clean}");
        }
    }

    #[test]
    fn records_are_deduplicated_bounded_and_marked() {
        let mut r = Record::default();
        assert_eq!(r.value(), None);
        let pii = ClassSet::EMPTY.with(AttributeClass::Pii);
        r.add(&Place::Resource("owner".into()), pii);
        let m = r.mark();
        r.add(&Place::Span("a;b".into()), pii.with(AttributeClass::Secret));
        r.add(&Place::Span("a;b".into()), pii);
        assert_eq!(
            r.value().as_deref(),
            Some("resource:owner=pii;span:a%3Bb=pii;span:a%3Bb=secret")
        );
        r.reset_to(m);
        assert_eq!(r.value().as_deref(), Some("resource:owner=pii"));
        r.add(
            &Place::Span("k".repeat(MAX_MINIMIZED_KEY_BYTES + 1).into()),
            pii,
        );
        assert_eq!(r.value().as_deref(), Some("resource:owner=pii;*=pii"));
        r.reset_to(m);
        for i in 0..MAX_MINIMIZED_ENTRIES + 10 {
            r.add(&Place::Span(format!("key{i}").into()), pii);
        }
        r.add(&Place::Name, ClassSet::EMPTY.with(AttributeClass::Secret));
        let v = r.value().unwrap();
        let parsed = parse_minimized(&v).unwrap();
        assert_eq!(parsed.len(), MAX_MINIMIZED_ENTRIES + 2, "{v}");
        assert!(v.ends_with(";*=pii;*=secret"), "{v}");
        assert!(v.len() <= MAX_MINIMIZED_BYTES + 32);
    }

    #[test]
    fn merged_lists_add_and_bad_lists_fail_closed() {
        let s = |v: &str| AnyValue {
            value: Some(Value::StringValue(v.into())),
        };
        let mut r = Record::default();
        r.merge(Some(&s("span:ip=pii;event[2].name=secret")));
        assert_eq!(
            r.value().as_deref(),
            Some("span:ip=pii;event[2].name=secret")
        );
        let mut r = Record::default();
        r.merge(Some(&s("garbage")));
        assert_eq!(r.value().as_deref(), Some("*=pii;*=secret;*=financial"));
        let mut r = Record::default();
        r.merge(None);
        assert_eq!(r.value().as_deref(), Some("*=pii;*=secret;*=financial"));
    }
}
