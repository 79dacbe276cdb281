//! Warm-up by evidence: what a service has shown so far, and whether that is enough to
//! judge "never seen before".
//!
//! A baseline that says "this is new" is only worth hearing once it has seen enough of
//! what is normal. The amount is counted in traffic, not in time since the process
//! started, and it is kept in the snapshot with the baseline, so a restart does not open a
//! new blind window:
//!
//! - `spans`: spans of the service observed;
//! - `sources`: distinct traces (independent request flows) those spans belong to, so a
//!   burst of spans inside one trace is one source;
//! - the span time they cover (latest minus earliest span start).
//!
//! A service is warm when all three reach `warmup_min_spans`, `warmup_min_sources` and
//! `warmup_secs` of the ruleset's `[behavior]` table. Once warm it stays warm.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::config::BehaviorConfig;

/// Most trace hashes held while a service's distinct sources are counted (the count stops
/// there; `warmup_min_sources` is validated to be at most this).
pub const MAX_PENDING_SOURCES: usize = 100_000;

const NANOS: u64 = 1_000_000_000;

/// The evidence gathered for one service (or the whole tenant).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupEvidence {
    /// Spans observed.
    pub spans: u64,
    /// Earliest span start seen, Unix ns (0: none yet).
    pub first_unix_nanos: u64,
    /// Latest span start seen, Unix ns.
    pub last_unix_nanos: u64,
    /// Distinct sources counted (frozen once the threshold is reached).
    pub sources: u64,
    /// Hashes of the sources counted so far; emptied once the threshold is reached.
    #[serde(default)]
    pending: HashSet<u64>,
    /// The service was judged warm once; it stays so.
    #[serde(default)]
    pub warm: bool,
}

/// A 64-bit digest of a trace id (trace ids are random: folding their halves is enough).
pub fn source_of(trace_id: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    for (i, x) in trace_id.iter().take(16).enumerate() {
        if i < 8 {
            a[i] = *x;
        } else {
            b[i - 8] = *x;
        }
    }
    u64::from_le_bytes(a) ^ u64::from_le_bytes(b).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl WarmupEvidence {
    /// Counts one span of `source` at span time `t`.
    pub fn observe(&mut self, t: u64, source: Option<u64>, cfg: &BehaviorConfig) {
        self.spans = self.spans.saturating_add(1);
        if self.first_unix_nanos == 0 || t < self.first_unix_nanos {
            self.first_unix_nanos = t;
        }
        self.last_unix_nanos = self.last_unix_nanos.max(t);
        let need = cfg.warmup_min_sources.min(MAX_PENDING_SOURCES as u64);
        if let Some(src) = source
            && self.sources < need
        {
            self.pending.insert(src);
            self.sources = self.pending.len() as u64;
            if self.sources >= need {
                self.pending = HashSet::new();
            }
        }
        if !self.warm {
            self.warm = self.enough(cfg);
        }
    }

    fn enough(&self, cfg: &BehaviorConfig) -> bool {
        self.spans >= cfg.warmup_min_spans
            && self.sources >= cfg.warmup_min_sources
            && self.last_unix_nanos.saturating_sub(self.first_unix_nanos)
                >= cfg.warmup_secs.saturating_mul(NANOS)
    }

    /// Whether the baselines judged on this evidence may report.
    pub fn is_warm(&self, cfg: &BehaviorConfig) -> bool {
        self.warm || self.enough(cfg)
    }

    /// Brings restored evidence within bounds: fails on values that cannot be.
    pub fn check(&mut self) -> Result<(), String> {
        if self.first_unix_nanos > self.last_unix_nanos {
            return Err("evidence: first span time after the last".into());
        }
        if self.pending.len() > MAX_PENDING_SOURCES {
            return Err(format!(
                "evidence: {} pending sources (the limit is {MAX_PENDING_SOURCES})",
                self.pending.len()
            ));
        }
        self.sources = self.sources.max(self.pending.len() as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_by_spans_sources_and_covered_time() {
        let cfg = BehaviorConfig {
            warmup_min_spans: 10,
            warmup_min_sources: 3,
            warmup_secs: 60,
            ..Default::default()
        };
        let mut e = WarmupEvidence::default();
        // Many spans of one trace over a long time: one source, not warm.
        for i in 0..20 {
            e.observe(1_000 * NANOS + i * 10 * NANOS, Some(7), &cfg);
        }
        assert!(!e.is_warm(&cfg));
        e.observe(1_000 * NANOS, Some(8), &cfg);
        assert!(!e.is_warm(&cfg));
        e.observe(1_000 * NANOS, Some(9), &cfg);
        assert!(e.is_warm(&cfg));
        assert!(e.pending.is_empty(), "hashes dropped once counted");
        // Many sources in one second: not enough covered time.
        let mut e = WarmupEvidence::default();
        for i in 0..50 {
            e.observe(5 * NANOS, Some(i), &cfg);
        }
        assert!(!e.is_warm(&cfg));
        assert_eq!(e.sources, 3);
        // WarmupEvidence survives serialization.
        e.observe(70 * NANOS, Some(1), &cfg);
        let back: WarmupEvidence =
            serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert!(back.is_warm(&cfg));
    }
}
