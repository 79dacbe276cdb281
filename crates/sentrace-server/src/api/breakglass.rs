//! Break-glass grants and de-tokenizing over HTTP. Every call is audited.
//!
//! - `POST /api/break-glass` `{"justification": "...", "duration": "30m"}`: open a grant
//!   for the caller (201; `pending` when approval is required);
//! - `POST /api/break-glass/{id}/approve`: a second principal allowed `manage_policy`
//!   approves it;
//! - `DELETE /api/break-glass/{id}`: close it early (its holder, or `manage_policy`);
//! - `GET /api/break-glass`: the caller's grants (all of the tenant's with `manage_policy`);
//! - `GET /api/detokenize?token=tok:<kind>:<id>`: the original value behind a reversible
//!   token, for principals allowed `detokenize` on the token's class (or with an active
//!   grant presented in `Sentrace-Break-Glass`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentrace_access::authz::{Action, RequestContext, Resource};
use sentrace_query::audit::Outcome;
use sentrace_query::service::Caller;
use serde::Deserialize;

use super::{problem, query_error};
use crate::app::{AppState, Reader};
use crate::auth::now_unix;
use crate::breakglass::{Grant, GrantError};

fn grant_error(e: GrantError) -> Response {
    let status = match e {
        GrantError::Unknown(_) => StatusCode::NOT_FOUND,
        GrantError::NotYours(_) | GrantError::SelfApproval(_) => StatusCode::FORBIDDEN,
        GrantError::NotActive { .. } => StatusCode::CONFLICT,
        GrantError::Invalid { .. } => StatusCode::BAD_REQUEST,
        GrantError::Storage => StatusCode::SERVICE_UNAVAILABLE,
    };
    problem(status, e.to_string())
}

fn view(g: &Grant) -> serde_json::Value {
    serde_json::json!({
        "id": g.id,
        "principal": g.principal,
        "justification": g.justification,
        "opened_unix": g.opened_unix,
        "expires_unix": g.expires_unix,
        "approver": g.approver,
        "state": g.state(now_unix()),
    })
}

fn may(st: &AppState, caller: &Caller, action: Action, resource: Resource, glass: bool) -> bool {
    st.query
        .policies()
        .current()
        .decide(
            &caller.identity,
            action,
            &resource,
            RequestContext { break_glass: glass },
        )
        .allowed
}

async fn audited(
    st: &AppState,
    caller: &Caller,
    name: &str,
    endpoint: &str,
    outcome: Outcome,
    details: BTreeMap<String, String>,
) -> Result<(), Response> {
    st.query
        .audit_admin(caller, name, endpoint, outcome, details)
        .await
        .map_err(query_error)
}

/// Audits a refusal of `name`, then answers `refusal` (or the audit failure).
async fn denied(
    st: &AppState,
    caller: &Caller,
    name: &str,
    endpoint: &str,
    details: BTreeMap<String, String>,
    refusal: Response,
) -> Response {
    match audited(st, caller, name, endpoint, Outcome::Denied, details).await {
        Ok(()) => refusal,
        Err(r) => r,
    }
}

/// Body of `POST /api/break-glass`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// Why unmasked access is needed (kept in the grant and every audit record).
    justification: String,
    /// How long, like `30m` (at most `[access.break_glass] max_duration`).
    duration: String,
}

/// `POST /api/break-glass`.
pub async fn open(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    body: Result<Json<OpenRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let endpoint = "POST /api/break-glass";
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    // A grant that no policy would honour is refused up front.
    let class = Resource::AttributeClass("pii".into());
    if !may(&st, &caller, Action::ViewSensitive, class, true) {
        let mut d = BTreeMap::new();
        d.insert(
            "reason".into(),
            "no break-glass policy applies to this principal".into(),
        );
        return denied(
            &st,
            &caller,
            "break_glass_open",
            endpoint,
            d,
            problem(
                StatusCode::FORBIDDEN,
                "no policy grants break-glass access to this principal",
            ),
        )
        .await;
    }
    let grant = match st
        .break_glass
        .request(&caller.identity, &req.justification, &req.duration)
        .await
    {
        Ok(g) => g,
        Err(e) => return grant_error(e),
    };
    let details = BTreeMap::from([
        ("grant".to_string(), grant.id.clone()),
        ("justification".to_string(), grant.justification.clone()),
        ("expires_unix".to_string(), grant.expires_unix.to_string()),
        ("state".to_string(), grant.state(now_unix()).to_string()),
    ]);
    if let Err(r) = audited(
        &st,
        &caller,
        "break_glass_open",
        endpoint,
        Outcome::Allowed,
        details,
    )
    .await
    {
        // Unaudited grants must not be usable: close it again.
        let _ = st
            .break_glass
            .close(&caller.identity, &grant.id, true)
            .await;
        return r;
    }
    (StatusCode::CREATED, Json(view(&grant))).into_response()
}

/// `POST /api/break-glass/{id}/approve`.
pub async fn approve(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
) -> Response {
    let endpoint = "POST /api/break-glass/{id}/approve";
    let details = BTreeMap::from([("grant".to_string(), id.chars().take(64).collect())]);
    if !may(&st, &caller, Action::ManagePolicy, Resource::Tenant, false) {
        return denied(
            &st,
            &caller,
            "break_glass_approve",
            endpoint,
            details,
            query_error(sentrace_query::service::QueryError::Forbidden {
                action: Action::ManagePolicy,
            }),
        )
        .await;
    }
    match st.break_glass.approve(&caller.identity, &id).await {
        Ok(g) => match audited(
            &st,
            &caller,
            "break_glass_approve",
            endpoint,
            Outcome::Allowed,
            details,
        )
        .await
        {
            Ok(()) => Json(view(&g)).into_response(),
            Err(r) => r,
        },
        Err(e) => grant_error(e),
    }
}

/// `DELETE /api/break-glass/{id}`.
pub async fn close(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
) -> Response {
    let endpoint = "DELETE /api/break-glass/{id}";
    let any = may(&st, &caller, Action::ManagePolicy, Resource::Tenant, false);
    match st.break_glass.close(&caller.identity, &id, any).await {
        Ok(g) => {
            let details = BTreeMap::from([("grant".to_string(), g.id.clone())]);
            match audited(
                &st,
                &caller,
                "break_glass_close",
                endpoint,
                Outcome::Allowed,
                details,
            )
            .await
            {
                Ok(()) => Json(view(&g)).into_response(),
                Err(r) => r,
            }
        }
        Err(e) => grant_error(e),
    }
}

/// `GET /api/break-glass`.
pub async fn list(State(st): State<Arc<AppState>>, Reader(caller): Reader) -> Response {
    let all = may(&st, &caller, Action::ManagePolicy, Resource::Tenant, false);
    let grants = st
        .break_glass
        .list(&caller.identity.tenant, &caller.identity.principal, all);
    let details = BTreeMap::from([("items".to_string(), grants.len().to_string())]);
    if let Err(r) = audited(
        &st,
        &caller,
        "break_glass_list",
        "GET /api/break-glass",
        Outcome::Allowed,
        details,
    )
    .await
    {
        return r;
    }
    Json(serde_json::json!({ "data": grants.iter().map(view).collect::<Vec<_>>() })).into_response()
}

/// Query of `GET /api/detokenize`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetokenizeQuery {
    /// The token as it appears in a span: `tok:<kind>:<32 hex>`.
    token: String,
}

/// `GET /api/detokenize?token=tok:<kind>:<id>`.
pub async fn detokenize(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    q: Result<Query<DetokenizeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let endpoint = "GET /api/detokenize";
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let parsed = q
        .token
        .strip_prefix("tok:")
        .and_then(|r| r.split_once(':'))
        .filter(|(_, id)| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some((kind_text, id)) = parsed else {
        return problem(
            StatusCode::BAD_REQUEST,
            "token: expected tok:<kind>:<32 hex digits> as it appears in a span",
        );
    };
    let Some(kind) = sentrace_redact::Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind_text)
    else {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("token: unknown kind {kind_text:?}"),
        );
    };
    let class = kind.class().map_or("pii", |c| c.as_str());
    let mut details = BTreeMap::from([
        ("token_kind".to_string(), kind_text.to_string()),
        ("token_id".to_string(), id.to_string()),
        ("class".to_string(), class.to_string()),
    ]);
    let mut scope = st.query.scope(&caller);
    if !scope.allows(
        Action::Detokenize,
        Resource::AttributeClass(class.to_string()),
    ) {
        return denied(
            &st,
            &caller,
            "detokenize",
            endpoint,
            details,
            query_error(sentrace_query::service::QueryError::Forbidden {
                action: Action::Detokenize,
            }),
        )
        .await;
    }
    let vault = st.vault.clone();
    let tenant = caller.identity.tenant.clone();
    let id_owned = id.to_string();
    let found = tokio::task::spawn_blocking(move || vault.detokenize(&tenant, &id_owned)).await;
    let found = match found {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "vault read failed");
            details.insert("reason".into(), "vault unavailable".into());
            let _ = audited(
                &st,
                &caller,
                "detokenize",
                endpoint,
                Outcome::Failed,
                details,
            )
            .await;
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the vault is unavailable; retry later",
            );
        }
        Err(_) => return problem(StatusCode::SERVICE_UNAVAILABLE, "the vault is unavailable"),
    };
    details.insert("found".into(), found.is_some().to_string());
    if let Err(r) = audited(
        &st,
        &caller,
        "detokenize",
        endpoint,
        Outcome::Allowed,
        details,
    )
    .await
    {
        return r;
    }
    match found {
        Some((kind, value)) => {
            Json(serde_json::json!({ "kind": kind, "value": value })).into_response()
        }
        None => problem(
            StatusCode::NOT_FOUND,
            "the vault holds no value for this token (never stored, or erased)",
        ),
    }
}
