//! The authenticated caller.
//!
//! An [`Identity`] is what authentication produces, whatever the credential: an API token,
//! an OIDC/JWT bearer token or a client certificate. Its tenant comes from the verified
//! credential alone, never from a request header. What it may do is decided by policy
//! (`sentrace-access`), with its role and team as inputs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TenantId;

/// The role a credential holds. Roles are coarse; fine-grained decisions are Cedar policy.
///
/// `read` is the role of API tokens made before the finer roles existed: it keeps exactly
/// the rights it had (traces, findings, metrics and the stored form of minimized values),
/// which are the rights of `security-analyst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// May send telemetry.
    Ingest,
    /// Legacy read role: the rights of `security-analyst`.
    Read,
    /// May do anything within its tenant.
    Admin,
    /// Reads traces (sensitive values included in their stored form), findings and metrics.
    SecurityAnalyst,
    /// Reads the traces of its team's services only; sensitive values masked.
    Developer,
    /// Reads traces of every service of its tenant; sensitive values masked.
    Viewer,
    /// Reads the audit log and verifies logs; no trace contents.
    Auditor,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 7] = [
        Role::Ingest,
        Role::Read,
        Role::Admin,
        Role::SecurityAnalyst,
        Role::Developer,
        Role::Viewer,
        Role::Auditor,
    ];

    /// Parses a role name (`ingest`, `read`, `admin`, `security-analyst`, `developer`,
    /// `viewer`, `auditor`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The name used in token files, policies and audit records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Admin => "admin",
            Self::SecurityAnalyst => "security-analyst",
            Self::Developer => "developer",
            Self::Viewer => "viewer",
            Self::Auditor => "auditor",
        }
    }

    /// The role whose policies decide for this one (`read` decides as `security-analyst`).
    pub fn effective(&self) -> Role {
        match self {
            Self::Read => Self::SecurityAnalyst,
            r => *r,
        }
    }

    /// Whether a holder of `self` may send telemetry (admin and ingest). Reads are decided
    /// by policy, not by this.
    pub fn may_ingest(&self) -> bool {
        matches!(self, Role::Admin | Role::Ingest)
    }

    /// Coarse check used before policy: `Ingest` is what [`Role::may_ingest`] says; `Read`
    /// holds for every role that may read something; `Admin` only for admin.
    pub fn permits(&self, wanted: Role) -> bool {
        match wanted {
            Role::Ingest => self.may_ingest(),
            Role::Admin => *self == Role::Admin,
            _ => *self != Role::Ingest,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of principal, as Cedar sees it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    /// A person (OIDC users, tokens issued to people).
    User,
    /// A program with an API token or a client-credentials JWT.
    #[default]
    ServiceAccount,
    /// An edge agent or collector authenticated by its client certificate.
    Agent,
}

impl PrincipalKind {
    /// The Cedar entity type name (`User`, `ServiceAccount`, `Agent`).
    pub fn entity_type(&self) -> &'static str {
        match self {
            Self::User => "User",
            Self::ServiceAccount => "ServiceAccount",
            Self::Agent => "Agent",
        }
    }
}

/// How the credential was verified.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// A Sentrace API token (`st_…`).
    #[default]
    Token,
    /// An OIDC / JWT bearer token.
    Jwt,
    /// A TLS client certificate.
    Certificate,
}

impl AuthMethod {
    /// Lower-case name for logs and audit.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Jwt => "jwt",
            Self::Certificate => "certificate",
        }
    }
}

/// An authenticated principal: the tenant and role come from the credential alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The tenant the credential belongs to.
    pub tenant: TenantId,
    /// A stable, non-secret name for the credential (token id, JWT `iss`+`sub`, certificate
    /// subject).
    pub principal: String,
    /// What the credential may do.
    pub role: Role,
    /// The kind of principal.
    #[serde(default)]
    pub kind: PrincipalKind,
    /// The team, for roles scoped to a team's services (`developer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// How the credential was verified.
    #[serde(default)]
    pub method: AuthMethod,
}

impl Identity {
    /// An API-token identity: a service account without a team.
    pub fn new(tenant: TenantId, principal: impl Into<String>, role: Role) -> Self {
        Self {
            tenant,
            principal: principal.into(),
            role,
            kind: PrincipalKind::ServiceAccount,
            team: None,
            method: AuthMethod::Token,
        }
    }

    /// Whether this identity may act as `wanted` (coarse; see [`Role::permits`]).
    pub fn can(&self, wanted: Role) -> bool {
        self.role.permits(wanted)
    }
}
