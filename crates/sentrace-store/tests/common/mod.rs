#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sentrace_core::TenantId;
use sentrace_store::testutil::span;
use sentrace_store::{KeyRing, MasterKey, RecoveryReport, SpanEntry, Store, StoreConfig};

pub fn tenant(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

/// A config whose background flush never fires during a test.
pub fn cfg() -> StoreConfig {
    StoreConfig {
        flush_interval: Duration::from_secs(3600),
        ..Default::default()
    }
}

pub fn keyring(dir: &Path) -> Arc<KeyRing> {
    let mk = MasterKey::load_or_create(&dir.join("master.key")).unwrap();
    Arc::new(KeyRing::open(&dir.join("keys"), &mk).unwrap())
}

pub async fn open(dir: &Path, cfg: StoreConfig) -> (Store, RecoveryReport) {
    Store::open(dir, cfg, keyring(dir)).await.unwrap()
}

/// `n` spans of trace `trace`, starting at `t0` nanoseconds, 1ms apart.
pub fn trace_spans(trace: u64, n: u64, t0: u64) -> Vec<SpanEntry> {
    (0..n)
        .map(|i| {
            span(
                trace,
                trace * 1000 + i + 1,
                "checkout",
                &format!("op-{}", i % 3),
                t0 + i * 1_000_000,
                t0 + i * 1_000_000 + 500_000 * (i + 1),
                &[("http.route", "/cart")],
            )
        })
        .collect()
}

pub fn ids(spans: &[SpanEntry]) -> Vec<String> {
    let mut v: Vec<String> = spans.iter().map(|s| s.span_id.to_hex()).collect();
    v.sort();
    v
}
