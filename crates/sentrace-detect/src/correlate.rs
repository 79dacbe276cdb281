//! Trace-correlated detectors: follow request input from an entry (server) span into the
//! spans it caused, in the spirit of runtime application self-protection.
//!
//! - `sql_structure`: an input occurs in a child `db.statement`/`db.query.text`, and
//!   replacing it by a neutral literal changes the statement's token structure
//!   ([`crate::payload::sqli::shape`]): the input was executed as SQL, not bound as a value.
//! - `outbound_url`: an input names the host of a child span's `url.full`/`http.url`.
//! - `file_path`: an input with path syntax (`..`, absolute path, scheme) occurs in a
//!   child's `file.path`/`file.name`/`file.directory`.
//! - `command_line`: an input with shell syntax occurs in a child's
//!   `process.command_line`/`process.command`/`process.command_args`.
//!
//! Correlation happens within one batch (the usual case: a trace's spans are exported
//! together by the SDK's batch processor) and across batches through the detector's
//! [`crate::memory::TraceMemory`] (a child that ended, and left, before its entry span).

use std::collections::HashMap;

use sentrace_core::SpanId;
use sentrace_core::otlp::value_to_string;

use crate::normalize;
use crate::payload::{extract, sqli, ssrf};
use crate::span::SpanRef;

/// Names of the builtin correlated detectors.
pub const CORRELATED_MATCHERS: &[&str] =
    &["sql_structure", "outbound_url", "file_path", "command_line"];

/// Shortest input considered.
pub const MIN_INPUT_CHARS: usize = 3;
/// Most spans of one trace examined.
pub const MAX_SPANS_PER_TRACE: usize = 1_000;

/// A confirmed flow of input into a sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmed<'a> {
    /// Which detector (one of [`CORRELATED_MATCHERS`]).
    pub matcher: &'static str,
    /// The entry span holding the input.
    pub entry: SpanRef<'a>,
    /// Attribute of the entry span the input came from.
    pub input_attribute: String,
    /// The decoded input.
    pub input: String,
    /// The child span where it arrived.
    pub sink: SpanRef<'a>,
    /// The sink attribute.
    pub sink_attribute: &'static str,
    /// Why.
    pub reason: &'static str,
}

impl PartialEq for SpanRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.span, other.span)
    }
}
impl Eq for SpanRef<'_> {}

fn sink_text(s: &SpanRef<'_>, keys: &[&'static str]) -> Option<(&'static str, String)> {
    for k in keys {
        if let Some(kv) = s.attrs().iter().find(|kv| kv.key == *k)
            && let Some(v) = kv.value.as_ref()
        {
            let text = value_to_string(v);
            if !text.is_empty() {
                return Some((k, text));
            }
        }
    }
    None
}

fn structural(v: &str) -> bool {
    v.bytes()
        .any(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))
}

#[cfg(test)]
fn sql_changed(statement: &str, input: &str) -> bool {
    sql_changed_lower(&statement.to_lowercase(), &input.to_lowercase())
}

/// [`sql_changed`] on lower-cased text.
fn sql_changed_lower(stmt: &str, inp: &str) -> bool {
    if !structural(inp) || !stmt.contains(inp) {
        return false;
    }
    let placeholder = if inp.trim().parse::<f64>().is_ok() {
        "0"
    } else {
        "x"
    };
    let replaced = stmt.replacen(inp, placeholder, 1);
    sqli::shape(stmt) != sqli::shape(&replaced)
}

fn url_host(url: &str) -> Option<String> {
    ssrf::url_target(&url.to_lowercase())
        .map(|(_, h)| h)
        .filter(|h| !h.is_empty())
}

/// Runs the correlated detectors on the spans of one trace.
pub fn correlate<'a>(trace: &[SpanRef<'a>]) -> Vec<Confirmed<'a>> {
    correlate_with(trace, &entry_inputs)
}

/// Attributes a correlated detector reads on child spans.
pub(crate) const SINK_KEYS: &[&str] = &[
    "db.query.text",
    "db.statement",
    "url.full",
    "http.url",
    "file.path",
    "file.name",
    "file.directory",
    "process.command_line",
    "process.command",
    "process.command_args",
];

/// The decoded, lower-cased inputs of an entry span (at least [`MIN_INPUT_CHARS`] long).
pub fn entry_inputs(entry: &SpanRef<'_>) -> Vec<(String, String)> {
    extract::inputs(entry.attrs())
        .into_iter()
        .map(|i| (i.attribute, normalize::decode(&i.raw).to_lowercase()))
        .filter(|(_, v)| may_correlate(v))
        .collect()
}

/// Whether a decoded input can be reported by a correlated detector: at least
/// [`MIN_INPUT_CHARS`] long and either with a non-word character (every detector needs
/// one: SQL structure, path and shell syntax, a host with `.` or `:`) or `localhost`.
pub fn may_correlate(decoded: &str) -> bool {
    decoded.chars().nth(MIN_INPUT_CHARS - 1).is_some()
        && (structural(decoded) || decoded.eq_ignore_ascii_case("localhost"))
}

/// [`correlate`] with the entry inputs supplied by the caller (the detector reuses the
/// payload pass's decoding).
pub fn correlate_with<'a>(
    trace: &[SpanRef<'a>],
    inputs_of: &dyn Fn(&SpanRef<'a>) -> Vec<(String, String)>,
) -> Vec<Confirmed<'a>> {
    correlate_cow(trace, &|e| std::borrow::Cow::Owned(inputs_of(e)))
}

/// An entry span's decoded inputs, `(attribute, lower-cased value)`, owned or borrowed.
pub type Inputs<'b> = std::borrow::Cow<'b, [(String, String)]>;

/// [`correlate_with`], with inputs that may be borrowed (no copy per trace).
pub fn correlate_cow<'a, 'b>(
    trace: &[SpanRef<'a>],
    inputs_of: &dyn Fn(&SpanRef<'a>) -> Inputs<'b>,
) -> Vec<Confirmed<'a>> {
    let trace = &trace[..trace.len().min(MAX_SPANS_PER_TRACE)];
    let mut out = Vec::new();
    let has_sink = trace.iter().any(|s| {
        s.attrs()
            .iter()
            .any(|kv| SINK_KEYS.contains(&kv.key.as_str()))
    });
    if !has_sink {
        return out;
    }
    let by_id: HashMap<SpanId, usize> = trace
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.span_id().map(|id| (id, i)))
        .collect();
    let entries: Vec<usize> = (0..trace.len()).filter(|i| trace[*i].is_entry()).collect();
    for &e in &entries {
        let entry = trace[e];
        let inputs = inputs_of(&entry);
        if inputs.is_empty() {
            continue;
        }
        for (ci, child) in trace.iter().enumerate() {
            if ci == e || !descends_from(trace, &by_id, ci, e, entries.len()) {
                continue;
            }
            let mut found = |matcher, attr: &str, input: &str, sink_attribute, reason| {
                out.push(Confirmed {
                    matcher,
                    entry,
                    input_attribute: attr.to_string(),
                    input: input.to_string(),
                    sink: *child,
                    sink_attribute,
                    reason,
                });
            };
            if let Some((k, stmt)) = sink_text(child, &["db.query.text", "db.statement"])
                .map(|(k, s)| (k, s.to_lowercase()))
                && let Some((a, v)) = inputs.iter().find(|(_, v)| sql_changed_lower(&stmt, v))
            {
                found(
                    "sql_structure",
                    a,
                    v,
                    k,
                    "input changed the SQL token structure",
                );
            }
            if let Some((k, url)) = sink_text(child, &["url.full", "http.url"])
                && let Some(host) = url_host(&url)
            {
                let hit = inputs.iter().find(|(_, v)| {
                    // Inputs are lower-cased already; an input that chose the host holds
                    // it, which rules most inputs out before any parsing.
                    if !v.contains(host.as_str()) {
                        return false;
                    }
                    let v = v.to_lowercase();
                    (v.contains("://") || v.contains('.') || v.contains(':') || v == "localhost")
                        && url_host(&v).map_or_else(
                            || v.split(['/', ':']).next() == Some(host.as_str()),
                            |h| h == host,
                        )
                });
                if let Some((a, v)) = hit {
                    let reason = match ssrf::classify_host(&host) {
                        Some(ssrf::Target::Metadata) => {
                            "input chose the outbound host: cloud metadata"
                        }
                        Some(ssrf::Target::Loopback | ssrf::Target::Private) => {
                            "input chose the outbound host: internal address"
                        }
                        _ => "input chose the outbound host",
                    };
                    found("outbound_url", a, v, k, reason);
                }
            }
            if let Some((k, path)) = sink_text(child, &["file.path", "file.name", "file.directory"])
                .map(|(k, p)| (k, p.to_lowercase()))
            {
                let hit = inputs.iter().find(|(_, v)| {
                    (v.contains("..")
                        || v.starts_with('/')
                        || v.contains(":\\")
                        || v.contains("://"))
                        && path.contains(v.as_str())
                });
                if let Some((a, v)) = hit {
                    found(
                        "file_path",
                        a,
                        v,
                        k,
                        "input with path syntax reached a file path",
                    );
                }
            }
            if let Some((k, cmd)) = sink_text(
                child,
                &[
                    "process.command_line",
                    "process.command",
                    "process.command_args",
                ],
            ) {
                let hit = inputs.iter().find(|(_, v)| {
                    v.bytes().any(|b| {
                        matches!(b, b';' | b'|' | b'&' | b'`' | b'$' | b'\n' | b'>' | b'<')
                    }) && cmd.contains(v.as_str())
                });
                if let Some((a, v)) = hit {
                    found(
                        "command_line",
                        a,
                        v,
                        k,
                        "input with shell syntax reached a command line",
                    );
                }
            }
        }
    }
    out
}

/// Whether span `ci` descends from span `e` through parent links in `trace`. When the
/// chain leaves the batch and the trace has a single entry span, the span counts as its
/// descendant.
fn descends_from(
    trace: &[SpanRef<'_>],
    by_id: &HashMap<SpanId, usize>,
    ci: usize,
    e: usize,
    entry_count: usize,
) -> bool {
    let mut cur = ci;
    for _ in 0..64 {
        let Some(p) = trace[cur].parent_id() else {
            return false;
        };
        match by_id.get(&p) {
            Some(&pi) if pi == e => return true,
            Some(&pi) => cur = pi,
            None => return entry_count == 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_structure_change() {
        assert!(sql_changed(
            "SELECT * FROM users WHERE name = 'x' OR '1'='1'",
            "x' OR '1'='1"
        ));
        assert!(sql_changed(
            "SELECT * FROM items WHERE id = 1 UNION SELECT password FROM users",
            "1 UNION SELECT password FROM users"
        ));
        // Bound as a literal: same structure.
        assert!(!sql_changed(
            "SELECT * FROM users WHERE name = 'O''Brien'",
            "O''Brien"
        ));
        assert!(!sql_changed(
            "SELECT * FROM users WHERE name = 'a-b c'",
            "a-b c"
        ));
        assert!(!sql_changed("SELECT * FROM t WHERE id = 42", "42"));
        assert!(!sql_changed("SELECT * FROM t", "zzz;"));
    }
}
