//! A tenant's behavioral state as data, so that baselines survive a restart.
//!
//! [`Baselines::snapshot_dirty`] takes a [`BaselineSnapshot`] of every tenant whose state
//! changed since the last call; [`Baselines::restore`] puts one back. This crate does no
//! I/O: the server keeps the snapshots (serialized with serde) in an encrypted per-tenant
//! journal and restores them at start.
//!
//! A snapshot holds everything the detectors learned: the evidence that decides warm-up,
//! service edges and endpoints, response sizes, the per-service series, the short
//! authentication and denial windows, and the cooldowns of findings already raised. Tables
//! are listed least recently used first, so a restore keeps the eviction order. A restore
//! treats the snapshot as untrusted input: it checks the format version and the tenant,
//! and cuts every table, ring and window to the same bounds as live state.

use std::collections::VecDeque;

use sentrace_core::TenantId;
use serde::{Deserialize, Serialize};

use super::{
    BEHAVIORAL_MATCHERS, Baselines, BehaviorConfig, MAX_WINDOW_EVENTS, SIZE_SAMPLES, Series, Sizes,
    TenantState, WarmupEvidence,
};

/// The snapshot format this code writes. Format 2 added the learned field profiles
/// ([`crate::context`]); format 1 (without them) is still read.
pub const BASELINE_FORMAT: u32 = 2;
/// The oldest snapshot format this code reads.
pub const BASELINE_FORMAT_MIN: u32 = 1;

/// Why a snapshot was not restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Written by another version of the format.
    #[error("baseline snapshot format {found}, this build reads formats 1 to {expected}")]
    Format {
        /// Found in the snapshot.
        found: u32,
        /// Understood by this build.
        expected: u32,
    },
    /// The snapshot names a tenant other than the one it was filed under.
    #[error("baseline snapshot of tenant {found:?} filed under tenant {expected}")]
    Tenant {
        /// Named in the snapshot.
        found: String,
        /// The tenant it was loaded for.
        expected: String,
    },
    /// A value that cannot be right.
    #[error("baseline snapshot of tenant {tenant}: {reason}")]
    Invalid {
        /// The tenant.
        tenant: String,
        /// What is wrong.
        reason: String,
    },
    /// The state lock was poisoned by a panic elsewhere.
    #[error("baseline state unavailable (lock poisoned)")]
    Poisoned,
}

/// One tenant's behavioral state, as data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSnapshot {
    /// Format version ([`BASELINE_FORMAT`]).
    pub format: u32,
    /// The tenant.
    pub tenant: String,
    /// Latest span time observed, Unix ns.
    pub last_seen_unix_nanos: u64,
    tenant_evidence: WarmupEvidence,
    services: Vec<(String, WarmupEvidence)>,
    edges: Vec<(String, String)>,
    endpoints: Vec<(String, String)>,
    sizes: Vec<(String, String, Vec<u64>)>,
    series: Vec<(String, Series)>,
    auth_by_client: Vec<(String, Vec<(u64, String)>)>,
    auth_by_user: Vec<(String, Vec<u64>)>,
    denied_ids: Vec<(String, Vec<(u64, String)>)>,
    admin_denials: Vec<(String, Vec<u64>)>,
    fired: Vec<(String, String, u64)>,
    /// Learned field profiles (format 2; none in format 1).
    #[serde(default)]
    pub profiles: Vec<crate::context::FieldProfile>,
}

impl BaselineSnapshot {
    /// The snapshot of a tenant with nothing learned.
    pub fn empty(tenant: &TenantId) -> Self {
        snapshot_of(tenant, &TenantState::new(1))
    }

    /// Whether the tenant's evidence is enough to report new edges and endpoints of a
    /// service never seen (see [`super::evidence`]).
    pub fn tenant_warm(&self, cfg: &BehaviorConfig) -> bool {
        self.tenant_evidence.is_warm(cfg)
    }

    /// Service edges known.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// Endpoints known.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }
}

fn clone_all<K: Clone + std::hash::Hash + Eq, V: Clone>(b: &super::Bounded<K, V>) -> Vec<(K, V)> {
    b.oldest_first()
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn windows<T: Clone>(b: &super::Bounded<String, VecDeque<T>>) -> Vec<(String, Vec<T>)> {
    b.oldest_first()
        .into_iter()
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect()
}

fn snapshot_of(tenant: &TenantId, st: &TenantState) -> BaselineSnapshot {
    BaselineSnapshot {
        format: BASELINE_FORMAT,
        tenant: tenant.as_str().to_string(),
        last_seen_unix_nanos: st.last_seen,
        tenant_evidence: st.tenant_ev.clone(),
        services: clone_all(&st.services),
        edges: st
            .edges
            .oldest_first()
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect(),
        endpoints: st
            .endpoints
            .oldest_first()
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect(),
        sizes: st
            .sizes
            .oldest_first()
            .into_iter()
            .map(|((s, r), v)| (s.clone(), r.clone(), v.ring.iter().copied().collect()))
            .collect(),
        series: clone_all(&st.series),
        auth_by_client: windows(&st.auth_by_client),
        auth_by_user: windows(&st.auth_by_user),
        denied_ids: windows(&st.denied_ids),
        admin_denials: windows(&st.admin_denials),
        fired: st
            .fired
            .oldest_first()
            .into_iter()
            .map(|((m, k), t)| ((*m).to_string(), k.clone(), *t))
            .collect(),
        profiles: Vec::new(),
    }
}

fn window<T>(v: Vec<T>) -> VecDeque<T> {
    let skip = v.len().saturating_sub(MAX_WINDOW_EVENTS);
    v.into_iter().skip(skip).collect()
}

fn state_of(snap: BaselineSnapshot, cfg: &BehaviorConfig) -> Result<TenantState, SnapshotError> {
    let name = snap.tenant.clone();
    let invalid = |reason: String| SnapshotError::Invalid {
        tenant: name.clone(),
        reason,
    };
    let mut st = TenantState::new(cfg.max_keys);
    st.last_seen = snap.last_seen_unix_nanos;
    st.tenant_ev = snap.tenant_evidence;
    st.tenant_ev.check().map_err(&invalid)?;
    for (k, mut ev) in snap.services {
        ev.check()
            .map_err(|r| invalid(format!("service {k:?}: {r}")))?;
        *st.services.entry(k, WarmupEvidence::default) = ev;
    }
    for e in snap.edges {
        st.edges.entry(e, || ());
    }
    for e in snap.endpoints {
        st.endpoints.entry(e, || ());
    }
    for (s, r, ring) in snap.sizes {
        let skip = ring.len().saturating_sub(SIZE_SAMPLES);
        let sz = st.sizes.entry((s, r), Sizes::default);
        sz.ring = ring.into_iter().skip(skip).collect();
    }
    for (k, mut series) in snap.series {
        series
            .history
            .retain(|p| p.0.is_finite() && p.1.is_finite() && p.2.is_finite());
        while series.history.len() > cfg.shift_history {
            series.history.pop_front();
        }
        if !series.current.latency_sum_ms.is_finite() {
            return Err(invalid(format!("series {k:?}: latency is not a number")));
        }
        *st.series.entry(k, Series::default) = series;
    }
    for (k, v) in snap.auth_by_client {
        *st.auth_by_client.entry(k, VecDeque::new) = window(v);
    }
    for (k, v) in snap.auth_by_user {
        *st.auth_by_user.entry(k, VecDeque::new) = window(v);
    }
    for (k, v) in snap.denied_ids {
        *st.denied_ids.entry(k, VecDeque::new) = window(v);
    }
    for (k, v) in snap.admin_denials {
        *st.admin_denials.entry(k, VecDeque::new) = window(v);
    }
    for (m, k, t) in snap.fired {
        // Cooldowns of detectors this build does not have are dropped.
        if let Some(m) = BEHAVIORAL_MATCHERS.iter().find(|x| **x == m) {
            *st.fired.entry((*m, k), || 0) = t;
        }
    }
    Ok(st)
}

impl Baselines {
    /// Snapshots of every tenant whose state changed since the last call (copied under the
    /// lock; serialize them outside it). Call [`Baselines::mark_dirty`] for one whose write
    /// failed, so the next call takes it again.
    pub fn snapshot_dirty(&self) -> Vec<BaselineSnapshot> {
        let Ok(mut tenants) = self.tenants.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (tenant, st) in tenants.values_mut() {
            if st.dirty {
                st.dirty = false;
                out.push(snapshot_of(tenant, st));
            }
        }
        out
    }

    /// The snapshot of one tenant's state, changed or not (its changed flag is cleared).
    pub fn snapshot_tenant(&self, tenant: &TenantId) -> Option<BaselineSnapshot> {
        let mut tenants = self.tenants.lock().ok()?;
        let st = tenants.get_mut(tenant)?;
        st.dirty = false;
        Some(snapshot_of(tenant, st))
    }

    /// Marks a tenant's state as changed (a snapshot of it was not saved).
    pub fn mark_dirty(&self, tenant: &TenantId) {
        if let Ok(mut tenants) = self.tenants.lock()
            && let Some(st) = tenants.get_mut(tenant)
        {
            st.dirty = true;
        }
    }

    /// Puts a tenant's saved state back (replacing what is held for it), bounded by `cfg`
    /// (the tenant's `[behavior]` table). `tenant` is the tenant the snapshot was filed
    /// under; the snapshot must name the same.
    pub fn restore(
        &self,
        tenant: &TenantId,
        snap: BaselineSnapshot,
        cfg: &BehaviorConfig,
    ) -> Result<(), SnapshotError> {
        if !(BASELINE_FORMAT_MIN..=BASELINE_FORMAT).contains(&snap.format) {
            return Err(SnapshotError::Format {
                found: snap.format,
                expected: BASELINE_FORMAT,
            });
        }
        if snap.tenant != tenant.as_str() {
            return Err(SnapshotError::Tenant {
                found: snap.tenant,
                expected: tenant.as_str().to_string(),
            });
        }
        let st = state_of(snap, cfg)?;
        let mut tenants = self.tenants.lock().map_err(|_| SnapshotError::Poisoned)?;
        *tenants.entry(tenant.clone(), || TenantState::new(cfg.max_keys)) = st;
        Ok(())
    }
}
