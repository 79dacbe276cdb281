//! Query-string parameters of Tempo's search and tag endpoints, parsed into typed values.
//! Every refusal names its parameter.

use crate::search::{MAX_LIMIT, MAX_TAGS, SearchError};
use crate::traceql::{self, Query};

/// Traces returned when no `limit` is given (Tempo's default).
pub const DEFAULT_LIMIT: usize = 20;
/// Spans listed per span set when no `spss` is given (Tempo's default).
pub const DEFAULT_SPSS: usize = 3;
/// Largest `spss` (Tempo's default `max_spans_per_span_set`).
pub const MAX_SPSS: usize = 100;
/// Longest `tags` parameter, in bytes.
pub const MAX_TAGS_LEN: usize = 4096;
/// Most tag values (or tag names per scope) in one answer.
pub const MAX_TAG_VALUES: usize = 1000;

fn bad(param: &str, reason: impl Into<String>) -> SearchError {
    SearchError {
        param: param.into(),
        reason: reason.into(),
    }
}

/// A Tempo search: a TraceQL query, or `key=value` tags.
#[derive(Debug, Clone)]
pub struct TempoSearch {
    /// The TraceQL query (`q`); None means tags mode (every trace when there are no tags).
    pub query: Option<Query>,
    /// The `tags` conditions; all must hold on one span (case-insensitive substring of the
    /// value as text, as Tempo documents).
    pub tags: Vec<(String, String)>,
    /// Shortest trace duration, nanoseconds.
    pub min_duration_nanos: Option<u64>,
    /// Longest trace duration, nanoseconds.
    pub max_duration_nanos: Option<u64>,
    /// Earliest span start, Unix nanoseconds.
    pub start_nanos: Option<u64>,
    /// Latest span start, Unix nanoseconds.
    pub end_nanos: Option<u64>,
    /// Most traces.
    pub limit: usize,
    /// Spans listed per span set.
    pub spss: usize,
}

fn seconds(param: &str, v: &str) -> Result<u64, SearchError> {
    let s: u32 = v
        .parse()
        .map_err(|_| bad(param, "expected Unix seconds (an unsigned 32-bit integer)"))?;
    Ok(u64::from(s) * 1_000_000_000)
}

fn duration(param: &str, v: &str) -> Result<u64, SearchError> {
    traceql::go_duration_nanos(v)
        .ok_or_else(|| bad(param, "expected a Go duration like 100ms, 1.5s or 2m"))
}

/// `start` and `end` in Unix seconds; both or neither, `start` before `end`.
pub fn time_range(pairs: &[(String, String)]) -> Result<(Option<u64>, Option<u64>), SearchError> {
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
    let start = get("start")
        .filter(|v| !v.is_empty())
        .map(|v| seconds("start", v))
        .transpose()?;
    let end = get("end")
        .filter(|v| !v.is_empty())
        .map(|v| seconds("end", v))
        .transpose()?;
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(bad("start", "start must be before end"));
    }
    Ok((start.filter(|s| *s > 0), end.filter(|e| *e > 0)))
}

/// Parses Tempo's `logfmt` tags: `key=value key2="quoted value"`.
pub fn logfmt(text: &str) -> Result<Vec<(String, String)>, SearchError> {
    if text.len() > MAX_TAGS_LEN {
        return Err(bad("tags", format!("longer than {MAX_TAGS_LEN} bytes")));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    let mut chars = text.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            if c == '"' {
                return Err(bad(
                    "tags",
                    format!("unexpected '\"' in a key at byte {start}"),
                ));
            }
            key.push(c);
        }
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(bad(
                "tags",
                format!("`{key}` has no value (expected key=value)"),
            ));
        }
        if key.is_empty() {
            return Err(bad(
                "tags",
                format!("a value without a key at byte {start}"),
            ));
        }
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '"').is_some() {
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, e @ ('"' | '\\'))) => value.push(e),
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        _ => {
                            return Err(bad("tags", format!("bad escape in the value of `{key}`")));
                        }
                    },
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(bad(
                    "tags",
                    format!("the quoted value of `{key}` is not closed"),
                ));
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                value.push(c);
            }
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(bad("tags", format!("tag `{key}` is set twice")));
        }
        out.push((key, value));
        if out.len() > MAX_TAGS {
            return Err(bad("tags", format!("at most {MAX_TAGS} tags")));
        }
    }
    Ok(out)
}

impl TempoSearch {
    /// Parses `q`, `tags`, `minDuration`, `maxDuration`, `limit`, `start`, `end` and
    /// `spss`. Unknown parameters are ignored, as Tempo does.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, SearchError> {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, b)| b.as_str())
                .filter(|v| !v.trim().is_empty())
        };
        let query = get("q")
            .map(|q| traceql::parse(q).map_err(|e| bad("q", e.to_string())))
            .transpose()?;
        let tags = get("tags").map(logfmt).transpose()?.unwrap_or_default();
        if query.is_some() && !tags.is_empty() {
            return Err(bad("q", "q and tags cannot be used in the same search"));
        }
        let min = get("minDuration")
            .map(|v| duration("minDuration", v))
            .transpose()?;
        let max = get("maxDuration")
            .map(|v| duration("maxDuration", v))
            .transpose()?;
        if let (Some(a), Some(b)) = (min, max)
            && a > b
        {
            return Err(bad("maxDuration", "must be greater than minDuration"));
        }
        let limit = match get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => {
                let n: usize = v
                    .parse()
                    .map_err(|_| bad("limit", "expected a positive integer"))?;
                if n == 0 {
                    return Err(bad("limit", "must be a positive number"));
                }
                n.min(MAX_LIMIT)
            }
        };
        let spss = match get("spss") {
            None => DEFAULT_SPSS,
            Some(v) => {
                let n: usize = v
                    .parse()
                    .map_err(|_| bad("spss", "expected a non-negative integer"))?;
                if n > MAX_SPSS {
                    return Err(bad(
                        "spss",
                        format!("spans per span set exceeds {MAX_SPSS}"),
                    ));
                }
                if n == 0 { DEFAULT_SPSS } else { n }
            }
        };
        let (start_nanos, end_nanos) = time_range(pairs)?;
        Ok(Self {
            query,
            tags,
            min_duration_nanos: min,
            max_duration_nanos: max,
            start_nanos,
            end_nanos,
            limit,
            spss,
        })
    }
}

/// Which tags the tag-name endpoints list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagScope {
    /// Resource and span attributes, and (v2 only) intrinsics.
    All,
    /// Resource attributes.
    Resource,
    /// Span attributes.
    Span,
    /// Intrinsics.
    Intrinsic,
    /// Scopes Tempo knows that the subset does not search (`event`, `link`,
    /// `instrumentation`): always empty.
    Unsearched,
}

impl TagScope {
    /// Parses the `scope` parameter.
    pub fn parse(v: Option<&str>) -> Result<Self, SearchError> {
        Ok(match v.unwrap_or("") {
            "" | "all" | "none" => TagScope::All,
            "resource" => TagScope::Resource,
            "span" => TagScope::Span,
            "intrinsic" => TagScope::Intrinsic,
            "event" | "link" | "instrumentation" => TagScope::Unsearched,
            other => {
                return Err(bad(
                    "scope",
                    format!(
                        "unknown scope {:?} (expected resource, span, intrinsic, event, link, instrumentation or all)",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
        })
    }
}

/// The window and filter of a tag-name or tag-value request.
#[derive(Debug, Clone, Default)]
pub struct TagWindow {
    /// Earliest span start, Unix nanoseconds (default: a recent window).
    pub start_nanos: Option<u64>,
    /// Latest span start, Unix nanoseconds.
    pub end_nanos: Option<u64>,
    /// Only spans matching this query count (Tempo's `q` on tag endpoints).
    pub filter: Option<Query>,
    /// Most names or values returned.
    pub limit: usize,
}

impl TagWindow {
    /// Parses `start`, `end`, `limit` and `q`. As Tempo documents, a `q` that does not
    /// parse (Grafana sends incomplete queries while the user types, like
    /// `{ resource.cluster = }`) is ignored and the whole list is answered; a filter can
    /// only narrow the list, never add to it.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, SearchError> {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, b)| b.as_str())
                .filter(|v| !v.trim().is_empty())
        };
        let (start_nanos, end_nanos) = time_range(pairs)?;
        let limit = match get("limit") {
            None => MAX_TAG_VALUES,
            Some(v) => match v
                .parse::<usize>()
                .map_err(|_| bad("limit", "expected a non-negative integer"))?
            {
                0 => MAX_TAG_VALUES,
                n => n.min(MAX_TAG_VALUES),
            },
        };
        let filter = get("q").and_then(|q| traceql::parse(q).ok());
        Ok(Self {
            start_nanos,
            end_nanos,
            filter,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn logfmt_tags() {
        let t = logfmt(r#"service.name=api  http.url="a b \"c\"" x=1"#).unwrap();
        assert_eq!(
            t,
            [
                ("service.name".to_string(), "api".to_string()),
                ("http.url".into(), "a b \"c\"".into()),
                ("x".into(), "1".into())
            ]
        );
        assert_eq!(logfmt("").unwrap(), []);
        for (bad, says) in [
            ("a", "`a` has no value"),
            ("=v", "a value without a key"),
            ("a=1 a=2", "tag `a` is set twice"),
            ("a=\"open", "not closed"),
            ("a\"b=1", "unexpected '\"'"),
        ] {
            let e = logfmt(bad).unwrap_err();
            assert_eq!(e.param, "tags");
            assert!(e.reason.contains(says), "{bad}: {e}");
        }
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("k{i}=v")).collect();
        assert!(logfmt(&many.join(" ")).is_err());
        assert!(logfmt(&"a".repeat(MAX_TAGS_LEN + 1)).is_err());
    }

    #[test]
    fn search_params() {
        let s = TempoSearch::from_pairs(&pairs(&[
            ("q", "{ name = \"x\" }"),
            ("limit", "5000"),
            ("spss", "0"),
            ("start", "10"),
            ("end", "20"),
            ("minDuration", "1.5s"),
        ]))
        .unwrap();
        assert!(s.query.is_some());
        assert_eq!(s.limit, MAX_LIMIT);
        assert_eq!(s.spss, DEFAULT_SPSS);
        assert_eq!(s.start_nanos, Some(10_000_000_000));
        assert_eq!(s.end_nanos, Some(20_000_000_000));
        assert_eq!(s.min_duration_nanos, Some(1_500_000_000));
        let s = TempoSearch::from_pairs(&pairs(&[("q", " ")])).unwrap();
        assert!(s.query.is_none() && s.tags.is_empty());
        for (k, v) in [
            ("q", "{"),
            ("limit", "0"),
            ("spss", "101"),
            ("start", "x"),
            ("maxDuration", "1"),
        ] {
            let e = TempoSearch::from_pairs(&pairs(&[(k, v)])).unwrap_err();
            assert_eq!(e.param, k, "{e}");
        }
        let w = TagWindow::from_pairs(&pairs(&[("q", "{ x = }"), ("limit", "0")])).unwrap();
        assert!(w.filter.is_none());
        assert_eq!(w.limit, MAX_TAG_VALUES);
        assert_eq!(TagScope::parse(Some("span")).unwrap(), TagScope::Span);
        assert_eq!(TagScope::parse(Some("nope")).unwrap_err().param, "scope");
    }
}
