//! Spans that are durable in the WAL but not yet in blocks, indexed for reads, and the
//! per-tenant service/operation catalog.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use sentrace_core::{TenantId, TraceId};

use crate::SpanEntry;
use crate::search::SpanFilter;

/// Most services remembered per tenant, and operations per service (a bound against
/// cardinality attacks on the catalog).
pub const MAX_CATALOG_SERVICES: usize = 10_000;
/// See [`MAX_CATALOG_SERVICES`].
pub const MAX_CATALOG_OPERATIONS: usize = 10_000;

/// One tenant's buffered spans.
#[derive(Clone, Default)]
pub(crate) struct TenantMem {
    pub spans: Vec<SpanEntry>,
    pub by_trace: HashMap<TraceId, Vec<usize>>,
}

/// One generation of buffered spans (everything written to a range of WAL segments).
#[derive(Clone, Default)]
pub(crate) struct MemTable {
    pub tenants: HashMap<TenantId, TenantMem>,
    pub spans: usize,
}

impl MemTable {
    pub fn insert(&mut self, tenant: &TenantId, spans: Vec<SpanEntry>) {
        let n = spans.len();
        let t = self.tenants.entry(tenant.clone()).or_default();
        for s in spans {
            t.by_trace
                .entry(s.trace_id)
                .or_default()
                .push(t.spans.len());
            t.spans.push(s);
        }
        self.spans = self.spans.saturating_add(n);
    }

    pub fn trace(&self, tenant: &TenantId, trace_id: &TraceId, out: &mut Vec<SpanEntry>) {
        if let Some(t) = self.tenants.get(tenant)
            && let Some(idx) = t.by_trace.get(trace_id)
        {
            out.extend(idx.iter().filter_map(|&i| t.spans.get(i)).cloned());
        }
    }

    pub fn search(&self, tenant: &TenantId, f: &SpanFilter, out: &mut Vec<SpanEntry>) {
        if let Some(t) = self.tenants.get(tenant) {
            out.extend(t.spans.iter().filter(|s| f.matches(s)).cloned());
        }
    }
}

/// Distinct services and, per service, distinct (span name, kind).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Catalog {
    pub services: BTreeMap<String, BTreeSet<(String, i32)>>,
}

impl Catalog {
    /// Adds the spans' services and operations; returns whether anything was new.
    pub fn add(&mut self, spans: &[SpanEntry]) -> bool {
        let mut changed = false;
        for s in spans {
            let services = self.services.len();
            let ops = match self.services.get_mut(&s.service) {
                Some(ops) => ops,
                None if services < MAX_CATALOG_SERVICES => {
                    self.services.entry(s.service.clone()).or_default()
                }
                None => continue,
            };
            if ops.len() < MAX_CATALOG_OPERATIONS && !ops.contains(&(s.name.clone(), s.kind)) {
                ops.insert((s.name.clone(), s.kind));
                changed = true;
            }
        }
        changed
    }

    pub fn merge(&mut self, other: &Catalog) {
        for (svc, ops) in &other.services {
            if self.services.len() >= MAX_CATALOG_SERVICES && !self.services.contains_key(svc) {
                continue;
            }
            let mine = self.services.entry(svc.clone()).or_default();
            for op in ops {
                if mine.len() >= MAX_CATALOG_OPERATIONS {
                    break;
                }
                mine.insert(op.clone());
            }
        }
    }
}

/// Everything readers see, swapped under one lock so a flush is atomic for readers.
#[derive(Default)]
pub(crate) struct State {
    pub active: MemTable,
    /// Generations handed to a flush (or left by a failed one), oldest first.
    pub frozen: Vec<(u64, Arc<MemTable>)>,
    pub next_gen: u64,
    pub blocks: HashMap<TenantId, Vec<Arc<crate::block::BlockInfo>>>,
    pub catalogs: HashMap<TenantId, Catalog>,
    /// Tenants whose catalog changed since it was last persisted.
    pub dirty_catalogs: BTreeSet<TenantId>,
}

impl State {
    pub fn insert(&mut self, tenant: &TenantId, spans: Vec<SpanEntry>) {
        if self.catalogs.entry(tenant.clone()).or_default().add(&spans) {
            self.dirty_catalogs.insert(tenant.clone());
        }
        self.active.insert(tenant, spans);
    }

    /// Moves the active generation to `frozen`.
    pub fn freeze(&mut self) {
        if self.active.spans == 0 {
            return;
        }
        let gen_id = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        let table = std::mem::take(&mut self.active);
        self.frozen.push((gen_id, Arc::new(table)));
    }

    pub fn buffered_spans(&self) -> usize {
        self.frozen
            .iter()
            .fold(self.active.spans, |a, (_, t)| a.saturating_add(t.spans))
    }

    pub fn tables(&self) -> impl Iterator<Item = &MemTable> {
        self.frozen
            .iter()
            .map(|(_, t)| t.as_ref())
            .chain(std::iter::once(&self.active))
    }

    /// Forgets a tenant's buffered spans and catalog (after shredding).
    pub fn forget(&mut self, tenant: &TenantId) {
        if let Some(t) = self.active.tenants.remove(tenant) {
            self.active.spans = self.active.spans.saturating_sub(t.spans.len());
        }
        for (_, table) in &mut self.frozen {
            if table.tenants.contains_key(tenant) {
                let mut copy = (**table).clone();
                if let Some(t) = copy.tenants.remove(tenant) {
                    copy.spans = copy.spans.saturating_sub(t.spans.len());
                }
                *table = Arc::new(copy);
            }
        }
        self.blocks.remove(tenant);
        self.catalogs.remove(tenant);
        self.dirty_catalogs.remove(tenant);
    }
}
