//! The authenticated caller.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TenantId;

/// What a credential may do. Roles are coarse; fine-grained decisions are policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May send telemetry.
    Ingest,
    /// May read traces and findings.
    Read,
    /// May do anything within its tenant.
    Admin,
}

impl Role {
    /// Parses `ingest`, `read` or `admin`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ingest" => Some(Self::Ingest),
            "read" => Some(Self::Read),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    /// Whether a holder of `self` may act as `wanted`. Admin implies every role.
    pub fn permits(&self, wanted: Role) -> bool {
        *self == Role::Admin || *self == wanted
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated principal: the tenant and roles come from the credential alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The tenant the credential belongs to.
    pub tenant: TenantId,
    /// A stable, non-secret name for the credential (token id, certificate subject).
    pub principal: String,
    /// What the credential may do.
    pub role: Role,
}

impl Identity {
    /// Whether this identity may act as `wanted`.
    pub fn can(&self, wanted: Role) -> bool {
        self.role.permits(wanted)
    }
}
