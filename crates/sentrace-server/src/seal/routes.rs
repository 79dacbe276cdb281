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
    if tenant != reader.0.tenant {
        return not_found();
    }
    if path
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return not_found();
    }
    match read_object(seal.objects().as_ref(), &tenant, path).await {
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
        Err(e) => {
            tracing::error!(error = %e, "reading a log object");
            (StatusCode::INTERNAL_SERVER_ERROR, "log object unreadable\n").into_response()
        }
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
pub async fn log_keys(State(st): State<Arc<AppState>>, _reader: Reader) -> Response {
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
