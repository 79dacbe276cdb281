//! Per-tenant series: kept apart from the node-wide registry, because each reader may see
//! its own tenant's series only. A scrape encodes a [`TenantView`] of the reader's tenant.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use sentrace_core::TenantId;

use super::export::{self, Escaped};

/// Most tenants with their own series (tenants come from verified credentials only).
const MAX_TENANT_SERIES: usize = 10_000;

/// Counters of one tenant.
#[derive(Default, Clone, Copy, Debug)]
struct TenantCounters {
    spans_accepted: u64,
    spans_rejected: u64,
    queries: u64,
}

/// Every tenant's counters.
#[derive(Default, Debug)]
pub(super) struct Tenants(Mutex<BTreeMap<TenantId, TenantCounters>>);

impl Tenants {
    fn with(&self, tenant: &TenantId, f: impl FnOnce(&mut TenantCounters)) {
        let mut t = match self.0.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        if let Some(c) = t.get_mut(tenant) {
            f(c);
        } else if t.len() < MAX_TENANT_SERIES {
            f(t.entry(tenant.clone()).or_default());
        }
    }

    pub(super) fn spans(&self, tenant: &TenantId, accepted: u64, rejected: u64) {
        self.with(tenant, |c| {
            c.spans_accepted = c.spans_accepted.saturating_add(accepted);
            c.spans_rejected = c.spans_rejected.saturating_add(rejected);
        });
    }

    pub(super) fn query(&self, tenant: &TenantId) {
        self.with(tenant, |c| c.queries = c.queries.saturating_add(1));
    }

    /// A copy of `tenant`'s counters (zero when it has none yet), to encode.
    pub(super) fn view(&self, tenant: &TenantId) -> TenantView {
        let counters = match self.0.lock() {
            Ok(t) => t.get(tenant).copied(),
            Err(p) => p.into_inner().get(tenant).copied(),
        };
        TenantView {
            tenant: tenant.clone(),
            counters: counters.unwrap_or_default(),
        }
    }
}

/// One tenant's series, as its readers see them.
#[derive(Debug)]
pub(super) struct TenantView {
    tenant: TenantId,
    counters: TenantCounters,
}

impl Collector for TenantView {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let t = Escaped(self.tenant.as_str());
        let c = &self.counters;
        export::counters(
            &mut e,
            "sentrace_tenant_spans",
            "Spans of this tenant by outcome.",
            [
                (
                    [("tenant", t), ("outcome", Escaped("accepted"))],
                    c.spans_accepted,
                ),
                (
                    [("tenant", t), ("outcome", Escaped("rejected"))],
                    c.spans_rejected,
                ),
            ],
        )?;
        export::counters(
            &mut e,
            "sentrace_tenant_queries",
            "Authenticated query requests of this tenant.",
            [([("tenant", t)], c.queries)],
        )
    }
}
