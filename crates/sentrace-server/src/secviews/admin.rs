//! `GET /api/admin/tokens` and `GET /api/admin/keys`: the caller's tenant's API tokens
//! (never their secrets or hashes) and the public keys that matter to it (the node's log
//! keys, the configured witnesses' keys, the tenant's signed sources' keys). Read-only;
//! `read_admin` (admin and auditor by default).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use sentrace_access::authz::Action;
use sentrace_core::TenantId;
use sentrace_ledger::keys::{SigKind, VerifierKey};
use sentrace_query::service::{QueryError, Returned};

use super::SecViews;
use crate::app::{AppState, Reader};

fn algorithm(k: SigKind) -> &'static str {
    match k {
        SigKind::Ed25519 => "ed25519",
        SigKind::Ed25519Cosignature => "ed25519-cosignature",
        SigKind::MlDsa44 => "ml-dsa-44",
    }
}

fn key_json(purpose: &str, k: &VerifierKey, created_ns: Option<u64>) -> serde_json::Value {
    serde_json::json!({
        "purpose": purpose,
        "key_id": format!("{:08x}", k.key_id()),
        "algorithm": algorithm(k.kind()),
        "public_key": k.to_vkey(),
        "created_ns": created_ns,
    })
}

fn mtime_ns(p: &std::path::Path) -> Option<u64> {
    let t = std::fs::metadata(p).ok()?.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_nanos()).ok()
}

/// Every public key of `tenant`'s view (blocking: reads key files).
fn keys_of(sv: &SecViews, tenant: &TenantId) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let log = sentrace_pipeline::seal::keys::verifier(&sv.data_dir, &sv.master)?;
    let created = mtime_ns(&sentrace_pipeline::seal::keys::wrapped_key_path(
        &sv.data_dir,
    ));
    out.push(key_json("log", &log.ed25519, created));
    out.push(key_json("log", &log.mldsa, created));
    for w in &sv.witnesses {
        for k in w.keys().map_err(|e| anyhow::anyhow!(e))? {
            out.push(key_json("witness", &k, None));
        }
    }
    let sources = crate::sources::registry::load(&sv.data_dir, tenant)?;
    for v in sources.values() {
        out.push(key_json("source", &v.ed25519, None));
        out.push(key_json("source", &v.mldsa, None));
    }
    Ok(out)
}

/// The tenant's tokens without secrets (blocking: reads the token file).
fn tokens_of(sv: &SecViews, tenant: &TenantId) -> anyhow::Result<Vec<serde_json::Value>> {
    let set = crate::auth::load_tokens(&crate::auth::tokens_path(&sv.data_dir))?;
    let ns = |s: u64| s.saturating_mul(1_000_000_000);
    Ok(set
        .tokens
        .iter()
        .filter(|t| &t.tenant == tenant)
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "name": t.description,
                "tenant": t.tenant.as_str(),
                "role": t.role.as_str(),
                "created_ns": ns(t.created_unix),
                "expires_ns": t.expires_unix.map(ns),
                "revoked": t.revoked_unix.is_some(),
            })
        })
        .collect())
}

async fn answer(
    st: Arc<AppState>,
    caller: sentrace_query::service::Caller,
    endpoint: &'static str,
    read: fn(&SecViews, &TenantId) -> anyhow::Result<Vec<serde_json::Value>>,
) -> Response {
    let gate = match st
        .query
        .authorize(&caller, Action::ReadAdmin, endpoint, Default::default())
        .await
    {
        Ok(g) => g,
        Err(e) => return crate::api::query_error(e),
    };
    let sv = st.secviews.clone();
    let tenant = caller.identity.tenant.clone();
    let result = match tokio::task::spawn_blocking(move || read(&sv, &tenant)).await {
        Ok(Ok(list)) => {
            let n = list.len() as u64;
            Ok((
                list,
                Returned {
                    trace_ids: Vec::new(),
                    items: n,
                },
            ))
        }
        Ok(Err(e)) => {
            tracing::error!(endpoint, error = %format!("{e:#}"), "admin inventory unreadable");
            Err(QueryError::Unavailable)
        }
        Err(e) => {
            tracing::error!(endpoint, error = %e, "admin inventory task failed");
            Err(QueryError::Unavailable)
        }
    };
    match gate.finish(&st.query, result).await {
        Ok(list) => Json(serde_json::json!({ "data": list })).into_response(),
        Err(e) => crate::api::query_error(e),
    }
}

/// `GET /api/admin/tokens`.
pub async fn tokens(State(st): State<Arc<AppState>>, Reader(caller): Reader) -> Response {
    answer(st, caller, "GET /api/admin/tokens", tokens_of).await
}

/// `GET /api/admin/keys`.
pub async fn keys(State(st): State<Arc<AppState>>, Reader(caller): Reader) -> Response {
    answer(st, caller, "GET /api/admin/keys", keys_of).await
}
