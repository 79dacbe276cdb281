//! `GET /api/sources`: the caller's tenant's signed sources, with their replay state.
//! Read role; the tenant comes from the token.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use sentrace_access::authz::Action;
use sentrace_query::service::{QueryError, Returned};

use crate::app::{AppState, Reader};

/// The route.
pub const ROUTE: &str = "/api/sources";

/// `GET /api/sources`.
pub async fn list(State(st): State<Arc<AppState>>, Reader(caller): Reader) -> Response {
    let tenant = caller.identity.tenant.clone();
    let r = crate::api::gated(
        &st,
        &caller,
        Action::ReadFindings,
        "GET /api/sources",
        Default::default(),
        |_| match st.sources.view(&tenant) {
            Ok(v) => {
                let items = v.sources.len() as u64;
                Ok((
                    v,
                    Returned {
                        trace_ids: Vec::new(),
                        items,
                    },
                ))
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "listing sources failed");
                Err(QueryError::Unavailable)
            }
        },
    )
    .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(resp) => resp,
    }
}
