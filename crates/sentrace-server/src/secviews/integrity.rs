//! `GET /api/integrity` and `POST /api/integrity/verify`: the caller's tenant's latest
//! checkpoint, its witness cosignatures and quorum, and the last verification of its log
//! and stored spans.
//!
//! A verification is what `sentrace verify --tenant T` does offline
//! ([`sentrace_pipeline::seal::audit::audit`]): every log object and every stored span of
//! the tenant (WAL and blocks) against the node's log key, the configured witnesses and
//! the checkpoints this server pinned before (a rolled-back log is reported). It runs on a
//! blocking thread with a runtime of its own, one at a time per tenant (a second request
//! is answered 429), and its result is saved in `<data-dir>/integrity/<tenant>.json`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sentrace_access::authz::Action;
use sentrace_core::TenantId;
use sentrace_ledger::checkpoint::{Checkpoint, LogVerifier};
use sentrace_ledger::note::Note;
use sentrace_ledger::verify::{FindingKind, PinState};
use sentrace_query::service::{QueryError, Returned};
use serde::{Deserialize, Serialize};

use super::SecViews;
use crate::app::{AppState, Reader};

const SUFFIX: &str = ".json";
/// Most verifications running at once on the node (each reads the whole store); more are
/// answered 429 like a second one of the same tenant.
pub const MAX_CONCURRENT: usize = 2;
/// Most problems kept in a result (the rest are counted in a last line).
pub const MAX_PROBLEMS: usize = 100;

/// The last verification of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastVerify {
    /// When it finished, Unix ns.
    pub time_ns: u64,
    /// Everything verified.
    pub ok: bool,
    /// Log entries checked.
    pub entries_checked: u64,
    /// What failed, one line each (erasures by retention or shredding are not problems).
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    version: u32,
    tenant: String,
    last_verify: LastVerify,
    /// The checkpoints this server's verifications pinned (a later, smaller or different
    /// log is reported).
    pins: PinState,
}

/// Results per tenant and the tenants being verified now.
#[derive(Debug)]
pub struct IntegrityState {
    dir: PathBuf,
    saved: Mutex<HashMap<TenantId, Saved>>,
    running: Arc<Mutex<HashSet<TenantId>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Holds a tenant's place in the running set; frees it when dropped.
struct Running {
    set: Arc<Mutex<HashSet<TenantId>>>,
    tenant: TenantId,
}

impl Drop for Running {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.tenant);
    }
}

impl IntegrityState {
    /// Loads the saved results of `<data-dir>/integrity/`.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.join("integrity");
        let mut saved = HashMap::new();
        for (tenant, bytes) in super::read_tenant_files(&dir, SUFFIX)? {
            let p = dir.join(format!("{tenant}{SUFFIX}"));
            let s: Saved = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{}: the verification state of tenant {tenant} is damaged; delete it to forget the pinned checkpoints",
                    p.display()
                )
            })?;
            if s.version != 1 || s.tenant != tenant.as_str() {
                anyhow::bail!("{}: not version 1 of tenant {tenant}", p.display());
            }
            saved.insert(tenant, s);
        }
        Ok(Self {
            dir,
            saved: Mutex::new(saved),
            running: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// The tenant's last verification.
    pub fn last(&self, tenant: &TenantId) -> Option<LastVerify> {
        lock(&self.saved).get(tenant).map(|s| s.last_verify.clone())
    }

    fn pins(&self, tenant: &TenantId) -> PinState {
        lock(&self.saved)
            .get(tenant)
            .map(|s| s.pins.clone())
            .unwrap_or_default()
    }

    /// Takes the tenant's place, or says why not.
    fn start(&self, tenant: &TenantId) -> Result<Running, String> {
        let mut g = lock(&self.running);
        if g.contains(tenant) {
            return Err(format!(
                "a verification of tenant {tenant} is already running; retry when it has finished"
            ));
        }
        if g.len() >= MAX_CONCURRENT {
            return Err(format!(
                "{MAX_CONCURRENT} verifications are already running on this server; retry later"
            ));
        }
        g.insert(tenant.clone());
        Ok(Running {
            set: self.running.clone(),
            tenant: tenant.clone(),
        })
    }

    /// Records and saves a result (blocking file write).
    fn save(&self, tenant: &TenantId, last: LastVerify, pins: PinState) -> anyhow::Result<()> {
        let s = Saved {
            version: 1,
            tenant: tenant.to_string(),
            last_verify: last,
            pins,
        };
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let p = self.dir.join(format!("{tenant}{SUFFIX}"));
        let bytes = serde_json::to_vec(&s)?;
        sentrace_store::fsutil::write_atomic(&p, &bytes, 0o600)
            .with_context(|| format!("writing {}", p.display()))?;
        lock(&self.saved).insert(tenant.clone(), s);
        Ok(())
    }
}

/// One line per problem of a verification report (erasures are not problems).
fn problems(audits: &[sentrace_pipeline::seal::audit::TenantAudit]) -> Vec<String> {
    let mut out = Vec::new();
    let mut more = 0u64;
    for t in audits {
        for f in t
            .report
            .findings
            .iter()
            .filter(|f| f.kind != FindingKind::Erased)
        {
            if out.len() >= MAX_PROBLEMS {
                more += 1;
                continue;
            }
            let kind = serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut at = Vec::new();
            if let Some(b) = &f.block {
                at.push(format!("block {b}"));
            }
            if let Some(i) = f.index {
                at.push(format!("batch {i}"));
            }
            if let Some(p) = &f.path {
                at.push(format!("path {p}"));
            }
            let at = if at.is_empty() {
                String::new()
            } else {
                format!(" [{}]", at.join(", "))
            };
            out.push(format!("{kind}: {}{at}", f.detail));
        }
        if t.report.findings_omitted > 0 {
            more += t.report.findings_omitted;
        }
    }
    if more > 0 {
        out.push(format!("{more} more problems not listed"));
    }
    out
}

impl SecViews {
    /// Verifies `tenant`'s log and stored spans now (blocking; minutes on a large store).
    fn verify_blocking(&self, tenant: &TenantId) -> anyhow::Result<(LastVerify, PinState)> {
        let mut witnesses = Vec::new();
        for w in &self.witnesses {
            witnesses.extend(w.keys().map_err(|e| anyhow::anyhow!(e))?);
        }
        let mut pins = self.integrity.pins(tenant);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the verification runtime")?;
        let mut progress = |_: &str, _: &'static str, _: u64, _: u64| {};
        let audits = rt.block_on(sentrace_pipeline::seal::audit::audit_store(
            &self.data_dir,
            self.objects.as_ref(),
            &self.master,
            &mut pins,
            sentrace_pipeline::seal::audit::AuditOptions {
                node: self.node.clone(),
                key: None,
                tenant: Some(tenant.clone()),
                witnesses,
                quorum: self.witness_quorum,
                progress: &mut progress,
            },
        ))?;
        let last = LastVerify {
            time_ns: super::now_nanos(),
            ok: audits.iter().all(|a| a.report.ok),
            entries_checked: audits.iter().map(|a| a.report.entries_checked).sum(),
            problems: problems(&audits),
        };
        Ok((last, pins))
    }
}

fn key_id_hex(id: u32) -> String {
    format!("{id:08x}")
}

/// The body of both routes for `tenant`.
fn body(st: &AppState, tenant: &TenantId) -> serde_json::Value {
    let sv = &st.secviews;
    let note_text = st.seal.as_ref().and_then(|s| s.latest_checkpoint(tenant));
    let note = note_text
        .as_deref()
        .and_then(|t| Note::parse(t.as_bytes()).ok());
    let log_key = st
        .seal
        .as_ref()
        .and_then(|s| LogVerifier::parse(&s.vkeys()).ok());
    let checkpoint = match (&note, &note_text) {
        (Some(n), Some(text)) => Checkpoint::parse(n.text()).ok().map(|cp| {
            // The log's own signatures carry the signing time (tlog-cosignature types).
            let time = log_key.as_ref().and_then(|k| {
                n.signatures.iter().find_map(|sig| {
                    [&k.ed25519, &k.mldsa]
                        .into_iter()
                        .filter(|vk| vk.matches(sig))
                        .find_map(|vk| vk.verify_note(n.text(), &sig.signature).ok().flatten())
                })
            });
            serde_json::json!({
                "origin": cp.origin.as_str(),
                "size": cp.size,
                "root_hash": hex::encode(cp.root),
                "signed_note": text,
                "time_ns": time.map(|t| t.saturating_mul(1_000_000_000)),
            })
        }),
        _ => None,
    };
    let mut witnesses = Vec::new();
    let mut reached: HashSet<String> = HashSet::new();
    for w in &sv.witnesses {
        for vk in w.keys().unwrap_or_default() {
            let time = note.as_ref().and_then(|n| {
                n.signatures
                    .iter()
                    .filter(|sig| vk.matches(sig))
                    .find_map(|sig| vk.verify_note(n.text(), &sig.signature).ok().flatten())
            });
            if time.is_some() {
                reached.insert(w.name.clone());
            }
            witnesses.push(serde_json::json!({
                "name": w.name,
                "key_id": key_id_hex(vk.key_id()),
                "cosigned": time.is_some(),
                "time_ns": time.map(|t| t.saturating_mul(1_000_000_000)),
            }));
        }
    }
    serde_json::json!({
        "checkpoint": checkpoint,
        "witnesses": witnesses,
        "quorum": { "required": sv.witness_quorum, "reached": reached.len() },
        "last_verify": sv.integrity.last(tenant),
    })
}

/// `GET /api/integrity`.
pub async fn integrity(State(st): State<Arc<AppState>>, Reader(caller): Reader) -> Response {
    let r = crate::api::gated(
        &st,
        &caller,
        Action::Verify,
        "GET /api/integrity",
        Default::default(),
        |gate| {
            let b = body(&st, &gate.caller().identity.tenant);
            Ok((
                b,
                Returned {
                    trace_ids: Vec::new(),
                    items: 1,
                },
            ))
        },
    )
    .await;
    match r {
        Ok(b) => Json(serde_json::json!({ "data": b })).into_response(),
        Err(resp) => resp,
    }
}

/// `POST /api/integrity/verify`: verifies now, saves the result, answers like the GET.
pub async fn verify(State(st): State<Arc<AppState>>, Reader(caller): Reader) -> Response {
    let endpoint = "POST /api/integrity/verify";
    let gate = match st
        .query
        .authorize(&caller, Action::RunVerify, endpoint, Default::default())
        .await
    {
        Ok(g) => g,
        Err(e) => return crate::api::query_error(e),
    };
    let tenant = caller.identity.tenant.clone();
    let running = match st.secviews.integrity.start(&tenant) {
        Ok(r) => r,
        Err(msg) => {
            // Audited as a failed request; the answer is 429 whatever the record says.
            let r: Result<((), Returned), QueryError> = Err(QueryError::BadRequest(msg.clone()));
            if let Err(QueryError::AuditUnavailable) = gate.finish(&st.query, r).await {
                return crate::api::query_error(QueryError::AuditUnavailable);
            }
            return crate::api::problem(StatusCode::TOO_MANY_REQUESTS, msg);
        }
    };
    let sv = st.secviews.clone();
    let t = tenant.clone();
    // The guard moves into the task: the tenant stays busy until the verification ends,
    // even if the client goes away.
    let joined = tokio::task::spawn_blocking(move || {
        let _running = running;
        let (last, pins) = sv.verify_blocking(&t)?;
        sv.integrity.save(&t, last.clone(), pins)?;
        Ok::<_, anyhow::Error>(last)
    })
    .await;
    let result = match joined {
        Ok(Ok(last)) => {
            tracing::info!(tenant = %tenant, ok = last.ok, problems = last.problems.len(), "verification run");
            Ok((
                body(&st, &tenant),
                Returned {
                    trace_ids: Vec::new(),
                    items: last.entries_checked,
                },
            ))
        }
        Ok(Err(e)) => {
            tracing::error!(tenant = %tenant, error = %format!("{e:#}"), "verification could not run");
            Err(QueryError::Unavailable)
        }
        Err(e) => {
            tracing::error!(tenant = %tenant, error = %e, "verification task failed");
            Err(QueryError::Unavailable)
        }
    };
    match gate.finish(&st.query, result).await {
        Ok(b) => Json(serde_json::json!({ "data": b })).into_response(),
        Err(e) => crate::api::query_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_verification_at_a_time_per_tenant_and_results_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let st = IntegrityState::open(dir.path()).unwrap();
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        let held = st.start(&a).expect("first verification starts");
        let busy = st
            .start(&a)
            .err()
            .expect("a second one of the same tenant is busy");
        assert!(busy.contains("tenant a"), "{busy}");
        let other = st.start(&b).expect("another tenant is not held up");
        let c = TenantId::new("c").unwrap();
        let full = st.start(&c).err().expect("the node-wide bound");
        assert!(full.contains("verifications are already running"), "{full}");
        drop(held);
        assert!(st.start(&a).is_ok(), "free again once the first ended");
        drop(other);
        let last = LastVerify {
            time_ns: 5,
            ok: false,
            entries_checked: 3,
            problems: vec!["modified: x".into()],
        };
        st.save(&a, last.clone(), PinState::default()).unwrap();
        let again = IntegrityState::open(dir.path()).unwrap();
        assert_eq!(again.last(&a), Some(last));
        assert_eq!(again.last(&b), None);
        // A damaged file stops the start, naming it.
        std::fs::write(dir.path().join("integrity").join("b.json"), b"{").unwrap();
        let err = IntegrityState::open(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("b.json"), "{err:#}");
    }
}
