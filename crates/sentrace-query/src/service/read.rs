//! Trace-content queries: one trace, search, services, operations, dependencies.

use std::collections::{BTreeMap, HashSet};

use sentrace_access::authz::{Action, Resource};
use sentrace_core::{TraceId, canonical};
use sentrace_store::{SpanEntry, SpanFilter, StoreError};

use super::scope::{Fate, Scope, Shaped};
use super::{Caller, QueryError, QueryService};
use crate::audit::Outcome;
use crate::jaeger::{self, Dependency};
use crate::{SearchParams, SpanView};

/// Most candidate traces examined when a search has conditions the index cannot check.
pub const MAX_CANDIDATE_TRACES: usize = 10_000;

/// One trace as the caller may see it.
#[derive(Clone, Debug)]
pub struct TraceAnswer {
    /// Its spans, scoped and masked, ordered by start time.
    pub spans: Vec<SpanView>,
    /// What scoping and masking did.
    pub shaped: Shaped,
}

/// Traces found by a search.
#[derive(Clone, Debug)]
pub struct TraceList {
    /// The spans of every trace found, scoped and masked.
    pub spans: Vec<SpanView>,
    /// The trace ids, newest first.
    pub trace_ids: Vec<TraceId>,
    /// What scoping and masking did.
    pub shaped: Shaped,
}

/// Traces asked for by id (Jaeger's `GET /api/traces?traceID=...`).
#[derive(Clone, Debug)]
pub struct TraceSet {
    /// The found traces, in the order asked.
    pub found: TraceList,
    /// The ids with nothing the caller may see (unknown, or out of scope: one answer, so
    /// existence leaks nothing), in the order asked.
    pub missing: Vec<TraceId>,
}

/// The service dependency graph.
pub type Dependencies = Vec<Dependency>;

/// Decodes stored entries into views, skipping (and logging) any that fail to decode.
pub fn views(entries: &[SpanEntry]) -> Vec<SpanView> {
    entries
        .iter()
        .filter_map(|e| match canonical::decode(&e.canonical) {
            Ok(rs) => SpanView::new(rs),
            Err(err) => {
                tracing::error!(trace_id = %e.trace_id, span_id = %e.span_id, error = %err, "stored span does not decode");
                None
            }
        })
        .collect()
}

/// Keeps one copy of each (trace id, span id), preferring the first.
pub fn dedup(views: Vec<SpanView>) -> Vec<SpanView> {
    let mut seen = HashSet::new();
    views
        .into_iter()
        .filter(|v| seen.insert((v.span().trace_id.clone(), v.span().span_id.clone())))
        .collect()
}

fn store_failed(e: StoreError) -> QueryError {
    tracing::error!(error = %e, "store read failed");
    QueryError::Unavailable
}

fn filter_of(params: &SearchParams) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            f.insert(k.to_string(), v);
        }
    };
    put("service", params.service.clone());
    put("operation", params.operation.clone());
    put("span_kind", params.span_kind.clone());
    put(
        "start_min_nanos",
        params.start_min_nanos.map(|v| v.to_string()),
    );
    put(
        "start_max_nanos",
        params.start_max_nanos.map(|v| v.to_string()),
    );
    put(
        "min_duration",
        params.min_duration.map(|d| format!("{d:?}")),
    );
    put(
        "max_duration",
        params.max_duration.map(|d| format!("{d:?}")),
    );
    put("limit", Some(params.limit.to_string()));
    if !params.trace_ids.is_empty() {
        put("trace_ids", Some(params.trace_ids.join(",")));
    }
    if !params.tags.is_empty() {
        // Keys only: a tag value may itself be sensitive.
        let keys: Vec<&str> = params.tags.iter().map(|t| t.key.as_str()).collect();
        put("tag_keys", Some(keys.join(",")));
    }
    f
}

impl QueryService {
    /// Authorizes `action` on the tenant or answers (and audits) a refusal.
    pub(crate) async fn require(
        &self,
        caller: &Caller,
        scope: &mut Scope,
        action: Action,
        resource: Resource,
        endpoint: &str,
        filter: &BTreeMap<String, String>,
    ) -> Result<(), QueryError> {
        if let Ok(Some(e)) = self.store.keys().erased(&caller.identity.tenant) {
            return self
                .refuse(
                    caller,
                    action,
                    endpoint,
                    filter.clone(),
                    QueryError::Erased {
                        tenant: e.tenant.to_string(),
                        erased_at: e.erased_at,
                    },
                )
                .await;
        }
        if scope.allows(action, resource) {
            return Ok(());
        }
        self.refuse(
            caller,
            action,
            endpoint,
            filter.clone(),
            QueryError::Forbidden { action },
        )
        .await
    }

    /// The store's answer, or an audited refusal (503) when the store failed.
    pub(crate) async fn stored<T>(
        &self,
        read: Result<T, StoreError>,
        caller: &Caller,
        action: Action,
        endpoint: &str,
        filter: &BTreeMap<String, String>,
    ) -> Result<T, QueryError> {
        match read {
            Ok(v) => Ok(v),
            Err(e) => {
                self.refuse(caller, action, endpoint, filter.clone(), store_failed(e))
                    .await
            }
        }
    }

    /// One trace by id as clients send it (up to 32 hex digits).
    pub async fn trace(
        &self,
        caller: &Caller,
        raw_id: &str,
        endpoint: &str,
    ) -> Result<TraceAnswer, QueryError> {
        let action = Action::ReadTrace;
        let mut filter =
            BTreeMap::from([("trace_id".to_string(), raw_id.chars().take(40).collect())]);
        let tid = match parse_trace_id(raw_id) {
            Ok(t) => t,
            Err(e) => {
                return self
                    .refuse(caller, action, endpoint, filter, QueryError::BadRequest(e))
                    .await;
            }
        };
        filter.insert("trace_id".into(), tid.to_string());
        let mut scope = self.scope(caller);
        self.require(
            caller,
            &mut scope,
            action,
            Resource::Trace(tid.to_string()),
            endpoint,
            &filter,
        )
        .await?;
        let entries = self
            .stored(
                self.store.trace(&caller.identity.tenant, tid).await,
                caller,
                action,
                endpoint,
                &filter,
            )
            .await?;
        let mut spans = dedup(views(&entries));
        let (fates, shaped) = scope.shape(action, &mut spans);
        let visible = fates.iter().filter(|f| **f != Fate::Hidden).count();
        let mut record = Self::record(caller, action, endpoint, Outcome::Allowed, filter);
        if visible == 0 {
            // Unknown, or nothing of it in scope: the same answer, so existence leaks nothing.
            record.reason = Some(if spans.is_empty() {
                "trace not found".into()
            } else {
                "no span of the trace is in the principal's scope".into()
            });
            self.write_audit(record).await?;
            return Err(QueryError::NotFound("trace"));
        }
        record.trace_ids = vec![tid.to_string()];
        record.spans_returned = spans.len() as u64;
        record.spans_masked = shaped.masked;
        record.spans_hidden = shaped.hidden;
        self.write_audit(record).await?;
        spans.sort_by_key(|s| s.span().start_time_unix_nano);
        Ok(TraceAnswer { spans, shaped })
    }

    /// A trace search (Jaeger's `GET /api/traces` semantics).
    pub async fn search(
        &self,
        caller: &Caller,
        params: &SearchParams,
        endpoint: &str,
    ) -> Result<TraceList, QueryError> {
        let action = Action::Search;
        let filter = filter_of(params);
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
        let mut list = TraceList {
            spans: Vec::new(),
            trace_ids: Vec::new(),
            shaped: Shaped::default(),
        };
        let service_ok = params
            .service
            .as_deref()
            .is_none_or(|s| scope.allows_service(action, s));
        if service_ok && params.limit > 0 {
            let index_only =
                params.tags.is_empty() && params.span_kind.is_none() && params.service.is_some();
            let sf = SpanFilter {
                start_min_unix_nanos: params.start_min_nanos,
                start_max_unix_nanos: params.start_max_nanos,
                service: params.service.clone(),
                name: params.operation.clone(),
                min_duration_nanos: params
                    .min_duration
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                max_duration_nanos: params
                    .max_duration
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                limit_traces: if index_only {
                    params.limit
                } else {
                    MAX_CANDIDATE_TRACES
                },
            };
            let candidates = self
                .stored(
                    self.store.search(tenant, &sf).await,
                    caller,
                    action,
                    endpoint,
                    &filter,
                )
                .await?;
            // Candidates come newest first; keep the first `limit` traces with a matching
            // span that the caller may see, matched on what the caller would see.
            let classes = scope.class_decisions();
            for mut v in views(&candidates) {
                if list.trace_ids.len() >= params.limit {
                    break;
                }
                let Ok(tid) = TraceId::from_slice(&v.span().trace_id) else {
                    continue;
                };
                if list.trace_ids.contains(&tid) {
                    continue;
                }
                if scope.shape_one(action, &classes, &mut v) == Fate::Hidden {
                    continue;
                }
                if params.matches(&v) {
                    list.trace_ids.push(tid);
                }
            }
            for read in self.store.traces(tenant, &list.trace_ids).await {
                let entries = self.stored(read, caller, action, endpoint, &filter).await?;
                list.spans.extend(views(&entries));
            }
            list.spans = dedup(std::mem::take(&mut list.spans));
            let (_, shaped) = scope.shape(Action::ReadTrace, &mut list.spans);
            list.shaped = shaped;
        }
        let mut record = Self::record(caller, action, endpoint, Outcome::Allowed, filter);
        record.trace_ids = list.trace_ids.iter().map(|t| t.to_string()).collect();
        record.spans_returned = list.spans.len() as u64;
        record.spans_masked = list.shaped.masked;
        record.spans_hidden = list.shaped.hidden;
        self.write_audit(record).await?;
        Ok(list)
    }

    /// Exactly the traces `ids` (1 to 32 hex digits each, as [`parse_trace_id`] takes),
    /// scoped and masked as [`Self::trace`] would answer each, in one audit record. An id
    /// with nothing the caller may see is `missing`, whatever the reason.
    pub async fn traces_by_ids(
        &self,
        caller: &Caller,
        ids: &[String],
        endpoint: &str,
    ) -> Result<TraceSet, QueryError> {
        let action = Action::ReadTrace;
        let filter = BTreeMap::from([("trace_ids".to_string(), ids.join(","))]);
        let mut parsed: Vec<TraceId> = Vec::with_capacity(ids.len());
        for raw in ids {
            match parse_trace_id(raw) {
                Ok(t) if !parsed.contains(&t) => parsed.push(t),
                Ok(_) => {}
                Err(e) => {
                    return self
                        .refuse(caller, action, endpoint, filter, QueryError::BadRequest(e))
                        .await;
                }
            }
        }
        let mut scope = self.scope(caller);
        let mut set = TraceSet {
            found: TraceList {
                spans: Vec::new(),
                trace_ids: Vec::new(),
                shaped: Shaped::default(),
            },
            missing: Vec::new(),
        };
        let asked = parsed.clone();
        let (allowed, refused): (Vec<TraceId>, Vec<TraceId>) = parsed
            .into_iter()
            .partition(|tid| scope.allows(action, Resource::Trace(tid.to_string())));
        set.missing = refused;
        let reads = self.store.traces(&caller.identity.tenant, &allowed).await;
        for (tid, read) in allowed.into_iter().zip(reads) {
            let entries = self.stored(read, caller, action, endpoint, &filter).await?;
            let mut spans = dedup(views(&entries));
            let (fates, shaped) = scope.shape(action, &mut spans);
            if fates.iter().all(|f| *f == Fate::Hidden) {
                set.missing.push(tid);
                continue;
            }
            spans.sort_by_key(|s| s.span().start_time_unix_nano);
            set.found.spans.extend(spans);
            set.found.trace_ids.push(tid);
            set.found.shaped.hidden += shaped.hidden;
            set.found.shaped.masked += shaped.masked;
        }
        set.missing
            .sort_by_key(|t| asked.iter().position(|a| a == t));
        let mut record = Self::record(caller, action, endpoint, Outcome::Allowed, filter);
        record.trace_ids = set.found.trace_ids.iter().map(|t| t.to_string()).collect();
        record.spans_returned = set.found.spans.len() as u64;
        record.spans_masked = set.found.shaped.masked;
        record.spans_hidden = set.found.shaped.hidden;
        self.write_audit(record).await?;
        Ok(set)
    }

    /// The service names the caller may search.
    pub async fn services(
        &self,
        caller: &Caller,
        endpoint: &str,
    ) -> Result<Vec<String>, QueryError> {
        let action = Action::Search;
        let filter = BTreeMap::new();
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
        let mut services = self
            .stored(
                self.store.services(&caller.identity.tenant).await,
                caller,
                action,
                endpoint,
                &filter,
            )
            .await?;
        services.retain(|s| scope.allows_service(action, s));
        services.sort();
        services.dedup();
        let mut record = Self::record(caller, action, endpoint, Outcome::Allowed, filter);
        record
            .filter
            .insert("answered".into(), services.len().to_string());
        self.write_audit(record).await?;
        Ok(services)
    }

    /// The (span name, kind) pairs of one service; empty for a service outside the scope,
    /// exactly as for an unknown one.
    pub async fn operations(
        &self,
        caller: &Caller,
        service: &str,
        endpoint: &str,
    ) -> Result<Vec<(String, i32)>, QueryError> {
        let action = Action::Search;
        let filter = BTreeMap::from([("service".to_string(), service.to_string())]);
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
        let mut ops = if scope.allows_service(action, service) {
            let read = self
                .store
                .operations(&caller.identity.tenant, service)
                .await;
            self.stored(read, caller, action, endpoint, &filter).await?
        } else {
            Vec::new()
        };
        ops.sort();
        ops.dedup();
        self.write_audit(Self::record(
            caller,
            action,
            endpoint,
            Outcome::Allowed,
            filter,
        ))
        .await?;
        Ok(ops)
    }

    /// Calls between services seen in `[end - lookback, end]`, only between services the
    /// caller may search (an edge to a hidden service is not shown, nor counted).
    pub async fn dependencies(
        &self,
        caller: &Caller,
        end_nanos: u64,
        lookback_nanos: u64,
        endpoint: &str,
    ) -> Result<Dependencies, QueryError> {
        let action = Action::Search;
        let filter = BTreeMap::from([
            ("end_nanos".to_string(), end_nanos.to_string()),
            ("lookback_nanos".to_string(), lookback_nanos.to_string()),
        ]);
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
        let sf = SpanFilter {
            start_min_unix_nanos: Some(end_nanos.saturating_sub(lookback_nanos)),
            start_max_unix_nanos: Some(end_nanos),
            limit_traces: MAX_CANDIDATE_TRACES,
            ..Default::default()
        };
        let entries = self
            .stored(
                self.store.search(&caller.identity.tenant, &sf).await,
                caller,
                action,
                endpoint,
                &filter,
            )
            .await?;
        let mut spans = dedup(views(&entries));
        let (fates, _) = scope.shape(action, &mut spans);
        let visible: Vec<SpanView> = spans
            .into_iter()
            .zip(fates)
            .filter(|(_, f)| *f != Fate::Hidden)
            .map(|(v, _)| v)
            .collect();
        let deps = jaeger::dependencies(&visible);
        self.write_audit(Self::record(
            caller,
            action,
            endpoint,
            Outcome::Allowed,
            filter,
        ))
        .await?;
        Ok(deps)
    }
}

/// Parses a trace id as Jaeger clients send it: up to 32 hex digits, left-padded with zeros.
pub fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "trace id {:?} is not 1 to 32 hex digits",
            text.chars().take(40).collect::<String>()
        ));
    }
    let padded = format!("{text:0>32}");
    TraceId::from_hex(&padded).map_err(|e| e.to_string())
}

impl QueryService {
    /// Sealed batches `range` of the caller's log, byte-exact for remote verification.
    /// Their span bytes cannot be masked without breaking the hashes, so the caller needs
    /// `verify`, every sensitivity class unmasked, and `read_trace` on every service the
    /// page holds; otherwise the whole page is refused (403).
    pub async fn sealed_batches(
        &self,
        caller: &Caller,
        range: std::ops::Range<u64>,
        endpoint: &str,
    ) -> Result<sentrace_store::SealedRead, QueryError> {
        let filter = BTreeMap::from([
            ("start".to_string(), range.start.to_string()),
            ("end".to_string(), range.end.to_string()),
        ]);
        let mut scope = self.scope(caller);
        self.require(
            caller,
            &mut scope,
            Action::Verify,
            Resource::Tenant,
            endpoint,
            &filter,
        )
        .await?;
        if scope.class_decisions().iter().any(|(_, ok)| !ok) {
            return self
                .refuse(
                    caller,
                    Action::ViewSensitive,
                    endpoint,
                    filter,
                    QueryError::Forbidden {
                        action: Action::ViewSensitive,
                    },
                )
                .await;
        }
        let read = self
            .store
            .sealed_spans(&caller.identity.tenant, range)
            .await;
        let read = self
            .stored(read, caller, Action::Verify, endpoint, &filter)
            .await?;
        let services: HashSet<&str> = read.spans.iter().map(|(_, s)| s.service.as_str()).collect();
        for s in services {
            if !scope.allows_service(Action::ReadTrace, s) {
                return self
                    .refuse(
                        caller,
                        Action::ReadTrace,
                        endpoint,
                        filter,
                        QueryError::Forbidden {
                            action: Action::ReadTrace,
                        },
                    )
                    .await;
            }
        }
        let mut record = Self::record(caller, Action::Verify, endpoint, Outcome::Allowed, filter);
        let mut ids: Vec<String> = read
            .spans
            .iter()
            .map(|(_, s)| s.trace_id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        record.trace_ids = ids;
        record.spans_returned = read.spans.len() as u64;
        self.write_audit(record).await?;
        Ok(read)
    }
}
