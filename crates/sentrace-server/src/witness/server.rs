//! `sentrace witness`: a C2SP `tlog-witness` server over HTTPS (rustls, TLS 1.3, the same
//! stack as the main server). One endpoint, `POST /add-checkpoint`; the decision is the pure
//! [`Witness`] state machine, and a cosignature is returned only after the new state is
//! durable (see [`super::state`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sentrace_ledger::note::MAX_NOTE_SIZE;
use sentrace_ledger::witness::{MAX_PROOF_LINES, Witness, WitnessResponse};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};

use super::config::{WitnessFileConfig, WitnessedLog, known_logs};
use super::state;
use crate::tls::{TlsPaths, default_sans, ensure_local_pki};

/// The largest request body: a note, the `old` line and 63 proof lines (spec limit).
pub const MAX_BODY: usize = MAX_NOTE_SIZE + 64 * (MAX_PROOF_LINES + 1);

/// Route of the endpoint (c2sp.org/tlog-witness, with an empty prefix).
pub const ADD_CHECKPOINT_ROUTE: &str = "/add-checkpoint";

/// The witness behind its HTTP endpoint.
pub struct WitnessService {
    witness: Mutex<Witness>,
    state_path: PathBuf,
    cosigned: AtomicU64,
    refused: AtomicU64,
}

impl std::fmt::Debug for WitnessService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessService")
            .field("state_path", &self.state_path)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl WitnessService {
    /// A service persisting its state to `state_path`.
    pub fn new(witness: Witness, state_path: PathBuf) -> Self {
        Self {
            witness: Mutex::new(witness),
            state_path,
            cosigned: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Handles one request body: evaluate, persist the new record durably, then apply and
    /// answer. Holding the lock across the three makes check-and-update atomic.
    pub async fn add_checkpoint(&self, body: &[u8]) -> WitnessResponse {
        let mut w = self.witness.lock().await;
        let e = w.evaluate(body, now_secs());
        if let Some(record) = e.record {
            let mut next = w.state().clone();
            next.logs.insert(record.0.clone(), record.1.clone());
            let path = self.state_path.clone();
            let saved = tokio::task::spawn_blocking(move || state::save_state(&path, &next))
                .await
                .map_err(|e| anyhow::anyhow!("state writer task: {e}"))
                .and_then(|r| r);
            if let Err(err) = saved {
                tracing::error!(error = %format!("{err:#}"), "persisting the witness state failed; not cosigning");
                self.refused.fetch_add(1, Relaxed);
                return WitnessResponse::Internal("the witness could not persist its state".into());
            }
            w.apply(record);
        }
        match &e.response {
            WitnessResponse::Cosigned(_) => self.cosigned.fetch_add(1, Relaxed),
            _ => self.refused.fetch_add(1, Relaxed),
        };
        e.response
    }

    /// The router: `POST /add-checkpoint` (body at most [`MAX_BODY`]) and `GET /metrics`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(ADD_CHECKPOINT_ROUTE, post(add_checkpoint))
            .route("/metrics", get(metrics))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self)
    }
}

async fn add_checkpoint(State(svc): State<Arc<WitnessService>>, body: Bytes) -> Response {
    let r = svc.add_checkpoint(&body).await;
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status != StatusCode::OK {
        tracing::info!(status = status.as_u16(), body = %r.body().1.trim_end(), "add-checkpoint refused");
    }
    let (ct, text) = r.body();
    (status, [(header::CONTENT_TYPE, ct)], text).into_response()
}

async fn metrics(
    State(svc): State<Arc<WitnessService>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let content_type = sentrace_pipeline::metrics::content_type(accept);
    let text = sentrace_pipeline::metrics::export::render(move |e| {
        use sentrace_pipeline::metrics::export;
        export::counters(
            e,
            "sentrace_witness_requests",
            "add-checkpoint requests by outcome.",
            [
                ([("outcome", "cosigned")], svc.cosigned.load(Relaxed)),
                ([("outcome", "refused")], svc.refused.load(Relaxed)),
            ],
        )?;
        sentrace_pipeline::metrics::process::encode(e)
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// How `sentrace witness` was asked to run.
#[derive(Debug, Clone)]
pub struct WitnessOptions {
    /// The state directory (keys, state, TLS material).
    pub state_dir: PathBuf,
    /// The cosigning key file (default `<state>/witness.key`).
    pub key_file: Option<PathBuf>,
    /// The witness's name, for new keys (and checked against existing ones).
    pub name: Option<String>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The parsed `--config` file, if any.
    pub config: WitnessFileConfig,
    /// Extra logs from the command line.
    pub logs: Vec<WitnessedLog>,
    /// A TLS certificate chain and key to serve instead of the self-made ones.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// What the witness's first start made (or found).
#[derive(Debug)]
pub struct Prepared {
    /// The cosigning keys.
    pub keys: Vec<sentrace_ledger::keys::NoteSigner>,
    /// Whether the keys were made now.
    pub created: bool,
    /// The certificate and key to serve.
    pub cert: PathBuf,
    /// The key for `cert`.
    pub tls_key: PathBuf,
    /// The CA certificate clients must trust (self-made PKI only).
    pub ca: Option<PathBuf>,
}

/// Makes the state directory, the cosigning keys and the TLS material if missing.
pub fn prepare(opts: &WitnessOptions) -> anyhow::Result<Prepared> {
    std::fs::create_dir_all(&opts.state_dir)
        .with_context(|| format!("creating {}", opts.state_dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&opts.state_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", opts.state_dir.display()))?;
    }
    let key_file = opts
        .key_file
        .clone()
        .unwrap_or_else(|| state::key_path(&opts.state_dir));
    let name = opts.name.as_deref().or(opts.config.name.as_deref());
    let (keys, created) = state::load_or_create_keys(&key_file, name)?;
    if created {
        state::write_durable(
            &state::public_key_path(&opts.state_dir),
            state::vkeys(&keys).as_bytes(),
            0o644,
        )?;
    }
    let (cert, tls_key, ca) = match &opts.tls {
        Some((c, k)) => (c.clone(), k.clone(), None),
        None => {
            let paths = TlsPaths::under(&opts.state_dir);
            ensure_local_pki(&paths, &default_sans())?;
            (paths.server_cert, paths.server_key, Some(paths.ca_cert))
        }
    };
    Ok(Prepared {
        keys,
        created,
        cert,
        tls_key,
        ca,
    })
}

/// Runs the witness until SIGINT or SIGTERM.
pub async fn run(opts: WitnessOptions) -> anyhow::Result<()> {
    let prepared = prepare(&opts)?;
    let mut logs = opts.config.log.clone();
    logs.extend(opts.logs.iter().cloned());
    let known = known_logs(&logs).map_err(|e| anyhow::anyhow!("{e}"))?;
    if known.is_empty() {
        tracing::warn!(
            "the witness follows no log: every request gets 404 (add --log ORIGIN=VKEYS)"
        );
    }
    let state_path = state::state_path(&opts.state_dir);
    let saved = state::load_state(&state_path)?;
    let vkeys = state::vkeys(&prepared.keys);
    let witness = Witness::new(prepared.keys, known, saved)
        .map_err(|e| anyhow::anyhow!("witness keys: {e}"))?;
    let svc = Arc::new(WitnessService::new(witness, state_path));
    let tls = crate::tls::server_config(&prepared.cert, &prepared.tls_key)?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding the witness listener on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    for v in vkeys.lines() {
        println!("sentrace witness: vkey {v}");
    }
    if let Some(ca) = &prepared.ca {
        println!("sentrace witness: CA certificate {}", ca.display());
    }
    let stop = crate::shutdown_signal()?;
    println!("sentrace witness: ready on https://{addr}{ADD_CHECKPOINT_ROUTE}");
    tracing::info!(address = %addr, "witness listening");
    let (tx, rx) = watch::channel(false);
    let server = tokio::spawn(crate::tls::serve(listener, Some(tls), svc.router(), rx));
    stop.await;
    let _ = tx.send(true);
    let _ = server.await;
    Ok(())
}

/// Prints the vkeys (making the keys and TLS material on first use).
pub fn show_key(opts: &WitnessOptions) -> anyhow::Result<String> {
    Ok(state::vkeys(&prepare(opts)?.keys))
}

/// The state file of a state directory (for tools and tests).
pub fn state_file(state_dir: &Path) -> PathBuf {
    state::state_path(state_dir)
}
