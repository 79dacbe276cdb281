//! Read-only endpoints for verifying a live server's log remotely (`sentrace verify
//! --server`), on the query listener, with the read role; a token sees its own tenant only.
//!
//! - `GET /.well-known/sentrace/log`: which log the token's tenant has (`tenant`, `origin`).
//! - `GET /.well-known/sentrace/log/<tenant>/batches?start=N&limit=K`: per log index in
//!   `[N, N+K)`, the canonical span encodings the store holds for that batch, as stored
//!   (base64, in position order), or the record that retention erased it. Paged and
//!   bounded: at most [`MAX_PAGE_BATCHES`] batches and about [`MAX_PAGE_BYTES`] of spans
//!   per answer; `next` says where to continue.
//!
//! Nothing here is trusted by the client: it recomputes every span root, leaf and tree
//! from these bytes and the tiles and checks them against the signed checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sentrace_core::TenantId;

use sentrace_access::authz::Action;
use sentrace_query::service::Returned;

use crate::app::{AppState, Reader};

/// Route of the token's log description.
pub const LOG_ROUTE: &str = "/.well-known/sentrace/log";
/// Route of the stored batches.
pub const BATCHES_ROUTE: &str = "/.well-known/sentrace/log/{tenant}/batches";
/// Most batches per answer.
pub const MAX_PAGE_BATCHES: u64 = 1024;
/// Batches per answer when `limit` is not given.
pub const DEFAULT_PAGE_BATCHES: u64 = 256;
/// An answer stops after the batch that brings its span bytes past this.
pub const MAX_PAGE_BYTES: usize = 8 << 20;

/// The token's log.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LogInfo {
    /// The token's tenant.
    pub tenant: String,
    /// The log's origin (`<node>/<tenant>`).
    pub origin: String,
}

/// Query of the batches route.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// First log index.
    pub start: u64,
    /// How many log indices (1..=1024; default 256).
    pub limit: Option<u64>,
}

/// One stored batch.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StoredBatch {
    /// Its log index.
    pub index: u64,
    /// Where its spans lie (`wal`, `blocks/<tenant>/<name>.parquet`; comma-separated if
    /// several).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    /// The canonical span encodings, base64, in position order (two different spans at
    /// one position are both listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<String>,
    /// Set if retention erased the batch: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<String>,
}

/// An object that could not be read.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Damaged {
    /// The object.
    pub location: String,
    /// Why.
    pub reason: String,
}

/// One answer of the batches route.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct BatchPage {
    /// The first index asked for.
    pub start: u64,
    /// The first index not covered by this answer: ask again from there.
    pub next: u64,
    /// The stored batches in `[start, next)`, by index; an index not listed has nothing
    /// stored.
    pub batches: Vec<StoredBatch>,
    /// Objects that could not be read (they may hold batches of the range).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub damage: Vec<Damaged>,
    /// The tenant's data keys were destroyed: every batch is erased.
    #[serde(default)]
    pub shredded: bool,
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

/// `GET /.well-known/sentrace/log`.
pub async fn log_info(State(st): State<Arc<AppState>>, reader: Reader) -> Response {
    let Some(seal) = &st.seal else {
        return error(StatusCode::NOT_FOUND, "this server seals no log");
    };
    let r = crate::api::gated(
        &st,
        &reader.0,
        Action::Verify,
        "GET /.well-known/sentrace/log",
        Default::default(),
        |_| Ok(((), Returned::default())),
    )
    .await;
    if let Err(resp) = r {
        return resp;
    }
    let tenant = &reader.identity().tenant;
    Json(LogInfo {
        tenant: tenant.as_str().to_owned(),
        origin: format!("{}/{}", seal.node(), tenant.as_str()),
    })
    .into_response()
}

/// `GET /.well-known/sentrace/log/<tenant>/batches`.
pub async fn batches(
    State(st): State<Arc<AppState>>,
    reader: Reader,
    Path(tenant): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(seal) = &st.seal else {
        return error(StatusCode::NOT_FOUND, "this server seals no log");
    };
    let Ok(tenant) = TenantId::new(&tenant) else {
        return error(StatusCode::NOT_FOUND, "no such log");
    };
    // A tenant without a published log has nothing sealed (and, having no keys either,
    // must not read as crypto-shredded).
    if tenant != reader.identity().tenant || seal.latest_checkpoint(&tenant).is_none() {
        return error(StatusCode::NOT_FOUND, "no such log");
    }
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("query: {e}")),
    };
    let limit = q.limit.unwrap_or(DEFAULT_PAGE_BATCHES);
    if !(1..=MAX_PAGE_BATCHES).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("limit must be 1..={MAX_PAGE_BATCHES}"),
        );
    }
    let Some(end) = q.start.checked_add(limit) else {
        return error(StatusCode::BAD_REQUEST, "start + limit overflows");
    };
    let endpoint = "GET /.well-known/sentrace/log/{tenant}/batches";
    match st
        .query
        .sealed_batches(&reader.0, q.start..end, endpoint)
        .await
    {
        Ok(read) => Json(page(q.start, end, read)).into_response(),
        Err(e) => crate::api::query_error(e),
    }
}

/// Groups a read into a page: by index, then position; identical copies (a batch both in
/// the WAL and in a block after a crash) count once; cut after [`MAX_PAGE_BYTES`].
fn page(start: u64, end: u64, read: sentrace_store::SealedRead) -> BatchPage {
    type Copies = Vec<(bytes::Bytes, BTreeSet<String>)>;
    let mut by_index: BTreeMap<u64, BTreeMap<u32, Copies>> = BTreeMap::new();
    for (location, s) in read.spans {
        let Some(seal) = &s.seal else { continue };
        let copies = by_index
            .entry(seal.index)
            .or_default()
            .entry(seal.position)
            .or_default();
        match copies.iter_mut().find(|(b, _)| *b == s.canonical) {
            Some((_, locs)) => {
                locs.insert(location);
            }
            None => copies.push((s.canonical.clone(), BTreeSet::from([location]))),
        }
    }
    let erased: BTreeMap<u64, String> = read.erased.into_iter().collect();
    let mut out = BatchPage {
        start,
        next: end,
        shredded: read.shredded,
        damage: read
            .damage
            .into_iter()
            .map(|(location, reason)| Damaged { location, reason })
            .collect(),
        batches: Vec::new(),
    };
    let indices: BTreeSet<u64> = by_index.keys().chain(erased.keys()).copied().collect();
    let mut bytes = 0usize;
    for index in indices {
        if bytes > MAX_PAGE_BYTES {
            out.next = index;
            break;
        }
        let mut b = StoredBatch {
            index,
            ..StoredBatch::default()
        };
        match by_index.remove(&index) {
            Some(positions) => {
                let mut locations = BTreeSet::new();
                for (_, copies) in positions {
                    for (canonical, locs) in copies {
                        bytes = bytes.saturating_add(canonical.len());
                        b.spans.push(STANDARD.encode(&canonical));
                        locations.extend(locs);
                    }
                }
                b.location = locations.into_iter().collect::<Vec<_>>().join(",");
            }
            None => b.erased = erased.get(&index).cloned(),
        }
        out.batches.push(b);
    }
    out
}
