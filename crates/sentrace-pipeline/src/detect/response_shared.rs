//! Quarantines shared by the nodes of one bucket, with no coordinator.
//!
//! Each node's audit journal and `undo.jsonl` stay the durable record of what it decided.
//! On every peer refresh ([`crate::detect::shared`]) a node publishes, per tenant, a
//! snapshot of ([`Snapshot`], kind [`KIND`], sealed under the tenant's data key by
//! [`sentrace_store::SharedState`]):
//!
//! - the quarantines it put in force that are still running (newest
//!   [`MAX_SHARED_ACTIONS`]);
//! - the ids it lifted (through its API or CLI) of quarantines still running, its own or
//!   another node's.
//!
//! and applies the union of the other nodes' snapshots: their quarantines are enforced on
//! its ingest like its own (minus every id any node lifted), and an id another node lifted
//! that names one of its own actions is adopted durably (appended to its `undo.jsonl` and
//! recorded as `undone` by `node:<name>` in its audit journal), so the lift outlives the
//! snapshot that carried it. Only quarantines travel: throttles and kept sources stay
//! per node.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use sentrace_core::TenantId;
use sentrace_detect::response::{Action, MAX_TTL_SECS, PlannedAction};
use sentrace_store::PeerState;

use super::{AuditRecord, ResponseState, UndoRecord};
use crate::detect::response_audit::append_line;

/// The shared-state kind of quarantines (`nodes/<node>/_shared/quarantine/<tenant>.sealed`).
pub const KIND: &str = "quarantine";
/// Most quarantines and most lifted ids in one node's snapshot of one tenant.
pub const MAX_SHARED_ACTIONS: usize = 4096;
/// Longest action id accepted from another node.
const MAX_ID: usize = 128;

/// One node's published quarantines of one tenant.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Format version; 1.
    pub format: u32,
    /// Quarantines it put in force that still run.
    pub actions: Vec<SharedAction>,
    /// Ids it lifted, of quarantines that still run (sorted).
    pub undone: Vec<String>,
}

/// A quarantine in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedAction {
    /// When the node put it in force, Unix ns.
    pub time_unix_nanos: u64,
    /// The action.
    pub planned: PlannedAction,
}

/// What this node knows of the other nodes' quarantines.
#[derive(Default)]
pub(super) struct PeerActions {
    /// This node's name, once sharing started (shown with its actions).
    pub(super) own_node: Option<String>,
    /// (node, tenant, time, action): quarantines other nodes published.
    pub(super) records: Vec<(Arc<str>, TenantId, u64, PlannedAction)>,
    /// Ids other nodes lifted → the node that lifted it.
    pub(super) undone: HashMap<String, Arc<str>>,
    /// The snapshot last published per tenant.
    published: HashMap<TenantId, Vec<u8>>,
}

impl PeerActions {
    /// True when another node published the tenant's action `id`.
    pub(super) fn knows(&self, tenant: &TenantId, id: &str) -> bool {
        self.records
            .iter()
            .any(|(_, t, _, p)| t == tenant && p.id == id)
    }

    /// The tenant's actions of other nodes, newest first, with their node.
    pub(super) fn listed<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> impl Iterator<Item = (Option<&'a str>, &'a u64, &'a PlannedAction)> + 'a {
        let mut v: Vec<_> = self
            .records
            .iter()
            .filter(move |(_, t, _, _)| t == tenant)
            .map(|(n, _, time, p)| (Some(&**n), time, p))
            .collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        v.into_iter()
    }
}

fn until_of(p: &PlannedAction) -> Option<u64> {
    match &p.action {
        Action::Quarantine {
            until_unix_nanos, ..
        } => Some(*until_unix_nanos),
        _ => None,
    }
}

/// What [`ResponseState::apply_peers`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// Other nodes' quarantines now enforced here.
    pub actions: usize,
    /// Ids lifted by other nodes.
    pub undone: usize,
    /// This node's actions lifted by another node, adopted now.
    pub adopted: usize,
    /// Snapshots refused (unreadable, or naming an action that is no quarantine).
    pub refused: usize,
}

impl ResponseState {
    /// Names this node (shown with its actions in `/api/responses` once sharing runs).
    pub fn set_node(&self, node: &str) {
        if let Ok(mut g) = self.inner.write() {
            g.peers.own_node = Some(node.to_string());
        }
    }

    /// The snapshots to publish now: per tenant whose snapshot changed since
    /// [`ResponseState::published`] was last told, its encoding, or `None` when nothing is
    /// left to share (the object is to be deleted).
    pub fn snapshots(&self, now: u64) -> Vec<(TenantId, Option<Vec<u8>>)> {
        let Ok(g) = self.inner.read() else {
            return Vec::new();
        };
        let mut tenants: BTreeSet<&TenantId> = g.records.iter().map(|(t, _, _)| t).collect();
        tenants.extend(g.peers.published.keys());
        // Tenants with another node's actions: this node may have lifted one of them.
        tenants.extend(g.peers.records.iter().map(|(_, t, _, _)| t));
        let mut out = Vec::new();
        for tenant in tenants {
            let running = |p: &PlannedAction| until_of(p).is_some_and(|u| u > now);
            let mut actions: Vec<SharedAction> = g
                .records
                .iter()
                .filter(|(t, _, p)| {
                    t == tenant
                        && running(p)
                        && !g.undone.contains(&p.id)
                        && !g.peers.undone.contains_key(&p.id)
                })
                .map(|(_, time, p)| SharedAction {
                    time_unix_nanos: *time,
                    planned: p.clone(),
                })
                .collect();
            if actions.len() > MAX_SHARED_ACTIONS {
                actions.drain(..actions.len() - MAX_SHARED_ACTIONS);
            }
            let own = g.records.iter().map(|(t, _, p)| (t, p));
            let peer = g.peers.records.iter().map(|(_, t, _, p)| (t, p));
            let mut undone: Vec<String> = own
                .chain(peer)
                .filter(|(t, p)| *t == tenant && running(p) && g.undone.contains(&p.id))
                .map(|(_, p)| p.id.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            undone.truncate(MAX_SHARED_ACTIONS);
            let bytes = (!actions.is_empty() || !undone.is_empty())
                .then(|| {
                    serde_json::to_vec(&Snapshot {
                        format: 1,
                        actions,
                        undone,
                    })
                    .ok()
                })
                .flatten();
            let last = g.peers.published.get(tenant);
            if bytes.as_ref() != last {
                out.push((tenant.clone(), bytes));
            }
        }
        out
    }

    /// Records that `tenant`'s snapshot `bytes` (or its removal) reached the bucket.
    pub fn published(&self, tenant: &TenantId, bytes: Option<Vec<u8>>) {
        if let Ok(mut g) = self.inner.write() {
            match bytes {
                Some(b) => g.peers.published.insert(tenant.clone(), b),
                None => g.peers.published.remove(tenant),
            };
        }
    }

    /// Replaces what this node enforces of the other nodes by the union of their
    /// snapshots `peers`, and adopts their lifts of this node's own actions (appended to
    /// `undo.jsonl` and the audit journal, fsynced). Blocking file I/O: call it off the
    /// async workers.
    pub fn apply_peers(&self, peers: &[PeerState], now: u64) -> anyhow::Result<PeerReport> {
        let mut report = PeerReport::default();
        let horizon = now.saturating_add(MAX_TTL_SECS.saturating_mul(1_000_000_000));
        let mut records = Vec::new();
        let mut undone: HashMap<String, Arc<str>> = HashMap::new();
        for st in peers {
            let snap = match serde_json::from_slice::<Snapshot>(&st.payload) {
                Ok(s) if s.format == 1 => s,
                Ok(s) => {
                    tracing::warn!(node = %st.node, tenant = %st.tenant, format = s.format, "shared quarantines of an unknown format ignored");
                    report.refused += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(node = %st.node, tenant = %st.tenant, error = %e, "shared quarantines unreadable; ignored");
                    report.refused += 1;
                    continue;
                }
            };
            let bad = snap.actions.len() > MAX_SHARED_ACTIONS
                || snap.undone.len() > MAX_SHARED_ACTIONS
                || snap
                    .undone
                    .iter()
                    .any(|id| id.is_empty() || id.len() > MAX_ID)
                || snap.actions.iter().any(|a| {
                    a.planned.id.is_empty()
                        || a.planned.id.len() > MAX_ID
                        || until_of(&a.planned).is_none_or(|u| u > horizon)
                });
            if bad {
                tracing::warn!(node = %st.node, tenant = %st.tenant, "shared quarantines out of bounds (count, id length, kind or lifetime); ignored");
                report.refused += 1;
                continue;
            }
            for a in snap.actions {
                records.push((
                    st.node.clone(),
                    st.tenant.clone(),
                    a.time_unix_nanos,
                    a.planned,
                ));
            }
            for id in snap.undone {
                undone.insert(id, st.node.clone());
            }
        }
        report.actions = records.len();
        report.undone = undone.len();
        // This node's own actions that another node lifted: adopted durably below.
        let adopt: Vec<(TenantId, String, Arc<str>)> = {
            let mut g = self
                .inner
                .write()
                .map_err(|_| anyhow::anyhow!("response state lock poisoned"))?;
            g.peers.records = records;
            g.peers.undone = undone;
            g.rebuild();
            g.records
                .iter()
                .filter(|(_, _, p)| !g.undone.contains(&p.id))
                .filter_map(|(t, _, p)| {
                    g.peers
                        .undone
                        .get(&p.id)
                        .map(|n| (t.clone(), p.id.clone(), n.clone()))
                })
                .collect()
        };
        for (tenant, id, node) in adopt {
            append_line(
                &self.dir.join("undo.jsonl"),
                &UndoRecord {
                    id: id.clone(),
                    time_unix_nanos: now,
                },
            )
            .context("adopting another node's lift in undo.jsonl")?;
            let rec = serde_json::to_vec(&AuditRecord::Undone {
                time_unix_nanos: now,
                id: id.clone(),
                by: format!("node:{node}"),
            })?;
            self.audit
                .append_wait(&tenant, vec![rec])
                .context("recording another node's lift in the response audit journal")?;
            if let Ok(mut g) = self.inner.write() {
                g.audited_undos.insert(id.clone());
            }
            tracing::info!(action = %id, by = %node, "response action lifted by another node");
            report.adopted += 1;
        }
        if report.adopted > 0 {
            self.refresh_undo();
        }
        Ok(report)
    }
}
