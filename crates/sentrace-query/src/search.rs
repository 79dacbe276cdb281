//! Trace search parameters, parsed from the Jaeger query API's query string into a typed
//! filter, and the per-span matching that the index cannot do (tags).

use std::time::Duration;

use sentrace_core::otlp::value_to_string;
use sentrace_core::proto::trace::v1::status::StatusCode;

use crate::SpanView;
use crate::jaeger::kind_name;

/// Largest number of traces one search may return.
pub const MAX_LIMIT: usize = 1500;
/// Traces returned when no limit is given.
pub const DEFAULT_LIMIT: usize = 20;
/// Most tag conditions in one search.
pub const MAX_TAGS: usize = 32;
/// Most `traceID` parameters in one search.
pub const MAX_TRACE_IDS: usize = 200;

/// A bad search parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter {param:?}: {reason}")]
pub struct SearchError {
    /// The query-string parameter.
    pub param: String,
    /// What was wrong.
    pub reason: String,
}

fn bad(param: &str, reason: impl Into<String>) -> SearchError {
    SearchError {
        param: param.into(),
        reason: reason.into(),
    }
}

/// One `key=value` condition. A span matches when an attribute (of the span, its resource
/// or one of its events) with that key has that value in its text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    /// Attribute key.
    pub key: String,
    /// Expected value, compared as text.
    pub value: String,
}

/// A typed trace search.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchParams {
    /// `service.name` to match.
    pub service: Option<String>,
    /// Span name to match.
    pub operation: Option<String>,
    /// Span kind (`server`, `client`, ...) to match.
    pub span_kind: Option<String>,
    /// Conditions on attributes; all must hold on one span.
    pub tags: Vec<TagFilter>,
    /// Earliest span start, Unix nanoseconds.
    pub start_min_nanos: Option<u64>,
    /// Latest span start, Unix nanoseconds.
    pub start_max_nanos: Option<u64>,
    /// Shortest span duration.
    pub min_duration: Option<Duration>,
    /// Longest span duration.
    pub max_duration: Option<Duration>,
    /// Most traces to return.
    pub limit: usize,
    /// Trace ids (`traceID`, repeatable), each 1 to 32 hex digits. When any is given the
    /// search answers exactly those traces and ignores every other condition, as Jaeger's
    /// query service does.
    pub trace_ids: Vec<String>,
}

/// Parses Jaeger/Go style durations: `1.5s`, `100ms`, `250us`, `2m`, `1h`, `10ns`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    parse_duration_with(text, &[])
}

/// Parses a search lookback as Jaeger UI sends it: a Go duration, or whole days and weeks
/// (`2d`, `7d`, `1w`), which Go durations lack.
pub fn parse_lookback(text: &str) -> Option<Duration> {
    parse_duration_with(text, &[("d", 86_400e9), ("w", 604_800e9)])
}

fn parse_duration_with(text: &str, extra: &[(&str, f64)]) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().ok()?;
    let nanos_per = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        other => extra.iter().find(|(u, _)| *u == other)?.1,
    };
    let nanos = n * nanos_per;
    (nanos.is_finite() && nanos >= 0.0 && nanos < u64::MAX as f64)
        .then(|| Duration::from_nanos(nanos as u64))
}

fn micros_param(name: &str, v: &str) -> Result<u64, SearchError> {
    let us: u64 = v
        .parse()
        .map_err(|_| bad(name, "expected microseconds since the Unix epoch"))?;
    us.checked_mul(1_000)
        .ok_or_else(|| bad(name, "timestamp out of range"))
}

impl SearchParams {
    /// Parses query-string pairs as Jaeger UI and Grafana send them: `service`, `operation`,
    /// `spanKind`, `tags` (a JSON object), `tag` (repeatable `key:value`), `start`/`end`
    /// (microseconds), `lookback` (`1h`, `2d`, `1w`; used only when `start` is absent, so
    /// it is ignored, as Jaeger ignores it, when the UI also sends `start` and `end`),
    /// `minDuration`, `maxDuration`, `limit` and `traceID` (repeatable). `now_nanos`
    /// anchors `lookback`.
    ///
    /// As in Jaeger, `service` is required unless `traceID` is given.
    pub fn from_pairs(pairs: &[(String, String)], now_nanos: u64) -> Result<Self, SearchError> {
        let mut p = SearchParams {
            limit: DEFAULT_LIMIT,
            ..Default::default()
        };
        let mut lookback: Option<&str> = None;
        for (k, v) in pairs {
            let v = v.as_str();
            match k.as_str() {
                "service" if !v.is_empty() => p.service = Some(v.to_string()),
                "operation" if !v.is_empty() => p.operation = Some(v.to_string()),
                "spanKind" if !v.is_empty() => {
                    if !crate::jaeger::SPAN_KINDS.contains(&v) {
                        return Err(bad(
                            "spanKind",
                            format!("expected one of {}", crate::jaeger::SPAN_KINDS.join(", ")),
                        ));
                    }
                    p.span_kind = Some(v.to_string())
                }
                "tags" if !v.is_empty() => {
                    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(v)
                        .map_err(|e| {
                        bad("tags", format!("expected a JSON object of strings: {e}"))
                    })?;
                    for (key, val) in map {
                        let value = match val {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        p.tags.push(TagFilter { key, value });
                    }
                }
                "tag" if !v.is_empty() => {
                    let (key, value) = v
                        .split_once(':')
                        .or_else(|| v.split_once('='))
                        .ok_or_else(|| bad("tag", "expected key:value"))?;
                    p.tags.push(TagFilter {
                        key: key.to_string(),
                        value: value.to_string(),
                    });
                }
                "start" if !v.is_empty() => p.start_min_nanos = Some(micros_param("start", v)?),
                "end" if !v.is_empty() => p.start_max_nanos = Some(micros_param("end", v)?),
                "lookback" if !v.is_empty() && v != "custom" => lookback = Some(v),
                "traceID" => {
                    if v.is_empty() || v.len() > 32 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(bad(
                            "traceID",
                            format!(
                                "{:?} is not 1 to 32 hex digits",
                                v.chars().take(40).collect::<String>()
                            ),
                        ));
                    }
                    if p.trace_ids.len() == MAX_TRACE_IDS {
                        return Err(bad("traceID", format!("at most {MAX_TRACE_IDS} trace ids")));
                    }
                    p.trace_ids.push(v.to_ascii_lowercase());
                }
                "minDuration" if !v.is_empty() => {
                    p.min_duration = Some(
                        parse_go_duration(v)
                            .ok_or_else(|| bad("minDuration", "expected a duration like 100ms"))?,
                    )
                }
                "maxDuration" if !v.is_empty() => {
                    p.max_duration = Some(
                        parse_go_duration(v)
                            .ok_or_else(|| bad("maxDuration", "expected a duration like 1.5s"))?,
                    )
                }
                "limit" if !v.is_empty() => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| bad("limit", "expected a positive integer"))?;
                    if n == 0 {
                        return Err(bad("limit", "must be at least 1"));
                    }
                    p.limit = n.min(MAX_LIMIT);
                }
                _ => {}
            }
        }
        if p.tags.len() > MAX_TAGS {
            return Err(bad("tags", format!("at most {MAX_TAGS} tag conditions")));
        }
        if p.service.is_none() && p.trace_ids.is_empty() {
            return Err(bad("service", "is required (or give traceID)"));
        }
        if p.start_min_nanos.is_none()
            && let Some(text) = lookback
        {
            let lb = parse_lookback(text)
                .ok_or_else(|| bad("lookback", "expected a duration like 1h, 30m, 2d or 1w"))?;
            let lb = u64::try_from(lb.as_nanos()).unwrap_or(u64::MAX);
            p.start_min_nanos = Some(now_nanos.saturating_sub(lb));
        }
        if let (Some(a), Some(b)) = (p.start_min_nanos, p.start_max_nanos)
            && a > b
        {
            return Err(bad("start", "start is after end"));
        }
        if let (Some(a), Some(b)) = (p.min_duration, p.max_duration)
            && a > b
        {
            return Err(bad("minDuration", "minDuration is above maxDuration"));
        }
        Ok(p)
    }

    /// Whether one span satisfies every condition (index conditions included, so callers can
    /// apply it to candidates from any source).
    pub fn matches(&self, v: &SpanView) -> bool {
        let s = v.span();
        if self.service.as_deref().is_some_and(|x| x != v.service()) {
            return false;
        }
        if self.operation.as_deref().is_some_and(|x| x != s.name) {
            return false;
        }
        if self
            .span_kind
            .as_deref()
            .is_some_and(|x| x != kind_name(s.kind))
        {
            return false;
        }
        if self
            .start_min_nanos
            .is_some_and(|x| s.start_time_unix_nano < x)
            || self
                .start_max_nanos
                .is_some_and(|x| s.start_time_unix_nano > x)
        {
            return false;
        }
        let dur = Duration::from_nanos(s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano));
        if self.min_duration.is_some_and(|x| dur < x) || self.max_duration.is_some_and(|x| dur > x)
        {
            return false;
        }
        self.tags.iter().all(|t| tag_matches(v, t))
    }
}

fn tag_matches(v: &SpanView, t: &TagFilter) -> bool {
    let s = v.span();
    let is_error = s
        .status
        .as_ref()
        .is_some_and(|st| st.code == StatusCode::Error as i32);
    match t.key.as_str() {
        "error" => return (t.value == "true") == is_error,
        "span.kind" => return kind_name(s.kind) == t.value,
        "otel.status_code" => {
            let code = s.status.as_ref().map_or(0, |st| st.code);
            let name = match StatusCode::try_from(code) {
                Ok(StatusCode::Ok) => "OK",
                Ok(StatusCode::Error) => "ERROR",
                _ => "",
            };
            return name == t.value;
        }
        _ => {}
    }
    let hit = |attrs: &[sentrace_core::proto::common::v1::KeyValue]| {
        attrs.iter().any(|kv| {
            kv.key == t.key
                && kv
                    .value
                    .as_ref()
                    .is_some_and(|x| value_to_string(x) == t.value)
        })
    };
    hit(&s.attributes)
        || v.rs.resource.as_ref().is_some_and(|r| hit(&r.attributes))
        || s.events.iter().any(|e| hit(&e.attributes))
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
    fn parses_jaeger_params() {
        let p = SearchParams::from_pairs(
            &pairs(&[
                ("service", "web"),
                ("tags", r#"{"http.status_code":"500","retry":true}"#),
                ("tag", "a:b"),
                ("start", "1000"),
                ("end", "2000"),
                ("minDuration", "1.5ms"),
                ("limit", "5000"),
            ]),
            0,
        )
        .unwrap();
        assert_eq!(p.service.as_deref(), Some("web"));
        assert_eq!(p.tags.len(), 3);
        assert_eq!(p.tags[1].value, "true");
        assert_eq!(p.start_min_nanos, Some(1_000_000));
        assert_eq!(p.min_duration, Some(Duration::from_micros(1500)));
        assert_eq!(p.limit, MAX_LIMIT);
    }

    #[test]
    fn errors_name_the_parameter() {
        for (k, v) in [
            ("tags", "{bad"),
            ("start", "x"),
            ("minDuration", "5 parsecs"),
            ("limit", "0"),
            ("tag", "nocolon"),
        ] {
            let e = SearchParams::from_pairs(&pairs(&[(k, v)]), 0).unwrap_err();
            assert_eq!(e.param, k);
        }
        let e = SearchParams::from_pairs(
            &pairs(&[("service", "web"), ("start", "5"), ("end", "1")]),
            0,
        )
        .unwrap_err();
        assert_eq!(e.param, "start");
        for id in ["", "xyz", &"a".repeat(33)] {
            let e = SearchParams::from_pairs(&pairs(&[("traceID", id)]), 0).unwrap_err();
            assert_eq!(e.param, "traceID", "{id:?}");
        }
    }

    #[test]
    fn service_is_required_unless_trace_ids_are_given() {
        let e = SearchParams::from_pairs(&pairs(&[("limit", "5")]), 0).unwrap_err();
        assert_eq!(e.param, "service");
        assert!(e.to_string().contains("required"), "{e}");
        let p =
            SearchParams::from_pairs(&pairs(&[("traceID", "AB"), ("traceID", "cd")]), 0).unwrap();
        assert_eq!(p.trace_ids, ["ab", "cd"]);
        let many: Vec<(String, String)> = (0..=MAX_TRACE_IDS)
            .map(|i| ("traceID".to_string(), format!("{i:x}")))
            .collect();
        assert_eq!(
            SearchParams::from_pairs(&many, 0).unwrap_err().param,
            "traceID"
        );
    }

    const HOUR: u64 = 3_600_000_000_000;

    #[test]
    fn lookback_takes_every_unit_jaeger_ui_sends() {
        let now = 30 * 24 * HOUR;
        for (text, hours) in [
            ("1h", 1),
            ("2h", 2),
            ("12h", 12),
            ("24h", 24),
            ("2d", 48),
            ("7d", 168),
            ("1w", 168),
            ("2w", 336),
        ] {
            let p = SearchParams::from_pairs(&pairs(&[("service", "s"), ("lookback", text)]), now)
                .unwrap();
            assert_eq!(p.start_min_nanos, Some(now - hours * HOUR), "{text}");
        }
        let p = SearchParams::from_pairs(&pairs(&[("service", "s"), ("lookback", "30m")]), now)
            .unwrap();
        assert_eq!(p.start_min_nanos, Some(now - HOUR / 2));
        let e = SearchParams::from_pairs(&pairs(&[("service", "s"), ("lookback", "2y")]), now)
            .unwrap_err();
        assert_eq!(e.param, "lookback");
        assert!(e.to_string().contains("2d"), "{e}");
    }

    #[test]
    fn lookback_is_ignored_when_start_and_end_are_given() {
        let p = SearchParams::from_pairs(
            &pairs(&[
                ("service", "s"),
                ("start", "1000"),
                ("end", "2000"),
                ("lookback", "whatever"),
            ]),
            5 * HOUR,
        )
        .unwrap();
        assert_eq!(p.start_min_nanos, Some(1_000_000));
        assert_eq!(p.start_max_nanos, Some(2_000_000));
    }
}
