//! OTLP receivers: gRPC `TraceService/Export` and HTTP `POST /v1/traces`.

pub mod decode;
pub mod grpc;
pub mod http;

use sentrace_access::AuthError;
use sentrace_access::authz::{Action, RequestContext, Resource};
use sentrace_core::{Identity, Role};

use crate::app::AppState;
use crate::auth::Credentials;

/// Authenticates an export request and lets the policies decide `ingest` on the caller's
/// tenant (the built-in policies grant it to `ingest` and `admin`; an operator's `forbid`
/// can take it away, e.g. from one agent).
pub async fn authorize(st: &AppState, creds: Credentials<'_>) -> Result<Identity, AuthError> {
    let id = st.auth.authenticate(creds).await?;
    let d = st.query.policies().current().decide(
        &id,
        Action::Ingest,
        &Resource::Tenant,
        RequestContext::default(),
    );
    if d.allowed {
        Ok(id)
    } else {
        Err(AuthError::Forbidden {
            id: id.principal,
            wanted: Role::Ingest,
        })
    }
}
