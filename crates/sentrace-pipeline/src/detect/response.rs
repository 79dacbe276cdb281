//! Automated response in the server: the policy, the actions in force per tenant, the
//! append-only audit log, the undo file and the quarantine.
//!
//! Files under `<data-dir>/responses/` (mode 0600, append-only):
//!
//! - `audit/<tenant>.journal`: the audit log, encrypted under the tenant's data key
//!   ([`super::response_audit`]): one [`AuditRecord`] per event, `applied` when the server
//!   puts an action in force (written before it takes effect), `undone` when it was lifted.
//!   Records hold ids, rule names, trace ids and targets, never span values.
//! - `undo.jsonl`: the ids `sentrace response undo` lifted, one [`UndoRecord`] a line (an
//!   action id and a time: no tenant, rule or target; ids are opaque hashes). The server
//!   checks the file's inode, size and mtime on every batch (as it does for the token file),
//!   re-reads it when it changed and records an `undone` event in the tenant's audit
//!   journal for each newly lifted id (the server is the journals' only writer).
//!
//! The server writes audit records through a writer thread with group commit: an action is
//! put in force in memory when its record is queued, and taken back if the record cannot
//! be written. Nothing it affects leaves the server before the record is durable: the ingest
//! pipeline awaits [`ResponseState::wait_since`] before it stores a batch (tagged by the
//! action) or answers one (spans set aside by it), and fails the batch if an audit or
//! quarantine write failed. `undo` appends and fsyncs before it returns. On start the
//! server replays the audit journals minus `undo.jsonl`, so actions survive restarts.
//!
//! Quarantined spans (raw, as received) are kept in `quarantine/<tenant>.journal`, an
//! encrypted journal under the tenant's data key ([`sentrace_store::Journal`]) written by its
//! own writer thread ([`sentrace_store::JournalWriter`]), durable before the sender is told
//! they were set aside; a restart keeps them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use sentrace_core::proto::trace::v1::ResourceSpans;
use sentrace_core::{Batch, StageError, TenantId};
use sentrace_detect::Finding;
use sentrace_detect::enforce::ActiveResponses;
use sentrace_detect::response::{Action, PlannedAction, ResponsePolicy};
use sentrace_store::KeyRing;

use super::config::ResponseConfig;
use super::response_audit::{append_line, read_lines};
use sentrace_store::group_commit::{Mark, WaitError};
use sentrace_store::{Journal, JournalWriter};

/// The responses directory of a data directory.
pub fn responses_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("responses")
}

/// One audit log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditRecord {
    /// The server put an action in force.
    Applied {
        /// When, Unix ns.
        time_unix_nanos: u64,
        /// The tenant whose finding triggered it.
        tenant: TenantId,
        /// The action, with its id, rule and finding.
        #[serde(flatten)]
        planned: PlannedAction,
    },
    /// An operator lifted an action.
    Undone {
        /// When, Unix ns.
        time_unix_nanos: u64,
        /// The action id.
        id: String,
        /// Who asked (`cli`).
        by: String,
    },
}

/// One line of `undo.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UndoRecord {
    /// The lifted action id.
    pub id: String,
    /// When, Unix ns.
    pub time_unix_nanos: u64,
}

/// Reads the audit log of a responses directory (decrypting each tenant's journal with
/// `keys`), each record with its tenant, oldest first.
pub fn read_audit(
    dir: &Path,
    keys: Arc<KeyRing>,
) -> anyhow::Result<super::response_audit::AuditLog> {
    super::response_audit::read_all(dir, keys)
}

/// Reads the undo file of a responses directory.
pub fn read_undo(dir: &Path) -> anyhow::Result<Vec<UndoRecord>> {
    read_lines(&dir.join("undo.jsonl"))
}

/// Lifts an action (what `sentrace response undo` does): appends to the undo file. The
/// running server picks it up on its next batch (a stopped one on its start) and records
/// the `undone` event in the tenant's audit journal.
pub fn undo(dir: &Path, id: &str, now_unix_nanos: u64) -> anyhow::Result<()> {
    append_line(
        &dir.join("undo.jsonl"),
        &UndoRecord {
            id: id.to_string(),
            time_unix_nanos: now_unix_nanos,
        },
    )
}

/// What [`ResponseState::undo_for`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndoOutcome {
    /// The action was lifted now.
    Undone,
    /// It had been lifted before.
    AlreadyUndone,
    /// The tenant has no action with that id.
    Unknown,
}

/// Where an action stands.
pub fn status(p: &PlannedAction, undone: &HashSet<String>, now: u64) -> &'static str {
    if undone.contains(&p.id) {
        return "undone";
    }
    match &p.action {
        Action::Quarantine {
            until_unix_nanos, ..
        }
        | Action::KeepSource {
            until_unix_nanos, ..
        }
        | Action::Throttle {
            until_unix_nanos, ..
        } => {
            if *until_unix_nanos > now {
                "active"
            } else {
                "expired"
            }
        }
        Action::TagTrace { .. } | Action::Webhook { .. } => "done",
    }
}

/// An action's containment key (kind and target), for actions that last.
fn shape(a: &Action) -> Option<(String, u64)> {
    match a {
        Action::Quarantine {
            target,
            until_unix_nanos,
        } => Some((format!("quarantine:{target:?}"), *until_unix_nanos)),
        Action::KeepSource {
            target,
            until_unix_nanos,
        } => Some((format!("keep:{target:?}"), *until_unix_nanos)),
        Action::Throttle {
            target,
            rate_per_sec,
            until_unix_nanos,
        } => Some((
            format!("throttle:{rate_per_sec}:{target:?}"),
            *until_unix_nanos,
        )),
        Action::TagTrace { .. } | Action::Webhook { .. } => None,
    }
}

#[derive(Default)]
struct Inner {
    /// Applied actions, in order.
    records: Vec<(TenantId, u64, PlannedAction)>,
    undone: HashSet<String>,
    /// Lifted ids whose `undone` event is in the audit journal.
    audited_undos: HashSet<String>,
    active: HashMap<TenantId, ActiveResponses>,
    /// Lasting actions in force: (tenant, shape) → until.
    in_force: HashMap<(TenantId, String), u64>,
    undo_stamp: Option<(u64, u64, i64, i64)>,
    /// Sharing a bucket: quarantines other nodes put in force, and the ids they lifted
    /// (see [`shared`]).
    peers: shared::PeerActions,
}

impl Inner {
    fn rebuild(&mut self) {
        self.active.clear();
        self.in_force.clear();
        let peer = self
            .peers
            .records
            .iter()
            .map(|(_, t, time, p)| (t, time, p));
        for (tenant, _, p) in self
            .records
            .iter()
            .map(|(t, time, p)| (t, time, p))
            .chain(peer)
        {
            if self.undone.contains(&p.id) || self.peers.undone.contains_key(&p.id) {
                continue;
            }
            self.active
                .entry(tenant.clone())
                .or_default()
                .apply(std::slice::from_ref(p));
            if let Some((k, until)) = shape(&p.action) {
                let e = self.in_force.entry((tenant.clone(), k)).or_insert(0);
                *e = (*e).max(until);
            }
        }
    }
}

struct Bucket {
    tokens: f64,
    last: u64,
}

/// Response counters.
#[derive(Default)]
struct Counters {
    applied: AtomicU64,
    audit_failures: AtomicU64,
    quarantined: AtomicU64,
    quarantine_evicted: AtomicU64,
    throttled_batches: AtomicU64,
    kept_spans: AtomicU64,
    undone: AtomicU64,
}

/// The response side of the detect runtime.
pub struct ResponseState {
    policy: ResponsePolicy,
    dir: PathBuf,
    inner: Arc<RwLock<Inner>>,
    audit: JournalWriter,
    quarantine_cap: usize,
    quarantine: Mutex<HashMap<TenantId, Quarantine>>,
    journal: Option<JournalWriter>,
    buckets: Mutex<HashMap<(TenantId, String), Bucket>>,
    counters: Arc<Counters>,
}

fn undo_stamp(path: &Path) -> Option<(u64, u64, i64, i64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

fn span_count(rs: &ResourceSpans) -> usize {
    rs.scope_spans.iter().map(|s| s.spans.len()).sum()
}

/// One tenant's quarantine: requests' resource spans, their span count, and how many
/// records its journal holds (compacted once it is twice the ring's length).
#[derive(Default)]
struct Quarantine {
    ring: VecDeque<ResourceSpans>,
    spans: usize,
    journaled: usize,
}

fn load_quarantine(journal: &Journal, cap: usize) -> anyhow::Result<HashMap<TenantId, Quarantine>> {
    use prost::Message;
    let mut out = HashMap::new();
    for tenant in journal.tenants()? {
        let loaded = journal.load(&tenant)?;
        for (offset, why) in &loaded.damaged {
            tracing::error!(tenant = %tenant, offset, reason = %why, "quarantine journal: damaged record skipped");
        }
        let mut q = Quarantine {
            journaled: loaded.records.len(),
            ..Default::default()
        };
        for rec in &loaded.records {
            match ResourceSpans::decode(rec.as_slice()) {
                Ok(rs) => {
                    q.spans += span_count(&rs);
                    q.ring.push_back(rs);
                }
                Err(e) => {
                    tracing::error!(tenant = %tenant, error = %e, "quarantine journal: undecodable record skipped")
                }
            }
        }
        // The bound applies on load too (records evicted before the last compaction).
        while q.spans > cap {
            let Some(old) = q.ring.pop_front() else { break };
            q.spans = q.spans.saturating_sub(span_count(&old));
        }
        out.insert(tenant, q);
    }
    Ok(out)
}

impl ResponseState {
    /// Loads the policy, moves a plaintext audit log of an earlier version into the
    /// encrypted journals, replays the audit journals of `data_dir/responses/` and opens the
    /// encrypted quarantine journal there.
    pub fn open(cfg: &ResponseConfig, data_dir: &Path, keys: Arc<KeyRing>) -> anyhow::Result<Self> {
        let policy = match &cfg.policy {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading response policy {}", p.display()))?;
                ResponsePolicy::from_toml(&p.display().to_string(), &text)?
            }
            None => ResponsePolicy::default_policy()?,
        };
        let dir = responses_dir(data_dir);
        let audit_journal = super::response_audit::open_journal(&dir, keys.clone())?;
        super::response_audit::migrate_legacy(&dir, &audit_journal)
            .context("moving the plaintext response audit log into the encrypted journals")?;
        let mut inner = Inner::default();
        for (tenant, r) in super::response_audit::read_journal(&audit_journal)? {
            match r {
                AuditRecord::Applied {
                    time_unix_nanos,
                    planned,
                    ..
                } => inner.records.push((tenant, time_unix_nanos, planned)),
                AuditRecord::Undone { id, .. } => {
                    inner.audited_undos.insert(id);
                }
            }
        }
        let undo_path = dir.join("undo.jsonl");
        inner.undo_stamp = undo_stamp(&undo_path);
        let undos = read_undo(&dir)?;
        inner.undone = undos.iter().map(|u| u.id.clone()).collect();
        inner.rebuild();
        let (journal, quarantine) = {
            let j = Journal::open(&dir.join("quarantine"), "quarantine", keys)
                .context("opening the quarantine journal")?;
            let q = load_quarantine(&j, cfg.max_quarantined_spans_per_tenant)
                .context("loading the quarantine journal")?;
            let w = JournalWriter::start(j).context("starting the quarantine journal")?;
            (Some(w), q)
        };
        let audit =
            JournalWriter::start(audit_journal).context("starting the response audit writer")?;
        // Lifts made while no server ran: their `undone` events.
        let missing = audit_undos(&mut inner, &undos, "cli");
        for (tenant, payload) in missing {
            audit
                .append_wait(&tenant, vec![payload])
                .context("recording a lifted action in the response audit journal")?;
        }
        Ok(Self {
            policy,
            dir,
            inner: Arc::new(RwLock::new(inner)),
            audit,
            quarantine_cap: cfg.max_quarantined_spans_per_tenant,
            quarantine: Mutex::new(quarantine),
            journal,
            buckets: Mutex::new(HashMap::new()),
            counters: Arc::new(Counters::default()),
        })
    }

    /// Lifts `tenant`'s action `id` on behalf of `by` (a principal, for the response audit
    /// log): appends to the undo file and the audit log (fsynced), then rebuilds the
    /// actions in force, so it takes effect for the next batch. Blocking file I/O: call it
    /// off the async workers. An action of another tenant is [`UndoOutcome::Unknown`].
    pub fn undo_for(
        &self,
        tenant: &TenantId,
        id: &str,
        by: &str,
        now_unix_nanos: u64,
    ) -> anyhow::Result<UndoOutcome> {
        {
            let g = self
                .inner
                .read()
                .map_err(|_| anyhow::anyhow!("response state lock poisoned"))?;
            if !g.records.iter().any(|(t, _, p)| t == tenant && p.id == id)
                && !g.peers.knows(tenant, id)
            {
                return Ok(UndoOutcome::Unknown);
            }
            if g.undone.contains(id) {
                return Ok(UndoOutcome::AlreadyUndone);
            }
        }
        append_line(
            &self.dir.join("undo.jsonl"),
            &UndoRecord {
                id: id.to_string(),
                time_unix_nanos: now_unix_nanos,
            },
        )?;
        let rec = serde_json::to_vec(&AuditRecord::Undone {
            time_unix_nanos: now_unix_nanos,
            id: id.to_string(),
            by: by.to_string(),
        })?;
        self.audit
            .append_wait(tenant, vec![rec])
            .context("recording the lift in the response audit journal")?;
        if let Ok(mut g) = self.inner.write() {
            g.audited_undos.insert(id.to_string());
        }
        self.refresh_undo();
        Ok(UndoOutcome::Undone)
    }

    /// Re-reads the undo file if it changed since the last look.
    pub fn refresh_undo(&self) {
        let path = self.dir.join("undo.jsonl");
        let now = undo_stamp(&path);
        let stale = self
            .inner
            .read()
            .map(|g| g.undo_stamp != now)
            .unwrap_or(false);
        if !stale {
            return;
        }
        match read_undo(&self.dir) {
            Ok(list) => {
                if let Ok(mut g) = self.inner.write() {
                    g.undo_stamp = now;
                    let before = g.undone.len();
                    g.undone = list.iter().map(|u| u.id.clone()).collect();
                    for (tenant, payload) in audit_undos(&mut g, &list, "cli") {
                        if let Err(e) = self.audit.append(&tenant, vec![payload], None) {
                            tracing::error!(tenant = %tenant, error = %e, "recording a lifted action in the response audit journal failed");
                        }
                    }
                    let lifted = g.undone.len().saturating_sub(before);
                    self.counters.undone.fetch_add(lifted as u64, Relaxed);
                    g.rebuild();
                    tracing::info!(lifted, "response undo file changed; actions rebuilt");
                }
            }
            Err(e) => tracing::error!(error = %e, "undo file unreadable; keeping actions"),
        }
    }

    /// Evaluates the policy on a finding; audits then applies each new action. Returns the
    /// actions put in force (an action whose kind and target is already in force is skipped).
    pub fn on_finding(&self, f: &Finding, now: u64) -> Vec<PlannedAction> {
        let planned = self.policy.evaluate(f, now);
        if planned.is_empty() {
            return planned;
        }
        let Ok(mut g) = self.inner.write() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in planned {
            if let Some((k, _)) = shape(&p.action)
                && g.in_force
                    .get(&(f.tenant.clone(), k))
                    .is_some_and(|u| *u > now)
            {
                continue;
            }
            let rec = AuditRecord::Applied {
                time_unix_nanos: now,
                tenant: f.tenant.clone(),
                planned: p.clone(),
            };
            // Audit first: the record is queued before the action is put in force, and a
            // record that cannot be written takes the action back (see the module docs).
            let line = match serde_json::to_vec(&rec) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, action = %p.id, "audit record unencodable; action not applied");
                    self.counters.audit_failures.fetch_add(1, Relaxed);
                    continue;
                }
            };
            if let Err(e) = self
                .audit
                .append(&f.tenant, vec![line], Some(self.take_back(&p.id)))
            {
                tracing::error!(error = %e, action = %p.id, "audit log write not queued; action not applied");
                self.counters.audit_failures.fetch_add(1, Relaxed);
                continue;
            }
            self.counters.applied.fetch_add(1, Relaxed);
            tracing::info!(action = %p.id, rule = %p.response_rule, finding = %p.finding_uid, "response action applied");
            g.active
                .entry(f.tenant.clone())
                .or_default()
                .apply(std::slice::from_ref(&p));
            if let Some((k, until)) = shape(&p.action) {
                let e = g.in_force.entry((f.tenant.clone(), k)).or_insert(0);
                *e = (*e).max(until);
            }
            g.records.push((f.tenant.clone(), now, p.clone()));
            out.push(p);
        }
        out
    }

    /// The writer-thread callback of an audit line: if it could not be written, the action
    /// is taken back (it never took effect outside the server: see the module docs).
    fn take_back(&self, id: &str) -> sentrace_store::group_commit::Done {
        let (inner, counters, id) = (self.inner.clone(), self.counters.clone(), id.to_string());
        Box::new(move |r| {
            let Err(e) = r else { return };
            tracing::error!(error = %e, action = %id, "audit log write failed; action taken back");
            counters.audit_failures.fetch_add(1, Relaxed);
            counters.applied.fetch_sub(1, Relaxed);
            if let Ok(mut g) = inner.write() {
                g.records.retain(|(_, _, p)| p.id != id);
                g.rebuild();
            }
        })
    }

    /// Where the audit and quarantine writers are now: take it before a batch runs.
    pub fn mark(&self) -> (Mark, Option<Mark>) {
        (
            self.audit.mark(),
            self.journal.as_ref().map(JournalWriter::mark),
        )
    }

    /// Waits until every audit line and quarantined span queued so far is durable; fails
    /// when a write failed since `mark` (the batch must not be stored or acknowledged).
    pub async fn wait_since(&self, mark: (Mark, Option<Mark>)) -> Result<(), WaitError> {
        self.audit.wait_since(mark.0).await?;
        if let (Some(j), Some(m)) = (&self.journal, mark.1) {
            j.wait_since(m).await?;
        }
        Ok(())
    }

    /// Blocks until everything queued so far was processed (tests and tools, off the async
    /// runtime).
    pub fn flush(&self) -> Result<(), sentrace_store::StoreError> {
        self.audit.flush()?;
        if let Some(j) = &self.journal {
            j.flush()?;
        }
        Ok(())
    }

    /// Enforces the tenant's actions on a batch: quarantined spans move to the quarantine
    /// (reported as rejected, with a warning), throttled sources beyond their rate get
    /// `Exhausted`, spans of kept sources get `sentrace.sampling.keep = true`.
    pub fn enforce(&self, batch: &mut Batch, now: u64) -> Result<(), StageError> {
        self.refresh_undo();
        let tenant = batch.context.identity.tenant.clone();
        let e = {
            let Ok(g) = self.inner.read() else {
                return Ok(());
            };
            let Some(active) = g.active.get(&tenant) else {
                return Ok(());
            };
            active.enforce(
                &mut batch.resource_spans,
                &batch.context.identity.principal,
                now,
            )
        };
        if let Some(rate) = e.throttle_per_sec {
            let key = (tenant.clone(), batch.context.identity.principal.clone());
            let cost = (batch.span_count() + e.quarantined_spans) as f64;
            let mut b = self
                .buckets
                .lock()
                .map_err(|_| StageError::Internal("throttle lock".into()))?;
            let bucket = b.entry(key).or_insert(Bucket {
                tokens: f64::from(rate),
                last: now,
            });
            let elapsed = now.saturating_sub(bucket.last) as f64 / 1e9;
            bucket.tokens = (bucket.tokens + elapsed * f64::from(rate)).min(f64::from(rate.max(1)));
            bucket.last = now;
            if bucket.tokens < cost {
                self.counters.throttled_batches.fetch_add(1, Relaxed);
                return Err(StageError::Exhausted {
                    message: format!(
                        "this source is throttled to {rate} spans/s by a response action"
                    ),
                    retry_after: Duration::from_secs(1),
                });
            }
            bucket.tokens -= cost;
        }
        if !e.keep_traces.is_empty() {
            let keep: HashSet<&str> = e.keep_traces.iter().map(String::as_str).collect();
            let n = super::stage::tag_spans(
                &mut batch.resource_spans,
                |trace_hex, _| keep.contains(trace_hex),
                &[("sentrace.sampling.keep", "true")],
                true,
            );
            self.counters.kept_spans.fetch_add(n as u64, Relaxed);
        }
        if e.quarantined_spans > 0 {
            let n = e.quarantined_spans;
            self.keep_aside(&tenant, e.quarantined)?;
            batch.context.rejected_spans = batch.context.rejected_spans.saturating_add(n as u64);
            batch.context.warnings.push(format!(
                "{n} span(s) set aside: their source is quarantined by a response action"
            ));
            self.counters.quarantined.fetch_add(n as u64, Relaxed);
        }
        Ok(())
    }

    /// Puts quarantined resource spans aside: journaled (encrypted, fsynced) first, so the
    /// sender is only told they were set aside once they are durable; a failed write fails
    /// the request (the sender retries) instead of losing spans. Beyond the bound the
    /// oldest go, counted in `quarantine_evicted_spans`.
    fn keep_aside(&self, tenant: &TenantId, spans: Vec<ResourceSpans>) -> Result<(), StageError> {
        use prost::Message;
        let mut q = self
            .quarantine
            .lock()
            .map_err(|_| StageError::Internal("quarantine lock".into()))?;
        let q = q.entry(tenant.clone()).or_default();
        if let Some(j) = &self.journal {
            // Queued, not yet durable: the pipeline awaits `wait_since` before it tells the
            // sender the spans were set aside, and fails the batch if the write failed.
            let recs: Vec<Vec<u8>> = spans.iter().map(Message::encode_to_vec).collect();
            let n = recs.len();
            let t = tenant.clone();
            j.append(
                tenant,
                recs,
                Some(Box::new(move |r| {
                    if let Err(e) = r {
                        tracing::error!(tenant = %t, error = %e, "quarantine journal write failed");
                    }
                })),
            )
            .map_err(|e| {
                tracing::error!(tenant = %tenant, error = %e, "quarantine journal write not queued");
                StageError::Internal(format!("quarantine journal: {e}"))
            })?;
            q.journaled = q.journaled.saturating_add(n);
        }
        for rs in spans {
            q.spans += span_count(&rs);
            q.ring.push_back(rs);
        }
        while q.spans > self.quarantine_cap {
            let Some(old) = q.ring.pop_front() else { break };
            let k = span_count(&old);
            q.spans = q.spans.saturating_sub(k);
            self.counters
                .quarantine_evicted
                .fetch_add(k as u64, Relaxed);
        }
        if let Some(j) = &self.journal
            && q.journaled > q.ring.len().saturating_mul(2).saturating_add(16)
        {
            let recs: Vec<Vec<u8>> = q.ring.iter().map(Message::encode_to_vec).collect();
            let n = recs.len();
            let t = tenant.clone();
            let done: sentrace_store::group_commit::Done = Box::new(move |r| {
                if let Err(e) = r {
                    tracing::error!(tenant = %t, error = %e, "quarantine journal compaction failed");
                }
            });
            match j.rewrite(tenant, recs, Some(done)) {
                Ok(()) => q.journaled = n,
                Err(e) => {
                    tracing::error!(tenant = %tenant, error = %e, "quarantine journal compaction not queued")
                }
            }
        }
        Ok(())
    }

    /// The tenant's actions with their status, newest first.
    pub fn list(&self, tenant: &TenantId, now: u64) -> Vec<serde_json::Value> {
        let Ok(g) = self.inner.read() else {
            return Vec::new();
        };
        g.records
            .iter()
            .rev()
            .filter(|(t, _, _)| t == tenant)
            .map(|(_, time, p)| (g.peers.own_node.as_deref(), time, p))
            .chain(g.peers.listed(tenant))
            .map(|(node, time, p)| {
                let mut v = serde_json::json!({
                    "id": p.id,
                    "time_unix_nanos": time,
                    "response_rule": p.response_rule,
                    "finding_uid": p.finding_uid,
                    "action": p.action,
                    "status": status(p, &g.undone, now),
                });
                if let Some(n) = node {
                    v["node"] = serde_json::Value::from(n);
                }
                if g.peers.undone.contains_key(&p.id) {
                    v["status"] = serde_json::Value::from("undone");
                }
                v
            })
            .collect()
    }

    /// The tenant's quarantined spans (as received) and their count.
    pub fn quarantined(&self, tenant: &TenantId) -> (Vec<ResourceSpans>, usize) {
        self.quarantine
            .lock()
            .ok()
            .and_then(|q| {
                q.get(tenant)
                    .map(|q| (q.ring.iter().cloned().collect(), q.spans))
            })
            .unwrap_or_default()
    }

    /// The response families for `/metrics`.
    pub fn encode_metrics(&self, e: &mut crate::metrics::export::Encoder<'_>) -> std::fmt::Result {
        encode_counters(&self.counters, e)
    }

    /// The response families alone, as exposition text (tests).
    #[cfg(test)]
    pub(crate) fn render_metrics(&self) -> String {
        let c = self.counters.clone();
        crate::metrics::export::render(move |e| encode_counters(&c, e))
    }
}

/// The `undone` events to record for lifted ids that have none yet (each with the tenant
/// of its action; an id of no known action is skipped), marking them recorded.
fn audit_undos(g: &mut Inner, undos: &[UndoRecord], by: &str) -> Vec<(TenantId, Vec<u8>)> {
    let mut out = Vec::new();
    for u in undos {
        if g.audited_undos.contains(&u.id) {
            continue;
        }
        let Some(tenant) = g
            .records
            .iter()
            .find(|(_, _, p)| p.id == u.id)
            .map(|(t, _, _)| t.clone())
        else {
            continue;
        };
        let rec = AuditRecord::Undone {
            time_unix_nanos: u.time_unix_nanos,
            id: u.id.clone(),
            by: by.to_string(),
        };
        if let Ok(payload) = serde_json::to_vec(&rec) {
            g.audited_undos.insert(u.id.clone());
            out.push((tenant, payload));
        }
    }
    out
}

fn encode_counters(c: &Counters, e: &mut crate::metrics::export::Encoder<'_>) -> std::fmt::Result {
    crate::metrics::export::counters(
        e,
        "sentrace_response_events",
        "Response actions and their effects.",
        [
            ("applied", &c.applied),
            ("audit_failed", &c.audit_failures),
            ("undone", &c.undone),
            ("quarantined_spans", &c.quarantined),
            ("quarantine_evicted_spans", &c.quarantine_evicted),
            ("throttled_batches", &c.throttled_batches),
            ("kept_spans", &c.kept_spans),
        ]
        .map(|(what, v)| ([("event", what)], v.load(Relaxed))),
    )
}

#[path = "response_shared.rs"]
pub mod shared;

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
