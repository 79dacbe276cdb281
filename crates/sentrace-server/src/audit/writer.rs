//! The audit writer thread: group commit for audit records.
//!
//! Every [`super::AuditLog::record`] queues its record here and waits. The thread takes
//! whatever is queued (up to [`MAX_GROUP`] records), appends each log's share with one
//! write and one `fdatasync`, extends the log's Merkle tree, and only then answers each
//! waiting read: concurrent reads share fsyncs, and no file I/O runs on the async
//! runtime's workers. Checkpoints are signed here too, on the seal's cadence, so the
//! tree state has a single owner.
//!
//! A log is loaded on first use: its records are hashed into a compact range and checked
//! against its latest signed checkpoint. A log whose records do not reproduce that
//! checkpoint (records deleted or altered while the server was down), or whose sequence
//! numbers are not its indexes, is refused: every record for it fails (the read gets 503)
//! until an operator runs `sentrace verify` and repairs it. Fail closed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use sentrace_ledger::checkpoint::{Checkpoint, CheckpointPolicy, LogSigner, open_checkpoint};
use sentrace_ledger::log::CheckpointCadence;
use sentrace_ledger::merkle::{CompactRange, leaf_hash};
use tokio::sync::{mpsc, oneshot};

use super::files::{AuditFiles, LogName};
use super::{AuditError, AuditReceipt};

/// The most records committed by one group.
pub const MAX_GROUP: usize = 1024;

/// Where a record's receipt (or its failure) goes.
type Reply = oneshot::Sender<Result<AuditReceipt, AuditError>>;

/// A request to the writer.
pub(crate) enum Job {
    /// Append one record (its JSON) to `log`.
    Append {
        log: LogName,
        payload: Vec<u8>,
        reply: Reply,
    },
    /// Sign checkpoints: those due (`force`: every log that grew).
    Checkpoint {
        force: bool,
        reply: Option<oneshot::Sender<Result<(), AuditError>>>,
    },
}

/// Counters of the writer (node-wide, no tenant names).
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Records made durable.
    pub records: AtomicU64,
    /// Group commits (one write and one fdatasync per log in the group).
    pub commits: AtomicU64,
    /// Records that failed (their reads got 503).
    pub failures: AtomicU64,
    /// Checkpoints signed and written.
    pub checkpoints: AtomicU64,
}

impl AuditStats {
    /// The audit writer's families for `/metrics`.
    pub fn encode_metrics(
        &self,
        e: &mut sentrace_pipeline::metrics::export::Encoder<'_>,
    ) -> std::fmt::Result {
        for (name, help, v) in [
            (
                "sentrace_audit_records",
                "Audit records made durable.",
                &self.records,
            ),
            (
                "sentrace_audit_commits",
                "Audit group commits (one fdatasync per log each).",
                &self.commits,
            ),
            (
                "sentrace_audit_failures",
                "Audit records that could not be written (their requests failed with 503).",
                &self.failures,
            ),
            (
                "sentrace_audit_checkpoints",
                "Audit log checkpoints signed and written.",
                &self.checkpoints,
            ),
        ] {
            sentrace_pipeline::metrics::export::counter(e, name, help, v.load(Relaxed))?;
        }
        Ok(())
    }
}

struct LogState {
    origin: sentrace_ledger::checkpoint::Origin,
    range: CompactRange,
    /// The size of the latest signed checkpoint written.
    checkpointed: u64,
    checkpointed_at: u64,
}

pub(crate) struct Writer {
    files: Arc<AuditFiles>,
    node: String,
    signer: LogSigner,
    cadence: CheckpointCadence,
    logs: HashMap<LogName, LogState>,
    stats: Arc<AuditStats>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Writer {
    pub(crate) fn new(
        files: Arc<AuditFiles>,
        node: String,
        signer: LogSigner,
        cadence: CheckpointCadence,
        stats: Arc<AuditStats>,
    ) -> Self {
        Self {
            files,
            node,
            signer,
            cadence,
            logs: HashMap::new(),
            stats,
        }
    }

    /// Loads every existing log (errors are logged; such a log refuses records).
    pub(crate) fn load_all(&mut self) {
        let logs = match self.files.logs() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "listing audit logs failed");
                return;
            }
        };
        for log in logs {
            if let Err(e) = self.state(&log) {
                tracing::error!(log = %log, error = %e, "audit log refused: reads of this tenant fail (503) until it is repaired; run `sentrace verify`");
            }
        }
    }

    /// Runs until every sender is gone, then signs the final checkpoints.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let mut groups: BTreeMap<LogName, Vec<(Vec<u8>, oneshot::Sender<_>)>> = BTreeMap::new();
            let mut checkpoints = Vec::new();
            for j in jobs {
                match j {
                    Job::Append {
                        log,
                        payload,
                        reply,
                    } => groups.entry(log).or_default().push((payload, reply)),
                    Job::Checkpoint { force, reply } => checkpoints.push((force, reply)),
                }
            }
            for (log, items) in groups {
                self.commit(&log, items);
            }
            for (force, reply) in checkpoints {
                let r = self.checkpoint(force);
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                } else if let Err(e) = r {
                    tracing::warn!(error = %e, "signing audit checkpoints failed; will retry");
                }
            }
        }
        if let Err(e) = self.checkpoint(true) {
            tracing::error!(error = %e, "signing the final audit checkpoints failed");
        }
    }

    fn commit(&mut self, log: &LogName, items: Vec<(Vec<u8>, Reply)>) {
        let (payloads, replies): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        let stats = self.stats.clone();
        let fail = |replies: Vec<Reply>, e: &AuditError| {
            stats.failures.fetch_add(replies.len() as u64, Relaxed);
            for r in replies {
                let _ = r.send(Err(AuditError(e.0.clone())));
            }
        };
        if let Err(e) = self.state(log) {
            return fail(replies, &e);
        }
        let stored = match self.files.append(log, &payloads) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(log = %log, error = %e, "audit write failed: the reads waiting on it fail");
                // The journal cut what it wrote; reload the tree from the file next time.
                self.logs.remove(log);
                return fail(replies, &AuditError(e.to_string()));
            }
        };
        self.stats.commits.fetch_add(1, Relaxed);
        let mut replies = replies.into_iter();
        let mut broken = None;
        if let Some(state) = self.logs.get_mut(log) {
            let origin = state.origin.to_string();
            for rec in &stored {
                let Some(reply) = replies.next() else { break };
                if rec.seq != state.range.size() {
                    let e = AuditError(format!(
                        "audit log {log}: record stored with sequence {} at index {}",
                        rec.seq,
                        state.range.size()
                    ));
                    let _ = reply.send(Err(AuditError(e.0.clone())));
                    broken = Some(e);
                    break;
                }
                state.range.push_hash(leaf_hash(&rec.bytes));
                self.stats.records.fetch_add(1, Relaxed);
                let _ = reply.send(Ok(AuditReceipt {
                    origin: origin.clone(),
                    index: rec.seq,
                }));
            }
        } else {
            broken = Some(AuditError("audit log state lost".into()));
        }
        if let Some(e) = broken {
            tracing::error!(log = %log, error = %e, "audit log state out of step with its file; reloading");
            self.logs.remove(log);
            fail(replies.collect(), &e);
        }
    }

    /// The log's state, loading (and checking) it on first use.
    fn state(&mut self, log: &LogName) -> Result<&mut LogState, AuditError> {
        if !self.logs.contains_key(log) {
            let s = self.load(log)?;
            self.logs.insert(log.clone(), s);
        }
        self.logs
            .get_mut(log)
            .ok_or_else(|| AuditError("audit log state lost".into()))
    }

    fn load(&self, log: &LogName) -> Result<LogState, AuditError> {
        let origin = log
            .origin(&self.node)
            .map_err(|e| AuditError(format!("audit log {log} origin: {e}")))?;
        let checkpoint = match self
            .files
            .read_checkpoint(log)
            .map_err(|e| AuditError(e.to_string()))?
        {
            Some(bytes) => {
                let mut policy = CheckpointPolicy::new(self.signer.verifier());
                policy.origin = Some(origin.clone());
                let v = open_checkpoint(&bytes, &policy).map_err(|e| {
                    AuditError(format!(
                        "audit log {log}: its checkpoint does not verify with this node's key ({e}); run `sentrace verify`"
                    ))
                })?;
                Some(v.checkpoint)
            }
            None => None,
        };
        let stored = self
            .files
            .stored(log)
            .map_err(|e| AuditError(e.to_string()))?;
        let mut range = CompactRange::new();
        let mut root_at_checkpoint = None;
        for r in &stored.records {
            if let Some(cp) = &checkpoint
                && range.size() == cp.size
            {
                root_at_checkpoint = Some(range.root());
            }
            if r.seq != range.size() {
                return Err(AuditError(format!(
                    "audit log {log}: record at index {} has sequence {} (deleted or reordered records); run `sentrace verify`",
                    range.size(),
                    r.seq
                )));
            }
            range.push_hash(leaf_hash(&r.bytes));
        }
        if let Some(cp) = &checkpoint {
            if range.size() == cp.size {
                root_at_checkpoint = Some(range.root());
            }
            if root_at_checkpoint != Some(cp.root) {
                return Err(AuditError(format!(
                    "audit log {log}: its {} records do not reproduce its signed checkpoint of size {} (records deleted or altered); run `sentrace verify`",
                    range.size(),
                    cp.size
                )));
            }
        }
        let checkpointed = checkpoint.as_ref().map_or(0, |c| c.size);
        Ok(LogState {
            origin,
            range,
            checkpointed,
            checkpointed_at: now_secs(),
        })
    }

    /// Signs and writes a checkpoint for every log that grew and is due (`force`: every
    /// log that grew, or that has no checkpoint yet).
    fn checkpoint(&mut self, force: bool) -> Result<(), AuditError> {
        let now = now_secs();
        let mut first_err = None;
        for (log, s) in &mut self.logs {
            let size = s.range.size();
            let due = if force {
                size > s.checkpointed || !self.files.checkpoint_path(log).exists()
            } else {
                self.cadence
                    .due(s.checkpointed, s.checkpointed_at, size, now)
            };
            if !due {
                continue;
            }
            let body = Checkpoint::new(s.origin.clone(), size, s.range.root());
            let r = self
                .signer
                .sign(&body, now)
                .map_err(|e| AuditError(format!("signing audit log {log}'s checkpoint: {e}")))
                .and_then(|note| {
                    self.files
                        .write_checkpoint(log, &note.to_text())
                        .map_err(|e| AuditError(e.to_string()))
                });
            match r {
                Ok(()) => {
                    self.stats.checkpoints.fetch_add(1, Relaxed);
                    s.checkpointed = size;
                    s.checkpointed_at = now;
                }
                Err(e) => {
                    tracing::warn!(log = %log, error = %e, "audit checkpoint not written");
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
