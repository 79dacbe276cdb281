//! Exposure: what minimization found, per tenant, by service, kind, attribute key and
//! action. Counts and names only, never a value.
//!
//! Two levels keep the ingest path cheap:
//! - [`BatchExposure`] is filled by one minimize call. The walk notes `(kind, action)` per
//!   attribute in a reused buffer and folds them into the batch's rows when the attribute
//!   is done, so the only allocation is one per distinct `(service, kind, key, action)` of
//!   the batch, and at most [`MAX_BATCH_ROWS`] of them (further rows go to an overflow row).
//! - [`ExposureLog`] merges a batch under one lock per batch into the tenant's rows, at most
//!   `max_rows` per tenant (further combinations count in one overflow row per kind and
//!   action, with service and key [`OVERFLOW`]) and at most `max_tenants` tenants.
//!
//! The log is pure state: the server persists [`ExposureLog::take_dirty`] snapshots and
//! restores them with [`ExposureLog::restore`].

use std::collections::HashMap;
use std::sync::Mutex;

use sentrace_core::TenantId;
use serde::{Deserialize, Serialize};

use crate::kind::{Action, Kind};

/// Most distinct rows one batch records before the rest go to the overflow row.
pub const MAX_BATCH_ROWS: usize = 256;
/// Most distinct services one batch records before the rest count as [`OVERFLOW`].
pub const MAX_BATCH_SERVICES: usize = 64;
/// Longest service name or attribute key kept (longer ones are cut at a character
/// boundary).
pub const MAX_NAME_BYTES: usize = 128;
/// The service and key of overflow rows.
pub const OVERFLOW: &str = "<other>";
/// The key recorded for a value found in a span name.
pub const KEY_SPAN_NAME: &str = "(span name)";
/// The key recorded for a value found in a status message.
pub const KEY_STATUS_MESSAGE: &str = "(status message)";
/// The key recorded for a value found in an event name.
pub const KEY_EVENT_NAME: &str = "(event name)";

fn cut(s: &str) -> &str {
    if s.len() <= MAX_NAME_BYTES {
        return s;
    }
    let mut end = MAX_NAME_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchRow {
    service: u16,
    kind: Kind,
    action: Action,
    key: String,
    count: u64,
}

/// One minimize call's counts by service, kind, key and action. Empty (and allocation
/// free) when nothing sensitive was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchExposure {
    services: Vec<String>,
    rows: Vec<BatchRow>,
}

impl BatchExposure {
    /// The index of `service` in this batch (interned once per batch).
    pub(crate) fn service(&mut self, service: &str) -> u16 {
        let service = cut(service);
        if let Some(i) = self.services.iter().position(|s| s == service) {
            return i as u16;
        }
        if self.services.len() >= MAX_BATCH_SERVICES {
            if let Some(i) = self.services.iter().position(|s| s == OVERFLOW) {
                return i as u16;
            }
            self.services.push(OVERFLOW.to_string());
            return (self.services.len() - 1) as u16;
        }
        self.services.push(service.to_string());
        (self.services.len() - 1) as u16
    }

    /// Counts one value of `kind` minimized with `action` under `key` of `service`.
    pub(crate) fn add(&mut self, service: u16, kind: Kind, action: Action, key: &str) {
        let key = cut(key);
        if let Some(r) = self
            .rows
            .iter_mut()
            .find(|r| r.kind == kind && r.action == action && r.service == service && r.key == key)
        {
            r.count += 1;
            return;
        }
        if self.rows.len() >= MAX_BATCH_ROWS {
            let over = self.service(OVERFLOW);
            if let Some(r) = self
                .rows
                .iter_mut()
                .find(|r| r.kind == kind && r.action == action && r.key == OVERFLOW)
            {
                r.count += 1;
                return;
            }
            // At most one overflow row per (kind, action): bounded by the two enums.
            self.rows.push(BatchRow {
                service: over,
                kind,
                action,
                key: OVERFLOW.to_string(),
                count: 1,
            });
            return;
        }
        self.rows.push(BatchRow {
            service,
            kind,
            action,
            key: key.to_string(),
            count: 1,
        });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows: `(service, kind, key, action, count)`.
    pub fn rows(&self) -> impl Iterator<Item = (&str, Kind, &str, Action, u64)> {
        self.rows.iter().map(|r| {
            let service = self
                .services
                .get(usize::from(r.service))
                .map_or(OVERFLOW, String::as_str);
            (service, r.kind, r.key.as_str(), r.action, r.count)
        })
    }

    /// Forgets every row, keeping the allocations.
    pub fn clear(&mut self) {
        self.services.clear();
        self.rows.clear();
    }
}

/// One row of a tenant's exposure: what `GET /api/exposure` returns and what is persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureRow {
    /// The service (`service.name`), or [`OVERFLOW`].
    pub service: String,
    /// The kind of value found.
    pub kind: Kind,
    /// The attribute key (top level), a `(span name)`-style place, or [`OVERFLOW`].
    pub key: String,
    /// What the policy did with it.
    pub action: Action,
    /// Values counted since the row was first seen.
    pub count: u64,
    /// When the row was first counted, Unix ns.
    pub first_seen_ns: u64,
    /// When the row was last counted, Unix ns.
    pub last_seen_ns: u64,
}

type RowKey = (String, Kind, String, Action);

#[derive(Debug, Clone, Copy)]
struct Stats {
    count: u64,
    first: u64,
    last: u64,
}

#[derive(Debug, Default)]
struct Tenant {
    rows: HashMap<RowKey, Stats>,
    /// Rows that are not overflow rows.
    regular: usize,
    dirty: bool,
}

impl Tenant {
    fn add(&mut self, key: RowKey, count: u64, first: u64, last: u64, max_rows: usize) {
        let overflow = key.0 == OVERFLOW && key.2 == OVERFLOW;
        let known = self.rows.contains_key(&key);
        let key = if known || overflow || self.regular < max_rows {
            if !known && !overflow {
                self.regular += 1;
            }
            key
        } else {
            (OVERFLOW.to_string(), key.1, OVERFLOW.to_string(), key.3)
        };
        let s = self.rows.entry(key).or_insert(Stats {
            count: 0,
            first,
            last,
        });
        s.count = s.count.saturating_add(count);
        s.first = s.first.min(first);
        s.last = s.last.max(last);
        self.dirty = true;
    }

    fn rows(&self) -> Vec<ExposureRow> {
        let mut out: Vec<ExposureRow> = self
            .rows
            .iter()
            .map(|((service, kind, key, action), s)| ExposureRow {
                service: service.clone(),
                kind: *kind,
                key: key.clone(),
                action: *action,
                count: s.count,
                first_seen_ns: s.first,
                last_seen_ns: s.last,
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.service, a.kind, &a.key, a.action).cmp(&(&b.service, b.kind, &b.key, b.action))
        });
        out
    }
}

/// Every tenant's exposure rows, bounded. `Send + Sync`; one lock per recorded batch.
#[derive(Debug)]
pub struct ExposureLog {
    max_rows: usize,
    max_tenants: usize,
    tenants: Mutex<HashMap<TenantId, Tenant>>,
}

impl ExposureLog {
    /// A log keeping at most `max_rows` rows per tenant, plus at most one overflow row per
    /// (kind, action), for at most `max_tenants` tenants.
    pub fn new(max_rows: usize, max_tenants: usize) -> Self {
        Self {
            max_rows: max_rows.max(1),
            max_tenants: max_tenants.max(1),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Tenant>> {
        match self.tenants.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Merges one batch of `tenant`, seen at `now_ns`. Returns false when the tenant bound
    /// refused a new tenant (the batch is not counted).
    pub fn record(&self, tenant: &TenantId, now_ns: u64, batch: &BatchExposure) -> bool {
        if batch.is_empty() {
            return true;
        }
        let mut g = self.lock();
        if !g.contains_key(tenant) && g.len() >= self.max_tenants {
            return false;
        }
        let t = g.entry(tenant.clone()).or_default();
        for (service, kind, key, action, n) in batch.rows() {
            t.add(
                (service.to_string(), kind, key.to_string(), action),
                n,
                now_ns,
                now_ns,
                self.max_rows,
            );
        }
        true
    }

    /// The tenant's rows, sorted by service, kind, key and action.
    pub fn rows(&self, tenant: &TenantId) -> Vec<ExposureRow> {
        self.lock()
            .get(tenant)
            .map(Tenant::rows)
            .unwrap_or_default()
    }

    /// The rows of every tenant that changed since the last call, marking them clean. A
    /// caller that fails to persist one calls [`ExposureLog::mark_dirty`].
    pub fn take_dirty(&self) -> Vec<(TenantId, Vec<ExposureRow>)> {
        let mut g = self.lock();
        g.iter_mut()
            .filter(|(_, t)| t.dirty)
            .map(|(id, t)| {
                t.dirty = false;
                (id.clone(), t.rows())
            })
            .collect()
    }

    /// Marks a tenant changed again (its snapshot could not be written).
    pub fn mark_dirty(&self, tenant: &TenantId) {
        if let Some(t) = self.lock().get_mut(tenant) {
            t.dirty = true;
        }
    }

    /// Adds persisted rows of `tenant` (at start), under the same bounds.
    pub fn restore(&self, tenant: &TenantId, rows: Vec<ExposureRow>) {
        let mut g = self.lock();
        if !g.contains_key(tenant) && g.len() >= self.max_tenants {
            return;
        }
        let t = g.entry(tenant.clone()).or_default();
        for r in rows {
            let service = cut(&r.service).to_string();
            let key = cut(&r.key).to_string();
            t.add(
                (service, r.kind, key, r.action),
                r.count,
                r.first_seen_ns,
                r.last_seen_ns,
                self.max_rows,
            );
        }
        t.dirty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(t: &str) -> TenantId {
        TenantId::new(t).unwrap()
    }

    #[test]
    fn a_batch_aggregates_repeats_and_bounds_its_rows() {
        let mut b = BatchExposure::default();
        let svc = b.service("checkout");
        for _ in 0..3 {
            b.add(svc, Kind::Email, Action::Mask, "user.email");
        }
        for i in 0..MAX_BATCH_ROWS + 10 {
            b.add(svc, Kind::Phone, Action::Mask, &format!("k{i}"));
        }
        b.add(svc, Kind::Phone, Action::Mask, "one.more");
        let rows: Vec<_> = b.rows().collect();
        assert_eq!(
            rows[0],
            ("checkout", Kind::Email, "user.email", Action::Mask, 3)
        );
        // 256 distinct rows, then one overflow row for (phone, mask) holding the rest.
        assert_eq!(rows.len(), MAX_BATCH_ROWS + 1);
        let over = rows.iter().find(|r| r.2 == OVERFLOW).unwrap();
        assert_eq!(over.0, OVERFLOW);
        assert_eq!(over.4, 12);
        let total: u64 = rows.iter().map(|r| r.4).sum();
        assert_eq!(total, 3 + MAX_BATCH_ROWS as u64 + 10 + 1);
    }

    #[test]
    fn services_and_names_are_bounded() {
        let mut b = BatchExposure::default();
        for i in 0..MAX_BATCH_SERVICES + 5 {
            let s = b.service(&format!("svc{i}"));
            b.add(s, Kind::Email, Action::Mask, &"k".repeat(1000));
        }
        assert!(b.services.len() <= MAX_BATCH_SERVICES + 1);
        assert!(b.rows().all(|r| r.2.len() <= MAX_NAME_BYTES));
        let over: u64 = b.rows().filter(|r| r.0 == OVERFLOW).map(|r| r.4).sum();
        assert_eq!(over, 5);
        // A cut never splits a character.
        assert_eq!(cut(&"é".repeat(100)).len(), MAX_NAME_BYTES);
    }

    #[test]
    fn the_log_bounds_rows_per_tenant_with_an_overflow_row_and_keeps_tenants_apart() {
        let log = ExposureLog::new(4, 2);
        let mut b = BatchExposure::default();
        let s = b.service("api");
        for i in 0..10 {
            b.add(s, Kind::Email, Action::Mask, &format!("key{i}"));
        }
        assert!(log.record(&tenant("a"), 100, &b));
        let rows = log.rows(&tenant("a"));
        // Four rows, then one overflow row for (email, mask) with the other six.
        assert_eq!(rows.len(), 5, "{rows:?}");
        let over = rows.iter().find(|r| r.key == OVERFLOW).unwrap();
        assert_eq!(over.service, OVERFLOW);
        assert_eq!(over.count, 6);
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 10);
        // A later batch updates last_seen only.
        assert!(log.record(&tenant("a"), 200, &b));
        let r = log
            .rows(&tenant("a"))
            .into_iter()
            .find(|r| r.key == "key0")
            .unwrap();
        assert_eq!((r.count, r.first_seen_ns, r.last_seen_ns), (2, 100, 200));
        assert!(log.rows(&tenant("b")).is_empty());
        // The tenant bound refuses a third tenant.
        assert!(log.record(&tenant("b"), 1, &b));
        assert!(!log.record(&tenant("c"), 1, &b));
        assert!(log.rows(&tenant("c")).is_empty());
    }

    #[test]
    fn snapshots_restore_and_dirty_tracking() {
        let log = ExposureLog::new(100, 10);
        let mut b = BatchExposure::default();
        let s = b.service("api");
        b.add(s, Kind::Card, Action::Truncate, "card");
        log.record(&tenant("a"), 5, &b);
        let dirty = log.take_dirty();
        assert_eq!(dirty.len(), 1);
        assert!(log.take_dirty().is_empty());
        let json = serde_json::to_string(&dirty[0].1).unwrap();
        let back: Vec<ExposureRow> = serde_json::from_str(&json).unwrap();
        let fresh = ExposureLog::new(100, 10);
        fresh.restore(&tenant("a"), back);
        assert_eq!(fresh.rows(&tenant("a")), log.rows(&tenant("a")));
        assert!(fresh.take_dirty().is_empty());
        fresh.mark_dirty(&tenant("a"));
        assert_eq!(fresh.take_dirty().len(), 1);
    }
}
