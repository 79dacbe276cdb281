//! Findings readable from every node of a bucket.
//!
//! Each node's findings journal stays its durable record. On every peer refresh
//! ([`crate::detect::shared`]) a node publishes, for each tenant with new findings, a
//! snapshot of its newest findings ([`MAX_SHARED_FINDINGS`] at most, fewer if they would
//! not fit one object), sealed under the tenant's data key (kind [`KIND`], see
//! [`sentrace_store::SharedState`]); and keeps the other nodes' latest snapshots in memory,
//! so `GET /api/findings` on any node answers its own findings and theirs, each with the
//! node it came from. Memory is bounded by nodes × tenants × [`MAX_SHARED_FINDINGS`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use sentrace_core::TenantId;
use sentrace_detect::Finding;
use sentrace_store::PeerState;
use sentrace_store::shared_state::MAX_SHARED_PAYLOAD;

use super::{FindingFilter, FindingStore};

/// The shared-state kind of findings (`nodes/<node>/_shared/findings/<tenant>.sealed`).
pub const KIND: &str = "findings";
/// Most findings of one tenant that a node publishes (its newest).
pub const MAX_SHARED_FINDINGS: usize = 2000;

/// One node's published findings of one tenant.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    /// Format version; 1.
    format: u32,
    /// Oldest first.
    findings: Vec<Finding>,
}

/// Sharing state of a [`FindingStore`].
#[derive(Debug, Default)]
pub(super) struct SharedFindings {
    /// Tenants with findings not yet published.
    pub(super) dirty: HashSet<TenantId>,
    own_node: Option<Arc<str>>,
    /// (node, tenant) → that node's findings, oldest first, as last read.
    peers: HashMap<(Arc<str>, TenantId), Arc<Vec<Finding>>>,
}

/// A finding and the node it came from (`None`: this node, when it shares no bucket).
pub type Origin = Option<Arc<str>>;

impl FindingStore {
    /// Names this node: its findings carry the name in answers once sharing runs.
    pub fn set_node(&self, node: &str) {
        if let Ok(mut s) = self.shared.lock() {
            s.own_node = Some(Arc::from(node));
        }
    }

    /// Takes the tenants whose findings changed since they were last taken, each with its
    /// snapshot (newest [`MAX_SHARED_FINDINGS`], trimmed to fit one object). Give a
    /// tenant whose publish failed back with [`FindingStore::unpublished`].
    pub fn take_snapshots(&self) -> Vec<(TenantId, Vec<u8>)> {
        let dirty: Vec<TenantId> = match self.shared.lock() {
            Ok(mut s) => s.dirty.drain().collect(),
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        for tenant in dirty {
            let mut findings: Vec<Finding> = match self.inner.lock() {
                Ok(g) => g
                    .get(&tenant)
                    .map(|q| {
                        let skip = q.len().saturating_sub(MAX_SHARED_FINDINGS);
                        q.iter().skip(skip).cloned().collect()
                    })
                    .unwrap_or_default(),
                Err(_) => continue,
            };
            loop {
                let snap = Snapshot {
                    format: 1,
                    findings,
                };
                match serde_json::to_vec(&snap) {
                    Ok(b) if b.len() <= MAX_SHARED_PAYLOAD || snap.findings.len() <= 1 => {
                        if b.len() <= MAX_SHARED_PAYLOAD {
                            out.push((tenant.clone(), b));
                        }
                        break;
                    }
                    Ok(_) => {
                        // Too large for one object: keep the newest half.
                        findings = snap.findings;
                        let half = findings.len() / 2;
                        findings.drain(..half);
                    }
                    Err(e) => {
                        tracing::error!(tenant = %tenant, error = %e, "findings snapshot unencodable");
                        break;
                    }
                }
            }
        }
        out
    }

    /// Marks the tenant's findings as not published (a failed upload is retried).
    pub fn unpublished(&self, tenant: &TenantId) {
        if let Ok(mut s) = self.shared.lock() {
            s.dirty.insert(tenant.clone());
        }
    }

    /// Replaces the other nodes' findings by their snapshots `peers`; returns how many
    /// findings they hold. A snapshot that is unreadable or out of bounds is skipped (the
    /// node's previous one is dropped with it); a finding of another tenant is skipped.
    pub fn set_peers(&self, peers: &[PeerState]) -> usize {
        let mut map = HashMap::new();
        let mut total = 0;
        for st in peers {
            let snap = match serde_json::from_slice::<Snapshot>(&st.payload) {
                Ok(s) if s.format == 1 && s.findings.len() <= MAX_SHARED_FINDINGS => s,
                Ok(_) => {
                    tracing::warn!(node = %st.node, tenant = %st.tenant, "shared findings of an unknown format or over the bound; ignored");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(node = %st.node, tenant = %st.tenant, error = %e, "shared findings unreadable; ignored");
                    continue;
                }
            };
            let findings: Vec<Finding> = snap
                .findings
                .into_iter()
                .filter(|f| f.tenant == st.tenant)
                .collect();
            total += findings.len();
            map.insert((st.node.clone(), st.tenant.clone()), Arc::new(findings));
        }
        if let Ok(mut s) = self.shared.lock() {
            s.peers = map;
        }
        total
    }

    /// The tenant's findings that match, this node's and the other nodes', newest first,
    /// each with its node (`None` for this node's when it shares no bucket).
    pub fn query_origin(
        &self,
        tenant: &TenantId,
        filter: &FindingFilter,
    ) -> Vec<(Origin, Finding)> {
        let (own_node, peers) = match self.shared.lock() {
            Ok(s) => (
                s.own_node.clone(),
                s.peers
                    .iter()
                    .filter(|((_, t), _)| t == tenant)
                    .map(|((n, _), v)| (n.clone(), v.clone()))
                    .collect::<Vec<_>>(),
            ),
            Err(_) => (None, Vec::new()),
        };
        let mut out: Vec<(Origin, Finding)> = self
            .query(tenant, filter)
            .into_iter()
            .map(|f| (own_node.clone(), f))
            .collect();
        for (node, list) in peers {
            out.extend(
                list.iter()
                    .rev()
                    .filter(|f| filter.matches(f))
                    .take(filter.limit)
                    .map(|f| (Some(node.clone()), f.clone())),
            );
        }
        // Newest first; ties by node name, so every node answers in one order.
        out.sort_by(|a, b| {
            b.1.time_unix_nanos
                .cmp(&a.1.time_unix_nanos)
                .then_with(|| a.0.cmp(&b.0))
        });
        // One finding per uid: the uid hashes the tenant, rule, span start time, evidence
        // trace, span and attribute and the subject, not the node, so two nodes hold the
        // same uid only when both inspected the same span (a client that re-sent an export
        // through another node). It is listed once, under the first node name (the same
        // on every node: the uid's times are equal, so the sort put the names in order).
        let mut seen = HashSet::with_capacity(out.len());
        out.retain(|(_, f)| seen.insert(f.uid.clone()));
        out.truncate(filter.limit);
        out
    }

    /// Another node's finding of the tenant with this uid.
    pub(super) fn get_peer(&self, tenant: &TenantId, uid: &str) -> Option<Finding> {
        let s = self.shared.lock().ok()?;
        s.peers
            .iter()
            .filter(|((_, t), _)| t == tenant)
            .find_map(|(_, v)| v.iter().rev().find(|f| f.uid == uid).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentrace_detect::{Evidence, Family, RuleKind, Severity, Subject};

    fn finding(tenant: &str, n: u64) -> Finding {
        let mut f = Finding {
            uid: String::new(),
            tenant: TenantId::new(tenant).unwrap(),
            rule_id: "r".into(),
            title: "t".into(),
            family: Family::Sqli,
            kind: RuleKind::Payload,
            severity: Severity::High,
            confidence: 80,
            downgraded: false,
            technique: "T1190".into(),
            ruleset_version: "1".into(),
            time_unix_nanos: n,
            service: "svc".into(),
            subject: Subject::default(),
            evidences: vec![Evidence {
                trace_id: None,
                span_id: None,
                attribute: "url.query".into(),
                snippet: "x".into(),
                reason: "r".into(),
            }],
            message: "m".into(),
        };
        f.uid = f.compute_uid();
        f
    }

    #[test]
    fn snapshots_of_changed_tenants_merge_with_peers_newest_first() {
        let a = FindingStore::new(10);
        a.set_node("a");
        a.push(finding("acme", 1));
        a.push(finding("acme", 3));
        let snaps = a.take_snapshots();
        assert_eq!(snaps.len(), 1);
        assert!(a.take_snapshots().is_empty(), "taken once until changed");
        a.unpublished(&TenantId::new("acme").unwrap());
        assert_eq!(a.take_snapshots().len(), 1, "a failed publish is retried");

        let b = FindingStore::new(10);
        b.set_node("b");
        b.push(finding("acme", 2));
        let (tenant, payload) = snaps.into_iter().next().unwrap();
        let peers = vec![
            PeerState {
                node: Arc::from("a"),
                tenant: tenant.clone(),
                payload: Arc::new(payload.clone()),
            },
            // Findings of another tenant in a snapshot are never shown.
            PeerState {
                node: Arc::from("a"),
                tenant: TenantId::new("other").unwrap(),
                payload: Arc::new(payload),
            },
        ];
        assert_eq!(b.set_peers(&peers), 2);
        let all = FindingFilter {
            limit: 10,
            ..Default::default()
        };
        let got: Vec<(Option<String>, u64)> = b
            .query_origin(&tenant, &all)
            .into_iter()
            .map(|(n, f)| (n.map(|n| n.to_string()), f.time_unix_nanos))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("a".into()), 3),
                (Some("b".into()), 2),
                (Some("a".into()), 1)
            ]
        );
        assert!(
            b.query_origin(&TenantId::new("other").unwrap(), &all)
                .is_empty()
        );
        let uid = finding("acme", 3).uid;
        assert!(b.get(&tenant, &uid).is_some(), "a peer's finding by uid");
        let one = FindingFilter {
            limit: 1,
            ..Default::default()
        };
        assert_eq!(b.query_origin(&tenant, &one).len(), 1);
    }

    #[test]
    fn one_span_inspected_on_two_nodes_is_listed_once_under_the_first_node_name() {
        // The same span (a client re-sent its export through another node) gives the
        // same uid on both nodes: one entry, named after node "a" on every node.
        let tenant = TenantId::new("acme").unwrap();
        let all = FindingFilter {
            limit: 10,
            ..Default::default()
        };
        let snapshot_of = |node: &str, times: &[u64]| {
            let s = FindingStore::new(10);
            s.set_node(node);
            for t in times {
                s.push(finding("acme", *t));
            }
            let (_, payload) = s.take_snapshots().into_iter().next().unwrap();
            PeerState {
                node: Arc::from(node),
                tenant: tenant.clone(),
                payload: Arc::new(payload),
            }
        };
        let answers: Vec<Vec<(Option<String>, u64)>> = ["a", "b", "c"]
            .iter()
            .map(|own| {
                let store = FindingStore::new(10);
                store.set_node(own);
                // Every node saw span 7; node c alone saw span 9.
                store.push(finding("acme", 7));
                if *own == "c" {
                    store.push(finding("acme", 9));
                }
                let peers: Vec<PeerState> = ["a", "b", "c"]
                    .iter()
                    .filter(|n| *n != own)
                    .map(|n| snapshot_of(n, if *n == "c" { &[7, 9] } else { &[7] }))
                    .collect();
                store.set_peers(&peers);
                store
                    .query_origin(&tenant, &all)
                    .into_iter()
                    .map(|(n, f)| (n.map(|n| n.to_string()), f.time_unix_nanos))
                    .collect()
            })
            .collect();
        let expected = vec![(Some("c".to_string()), 9), (Some("a".to_string()), 7)];
        for got in &answers {
            assert_eq!(got, &expected);
        }
    }
}
