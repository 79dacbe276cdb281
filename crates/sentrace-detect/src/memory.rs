//! Cross-batch memory for the trace-correlated detectors.
//!
//! An SDK's batch processor exports a span when it ends, so a trace's spans can arrive in
//! several batches: a database or outbound-call span ends before the server span that
//! caused it and may leave in an earlier batch. The correlated detectors need both sides,
//! so the detector remembers, per tenant and trace, a trimmed copy of the spans that may
//! still pair with a span of a later batch:
//!
//! - a *sink* span (`db.statement`, `url.full`, `file.path`, `process.command_line`, ...)
//!   whose parent chain does not reach an entry span inside its batch, with the in-batch
//!   spans of that chain (ids only), so descent can be followed later;
//! - an *entry* span that a payload detector reported, which a later sink may confirm.
//!
//! When a later batch holds spans of a remembered trace, the detector evaluates the
//! current spans together with the remembered ones and reports only pairs with at least
//! one side in the current batch (pairs of two remembered spans were evaluated when the
//! later of them arrived).
//!
//! The memory holds raw input values (never persisted, never logged) and is bounded: at
//! most [`MAX_TRACES_PER_TENANT`] traces per tenant and [`MAX_SPANS_PER_TRACE`] spans per
//! trace, each forgotten [`TTL_NANOS`] after it was first remembered (by the receive
//! clock the server passes in).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sentrace_core::{SpanId, TenantId, TraceId};

use crate::correlate::SINK_KEYS;
use crate::span::SpanRef;

/// How long a remembered trace is kept, in nanoseconds (2 minutes: far beyond the 5 s
/// default export delay of the OpenTelemetry batch span processor).
pub const TTL_NANOS: u64 = 120_000_000_000;
/// Most traces remembered per tenant (the oldest are forgotten first).
pub const MAX_TRACES_PER_TENANT: usize = 20_000;
/// Most spans remembered per trace.
pub const MAX_SPANS_PER_TRACE: usize = crate::correlate::MAX_SPANS_PER_TRACE;
/// Most tenants remembered.
pub const MAX_TENANTS: usize = 10_000;

/// Remembered parts of one trace: trimmed spans grouped by service, one part per batch.
pub type Parts = Vec<Arc<Vec<ResourceSpans>>>;

#[derive(Debug, Default)]
struct Remembered {
    first_seen: u64,
    parts: Parts,
    spans: usize,
}

#[derive(Debug, Default)]
struct TenantMemory {
    traces: HashMap<TraceId, Remembered>,
    /// Traces by the time they were first remembered, oldest first.
    order: VecDeque<(u64, TraceId)>,
}

impl TenantMemory {
    fn expire(&mut self, now: u64) {
        while let Some(&(t, id)) = self.order.front() {
            if self.traces.len() <= MAX_TRACES_PER_TENANT && now.saturating_sub(t) < TTL_NANOS {
                break;
            }
            self.order.pop_front();
            if self.traces.get(&id).is_some_and(|r| r.first_seen == t) {
                self.traces.remove(&id);
            }
        }
    }
}

/// The per-tenant memory of spans waiting for their counterpart. Share it across threads.
#[derive(Debug, Default)]
pub struct TraceMemory {
    tenants: Mutex<HashMap<TenantId, TenantMemory>>,
}

impl TraceMemory {
    /// An empty memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The remembered parts of the given traces (only those that have some).
    pub fn recall<'a>(
        &self,
        tenant: &TenantId,
        traces: impl Iterator<Item = &'a TraceId>,
        now: u64,
    ) -> HashMap<TraceId, Parts> {
        let Ok(mut g) = self.tenants.lock() else {
            return HashMap::new();
        };
        let Some(m) = g.get_mut(tenant) else {
            return HashMap::new();
        };
        m.expire(now);
        traces
            .filter_map(|t| m.traces.get(t).map(|r| (*t, r.parts.clone())))
            .collect()
    }

    /// Remembers a trimmed part of a trace (see [`remember_part`]).
    pub fn remember(&self, tenant: &TenantId, trace: TraceId, part: Vec<ResourceSpans>, now: u64) {
        let n: usize = part
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        if n == 0 {
            return;
        }
        let Ok(mut g) = self.tenants.lock() else {
            return;
        };
        if !g.contains_key(tenant) && g.len() >= MAX_TENANTS {
            // Forget an idle tenant to make room (the memory is a best-effort cache).
            let idle = g
                .iter()
                .find(|(_, m)| m.traces.is_empty())
                .map(|(t, _)| t.clone());
            match idle {
                Some(t) => {
                    g.remove(&t);
                }
                None => return,
            }
        }
        let m = g.entry(tenant.clone()).or_default();
        let r = m.traces.entry(trace).or_insert_with(|| Remembered {
            first_seen: now,
            ..Default::default()
        });
        if r.parts.is_empty() {
            m.order.push_back((now, trace));
        }
        if r.spans.saturating_add(n) > MAX_SPANS_PER_TRACE {
            return;
        }
        r.spans += n;
        r.parts.push(Arc::new(part));
        m.expire(now);
    }

    /// Traces remembered for a tenant.
    pub fn len(&self, tenant: &TenantId) -> usize {
        self.tenants
            .lock()
            .ok()
            .and_then(|g| g.get(tenant).map(|m| m.traces.len()))
            .unwrap_or(0)
    }
}

fn has_sink(s: &SpanRef<'_>) -> bool {
    s.attrs()
        .iter()
        .any(|kv| SINK_KEYS.contains(&kv.key.as_str()))
}

/// Chooses what of one trace's spans in a batch to remember, trimmed: sink spans whose
/// parent chain does not reach an in-batch entry span (with that chain, ids only), and
/// entry spans that `flagged` marks (those a payload detector reported: an entry span ends
/// after its children, so an entry arriving before its sink is the rare order, and
/// remembering every entry with structured input, JSON bodies included, would cost every
/// batch). Returns no spans when nothing may pair with a later batch.
pub fn remember_part<'a>(
    trace: &[SpanRef<'a>],
    flagged: &dyn Fn(&SpanRef<'a>) -> bool,
) -> Vec<ResourceSpans> {
    let trace = &trace[..trace.len().min(MAX_SPANS_PER_TRACE)];
    // index → keep attributes (true) or ids only (false)
    let mut keep: Vec<(usize, bool)> = Vec::new();
    let mut by_id: Option<HashMap<SpanId, usize>> = None;
    for (i, s) in trace.iter().enumerate() {
        if s.is_entry() {
            if flagged(s) {
                keep.push((i, true));
            }
            continue;
        }
        if !has_sink(s) {
            continue;
        }
        let by_id = by_id.get_or_insert_with(|| {
            trace
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.span_id().map(|id| (id, i)))
                .collect()
        });
        // Walk up inside the batch; stop at an entry (resolved here) or at the edge.
        let mut chain = Vec::new();
        let mut cur = i;
        let mut resolved = false;
        for _ in 0..64 {
            let Some(p) = trace[cur].parent_id().and_then(|p| by_id.get(&p).copied()) else {
                break;
            };
            if trace[p].is_entry() {
                resolved = true;
                break;
            }
            chain.push(p);
            cur = p;
        }
        if !resolved {
            keep.push((i, true));
            keep.extend(chain.into_iter().map(|c| (c, false)));
        }
    }
    if keep.is_empty() {
        return Vec::new();
    }
    // One copy per span; with attributes if any reason asked for them.
    keep.sort_unstable_by_key(|&(i, attrs)| (i, !attrs));
    keep.dedup_by_key(|&mut (i, _)| i);
    let mut by_service: HashMap<&str, Vec<Span>> = HashMap::new();
    for (i, attrs) in keep {
        let s = trace[i];
        by_service
            .entry(s.service)
            .or_default()
            .push(trim(&s, attrs));
    }
    by_service
        .into_iter()
        .map(|(service, spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.to_string())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect()
}

/// A copy of the span with what correlation reads: ids, kind, times, and (for entries and
/// sinks) the attributes; entries keep all (inputs and subject), sinks their sink keys.
fn trim(s: &SpanRef<'_>, with_attributes: bool) -> Span {
    let attributes = if !with_attributes {
        Vec::new()
    } else if s.is_entry() {
        s.span.attributes.clone()
    } else {
        s.span
            .attributes
            .iter()
            .filter(|kv| SINK_KEYS.contains(&kv.key.as_str()))
            .cloned()
            .collect()
    };
    Span {
        trace_id: s.span.trace_id.clone(),
        span_id: s.span.span_id.clone(),
        parent_span_id: s.span.parent_span_id.clone(),
        kind: s.span.kind,
        start_time_unix_nano: s.span.start_time_unix_nano,
        end_time_unix_nano: s.span.end_time_unix_nano,
        attributes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_expiring() {
        let m = TraceMemory::new();
        let t = TenantId::new("a").unwrap();
        let part = || {
            vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default()],
                    ..Default::default()
                }],
                ..Default::default()
            }]
        };
        let id = |n: u32| {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&n.to_be_bytes());
            b[15] = 1;
            TraceId::from_bytes(b).unwrap()
        };
        for n in 0..(MAX_TRACES_PER_TENANT as u32 + 10) {
            m.remember(&t, id(n), part(), 1);
        }
        assert_eq!(
            m.len(&t),
            MAX_TRACES_PER_TENANT,
            "oldest forgotten beyond the bound"
        );
        assert!(m.recall(&t, [id(0)].iter(), 1).is_empty());
        assert_eq!(m.recall(&t, [id(20)].iter(), 1).len(), 1);
        // Expired after the TTL.
        assert!(m.recall(&t, [id(20)].iter(), 1 + TTL_NANOS).is_empty());
        assert_eq!(m.len(&t), 0);
        // Tenants never mix.
        m.remember(&t, id(1), part(), 5);
        let other = TenantId::new("b").unwrap();
        assert!(m.recall(&other, [id(1)].iter(), 5).is_empty());
    }
}
