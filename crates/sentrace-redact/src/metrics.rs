//! Counters of minimized values per kind and action, shared by every batch. Plain atomics:
//! the server exports them through its typed registry (this crate stays free of it).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::kind::{Action, Kind};

/// Lock-free counters. Read them with [`Metrics::snapshot`].
#[derive(Debug)]
pub struct Metrics {
    values: [[AtomicU64; Action::COUNT]; Kind::COUNT],
    spans: AtomicU64,
    allowlist_dropped: AtomicU64,
    oversize: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            values: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            spans: AtomicU64::new(0),
            allowlist_dropped: AtomicU64::new(0),
            oversize: AtomicU64::new(0),
        }
    }
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Values minimized, per (kind, action), non-zero entries only, in kind then action order.
    pub values: Vec<(Kind, Action, u64)>,
    /// Spans minimized.
    pub spans: u64,
    /// Attributes dropped because allowlist mode did not list their key.
    pub allowlist_dropped: u64,
    /// String values replaced whole because they exceeded `max_value_bytes`.
    pub oversize: u64,
}

impl Metrics {
    pub(crate) fn add(&self, kind: Kind, action: Action, n: u64) {
        self.values[kind.index()][action.index()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_report(&self, r: &crate::MinimizeReport) {
        for k in Kind::ALL {
            for a in Action::ALL {
                let n = r.values[k.index()][a.index()];
                if n > 0 {
                    self.add(k, a, n);
                }
            }
        }
        self.spans.fetch_add(r.spans, Ordering::Relaxed);
        self.allowlist_dropped
            .fetch_add(r.allowlist_dropped, Ordering::Relaxed);
        self.oversize.fetch_add(r.oversize, Ordering::Relaxed);
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut values = Vec::new();
        for k in Kind::ALL {
            for a in Action::ALL {
                let n = self.values[k.index()][a.index()].load(Ordering::Relaxed);
                if n > 0 {
                    values.push((k, a, n));
                }
            }
        }
        MetricsSnapshot {
            values,
            spans: self.spans.load(Ordering::Relaxed),
            allowlist_dropped: self.allowlist_dropped.load(Ordering::Relaxed),
            oversize: self.oversize.load(Ordering::Relaxed),
        }
    }
}
