//! Behavioral thresholds (the `[behavior]` table of a ruleset).

use serde::{Deserialize, Serialize};

/// Thresholds of the behavioral detectors. Every window is in seconds of span time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviorConfig {
    /// Warm-up by evidence (see `behavior::evidence`): `new_edge` and `new_endpoint` judge a
    /// service only once its spans cover at least this many seconds of span time (latest
    /// minus earliest start) ...
    pub warmup_secs: u64,
    /// ... and it has shown at least this many spans ...
    pub warmup_min_spans: u64,
    /// ... from at least this many distinct sources (traces). Evidence is kept with the
    /// baselines across restarts, so a restart never starts a new warm-up.
    pub warmup_min_sources: u64,
    /// Most keys tracked per tenant in each table (edges, endpoints, clients, users, ...);
    /// beyond it the least recently seen key is evicted.
    pub max_keys: usize,
    /// Brute force: authentication failures from one client address within the window.
    pub brute_force_failures: u32,
    /// Brute-force and credential-stuffing window.
    pub auth_window_secs: u64,
    /// Credential stuffing: distinct users failing from one client address in the window.
    pub stuffing_distinct_users: u32,
    /// Enumeration: distinct object ids answered 403/404 to one client in the window.
    pub enumeration_distinct_ids: u32,
    /// Enumeration window.
    pub enumeration_window_secs: u64,
    /// Exfiltration: a response larger than `median + k * MAD` of the endpoint's sizes ...
    pub exfil_mad_k: f64,
    /// ... and at least this many times the median ...
    pub exfil_min_ratio: f64,
    /// ... and at least this many bytes.
    pub exfil_min_bytes: u64,
    /// Privilege probing: 403s on admin routes from one client within the window ...
    pub probe_denials: u32,
    /// ... followed by a 2xx on an admin route within the same window.
    pub probe_window_secs: u64,
    /// Path segments that make a route an admin route.
    pub admin_markers: Vec<String>,
    /// Shift detectors: bucket width of per-service rate, error and latency series.
    pub shift_bucket_secs: u64,
    /// Shift detectors: fire when a bucket is more than `k` scaled MADs from the median of
    /// the previous buckets ...
    pub shift_mad_k: f64,
    /// ... and the bucket has at least this many spans (volume: the median has at least it).
    pub shift_min_count: u64,
    /// Number of past buckets kept per series.
    pub shift_history: usize,
    /// Minimum seconds between two findings of one rule for one key.
    pub cooldown_secs: u64,
}

impl Default for BehaviorConfig {
    fn default() -> Self {
        Self {
            warmup_secs: 300,
            warmup_min_spans: 1_000,
            warmup_min_sources: 100,
            max_keys: 10_000,
            brute_force_failures: 20,
            auth_window_secs: 300,
            stuffing_distinct_users: 10,
            enumeration_distinct_ids: 30,
            enumeration_window_secs: 300,
            exfil_mad_k: 12.0,
            exfil_min_ratio: 8.0,
            exfil_min_bytes: 1_000_000,
            probe_denials: 5,
            probe_window_secs: 600,
            admin_markers: vec![
                "admin".into(),
                "internal".into(),
                "manage".into(),
                "actuator".into(),
                "debug".into(),
            ],
            shift_bucket_secs: 60,
            shift_mad_k: 8.0,
            shift_min_count: 20,
            shift_history: 60,
            cooldown_secs: 900,
        }
    }
}

impl BehaviorConfig {
    /// Checks ranges; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_keys", self.max_keys as u64),
            ("auth_window_secs", self.auth_window_secs),
            ("enumeration_window_secs", self.enumeration_window_secs),
            ("probe_window_secs", self.probe_window_secs),
            ("shift_bucket_secs", self.shift_bucket_secs),
            ("shift_history", self.shift_history as u64),
            ("brute_force_failures", u64::from(self.brute_force_failures)),
            (
                "stuffing_distinct_users",
                u64::from(self.stuffing_distinct_users),
            ),
            (
                "enumeration_distinct_ids",
                u64::from(self.enumeration_distinct_ids),
            ),
            ("probe_denials", u64::from(self.probe_denials)),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        if self.max_keys > 1_000_000 {
            return Err("max_keys must be at most 1000000".into());
        }
        if self.warmup_min_sources > super::evidence::MAX_PENDING_SOURCES as u64 {
            return Err(format!(
                "warmup_min_sources must be at most {}",
                super::evidence::MAX_PENDING_SOURCES
            ));
        }
        if self.shift_history > 10_000 {
            return Err("shift_history must be at most 10000".into());
        }
        for (name, v) in [
            ("exfil_mad_k", self.exfil_mad_k),
            ("exfil_min_ratio", self.exfil_min_ratio),
            ("shift_mad_k", self.shift_mad_k),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a positive number"));
            }
        }
        Ok(())
    }
}
