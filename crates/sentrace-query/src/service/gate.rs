//! The gate for reads that are not trace contents (findings, responses, sources, log
//! objects, metrics, the audit log): authorize an action on the tenant, let the caller read,
//! then audit what left. One record per request, refusals included.

use std::collections::BTreeMap;

use sentrace_access::authz::{Action, Resource};

use super::scope::Scope;
use super::{Caller, QueryError, QueryService};
use crate::audit::Outcome;

/// What a gated read returned, for its audit record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Returned {
    /// Trace ids the answer names.
    pub trace_ids: Vec<String>,
    /// Items returned (findings, log objects, ...), recorded as spans_returned for span
    /// answers and under `items` in the filter otherwise.
    pub items: u64,
}

/// An authorized request in progress. Finish it with [`Gate::finish`]: that writes the
/// audit record (and fails the request when the record cannot be written).
#[must_use = "a gate must be finished, or the read is not audited"]
pub struct Gate {
    caller: Caller,
    action: Action,
    endpoint: String,
    filter: BTreeMap<String, String>,
    scope: Scope,
}

impl Gate {
    /// The request's authorization scope (for per-item decisions).
    pub fn scope(&mut self) -> &mut Scope {
        &mut self.scope
    }

    /// The caller.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Audits the outcome of the read and passes its value through.
    pub async fn finish<T>(
        self,
        svc: &QueryService,
        result: Result<(T, Returned), QueryError>,
    ) -> Result<T, QueryError> {
        match result {
            Ok((value, returned)) => {
                let mut r = QueryService::record(
                    &self.caller,
                    self.action,
                    &self.endpoint,
                    Outcome::Allowed,
                    self.filter,
                );
                r.trace_ids = returned.trace_ids;
                r.filter.insert("items".into(), returned.items.to_string());
                svc.write_audit(r).await?;
                Ok(value)
            }
            Err(e) => {
                svc.refuse(&self.caller, self.action, &self.endpoint, self.filter, e)
                    .await
            }
        }
    }
}

impl QueryService {
    /// Authorizes `action` on the caller's tenant for a non-trace read. A refusal is
    /// audited here and returned as [`QueryError::Forbidden`].
    pub async fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        endpoint: &str,
        filter: BTreeMap<String, String>,
    ) -> Result<Gate, QueryError> {
        let mut scope = self.scope(caller);
        if !scope.allows(action, Resource::Tenant) {
            return self
                .refuse(
                    caller,
                    action,
                    endpoint,
                    filter,
                    QueryError::Forbidden { action },
                )
                .await;
        }
        Ok(Gate {
            caller: caller.clone(),
            action,
            endpoint: endpoint.to_string(),
            filter,
            scope,
        })
    }
}
