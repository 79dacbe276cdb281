//! Tempo reads: search with a TraceQL subset or `key=value` tags, tag names and tag
//! values. Same rules as every read: authorize `search` on the tenant, read the caller's
//! tenant only, scope and mask every span before anything is matched or listed (so a
//! condition or a tag value sees exactly what a trace answer would show), and write one
//! audit record before answering.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sentrace_access::authz::{Action, Resource};
use sentrace_core::TraceId;
use sentrace_store::{SpanFilter, TRACE_READS_IN_FLIGHT};

use super::read::{MAX_CANDIDATE_TRACES, dedup, views};
use super::scope::{Fate, Shaped};
use super::{Caller, QueryError, QueryService, now_nanos};
use crate::SpanView;
use crate::audit::Outcome;
use crate::tempo::{
    TagScope, TagWindow, TempoFound, TempoHit, TempoSearch, intrinsic_values, tags_match,
    typed_value,
};
use crate::traceql::{AttrScope, CmpOp, Field, Intrinsic, Literal, Query, SpanExpr};

/// Most traces read to list tag names or values (the newest in the window).
pub const TAG_WINDOW_TRACES: usize = 1000;
/// The window read for tag names and values when the request gives no `start`: 24 hours.
pub const TAG_WINDOW_NANOS: u64 = 24 * 3600 * 1_000_000_000;
/// The first pass of a search reads this many candidate traces per trace asked for (one
/// when the store's filter checks the whole query); a second pass reads up to
/// [`MAX_CANDIDATE_TRACES`] when the first found too few.
const FIRST_PASS_FACTOR: usize = 5;

/// Tag names by scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagNames {
    /// Resource attribute keys, sorted.
    pub resource: Vec<String>,
    /// Span attribute keys, sorted.
    pub span: Vec<String>,
    /// Intrinsics the subset can search, sorted.
    pub intrinsic: Vec<String>,
}

/// Narrows the store's filter with the conditions of a single span set that the store can
/// check (span name, the resource's `service.name`, duration bounds) when they are joined
/// by `&&`. A pre-filter only: every candidate is evaluated again on the masked view.
///
/// Returns whether the store's filter now checks the whole span set (every condition was
/// pushed down), so that the store's newest matching traces are the answer's candidates.
fn push_down(e: &SpanExpr, f: &mut SpanFilter) -> bool {
    match e {
        SpanExpr::And(a, b) => {
            let left = push_down(a, f);
            push_down(b, f) && left
        }
        SpanExpr::Cond(c) => match (&c.field, c.op, &c.value) {
            (Field::Intrinsic(Intrinsic::Name), CmpOp::Eq, Literal::Str(s)) => {
                f.name = Some(s.clone());
                true
            }
            (Field::Attr(AttrScope::Resource, k), CmpOp::Eq, Literal::Str(s))
                if k == "service.name" =>
            {
                f.service = Some(s.clone());
                true
            }
            (Field::Intrinsic(Intrinsic::Duration), op, Literal::Duration(d)) => {
                let d = *d;
                match op {
                    CmpOp::Gt => f.min_duration_nanos = Some(d.saturating_add(1)),
                    CmpOp::Ge | CmpOp::Eq => f.min_duration_nanos = Some(d),
                    _ => {}
                }
                match op {
                    CmpOp::Lt => f.max_duration_nanos = Some(d.saturating_sub(1)),
                    CmpOp::Le | CmpOp::Eq => f.max_duration_nanos = Some(d),
                    _ => {}
                }
                op != CmpOp::Ne
            }
            _ => false,
        },
        SpanExpr::All => true,
        SpanExpr::Or(..) => false,
    }
}

/// What the audit record keeps of a search: parameters and field names, never values (a
/// compared value may itself be sensitive).
fn search_filter(s: &TempoSearch) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    if let Some(q) = &s.query {
        let fields: Vec<String> = q.fields().iter().map(|f| f.to_traceql()).collect();
        f.insert("traceql_fields".into(), fields.join(","));
    }
    if !s.tags.is_empty() {
        let keys: Vec<&str> = s.tags.iter().map(|(k, _)| k.as_str()).collect();
        f.insert("tag_keys".into(), keys.join(","));
    }
    for (k, v) in [
        ("start_min_nanos", s.start_nanos),
        ("start_max_nanos", s.end_nanos),
        ("min_duration_nanos", s.min_duration_nanos),
        ("max_duration_nanos", s.max_duration_nanos),
    ] {
        if let Some(v) = v {
            f.insert(k.into(), v.to_string());
        }
    }
    f.insert("limit".into(), s.limit.to_string());
    f
}

fn window_filter(w: &TagWindow, field: Option<&Field>) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    if let Some(field) = field {
        f.insert("tag".into(), field.to_traceql());
    }
    if let Some(q) = &w.filter {
        let fields: Vec<String> = q.fields().iter().map(|f| f.to_traceql()).collect();
        f.insert("traceql_fields".into(), fields.join(","));
    }
    if let Some(v) = w.start_nanos {
        f.insert("start_min_nanos".into(), v.to_string());
    }
    if let Some(v) = w.end_nanos {
        f.insert("start_max_nanos".into(), v.to_string());
    }
    f
}

/// Whether the trace's duration (first start to last end, over every span, placeholders
/// included: they keep their timing) is within the search's bounds.
fn trace_duration_ok(s: &TempoSearch, spans: &[SpanView]) -> bool {
    let d = group_duration(spans);
    s.min_duration_nanos.is_none_or(|m| d >= m) && s.max_duration_nanos.is_none_or(|m| d <= m)
}

/// First start to last end over `spans`.
fn group_duration(spans: &[SpanView]) -> u64 {
    let start = spans
        .iter()
        .map(|v| v.span().start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .map(|v| v.span().end_time_unix_nano)
        .max()
        .unwrap_or(0);
    end.saturating_sub(start)
}

/// The matching spans of one trace (indexes into `spans`), looking only at `visible` ones.
fn matched(s: &TempoSearch, spans: &[SpanView], visible: &[usize]) -> Option<Vec<usize>> {
    let shown: Vec<SpanView> = visible.iter().map(|i| spans[*i].clone()).collect();
    let local = match &s.query {
        Some(q) => q.trace_matches(&shown)?,
        None => (0..shown.len())
            .filter(|i| s.tags.is_empty() || tags_match(&s.tags, &shown[*i]))
            .collect(),
    };
    let out: Vec<usize> = local.into_iter().map(|i| visible[i]).collect();
    (!out.is_empty()).then_some(out)
}

/// A cheap first check on the candidate spans of one trace (before its full read).
fn prematch(s: &TempoSearch, group: &[SpanView]) -> bool {
    match &s.query {
        Some(q) => q.trace_matches(group).is_some(),
        None => s.tags.is_empty() || group.iter().any(|v| tags_match(&s.tags, v)),
    }
}

impl QueryService {
    /// A Tempo search (`/api/search`): traces whose visible spans match the TraceQL
    /// query, or the tags, newest first, with every span of each trace scoped and masked
    /// as `read_trace` would show it.
    pub async fn tempo_search(
        &self,
        caller: &Caller,
        s: &TempoSearch,
        endpoint: &str,
    ) -> Result<TempoFound, QueryError> {
        let action = Action::Search;
        let filter = search_filter(s);
        let mut scope = self.scope(caller);
        self.require(
            caller,
            &mut scope,
            action,
            Resource::Tenant,
            endpoint,
            &filter,
        )
        .await?;
        let tenant = &caller.identity.tenant;
        let mut sf = SpanFilter {
            start_min_unix_nanos: s.start_nanos,
            start_max_unix_nanos: s.end_nanos,
            limit_traces: (s.limit.saturating_mul(FIRST_PASS_FACTOR)).min(MAX_CANDIDATE_TRACES),
            ..Default::default()
        };
        if let Some(e) = s.query.as_ref().and_then(Query::single_spanset)
            && push_down(e, &mut sf)
            && s.min_duration_nanos.is_none()
            && s.max_duration_nanos.is_none()
        {
            // The store checks the whole query: its newest `limit` traces are the answer
            // unless scoping or masking removes some, which the second pass makes up for.
            sf.limit_traces = s.limit;
        }
        let classes = scope.class_decisions();
        let mut found = TempoFound::default();
        let mut shaped = Shaped::default();
        let mut examined: HashSet<TraceId> = HashSet::new();
        loop {
            let read = self.store.search(tenant, &sf).await;
            let candidates = self.stored(read, caller, action, endpoint, &filter).await?;
            let mut order: Vec<TraceId> = Vec::new();
            let mut groups: HashMap<TraceId, Vec<SpanView>> = HashMap::new();
            let mut traces_seen: HashSet<TraceId> = HashSet::new();
            for mut v in views(&candidates) {
                let Ok(tid) = TraceId::from_slice(&v.span().trace_id) else {
                    continue;
                };
                traces_seen.insert(tid);
                if examined.contains(&tid) {
                    continue;
                }
                found.inspected_spans += 1;
                if scope.shape_one(action, &classes, &mut v) == Fate::Hidden {
                    continue;
                }
                groups
                    .entry(tid)
                    .or_insert_with(|| {
                        order.push(tid);
                        Vec::new()
                    })
                    .push(v);
            }
            found.inspected_bytes = found.inspected_bytes.saturating_add(
                candidates
                    .iter()
                    .map(|e| e.canonical.len() as u64)
                    .sum::<u64>(),
            );
            // Candidates that pass the cheap checks are read in waves of at most
            // TRACE_READS_IN_FLIGHT, never more than the hits still missing, so a wave reads
            // no trace the sequential order would not have read.
            let mut queue = order.into_iter();
            while found.hits.len() < s.limit {
                let room = TRACE_READS_IN_FLIGHT.min(s.limit - found.hits.len());
                let mut wave = Vec::with_capacity(room);
                while wave.len() < room {
                    let Some(tid) = queue.next() else { break };
                    examined.insert(tid);
                    found.inspected_traces += 1;
                    let group = dedup(groups.remove(&tid).unwrap_or_default());
                    // The candidates are part of the trace: a trace longer than maxDuration
                    // already is one without its full read.
                    if prematch(s, &group)
                        && s.max_duration_nanos
                            .is_none_or(|m| group_duration(&group) <= m)
                    {
                        wave.push(tid);
                    }
                }
                if wave.is_empty() {
                    break;
                }
                let reads = self.store.traces(tenant, &wave).await;
                for (tid, read) in wave.into_iter().zip(reads) {
                    let entries = self.stored(read, caller, action, endpoint, &filter).await?;
                    let mut spans = dedup(views(&entries));
                    spans.sort_by_key(|v| v.span().start_time_unix_nano);
                    let (fates, one) = scope.shape(Action::ReadTrace, &mut spans);
                    if !trace_duration_ok(s, &spans) {
                        continue;
                    }
                    let visible: Vec<usize> = (0..spans.len())
                        .filter(|i| fates[*i] != Fate::Hidden)
                        .collect();
                    let Some(m) = matched(s, &spans, &visible) else {
                        continue;
                    };
                    shaped.hidden += one.hidden;
                    shaped.masked += one.masked;
                    found.hits.push(TempoHit {
                        trace_id: tid,
                        spans,
                        matched: m,
                    });
                }
            }
            let exhausted = traces_seen.len() < sf.limit_traces;
            if found.hits.len() >= s.limit || exhausted || sf.limit_traces >= MAX_CANDIDATE_TRACES {
                break;
            }
            sf.limit_traces = MAX_CANDIDATE_TRACES;
        }
        let mut record = Self::record(caller, action, endpoint, Outcome::Allowed, filter);
        record.trace_ids = found.hits.iter().map(|h| h.trace_id.to_string()).collect();
        record.spans_returned = found
            .hits
            .iter()
            .map(|h| h.matched.len().min(s.spss) as u64 + 1)
            .sum();
        record.spans_masked = shaped.masked;
        record.spans_hidden = shaped.hidden;
        self.write_audit(record).await?;
        Ok(found)
    }

    /// The newest spans of the tag window, scoped and masked as a trace answer shows them,
    /// that pass the window's filter. Placeholders are left out.
    async fn tag_window(
        &self,
        caller: &Caller,
        w: &TagWindow,
        endpoint: &str,
        filter: &BTreeMap<String, String>,
    ) -> Result<Vec<SpanView>, QueryError> {
        let action = Action::Search;
        let mut scope = self.scope(caller);
        self.require(
            caller,
            &mut scope,
            action,
            Resource::Tenant,
            endpoint,
            filter,
        )
        .await?;
        let sf = SpanFilter {
            start_min_unix_nanos: Some(
                w.start_nanos
                    .unwrap_or_else(|| now_nanos().saturating_sub(TAG_WINDOW_NANOS)),
            ),
            start_max_unix_nanos: w.end_nanos,
            limit_traces: TAG_WINDOW_TRACES,
            ..Default::default()
        };
        let read = self.store.search(&caller.identity.tenant, &sf).await;
        let candidates = self.stored(read, caller, action, endpoint, filter).await?;
        let classes = scope.class_decisions();
        let mut out = Vec::new();
        for mut v in dedup(views(&candidates)) {
            if scope.shape_one(Action::ReadTrace, &classes, &mut v) == Fate::Hidden {
                continue;
            }
            if w.filter.as_ref().is_none_or(|q| q.span_matches_any(&v)) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Tag names (`/api/search/tags`, `/api/v2/search/tags`): attribute keys of the spans
    /// in the tag window that the caller may read, by scope, at most `w.limit` per scope.
    pub async fn tempo_tag_names(
        &self,
        caller: &Caller,
        which: TagScope,
        w: &TagWindow,
        endpoint: &str,
    ) -> Result<TagNames, QueryError> {
        let mut filter = window_filter(w, None);
        filter.insert("scope".into(), format!("{which:?}").to_lowercase());
        let mut names = TagNames::default();
        let wants = |s: TagScope| which == TagScope::All || which == s;
        if wants(TagScope::Resource) || wants(TagScope::Span) {
            let spans = self.tag_window(caller, w, endpoint, &filter).await?;
            let mut resource = BTreeSet::new();
            let mut span = BTreeSet::new();
            for v in &spans {
                if wants(TagScope::Resource)
                    && let Some(r) = &v.rs.resource
                {
                    for kv in &r.attributes {
                        if resource.len() < w.limit {
                            resource.insert(kv.key.clone());
                        }
                    }
                }
                if wants(TagScope::Span) {
                    for kv in &v.span().attributes {
                        if span.len() < w.limit {
                            span.insert(kv.key.clone());
                        }
                    }
                }
            }
            names.resource = resource.into_iter().collect();
            names.span = span.into_iter().collect();
        } else {
            let mut scope = self.scope(caller);
            self.require(
                caller,
                &mut scope,
                Action::Search,
                Resource::Tenant,
                endpoint,
                &filter,
            )
            .await?;
        }
        if wants(TagScope::Intrinsic) {
            names.intrinsic = Intrinsic::ALL
                .iter()
                .map(|i| i.as_str().to_string())
                .collect();
        }
        let mut record = Self::record(caller, Action::Search, endpoint, Outcome::Allowed, filter);
        let n = names.resource.len() + names.span.len() + names.intrinsic.len();
        record.filter.insert("answered".into(), n.to_string());
        self.write_audit(record).await?;
        Ok(names)
    }

    /// Values of one field (`/api/search/tag/{tag}/values`, v2): typed as Tempo types them,
    /// distinct, sorted, at most `w.limit`, taken from the spans in the tag window that
    /// the caller may read, after masking (a value the caller may not see appears only as
    /// its mask, exactly as in a trace answer).
    pub async fn tempo_tag_values(
        &self,
        caller: &Caller,
        field: &Field,
        w: &TagWindow,
        endpoint: &str,
    ) -> Result<Vec<(&'static str, String)>, QueryError> {
        let filter = window_filter(w, Some(field));
        let fixed = match field {
            Field::Intrinsic(i) => intrinsic_values(*i),
            Field::Attr(..) => None,
        };
        let values = match fixed {
            Some(v) => {
                let mut scope = self.scope(caller);
                self.require(
                    caller,
                    &mut scope,
                    Action::Search,
                    Resource::Tenant,
                    endpoint,
                    &filter,
                )
                .await?;
                v
            }
            None => {
                let spans = self.tag_window(caller, w, endpoint, &filter).await?;
                let mut set: BTreeSet<(&'static str, String)> = BTreeSet::new();
                for v in &spans {
                    if set.len() >= w.limit {
                        break;
                    }
                    let resource = || {
                        v.rs.resource
                            .as_ref()
                            .map(|r| r.attributes.as_slice())
                            .unwrap_or_default()
                    };
                    let found: Vec<(&'static str, String)> = match field {
                        Field::Intrinsic(_) => vec![("string", v.span().name.clone())],
                        Field::Attr(scope, key) => {
                            let lists: Vec<&[sentrace_core::proto::common::v1::KeyValue]> =
                                match scope {
                                    AttrScope::Span => vec![&v.span().attributes],
                                    AttrScope::Resource => vec![resource()],
                                    AttrScope::Any => vec![&v.span().attributes, resource()],
                                };
                            lists
                                .into_iter()
                                .flat_map(|l| l.iter())
                                .filter(|kv| kv.key == *key)
                                .filter_map(|kv| kv.value.as_ref().and_then(typed_value))
                                .collect()
                        }
                    };
                    for x in found {
                        if set.len() < w.limit {
                            set.insert(x);
                        }
                    }
                }
                set.into_iter().collect()
            }
        };
        let mut record = Self::record(caller, Action::Search, endpoint, Outcome::Allowed, filter);
        record
            .filter
            .insert("answered".into(), values.len().to_string());
        self.write_audit(record).await?;
        Ok(values)
    }
}
