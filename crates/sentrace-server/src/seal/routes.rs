//! The well-known paths of the logs on the query listener, authenticated like every other
//! endpoint (read role; a token sees its own tenant's log only):
//!
//! - `GET /.well-known/sentrace/log/<tenant>/checkpoint`: the latest signed checkpoint;
//! - `GET /.well-known/sentrace/log/<tenant>/tile/...`: C2SP `tlog-tiles` hash tiles and
//!   entry bundles, for verifiers and witnesses;
//! - `GET /.well-known/sentrace/log-keys`: the node's log public keys (vkeys).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sentrace_core::TenantId;

use super::read_object;
use sentrace_access::authz::Action;
use sentrace_query::service::{QueryError, Returned};

use crate::app::{AppState, Reader};

/// Route of the checkpoint.
pub const CHECKPOINT_ROUTE: &str = "/.well-known/sentrace/log/{tenant}/checkpoint";
/// Route of tiles and bundles.
pub const TILE_ROUTE: &str = "/.well-known/sentrace/log/{tenant}/tile/{*path}";
/// Route of the public keys.
pub const KEYS_ROUTE: &str = "/.well-known/sentrace/log-keys";

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such log object\n").into_response()
}

/// 400 for a tile path outside the C2SP tlog-tiles grammar, naming the parameter.
fn bad_tile_path(path: &str) -> Response {
    let shown: String = path.chars().take(60).collect();
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "parameter \"path\": {shown:?} is not a C2SP tlog-tiles path \
             (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])\n"
        ),
    )
        .into_response()
}

async fn serve(
    st: &AppState,
    reader: &Reader,
    tenant: &str,
    path: &str,
    ct: &'static str,
) -> Response {
    let Some(seal) = &st.seal else {
        return not_found();
    };
    let Ok(tenant) = TenantId::new(tenant) else {
        return not_found();
    };
    if tenant != reader.identity().tenant {
        return not_found();
    }
    let filter = std::collections::BTreeMap::from([("object".to_string(), path.to_string())]);
    let endpoint = "GET /.well-known/sentrace/log/{tenant}/...";
    let gate = match st
        .query
        .authorize(&reader.0, Action::Verify, endpoint, filter)
        .await
    {
        Ok(g) => g,
        Err(e) => return crate::api::query_error(e),
    };
    // Only the names C2SP tlog-tiles defines reach the object store: anything else (an
    // over-long or non-ASCII segment, `..`) is the caller's mistake, not a storage fault.
    if path != "checkpoint" && sentrace_ledger::tiles::parse_tile_path(path).is_none() {
        return bad_tile_path(path);
    }
    let read = read_object(seal.objects().as_ref(), &tenant, path).await;
    let result = match read {
        Ok(Some(bytes)) => Ok((
            Some(bytes),
            Returned {
                trace_ids: Vec::new(),
                items: 1,
            },
        )),
        Ok(None) => Ok((None, Returned::default())),
        Err(e) => {
            tracing::error!(error = %e, "reading a log object");
            Err(QueryError::Unavailable)
        }
    };
    match gate.finish(&st.query, result).await {
        Ok(Some(bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, ct),
                (header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => not_found(),
        Err(e) => crate::api::query_error(e),
    }
}

/// `GET` the checkpoint.
pub async fn checkpoint(
    State(st): State<Arc<AppState>>,
    reader: Reader,
    Path(tenant): Path<String>,
) -> Response {
    serve(
        &st,
        &reader,
        &tenant,
        "checkpoint",
        "text/plain; charset=utf-8",
    )
    .await
}

/// `GET` a tile or entry bundle.
pub async fn tile(
    State(st): State<Arc<AppState>>,
    reader: Reader,
    Path((tenant, path)): Path<(String, String)>,
) -> Response {
    serve(
        &st,
        &reader,
        &tenant,
        &format!("tile/{path}"),
        "application/octet-stream",
    )
    .await
}

/// `GET` the node's log public keys.
pub async fn log_keys(State(st): State<Arc<AppState>>, reader: Reader) -> Response {
    let r = crate::api::gated(
        &st,
        &reader.0,
        Action::Verify,
        "GET /.well-known/sentrace/log-keys",
        Default::default(),
        |_| Ok(((), Returned::default())),
    )
    .await;
    if let Err(resp) = r {
        return resp;
    }
    match &st.seal {
        Some(seal) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", seal.vkeys()),
        )
            .into_response(),
        None => not_found(),
    }
}
