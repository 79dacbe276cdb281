//! Which span attributes are request inputs, and how they are split into values.
//!
//! Inspected attributes (OpenTelemetry semantic conventions, plus legacy names):
//! `url.query`, `url.path`, `url.full`, `http.target`, `http.url`, `user_agent.original`,
//! `http.user_agent`, every `http.request.header.*` except a few fixed-format headers, and
//! the body attributes in [`BODY_KEYS`]. Query strings, form bodies and cookies are split
//! into parameter names and values; JSON bodies are walked (keys and string leaves).

use std::borrow::Cow;

use sentrace_core::otlp::value_to_string;
use sentrace_core::proto::common::v1::{KeyValue, any_value::Value};

/// Attributes that carry a request body.
pub const BODY_KEYS: &[&str] = &[
    "http.request.body",
    "http.request.body.content",
    "http.request.body.text",
    "request.body",
    "http.body",
];

/// Headers whose values have a fixed grammar and carry no user input worth inspecting.
const SKIP_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "cache-control",
    "pragma",
    "upgrade-insecure-requests",
];

/// Most values extracted from one span.
pub const MAX_VALUES_PER_SPAN: usize = 256;
/// Largest JSON body walked, in bytes.
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// Deepest JSON nesting walked.
pub const MAX_JSON_DEPTH: usize = 16;

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// A parameter or cookie name, or a JSON key.
    Name,
    /// A parameter value, header value, path or whole body.
    Value,
}

/// One request input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// The span attribute it came from.
    pub attribute: String,
    /// Name or value.
    pub part: Part,
    /// The raw (not yet normalized) text.
    pub raw: String,
    /// The parameter name, JSON path (`a.b`) or cookie name the value was found under;
    /// empty for a whole path, header or body.
    pub field: String,
}

/// Whether an attribute key is a request input.
pub fn is_input_key(key: &str) -> bool {
    matches!(
        key,
        "url.query"
            | "url.path"
            | "url.full"
            | "http.target"
            | "http.url"
            | "user_agent.original"
            | "http.user_agent"
    ) || BODY_KEYS.contains(&key)
        || key
            .strip_prefix("http.request.header.")
            .is_some_and(|h| !SKIP_HEADERS.contains(&h))
}

/// One request input, borrowed from the span where possible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputRef<'a> {
    /// The span attribute it came from.
    pub attribute: &'a str,
    /// Name or value.
    pub part: Part,
    /// The raw (not yet normalized) text.
    pub raw: Cow<'a, str>,
    /// The parameter name, JSON path (`a.b`) or cookie name the value was found under;
    /// empty for a whole path, header or body.
    pub field: Cow<'a, str>,
}

impl InputRef<'_> {
    /// The owned form.
    pub fn to_input(&self) -> Input {
        Input {
            attribute: self.attribute.to_string(),
            part: self.part,
            raw: self.raw.to_string(),
            field: self.field.to_string(),
        }
    }
}

/// The string (or string-array) values of an attribute.
fn strings(kv: &KeyValue) -> Vec<Cow<'_, str>> {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => vec![Cow::Borrowed(s.as_str())],
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .filter_map(|v| match &v.value {
                Some(Value::StringValue(s)) => Some(Cow::Borrowed(s.as_str())),
                _ => None,
            })
            .collect(),
        Some(Value::BytesValue(b)) => vec![String::from_utf8_lossy(b)],
        Some(_) => kv
            .value
            .as_ref()
            .map(|v| Cow::Owned(value_to_string(v)))
            .into_iter()
            .collect(),
        None => Vec::new(),
    }
}

fn push<'a>(out: &mut Vec<InputRef<'a>>, attribute: &'a str, part: Part, raw: &'a str) {
    push_cow(out, attribute, part, Cow::Borrowed(raw), Cow::Borrowed(""));
}

fn push_cow<'a>(
    out: &mut Vec<InputRef<'a>>,
    attribute: &'a str,
    part: Part,
    raw: Cow<'a, str>,
    field: Cow<'a, str>,
) {
    if raw.is_empty() || out.len() >= MAX_VALUES_PER_SPAN {
        return;
    }
    out.push(InputRef {
        attribute,
        part,
        raw,
        field,
    });
}

/// Splits `a=1&b=2` (or `a=1; b=2` with `sep = ';'`) into names and values.
fn split_pairs<'a>(out: &mut Vec<InputRef<'a>>, attribute: &'a str, text: &'a str, sep: char) {
    for pair in text.split(sep) {
        let pair = pair.trim_start();
        match pair.split_once('=') {
            Some((k, v)) => {
                push(out, attribute, Part::Name, k);
                push_cow(
                    out,
                    attribute,
                    Part::Value,
                    Cow::Borrowed(v),
                    Cow::Borrowed(k),
                );
            }
            None => push(out, attribute, Part::Value, pair),
        }
    }
}

/// Longest JSON path kept as a field name.
const MAX_JSON_PATH: usize = 128;

/// Walks a JSON value; `path` is the dotted path of object keys to it (arrays add none).
fn walk_json<'a>(
    out: &mut Vec<InputRef<'a>>,
    attribute: &'a str,
    v: &serde_json::Value,
    depth: usize,
    path: &str,
) {
    if depth > MAX_JSON_DEPTH || out.len() >= MAX_VALUES_PER_SPAN {
        return;
    }
    match v {
        serde_json::Value::String(s) => push_cow(
            out,
            attribute,
            Part::Value,
            Cow::Owned(s.clone()),
            Cow::Owned(path.to_string()),
        ),
        serde_json::Value::Array(a) => a
            .iter()
            .for_each(|x| walk_json(out, attribute, x, depth + 1, path)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                push_cow(
                    out,
                    attribute,
                    Part::Name,
                    Cow::Owned(k.clone()),
                    Cow::Borrowed(""),
                );
                let child = if path.is_empty() {
                    k.clone()
                } else if path.len() + k.len() < MAX_JSON_PATH {
                    format!("{path}.{k}")
                } else {
                    path.to_string()
                };
                walk_json(out, attribute, x, depth + 1, &child);
            }
        }
        _ => {}
    }
}

fn split_url<'a>(out: &mut Vec<InputRef<'a>>, attribute: &'a str, url: &'a str) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    push(out, attribute, Part::Value, path);
    if !query.is_empty() {
        split_pairs(out, attribute, query, '&');
    }
}

fn body<'a>(out: &mut Vec<InputRef<'a>>, attribute: &'a str, text: &'a str) {
    let t = text.trim_start();
    if (t.starts_with('{') || t.starts_with('['))
        && t.len() <= MAX_JSON_BYTES
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(t)
    {
        walk_json(out, attribute, &v, 0, "");
        return;
    }
    if t.starts_with('<') {
        push(out, attribute, Part::Value, text);
        xml_values(out, attribute, t);
    } else if let Some(boundary) = multipart_boundary(t) {
        multipart(out, attribute, t, boundary);
    } else if !t.contains('=') {
        push(out, attribute, Part::Value, text);
    } else {
        split_pairs(out, attribute, text, '&');
    }
}

/// Attribute values and text nodes of an XML or HTML body (no entity expansion).
fn xml_values<'a>(out: &mut Vec<InputRef<'a>>, attribute: &'a str, t: &'a str) {
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < MAX_VALUES_PER_SPAN {
        match b[i] {
            b'"' | b'\'' => {
                let q = b[i];
                let end = b[i + 1..]
                    .iter()
                    .position(|c| *c == q)
                    .map_or(b.len(), |p| i + 1 + p);
                push(out, attribute, Part::Value, &t[i + 1..end]);
                i = end + 1;
            }
            b'>' => {
                let end = b[i + 1..]
                    .iter()
                    .position(|c| *c == b'<')
                    .map_or(b.len(), |p| i + 1 + p);
                let text = t[i + 1..end].trim();
                push(out, attribute, Part::Value, text);
                i = end;
            }
            _ => i += 1,
        }
    }
}

/// The boundary of a `multipart/form-data` body: its first line, `--boundary`.
fn multipart_boundary(t: &str) -> Option<&str> {
    let first = t.lines().next()?.trim_end();
    (first.starts_with("--") && first.len() > 2 && t.contains("Content-Disposition"))
        .then_some(first)
}

/// Part headers' names and file names, and part bodies, of a multipart body.
fn multipart<'a>(out: &mut Vec<InputRef<'a>>, attribute: &'a str, t: &'a str, boundary: &str) {
    for part in t.split(boundary) {
        let part = part.trim_start_matches(['\r', '\n']);
        let (head, body) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
            .unwrap_or(("", part));
        // Each part header on its own line; parameters (`name=`, `filename=`) split on ';'.
        for field in head.lines().flat_map(|l| l.split(';')) {
            if let Some((_, v)) = field.split_once('=') {
                push(out, attribute, Part::Name, v.trim().trim_matches('"'));
            }
        }
        let body = body.trim_end_matches(['\r', '\n', '-']);
        push(out, attribute, Part::Value, body);
    }
}

/// Appends the inputs of one attribute to `out`.
pub fn inputs_of(kv: &KeyValue, out: &mut Vec<Input>) {
    let mut refs = Vec::new();
    inputs_ref_of(kv, &mut refs);
    let room = MAX_VALUES_PER_SPAN.saturating_sub(out.len());
    out.extend(refs.iter().take(room).map(InputRef::to_input));
}

/// Appends the inputs of one attribute to `out`, borrowing from the attribute.
pub fn inputs_ref_of<'a>(kv: &'a KeyValue, out: &mut Vec<InputRef<'a>>) {
    let key = kv.key.as_str();
    if !is_input_key(key) {
        return;
    }
    for s in strings(kv) {
        match s {
            Cow::Borrowed(s) => split_value(out, key, s),
            Cow::Owned(s) => {
                // Not a string attribute (bytes, numbers): split a copy, keep owned parts.
                let mut tmp = Vec::new();
                split_value(&mut tmp, key, &s);
                for i in tmp {
                    push_cow(
                        out,
                        key,
                        i.part,
                        Cow::Owned(i.raw.into_owned()),
                        Cow::Owned(i.field.into_owned()),
                    );
                }
            }
        }
    }
}

fn split_value<'a>(out: &mut Vec<InputRef<'a>>, key: &'a str, s: &'a str) {
    match key {
        "url.query" => split_pairs(out, key, s, '&'),
        "url.full" | "http.url" => {
            let after_scheme = s.split_once("://").map_or(s, |(_, r)| r);
            let path = after_scheme.find('/').map_or("", |p| &after_scheme[p..]);
            split_url(out, key, path);
        }
        "http.target" => split_url(out, key, s),
        "http.request.header.cookie" => split_pairs(out, key, s, ';'),
        // A header holding a URL (Referer, Origin, X-Forwarded-*): the whole value, and
        // its query parameters as the application that reads it would see them.
        k if k.starts_with("http.request.header.")
            && (s.starts_with("http://") || s.starts_with("https://"))
            && s.contains('?') =>
        {
            push(out, key, Part::Value, s);
            if let Some((_, query)) = s.split_once('?') {
                split_pairs(out, key, query.split('#').next().unwrap_or(query), '&');
            }
        }
        k if BODY_KEYS.contains(&k) => body(out, key, s),
        _ => push(out, key, Part::Value, s),
    }
}

/// All inputs of a span's attributes.
pub fn inputs(attrs: &[KeyValue]) -> Vec<Input> {
    let mut refs = Vec::new();
    inputs_ref(attrs, &mut refs);
    refs.iter().map(InputRef::to_input).collect()
}

/// All inputs of a span's attributes, borrowed; `out` is cleared first (reuse it).
pub fn inputs_ref<'a>(attrs: &'a [KeyValue], out: &mut Vec<InputRef<'a>>) {
    out.clear();
    for kv in attrs {
        inputs_ref_of(kv, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentrace_core::proto::common::v1::AnyValue;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn xml_and_multipart_bodies() {
        let got = inputs(&[kv(
            "http.request.body",
            "<?xml version=\"1.0\"?><root><a probe=\"1' or 1=1\">text node</a></root>",
        )]);
        let raws: Vec<&str> = got.iter().map(|i| i.raw.as_str()).collect();
        assert!(
            raws.contains(&"1' or 1=1") && raws.contains(&"text node"),
            "{raws:?}"
        );
        let mp = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jsp\"\r\n\r\n<% exec %>\r\n--XyZ--\r\n";
        // A part with a second header line after the file name (LF line ends).
        let lf = "--B\nContent-Disposition: form-data; name=\"f\"; filename=\"x. php\"\nContent-Type: text/plain\n\nhi\n--B--\n";
        let got = inputs(&[kv("http.request.body", lf)]);
        assert!(got.iter().any(|i| i.raw == "x. php"), "{got:?}");
        let got = inputs(&[kv("http.request.body", mp)]);
        let raws: Vec<&str> = got.iter().map(|i| i.raw.as_str()).collect();
        assert!(
            raws.contains(&"a.jsp") && raws.contains(&"<% exec %>"),
            "{raws:?}"
        );
    }

    #[test]
    fn splits_query_cookie_json() {
        let got = inputs(&[
            kv("url.query", "q=shoes&page=2"),
            kv("http.request.header.cookie", "sid=abc; theme=dark"),
            kv("http.request.body", r#"{"user":{"$ne":null},"name":"x"}"#),
            kv("http.request.header.accept", "*/*"),
            kv("db.statement", "select 1"),
        ]);
        let raws: Vec<&str> = got.iter().map(|i| i.raw.as_str()).collect();
        assert_eq!(
            raws,
            [
                "q", "shoes", "page", "2", "sid", "abc", "theme", "dark", "user", "$ne", "name",
                "x"
            ]
        );
        assert_eq!(got[9].part, Part::Name);
        let got = inputs(&[kv(
            "http.request.header.referer",
            "https://example.com/?args=env --version#top",
        )]);
        let raws: Vec<&str> = got.iter().map(|i| i.raw.as_str()).collect();
        assert_eq!(
            raws,
            [
                "https://example.com/?args=env --version#top",
                "args",
                "env --version"
            ]
        );
    }
}
