//! `GET /api/exposure?since=&until=`: what minimization found in the caller's tenant, by
//! service, kind, attribute key and action (never values); and the per-tenant files
//! `<data-dir>/exposure/<tenant>.json` that keep it across restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentrace_access::authz::Action;
use sentrace_core::TenantId;
use sentrace_query::service::Returned;
use sentrace_redact::{ExposureLog, ExposureRow};
use serde::{Deserialize, Serialize};

use crate::app::{AppState, Reader};

const SUFFIX: &str = ".json";

/// The directory of exposure files.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("exposure")
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    /// Format version (1).
    version: u32,
    /// The tenant.
    tenant: String,
    /// Its rows.
    rows: Vec<ExposureRow>,
}

/// Every tenant's saved rows.
pub fn load_all(data_dir: &Path) -> anyhow::Result<Vec<(TenantId, Vec<ExposureRow>)>> {
    let mut out = Vec::new();
    for (tenant, bytes) in super::read_tenant_files(&dir(data_dir), SUFFIX)? {
        let p = dir(data_dir).join(format!("{tenant}{SUFFIX}"));
        let snap: Snapshot = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: the exposure counts of tenant {tenant} are damaged; delete the file to start them afresh",
                p.display()
            )
        })?;
        if snap.version != 1 || snap.tenant != tenant.as_str() {
            anyhow::bail!(
                "{}: version {} of tenant {:?} (expected version 1 of {tenant})",
                p.display(),
                snap.version,
                snap.tenant
            );
        }
        out.push((tenant, snap.rows));
    }
    Ok(out)
}

/// Writes the file of every tenant whose rows changed (blocking: call it off the async
/// workers). A tenant whose file could not be written stays due.
pub fn persist(data_dir: &Path, log: &ExposureLog) -> anyhow::Result<usize> {
    let mut written = 0;
    let mut first_err = None;
    for (tenant, rows) in log.take_dirty() {
        let snap = Snapshot {
            version: 1,
            tenant: tenant.to_string(),
            rows,
        };
        let path = dir(data_dir).join(format!("{tenant}{SUFFIX}"));
        let r = serde_json::to_vec(&snap)
            .map_err(anyhow::Error::from)
            .and_then(|b| {
                std::fs::create_dir_all(dir(data_dir))?;
                sentrace_store::fsutil::write_atomic(&path, &b, 0o600).map_err(anyhow::Error::from)
            });
        match r {
            Ok(()) => written += 1,
            Err(e) => {
                log.mark_dirty(&tenant);
                first_err.get_or_insert(e.context(format!("writing {}", path.display())));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// Query parameters of `GET /api/exposure`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureQuery {
    /// Rows last seen at or after this time (Unix ns).
    since: Option<u64>,
    /// Rows first seen before this time (Unix ns).
    until: Option<u64>,
}

/// `GET /api/exposure`: `{"data": [rows], "total": n}`, sorted by service, kind, key and
/// action. A row's count covers its whole life (`first_seen_ns` to `last_seen_ns`); `since`
/// and `until` keep the rows whose life overlaps `[since, until)`.
pub async fn exposure(
    State(st): State<Arc<AppState>>,
    Reader(caller): Reader,
    q: Result<Query<ExposureQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return crate::api::problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let (Some(s), Some(u)) = (q.since, q.until)
        && s >= u
    {
        return crate::api::problem(
            StatusCode::BAD_REQUEST,
            format!("since ({s}) must be before until ({u})"),
        );
    }
    let mut filter = std::collections::BTreeMap::new();
    if let Some(s) = q.since {
        filter.insert("since".to_string(), s.to_string());
    }
    if let Some(u) = q.until {
        filter.insert("until".to_string(), u.to_string());
    }
    let log = st.secviews.exposure.clone();
    let r = crate::api::gated(
        &st,
        &caller,
        Action::ReadFindings,
        "GET /api/exposure",
        filter,
        |gate| {
            let tenant = gate.caller().identity.tenant.clone();
            let rows: Vec<ExposureRow> = log
                .as_ref()
                .map(|l| l.rows(&tenant))
                .unwrap_or_default()
                .into_iter()
                .filter(|r| {
                    q.since.is_none_or(|s| r.last_seen_ns >= s)
                        && q.until.is_none_or(|u| r.first_seen_ns < u)
                })
                .collect();
            let returned = Returned {
                trace_ids: Vec::new(),
                items: rows.len() as u64,
            };
            Ok((rows, returned))
        },
    )
    .await;
    match r {
        Ok(rows) => {
            axum::Json(serde_json::json!({ "total": rows.len(), "data": rows })).into_response()
        }
        Err(resp) => resp,
    }
}
