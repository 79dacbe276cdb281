//! Counters of minimized values per kind and action, shared by every batch.

use std::fmt::Write as _;
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

impl MetricsSnapshot {
    /// Prometheus text exposition (format 0.0.4) of the counters.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP sentrace_minimized_values_total Sensitive values minimized, by kind and action.\n\
             # TYPE sentrace_minimized_values_total counter\n",
        );
        for (k, a, n) in &self.values {
            let _ = writeln!(
                out,
                "sentrace_minimized_values_total{{kind=\"{k}\",action=\"{a}\"}} {n}"
            );
        }
        let _ = write!(
            out,
            "# HELP sentrace_minimized_spans_total Spans that went through minimization.\n\
             # TYPE sentrace_minimized_spans_total counter\n\
             sentrace_minimized_spans_total {}\n\
             # HELP sentrace_minimize_allowlist_dropped_total Attributes dropped by allowlist mode.\n\
             # TYPE sentrace_minimize_allowlist_dropped_total counter\n\
             sentrace_minimize_allowlist_dropped_total {}\n\
             # HELP sentrace_minimize_oversize_total String values replaced for exceeding max_value_bytes.\n\
             # TYPE sentrace_minimize_oversize_total counter\n\
             sentrace_minimize_oversize_total {}\n",
            self.spans, self.allowlist_dropped, self.oversize
        );
        out
    }
}
