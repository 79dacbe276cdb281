//! The server's witness client: after each published checkpoint, every `[[seal.witness]]`
//! is asked to cosign it (C2SP `tlog-witness` `add-checkpoint`), one task per witness, off
//! the ack path. A slow or down witness only delays its own cosignature: ingest never waits
//! for it.
//!
//! Per witness and log the client remembers the size the witness last cosigned, and sends
//! the consistency proof from that size (read from the published tiles). It starts from 0
//! after a restart; the witness's `409` names its size and the request is retried from
//! there. A `409` naming the very size sent means the witness holds a *different* tree of
//! that size: a split view, logged as an error and never retried in a loop. Failures back
//! off exponentially (1 s doubling to [`MAX_BACKOFF`]); only the latest checkpoint is
//! submitted, so nothing queues up while a witness is down.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_ledger::checkpoint::Checkpoint;
use sentrace_ledger::keys::VerifierKey;
use sentrace_ledger::note::{Note, NoteSignature};
use sentrace_ledger::witness::{AddCheckpoint, check_cosignatures, parse_conflict_size};
use tokio::sync::watch;

use super::config::WitnessConfig;
use crate::seal::Seal;

/// The longest wait between retries of a failing witness.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The largest response body read from a witness.
pub const MAX_RESPONSE: usize = 64 * 1024;
/// `409` answers followed in one submission before giving up.
const MAX_CONFLICT_RETRIES: usize = 3;

/// Counters of one witness.
#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    cosigned: AtomicU64,
    conflicts: AtomicU64,
    failed: AtomicU64,
}

/// The witness clients' counters, exported at `/metrics`.
#[derive(Debug)]
pub struct WitnessMetrics {
    witnesses: Vec<(String, Counters)>,
    quorum_reached: AtomicU64,
}

impl WitnessMetrics {
    /// Counters for the configured witnesses.
    pub fn new(cfgs: &[WitnessConfig]) -> Self {
        Self {
            witnesses: cfgs
                .iter()
                .map(|c| (c.name.clone(), Counters::default()))
                .collect(),
            quorum_reached: AtomicU64::new(0),
        }
    }

    fn counters(&self, i: usize) -> Option<&Counters> {
        self.witnesses.get(i).map(|(_, c)| c)
    }

    /// The witness clients' families for `/metrics`.
    pub fn encode_metrics(
        &self,
        e: &mut sentrace_pipeline::metrics::export::Encoder<'_>,
    ) -> std::fmt::Result {
        use sentrace_pipeline::metrics::export::{self, Escaped};
        export::counters(
            e,
            "sentrace_witness_requests",
            "add-checkpoint requests sent to each witness, by outcome (submitted counts every request).",
            self.witnesses.iter().flat_map(|(name, c)| {
                [
                    ("submitted", &c.submitted),
                    ("cosigned", &c.cosigned),
                    ("conflict", &c.conflicts),
                    ("failed", &c.failed),
                ]
                .map(|(outcome, v)| {
                    (
                        [("witness", Escaped(name)), ("outcome", Escaped(outcome))],
                        v.load(Relaxed),
                    )
                })
            }),
        )?;
        export::counter(
            e,
            "sentrace_witness_quorum_reached",
            "Checkpoints that gathered the configured quorum of cosignatures.",
            self.quorum_reached.load(Relaxed),
        )
    }
}

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The request could not be sent or its answer not read.
    #[error("witness {witness}: request failed: {message}")]
    Transport {
        /// The witness.
        witness: String,
        /// What failed.
        message: String,
    },
    /// The witness answered with an error status.
    #[error("witness {witness}: HTTP {status}: {body}")]
    Refused {
        /// The witness.
        witness: String,
        /// The status code.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// The witness holds a different tree of the same size, or a larger one than the log.
    #[error(
        "witness {witness} holds a tree of size {witness_size} that this log's checkpoint of size {size} does not extend: split view or rolled-back log"
    )]
    SplitView {
        /// The witness.
        witness: String,
        /// The size the witness holds.
        witness_size: u64,
        /// The log's size.
        size: u64,
    },
    /// The cosignatures did not verify, or anything else.
    #[error("witness {witness}: {message}")]
    Other {
        /// The witness.
        witness: String,
        /// What.
        message: String,
    },
}

/// One witness as the server sees it.
struct Client {
    index: usize,
    name: String,
    url: String,
    keys: Vec<VerifierKey>,
    http: reqwest::Client,
    /// The size this witness last cosigned, per tenant log.
    known: HashMap<TenantId, u64>,
    /// The checkpoint text this witness cosigned last, per tenant log.
    done: HashMap<TenantId, String>,
}

/// Starts one client task per witness; they stop when `shutdown` turns true.
pub fn start(
    seal: Arc<Seal>,
    cfgs: &[WitnessConfig],
    quorum: usize,
    metrics: Arc<WitnessMetrics>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let all_keys: Vec<VerifierKey> = cfgs
        .iter()
        .map(|c| c.keys().map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let all_keys = Arc::new(all_keys);
    let mut tasks = Vec::new();
    for (index, c) in cfgs.iter().enumerate() {
        let tls = crate::detect::sinks::client_tls(c.ca.as_deref())
            .with_context(|| format!("[[seal.witness]] {}: TLS", c.name))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_millis(c.timeout_ms))
            .https_only(true)
            .build()
            .with_context(|| format!("[[seal.witness]] {}: building the HTTP client", c.name))?;
        let client = Client {
            index,
            name: c.name.clone(),
            url: format!("{}/add-checkpoint", c.url.trim_end_matches('/')),
            keys: c.keys().map_err(|e| anyhow::anyhow!("{e}"))?,
            http,
            known: HashMap::new(),
            done: HashMap::new(),
        };
        tasks.push(tokio::spawn(run(
            client,
            seal.clone(),
            quorum,
            all_keys.clone(),
            metrics.clone(),
            shutdown.clone(),
        )));
    }
    Ok(tasks)
}

async fn run(
    mut c: Client,
    seal: Arc<Seal>,
    quorum: usize,
    all_keys: Arc<Vec<VerifierKey>>,
    metrics: Arc<WitnessMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut published = seal.subscribe();
    let mut backoff = Duration::ZERO;
    loop {
        let mut failed = false;
        for (tenant, note) in seal.checkpoints() {
            if *shutdown.borrow() {
                return;
            }
            let Ok(note) = Note::parse(note.as_bytes()) else {
                continue;
            };
            if c.done.get(&tenant).is_some_and(|t| t == note.text()) {
                continue;
            }
            let counters = metrics.counters(c.index);
            let sigs = match c.submit(&seal, &tenant, &note, counters).await {
                Ok(s) => s,
                Err(e) => {
                    failed = true;
                    if let Some(k) = counters {
                        k.failed.fetch_add(1, Relaxed);
                    }
                    if matches!(e, SubmitError::SplitView { .. }) {
                        tracing::error!(tenant = %tenant, error = %e, "witness refuses the log's checkpoint");
                    } else {
                        tracing::warn!(tenant = %tenant, error = %e, retry_in_secs = backoff.max(Duration::from_secs(1)).as_secs(), "witness submission failed");
                    }
                    continue;
                }
            };
            if let Some(k) = counters {
                k.cosigned.fetch_add(1, Relaxed);
            }
            match seal.add_cosignatures(&tenant, note.text(), &sigs).await {
                Ok(Some(merged)) => {
                    let have = witnesses_in(&merged, &all_keys);
                    tracing::info!(tenant = %tenant, witness = %c.name, cosignatures = have, "checkpoint cosigned");
                    if quorum > 0 && have == quorum {
                        metrics.quorum_reached.fetch_add(1, Relaxed);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    failed = true;
                    tracing::warn!(tenant = %tenant, error = %format!("{e:#}"), "storing the cosigned checkpoint failed");
                    continue;
                }
            }
            c.done.insert(tenant, note.text().to_owned());
        }
        backoff = if failed {
            (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF)
        } else {
            Duration::ZERO
        };
        let retry = async {
            if failed {
                tokio::time::sleep(backoff).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = published.changed() => if r.is_err() { return },
            () = retry => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Distinct witnesses (by key name) among `keys` with a signature line on `note`.
fn witnesses_in(note: &Note, keys: &[VerifierKey]) -> usize {
    let mut names: Vec<&str> = Vec::new();
    for s in &note.signatures {
        if let Some(k) = keys.iter().find(|k| k.matches(s))
            && !names.contains(&k.name().as_str())
        {
            names.push(k.name().as_str());
        }
    }
    names.len()
}

impl Client {
    fn err(&self, message: impl std::fmt::Display) -> SubmitError {
        SubmitError::Other {
            witness: self.name.clone(),
            message: message.to_string(),
        }
    }

    /// Submits `note` until the witness cosigns it or refuses for good.
    async fn submit(
        &mut self,
        seal: &Seal,
        tenant: &TenantId,
        note: &Note,
        counters: Option<&Counters>,
    ) -> Result<Vec<NoteSignature>, SubmitError> {
        let cp = Checkpoint::parse(note.text()).map_err(|e| self.err(e))?;
        let mut old = self.known.get(tenant).copied().unwrap_or(0);
        for _ in 0..=MAX_CONFLICT_RETRIES {
            if old > cp.size {
                return Err(SubmitError::SplitView {
                    witness: self.name.clone(),
                    witness_size: old,
                    size: cp.size,
                });
            }
            let proof = if old == 0 || old == cp.size {
                Vec::new()
            } else {
                seal.consistency_proof(tenant, old, cp.size)
                    .await
                    .map_err(|e| self.err(format!("{e:#}")))?
            };
            let body = AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: note.to_text(),
            }
            .encode();
            if let Some(k) = counters {
                k.submitted.fetch_add(1, Relaxed);
            }
            let (status, text) = self.post(body).await?;
            match status {
                200 => {
                    let sigs =
                        check_cosignatures(note, &text, &self.keys).map_err(|e| self.err(e))?;
                    self.known.insert(tenant.clone(), cp.size);
                    return Ok(sigs);
                }
                409 => {
                    if let Some(k) = counters {
                        k.conflicts.fetch_add(1, Relaxed);
                    }
                    let theirs = parse_conflict_size(&text).ok_or_else(|| {
                        self.err(format!("409 with a malformed size body {:?}", cut(&text)))
                    })?;
                    if theirs == old {
                        // Same size, different root.
                        self.known.remove(tenant);
                        return Err(SubmitError::SplitView {
                            witness: self.name.clone(),
                            witness_size: theirs,
                            size: cp.size,
                        });
                    }
                    self.known.insert(tenant.clone(), theirs);
                    old = theirs;
                }
                status => {
                    // Our notion of the witness's size may be wrong: relearn it from a 409.
                    self.known.remove(tenant);
                    return Err(SubmitError::Refused {
                        witness: self.name.clone(),
                        status,
                        body: cut(&text),
                    });
                }
            }
        }
        Err(self.err("the witness kept answering 409 with a changing size"))
    }

    async fn post(&self, body: Vec<u8>) -> Result<(u16, String), SubmitError> {
        let transport = |e: &dyn std::fmt::Display| SubmitError::Transport {
            witness: self.name.clone(),
            message: e.to_string(),
        };
        let mut resp = self
            .http
            .post(&self.url)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport(&e))? {
            if bytes.len() + chunk.len() > MAX_RESPONSE {
                return Err(transport(&format!(
                    "response body larger than {MAX_RESPONSE} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(bytes).map_err(|_| transport(&"response is not UTF-8"))?;
        Ok((status, text))
    }
}

fn cut(s: &str) -> String {
    let t = s.trim_end();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_owned(),
    }
}
