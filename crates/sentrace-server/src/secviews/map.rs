//! `GET /api/map?lookback_ms=`: the service dependency graph of the lookback window (as
//! `/api/dependencies` computes it) with a security overlay: per service, the findings of
//! the detection journal and their highest severity (for principals allowed
//! `read_findings`; zero and null otherwise), and per edge when it was first seen and
//! whether that is within `[detect] new_edge_window_secs`.
//!
//! First sightings come from the stored spans of the lookback window plus the new-edge
//! window before it (the detector's edge baselines keep no time and live in memory only).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentrace_access::authz::{Action, Resource};
use sentrace_detect::Severity;
use sentrace_query::service::Returned;
use serde::Deserialize;

use crate::app::{AppState, Reader};
use crate::detect::findings::FindingFilter;

/// Default lookback: one hour.
pub const DEFAULT_LOOKBACK_MS: u64 = 3_600_000;
/// Longest lookback: 30 days.
pub const MAX_LOOKBACK_MS: u64 = 30 * 86_400_000;

/// Query parameters of `GET /api/map`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapQuery {
    /// The window, in milliseconds before now (default one hour, at most 30 days).
    lookback_ms: Option<u64>,
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// `GET /api/map`.
pub async fn map(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    q: Result<Query<MapQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return crate::api::problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let lookback_ms = q.lookback_ms.unwrap_or(DEFAULT_LOOKBACK_MS);
    if lookback_ms == 0 || lookback_ms > MAX_LOOKBACK_MS {
        return crate::api::problem(
            StatusCode::BAD_REQUEST,
            format!("lookback_ms must be between 1 and {MAX_LOOKBACK_MS} (30 days)"),
        );
    }
    let endpoint = "GET /api/map";
    let filter = BTreeMap::from([("lookback_ms".to_string(), lookback_ms.to_string())]);
    let mut gate = match st
        .query
        .authorize(&caller, Action::Search, endpoint, filter)
        .await
    {
        Ok(g) => g,
        Err(e) => return crate::api::query_error(e),
    };
    let now = super::now_nanos();
    let window = st
        .secviews
        .new_edge_window_secs
        .saturating_mul(1_000_000_000);
    let graph = st
        .query
        .service_map(
            &mut gate,
            now,
            lookback_ms.saturating_mul(1_000_000),
            window,
        )
        .await;
    let graph = match graph {
        Ok(g) => g,
        Err(e) => {
            // Finishing a failed read audits it and hands the error back.
            let e = gate
                .finish::<()>(&st.query, Err(e))
                .await
                .err()
                .unwrap_or(sentrace_query::service::QueryError::Unavailable);
            return crate::api::query_error(e);
        }
    };
    // The overlay: the tenant's findings per service, for those who may read findings.
    let mut per_service: BTreeMap<String, (u64, Option<Severity>)> = BTreeMap::new();
    let overlay = gate.scope().allows(Action::ReadFindings, Resource::Tenant);
    if overlay && let Some(rt) = &st.detect {
        let all = FindingFilter {
            since_unix_nanos: Some(now.saturating_sub(lookback_ms.saturating_mul(1_000_000))),
            limit: usize::MAX,
            ..Default::default()
        };
        for f in rt.findings.query(&caller.identity.tenant, &all) {
            let e = per_service.entry(f.service.clone()).or_insert((0, None));
            e.0 += 1;
            e.1 = Some(e.1.map_or(f.severity, |s| s.max(f.severity)));
        }
    }
    let mut services = graph.services.clone();
    for e in &graph.edges {
        services.insert(e.parent.clone());
        services.insert(e.child.clone());
    }
    // A service with findings but no span in the window is shown only if the caller may
    // search it (the findings say nothing about services it may not see).
    for s in per_service.keys() {
        if !services.contains(s) && gate.scope().allows_service(Action::Search, s) {
            services.insert(s.clone());
        }
    }
    let nodes: Vec<serde_json::Value> = services
        .iter()
        .map(|s| {
            let (n, max) = per_service.get(s).copied().unwrap_or((0, None));
            serde_json::json!({
                "service": s,
                "findings": n,
                "max_severity": max.map(severity_name),
            })
        })
        .collect();
    let new_after = now.saturating_sub(window);
    let edges: Vec<serde_json::Value> = graph
        .edges
        .iter()
        .map(|e| {
            serde_json::json!({
                "parent": e.parent,
                "child": e.child,
                "calls": e.calls,
                "first_seen_ns": e.first_seen_ns,
                "new": e.first_seen_ns >= new_after,
            })
        })
        .collect();
    let returned = Returned {
        trace_ids: Vec::new(),
        items: (nodes.len() + edges.len()) as u64,
    };
    let body = serde_json::json!({ "data": { "nodes": nodes, "edges": edges } });
    match gate.finish(&st.query, Ok((body, returned))).await {
        Ok(b) => Json(b).into_response(),
        Err(e) => crate::api::query_error(e),
    }
}
