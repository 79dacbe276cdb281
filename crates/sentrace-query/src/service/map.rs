//! The service map: the dependency graph of [`super::QueryService::dependencies`] with the
//! time each edge was first seen, for the console's security overlay (`GET /api/map`).
//!
//! It runs inside a [`Gate`] opened for [`Action::Search`], so the caller adds its own
//! overlay (findings) before the one audit record is written.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sentrace_access::authz::Action;
use sentrace_store::SpanFilter;

use super::read::{MAX_CANDIDATE_TRACES, dedup, views};
use super::scope::Fate;
use super::{Gate, QueryError, QueryService};
use crate::SpanView;

/// One edge of the map.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MapEdge {
    /// The calling service.
    pub parent: String,
    /// The called service.
    pub child: String,
    /// Calls in the lookback window (a child span whose parent is in the other service).
    pub calls: u64,
    /// Start of the earliest such call found in the lookback window plus the history window
    /// before it, Unix ns.
    pub first_seen_ns: u64,
}

/// The graph of the lookback window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceMap {
    /// Services with a span in the lookback window, sorted.
    pub services: BTreeSet<String>,
    /// Edges with a call in the lookback window, sorted by parent then child.
    pub edges: Vec<MapEdge>,
    /// Spans read (lookback plus history).
    pub spans_read: u64,
}

/// Edges of `visible` with calls counted from `window_start` on and first sightings over
/// every span given.
pub fn edges_with_first_seen(visible: &[SpanView], window_start: u64) -> ServiceMap {
    let mut service_of: HashMap<(&[u8], &[u8]), &str> = HashMap::new();
    for v in visible {
        service_of.insert((&v.span().trace_id, &v.span().span_id), v.service());
    }
    let mut services = BTreeSet::new();
    // (parent, child) -> (calls in the window, first seen)
    let mut edges: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for v in visible {
        let s = v.span();
        let in_window = s.start_time_unix_nano >= window_start;
        if in_window {
            services.insert(v.service().to_string());
        }
        if s.parent_span_id.is_empty() {
            continue;
        }
        if let Some(parent) = service_of.get(&(s.trace_id.as_slice(), s.parent_span_id.as_slice()))
            && *parent != v.service()
        {
            let e = edges.entry((parent, v.service())).or_insert((0, u64::MAX));
            if in_window {
                e.0 += 1;
            }
            e.1 = e.1.min(s.start_time_unix_nano);
        }
    }
    ServiceMap {
        services,
        edges: edges
            .into_iter()
            .filter(|(_, (calls, _))| *calls > 0)
            .map(|((parent, child), (calls, first))| MapEdge {
                parent: parent.to_string(),
                child: child.to_string(),
                calls,
                first_seen_ns: first,
            })
            .collect(),
        spans_read: visible.len() as u64,
    }
}

impl QueryService {
    /// The caller's service map of `[end - lookback, end]`, with first sightings looked for
    /// from `end - lookback - history` on. Only services the caller may search appear (an
    /// edge to a hidden service is neither shown nor counted), as in `dependencies`.
    ///
    /// `gate` must have been opened for [`Action::Search`]; the caller finishes it. At most
    /// [`MAX_CANDIDATE_TRACES`] traces are read, so on a busy tenant the oldest part of the
    /// history may be left out (an edge then looks newer than it is).
    pub async fn service_map(
        &self,
        gate: &mut Gate,
        end_nanos: u64,
        lookback_nanos: u64,
        history_nanos: u64,
    ) -> Result<ServiceMap, QueryError> {
        let window_start = end_nanos.saturating_sub(lookback_nanos);
        let sf = SpanFilter {
            start_min_unix_nanos: Some(window_start.saturating_sub(history_nanos)),
            start_max_unix_nanos: Some(end_nanos),
            limit_traces: MAX_CANDIDATE_TRACES,
            ..Default::default()
        };
        let tenant = gate.caller().identity.tenant.clone();
        let entries = self.store().search(&tenant, &sf).await.map_err(|e| {
            tracing::error!(error = %e, "service map: store read failed");
            QueryError::Unavailable
        })?;
        let mut spans = dedup(views(&entries));
        let (fates, _) = gate.scope().shape(Action::Search, &mut spans);
        let visible: Vec<SpanView> = spans
            .into_iter()
            .zip(fates)
            .filter(|(_, f)| *f != Fate::Hidden)
            .map(|(v, _)| v)
            .collect();
        Ok(edges_with_first_seen(&visible, window_start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
    use sentrace_core::proto::resource::v1::Resource;
    use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn view(service: &str, trace: u8, id: u8, parent: Option<u8>, start: u64) -> SpanView {
        let span = Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            start_time_unix_nano: start,
            end_time_unix_nano: start + 1,
            name: "op".into(),
            ..Default::default()
        };
        SpanView::new(ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn calls_count_in_the_window_and_first_sightings_reach_into_history() {
        let spans = vec![
            // An old call a -> b (history only), and two in the window.
            view("a", 1, 1, None, 10),
            view("b", 1, 2, Some(1), 11),
            view("a", 2, 1, None, 100),
            view("b", 2, 2, Some(1), 101),
            view("a", 3, 1, None, 200),
            view("b", 3, 2, Some(1), 201),
            // c -> d only in history: not shown; e -> f new in the window.
            view("c", 4, 1, None, 20),
            view("d", 4, 2, Some(1), 21),
            view("e", 5, 1, None, 150),
            view("f", 5, 2, Some(1), 151),
            // Same-service parent: no edge.
            view("f", 5, 3, Some(2), 152),
        ];
        let m = edges_with_first_seen(&spans, 100);
        assert_eq!(
            m.edges,
            vec![
                MapEdge {
                    parent: "a".into(),
                    child: "b".into(),
                    calls: 2,
                    first_seen_ns: 11,
                },
                MapEdge {
                    parent: "e".into(),
                    child: "f".into(),
                    calls: 1,
                    first_seen_ns: 151,
                },
            ]
        );
        let services: Vec<&str> = m.services.iter().map(String::as_str).collect();
        assert_eq!(services, ["a", "b", "e", "f"]);
        assert_eq!(m.spans_read, 11);
    }
}
