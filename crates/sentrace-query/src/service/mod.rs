//! The query service: the one read path.
//!
//! Every read API (Jaeger, native, findings, sources, responses, log objects, metrics, the
//! CLI) calls it, and it does, in this order and nowhere else:
//!
//! 1. **authorize**: Cedar decides the action on the tenant (or trace);
//! 2. **plan and read**: a typed query against the store of the caller's tenant only;
//! 3. **scope**: spans of services the principal may not read become placeholders that keep
//!    the trace tree (ids, parent, timing) and nothing else;
//! 4. **mask**: values of sensitivity classes the principal may not view are masked,
//!    whatever their stored form;
//! 5. **audit**: exactly one audit record, durable before the answer is returned (no audit,
//!    no data);
//! 6. the answer, as typed values the HTTP layer renders.
//!
//! Authentication happens before (the caller passes a verified [`Caller`]).

mod gate;
mod map;
mod read;
mod scope;
mod tempo;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use sentrace_access::authz::{Action, PolicyStore};
use sentrace_core::Identity;
use sentrace_store::Store;

use crate::audit::{AuditRecord, AuditSink, BreakGlassUse, Outcome};

pub use gate::{Gate, Returned};
pub use map::{MapEdge, ServiceMap, edges_with_first_seen};
pub use read::{
    Dependencies, MAX_CANDIDATE_TRACES, TraceAnswer, TraceList, TraceSet, dedup, parse_trace_id,
    views,
};
pub use scope::{Fate, Scope, Shaped};
pub use tempo::{TAG_WINDOW_NANOS, TAG_WINDOW_TRACES, TagNames};

/// A verified caller: who, from where, and with which break-glass grant.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The authenticated identity.
    pub identity: Identity,
    /// The remote address, for the audit record.
    pub source: Option<String>,
    /// An active break-glass grant presented with the request.
    pub break_glass: Option<BreakGlassUse>,
}

impl Caller {
    /// A caller with no address and no grant (CLI, tests).
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            source: None,
            break_glass: None,
        }
    }
}

/// Why a query failed. Each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The request is malformed (400): which parameter, what was wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The policies do not allow this action (403).
    #[error("not allowed: {action} is not granted to this principal")]
    Forbidden {
        /// The action refused.
        action: Action,
    },
    /// Nothing the caller may see matches (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The store failed (503); details are logged, not returned.
    #[error("storage error; retry later")]
    Unavailable,
    /// The tenant was erased (`sentrace tenant erase`): its data is gone for good (410).
    #[error("tenant {tenant} was erased at {erased_at}; its data no longer exists")]
    Erased {
        /// The tenant.
        tenant: String,
        /// When (RFC 3339).
        erased_at: String,
    },
    /// The audit record could not be written, so no data is returned (503).
    #[error("audit log unavailable; retry later")]
    AuditUnavailable,
}

/// The reloadable policy set.
#[derive(Debug)]
pub struct Policies(RwLock<Arc<PolicyStore>>);

impl Policies {
    /// Holds `store`.
    pub fn new(store: PolicyStore) -> Self {
        Self(RwLock::new(Arc::new(store)))
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<PolicyStore> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the set (after the caller validated the new one).
    pub fn replace(&self, store: PolicyStore) {
        match self.0.write() {
            Ok(mut g) => *g = Arc::new(store),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(store),
        }
    }
}

/// The query service.
pub struct QueryService {
    store: Store,
    policies: Arc<Policies>,
    audit: Arc<dyn AuditSink>,
}

impl std::fmt::Debug for QueryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryService").finish_non_exhaustive()
    }
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl QueryService {
    /// A service reading `store`, deciding with `policies`, auditing into `audit`.
    pub fn new(store: Store, policies: Arc<Policies>, audit: Arc<dyn AuditSink>) -> Self {
        Self {
            store,
            policies,
            audit,
        }
    }

    /// The policies in force.
    pub fn policies(&self) -> &Arc<Policies> {
        &self.policies
    }

    /// The per-request authorization scope of `caller`.
    pub fn scope(&self, caller: &Caller) -> Scope {
        Scope::new(self.policies.current(), caller).with_opener(Arc::new(
            crate::unseal::TenantOpener::new(
                self.store.keys().clone(),
                caller.identity.tenant.clone(),
            ),
        ))
    }

    /// Writes `record`; a failure turns into [`QueryError::AuditUnavailable`].
    pub(crate) async fn write_audit(&self, record: AuditRecord) -> Result<(), QueryError> {
        match self.audit.record(record).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "audit record not written; refusing the read");
                Err(QueryError::AuditUnavailable)
            }
        }
    }

    /// The skeleton of a record for `caller` doing `action` on `endpoint`.
    pub(crate) fn record(
        caller: &Caller,
        action: Action,
        endpoint: &str,
        outcome: Outcome,
        filter: BTreeMap<String, String>,
    ) -> AuditRecord {
        let mut r = AuditRecord::new(now_nanos(), None, "", action.as_str(), endpoint, outcome)
            .by(&caller.identity);
        r.source = caller.source.clone();
        r.filter = filter;
        r.break_glass = caller.break_glass.clone();
        r
    }

    /// Records a refused or failed request and returns `err` (or the audit failure).
    pub(crate) async fn refuse<T>(
        &self,
        caller: &Caller,
        action: Action,
        endpoint: &str,
        filter: BTreeMap<String, String>,
        err: QueryError,
    ) -> Result<T, QueryError> {
        let outcome = match err {
            QueryError::Forbidden { .. } => Outcome::Denied,
            _ => Outcome::Failed,
        };
        let mut r = Self::record(caller, action, endpoint, outcome, filter);
        r.reason = Some(err.to_string());
        match self.write_audit(r).await {
            // An erased tenant's audit log went with its keys; nothing is returned anyway.
            Err(_) if matches!(err, QueryError::Erased { .. }) => {}
            other => other?,
        }
        Err(err)
    }

    /// Records a refused credential in the node's audit log (a credential that failed
    /// names no tenant that can be trusted). Best effort: the request is refused anyway.
    pub async fn audit_unauthenticated(
        &self,
        credential: &str,
        source: Option<String>,
        endpoint: &str,
        reason: &str,
    ) {
        let mut r = AuditRecord::new(
            now_nanos(),
            None,
            credential,
            "authenticate",
            endpoint,
            Outcome::Unauthenticated,
        );
        r.source = source;
        r.reason = Some(reason.to_string());
        if let Err(e) = self.audit.record(r).await {
            tracing::error!(error = %e, "audit record of an authentication failure not written");
        }
    }

    /// Records an administrative action of `caller` (`name` like `break_glass_open`), with
    /// its details. The action is refused when its record cannot be written.
    pub async fn audit_admin(
        &self,
        caller: &Caller,
        name: &str,
        endpoint: &str,
        outcome: Outcome,
        details: BTreeMap<String, String>,
    ) -> Result<(), QueryError> {
        let mut r =
            AuditRecord::new(now_nanos(), None, "", name, endpoint, outcome).by(&caller.identity);
        r.source = caller.source.clone();
        r.filter = details;
        r.break_glass = caller.break_glass.clone();
        self.write_audit(r).await
    }

    /// The store (for the gate's callers that read other state of the tenant).
    pub fn store(&self) -> &Store {
        &self.store
    }
}
