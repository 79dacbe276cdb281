//! Audit records: one per authentication failure, per read and per admin action.
//!
//! A record names who asked (principal, how they authenticated, from where), what they
//! asked (action, endpoint, the filter), what was decided and what left the server (the
//! trace ids, how many spans, how many of them masked or replaced by placeholders). It
//! never holds an attribute value or a credential.
//!
//! Records are written to a per-tenant transparency log before the answer leaves the
//! server (no audit, no data); this module only defines them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use sentrace_core::{AuthMethod, PrincipalKind, Role, TenantId};

/// What was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Authenticated and allowed; data (possibly masked) was returned.
    Allowed,
    /// Authenticated but refused by policy.
    Denied,
    /// The credential was refused (no identity).
    Unauthenticated,
    /// Allowed, but the read failed (store error, bad request).
    Failed,
}

/// A break-glass grant used by a read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassUse {
    /// The grant's id.
    pub grant: String,
    /// The justification given when it was opened.
    pub justification: String,
    /// The second approver, when the grant needed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// When the request was decided, Unix nanoseconds.
    pub time_unix_nanos: u64,
    /// The tenant acted on. None only for an authentication failure whose credential named
    /// no tenant that could be trusted; such records go to the node's own audit log.
    pub tenant: Option<TenantId>,
    /// The principal (`token:<id>`, `jwt:<iss>#<sub>`, `cert:<subject>`), or for an
    /// authentication failure the non-secret part of what was presented (a token id).
    pub principal: String,
    /// The kind of principal, when authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PrincipalKind>,
    /// How it authenticated, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<AuthMethod>,
    /// Its role, when authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The remote address of the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The action asked for (`search`, `read_trace`, `read_findings`, `authenticate`, ...).
    pub action: String,
    /// The endpoint: method and route (`GET /api/traces/{traceID}`), or the CLI command.
    pub endpoint: String,
    /// The decision.
    pub outcome: Outcome,
    /// Why it was denied or failed (never a credential or a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The query's parameters as parsed (service, operation, time range, tag keys...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, String>,
    /// The trace ids returned (hex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace_ids: Vec<String>,
    /// Spans returned.
    #[serde(default)]
    pub spans_returned: u64,
    /// Spans returned with at least one value masked at query time.
    #[serde(default)]
    pub spans_masked: u64,
    /// Spans returned as placeholders (outside the principal's service scope).
    #[serde(default)]
    pub spans_hidden: u64,
    /// The break-glass grant that allowed an unmasked read, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlassUse>,
}

impl AuditRecord {
    /// A record of `action` on `endpoint` with every optional part empty.
    pub fn new(
        time_unix_nanos: u64,
        tenant: Option<TenantId>,
        principal: impl Into<String>,
        action: impl Into<String>,
        endpoint: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        Self {
            time_unix_nanos,
            tenant,
            principal: principal.into(),
            kind: None,
            method: None,
            role: None,
            source: None,
            action: action.into(),
            endpoint: endpoint.into(),
            outcome,
            reason: None,
            filter: BTreeMap::new(),
            trace_ids: Vec::new(),
            spans_returned: 0,
            spans_masked: 0,
            spans_hidden: 0,
            break_glass: None,
        }
    }

    /// Fills in who asked from an authenticated identity.
    pub fn by(mut self, identity: &sentrace_core::Identity) -> Self {
        self.tenant = Some(identity.tenant.clone());
        self.principal = identity.principal.clone();
        self.kind = Some(identity.kind);
        self.method = Some(identity.method);
        self.role = Some(identity.role);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_fields() {
        let id =
            sentrace_core::Identity::new(TenantId::new("acme").unwrap(), "token:1", Role::Viewer);
        let mut r =
            AuditRecord::new(7, None, "", "search", "GET /api/traces", Outcome::Allowed).by(&id);
        r.filter.insert("service".into(), "checkout".into());
        r.trace_ids.push("ab".repeat(16));
        r.spans_returned = 3;
        let json = serde_json::to_string(&r).unwrap();
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<AuditRecord>(v).is_err());
    }
}
