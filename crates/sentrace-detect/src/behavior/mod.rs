//! Behavioral detectors with per-tenant baselines.

mod config;

pub use config::BehaviorConfig;

/// Names of the builtin behavioral detectors.
pub const BEHAVIORAL_MATCHERS: &[&str] = &[
    "new_edge",
    "new_endpoint",
    "brute_force",
    "credential_stuffing",
    "enumeration",
    "exfiltration",
    "privilege_probing",
    "error_shift",
    "latency_shift",
    "volume_shift",
];

/// Per-tenant baselines (filled in by the behavioral detectors).
#[derive(Debug, Default)]
pub struct Baselines {}

impl Baselines {
    /// Empty baselines.
    pub fn new() -> Self {
        Self {}
    }

    /// Feeds a batch to the baselines and appends behavioral findings.
    pub(crate) fn observe(
        &self,
        _tenant: &sentrace_core::TenantId,
        _rules: &crate::detector::Compiled,
        _rs: &[sentrace_core::proto::trace::v1::ResourceSpans],
        _now: u64,
        _out: &mut Vec<crate::Finding>,
    ) {
    }
}
