//! `GET /api/findings/{id}`: one finding of the caller's tenant (OCSF), and
//! `POST /api/responses/{id}/undo`: lift one of its automated response actions at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentrace_access::authz::Action;
use sentrace_query::service::{QueryError, Returned};

use crate::app::{AppState, Reader};
use crate::detect::response::UndoOutcome;

/// Longest finding or action id accepted (both are short hex strings).
pub const MAX_ID_LEN: usize = 128;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn bad_id(what: &str) -> Response {
    crate::api::problem(
        StatusCode::BAD_REQUEST,
        format!("{what} id must be 1 to {MAX_ID_LEN} letters, digits, '-' or '_'"),
    )
}

/// `GET /api/findings/{id}`: `{"data": finding}`, or 404 naming the id.
pub async fn finding(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
) -> Response {
    let Some(rt) = &st.detect else {
        return crate::api::problem(
            StatusCode::NOT_FOUND,
            "detection is disabled ([detect] enabled = false)",
        );
    };
    if !valid_id(&id) {
        return bad_id("finding");
    }
    let filter = BTreeMap::from([("finding_id".to_string(), id.clone())]);
    let r = crate::api::gated(
        &st,
        &caller,
        Action::ReadFindings,
        "GET /api/findings/{id}",
        filter,
        |gate| {
            let tenant = &gate.caller().identity.tenant;
            match rt.findings.get(tenant, &id) {
                Some(f) => {
                    let mut trace_ids: Vec<String> = f
                        .evidences
                        .iter()
                        .filter_map(|e| e.trace_id.map(|t| t.to_hex()))
                        .collect();
                    trace_ids.sort();
                    trace_ids.dedup();
                    Ok((
                        Some(f.to_ocsf()),
                        Returned {
                            trace_ids,
                            items: 1,
                        },
                    ))
                }
                None => Ok((None, Returned::default())),
            }
        },
    )
    .await;
    match r {
        Ok(Some(f)) => Json(serde_json::json!({ "data": f })).into_response(),
        Ok(None) => crate::api::problem(
            StatusCode::NOT_FOUND,
            format!("finding {id:?} not found in this tenant"),
        ),
        Err(resp) => resp,
    }
}

/// `POST /api/responses/{id}/undo`: `{"data": {"id", "status"}}` with status `undone`
/// (also when it was lifted before), or 404 naming the id. Effective for the next batch.
pub async fn undo(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
) -> Response {
    let Some(rt) = st.detect.clone().filter(|rt| rt.response.is_some()) else {
        return crate::api::problem(StatusCode::NOT_FOUND, "automated response is disabled");
    };
    if !valid_id(&id) {
        return bad_id("response action");
    }
    let endpoint = "POST /api/responses/{id}/undo";
    let filter = BTreeMap::from([("action_id".to_string(), id.clone())]);
    let gate = match st
        .query
        .authorize(&caller, Action::UndoResponse, endpoint, filter)
        .await
    {
        Ok(g) => g,
        Err(e) => return crate::api::query_error(e),
    };
    let tenant = caller.identity.tenant.clone();
    let by = format!(
        "{}:{}",
        caller.identity.kind.entity_type(),
        caller.identity.principal
    );
    let action_id = id.clone();
    let outcome = tokio::task::spawn_blocking(move || match &rt.response {
        Some(resp) => resp.undo_for(&tenant, &action_id, &by, super::now_nanos()),
        None => Ok(UndoOutcome::Unknown),
    })
    .await;
    let result = match outcome {
        Ok(Ok(UndoOutcome::Undone | UndoOutcome::AlreadyUndone)) => Ok((
            Some(serde_json::json!({ "id": id, "status": "undone" })),
            Returned {
                trace_ids: Vec::new(),
                items: 1,
            },
        )),
        Ok(Ok(UndoOutcome::Unknown)) => Ok((None, Returned::default())),
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "response undo not written");
            Err(QueryError::Unavailable)
        }
        Err(e) => {
            tracing::error!(error = %e, "response undo task failed");
            Err(QueryError::Unavailable)
        }
    };
    match gate.finish(&st.query, result).await {
        Ok(Some(body)) => Json(serde_json::json!({ "data": body })).into_response(),
        Ok(None) => crate::api::problem(
            StatusCode::NOT_FOUND,
            format!("response action {id:?} not found in this tenant"),
        ),
        Err(e) => crate::api::query_error(e),
    }
}
