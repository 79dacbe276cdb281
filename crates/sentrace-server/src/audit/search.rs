//! Reading audit records back, for auditors: a filter over one log, newest matches kept.
//!
//! Records are decrypted one by one from the log's journal; records that do not decrypt
//! (crypto-shredded keys, damage) are counted, never returned, and `sentrace verify`
//! names them.

use serde::{Deserialize, Serialize};

use super::AuditRecord;
use super::files::{AuditFiles, FilesError, LogName};

/// The most records one search returns.
pub const MAX_LIMIT: usize = 10_000;
/// The default number of records returned.
pub const DEFAULT_LIMIT: usize = 1_000;

/// What to look for. Every set field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Records at or after this time (Unix nanoseconds).
    pub since: Option<u64>,
    /// Records before this time (Unix nanoseconds).
    pub until: Option<u64>,
    /// Records of this principal (exact match).
    pub principal: Option<String>,
    /// Records that returned this trace id (hex, case-insensitive).
    pub trace_id: Option<String>,
    /// At most this many records (the newest matches), 1 to [`MAX_LIMIT`].
    pub limit: usize,
}

impl AuditFilter {
    fn matches(&self, r: &AuditRecord) -> bool {
        self.since.is_none_or(|s| r.time_unix_nanos >= s)
            && self.until.is_none_or(|u| r.time_unix_nanos < u)
            && self.principal.as_ref().is_none_or(|p| &r.principal == p)
            && self
                .trace_id
                .as_ref()
                .is_none_or(|t| r.trace_ids.iter().any(|x| x.eq_ignore_ascii_case(t)))
    }
}

/// The query parameters of the auditors' API (`GET /api/audit?since=&until=&principal=&trace=&limit=`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// A duration back from now (`15m`, `24h`, `7d`) or an RFC 3339 time.
    pub since: Option<String>,
    /// An RFC 3339 time, or a duration back from now.
    pub until: Option<String>,
    /// Exact principal.
    pub principal: Option<String>,
    /// A trace id (hex).
    pub trace: Option<String>,
    /// How many records at most (default 1000, at most 10000).
    pub limit: Option<usize>,
    /// `json` (default: `{data, truncated, unreadable}`) or `ocsf` (OCSF API Activity
    /// events as JSON lines). Used by [`super::routes::search_response`].
    pub format: Option<String>,
}

impl AuditQuery {
    /// The filter, with times resolved against `now_nanos`. The error names the parameter.
    pub fn to_filter(&self, now_nanos: u64) -> Result<AuditFilter, String> {
        let time = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(|t| parse_time(t, now_nanos).map_err(|e| format!("{name}: {e}")))
                .transpose()
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(format!("limit: must be 1 to {MAX_LIMIT}, got {limit}"));
        }
        if let Some(t) = &self.trace
            && (t.is_empty() || t.len() > 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err("trace: must be a hex trace id of 1 to 32 digits".into());
        }
        if !matches!(self.format.as_deref(), None | Some("json" | "ocsf")) {
            return Err("format: must be json or ocsf".into());
        }
        if self.principal.as_ref().is_some_and(|p| p.len() > 1024) {
            return Err("principal: longer than 1024 bytes".into());
        }
        Ok(AuditFilter {
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            principal: self.principal.clone(),
            trace_id: self.trace.clone(),
            limit,
        })
    }
}

/// Parses a point in time: a duration back from `now_nanos` (`250ms`, `30s`, `15m`,
/// `24h`, `7d`) or an RFC 3339 UTC/offset time (`2026-12-06T02:00:00Z`).
pub fn parse_time(text: &str, now_nanos: u64) -> Result<u64, String> {
    let text = text.trim();
    if text.len() > 64 {
        return Err("longer than 64 characters".into());
    }
    if text.contains('T') || text.contains('-') {
        return parse_rfc3339(text);
    }
    // A duration needs its unit here (a bare "5" is refused, not taken as seconds).
    let d = sentrace_access::parse_duration(text)?;
    let back = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Ok(now_nanos.saturating_sub(back))
}

/// RFC 3339 `date-time` (section 5.6) to Unix nanoseconds.
fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{text:?} is neither a duration (15m, 24h, 7d) nor an RFC 3339 time (2026-12-06T02:00:00Z)"
        )
    };
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        let frac = &text[start..at];
        if frac.is_empty() {
            return Err(bad());
        }
        let mut padded: String = frac.chars().take(9).collect();
        while padded.len() < 9 {
            padded.push('0');
        }
        nanos = padded.parse().map_err(|_| bad())?;
    }
    let offset = match &text[at..] {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(&o[..1], "+" | "-") && &o[3..4] == ":" => {
            let oh = num(at + 1..at + 3)?;
            let om = num(at + 4..at + 6)?;
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return Err(bad()),
    };
    let days = sentrace_core::time::days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    u64::try_from(total).map_err(|_| {
        if total < 0 {
            format!("{text:?} is before 1970")
        } else {
            format!("{text:?} is after 2554 (the last time Unix nanoseconds can hold)")
        }
    })
}

/// One record found, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The log's origin (`<node>/<tenant>/audit`).
    pub origin: String,
    /// The record's index in that log.
    pub index: u64,
    /// The record.
    pub record: AuditRecord,
}

/// What a search found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The matching records, oldest first (the newest `limit` of them).
    pub entries: Vec<AuditEntry>,
    /// Records that matched but were left out by the limit.
    pub truncated: u64,
    /// Records that could not be read (their keys were crypto-shredded, or damaged: run
    /// `sentrace verify`).
    pub unreadable: u64,
}

/// Searches one log.
pub fn search(
    files: &AuditFiles,
    log: &LogName,
    filter: &AuditFilter,
) -> Result<SearchResult, FilesError> {
    let origin = files
        .read_checkpoint(log)?
        .and_then(|c| {
            String::from_utf8_lossy(&c)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("(unsigned)/{}/audit", log.as_str()));
    let stored = files.stored(log)?;
    let mut out = SearchResult::default();
    let limit = filter.limit.clamp(1, MAX_LIMIT);
    let mut found = std::collections::VecDeque::new();
    for r in &stored.records {
        match files.open_record(log, r) {
            Ok(rec) if filter.matches(&rec) => {
                found.push_back(AuditEntry {
                    origin: origin.clone(),
                    index: r.seq,
                    record: rec,
                });
                if found.len() > limit {
                    found.pop_front();
                    out.truncated += 1;
                }
            }
            Ok(_) => {}
            Err(_) => out.unreadable += 1,
        }
    }
    out.entries = found.into();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(
            parse_time("1970-01-01T00:00:01Z", 0).unwrap(),
            1_000_000_000
        );
        assert_eq!(
            parse_time("2026-12-06T02:00:00.5Z", 0).unwrap(),
            1_796_522_400_500_000_000
        );
        assert_eq!(
            parse_time("2026-12-06T03:00:00+01:00", 0).unwrap(),
            1_796_522_400_000_000_000
        );
        assert_eq!(
            parse_time("15m", 1_000_000_000_000).unwrap(),
            100_000_000_000
        );
        assert!(parse_time("yesterday", 0).is_err());
        assert!(parse_time("5", 0).is_err(), "a duration needs its unit");
        assert!(parse_time("2026-13-06T02:00:00Z", 0).is_err());
        let late = parse_time("2999-01-01T00:00:00Z", 0).unwrap_err();
        assert!(late.contains("after 2554"), "{late}");
        let early = parse_time("1969-12-31T23:59:59Z", 0).unwrap_err();
        assert!(early.contains("before 1970"), "{early}");
        let q = AuditQuery {
            limit: Some(0),
            ..Default::default()
        };
        assert!(q.to_filter(0).unwrap_err().starts_with("limit"));
    }
}
