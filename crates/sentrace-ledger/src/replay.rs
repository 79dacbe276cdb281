//! Replay protection for signed sources: per-source sequence numbers, a sliding window of
//! recently accepted sequences, a timestamp window, and a record of gaps.
//!
//! The guard is a plain value; the server persists it (it is `serde`-serializable) and
//! calls [`ReplayGuard::admit`] after the source signature verified, so a forged request
//! cannot burn a sequence number.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Replay-window settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// How many sequence numbers below the highest seen are still accepted once (late,
    /// out-of-order delivery). Older ones are refused as stale. At most 65536.
    pub sequence_window: u64,
    /// The largest accepted distance between the source's timestamp and the server's
    /// clock, in seconds, either way.
    pub time_window_secs: u64,
    /// The most sources tracked. A source idle for longer than the time window may be
    /// forgotten to make room (its old batches fall outside the time window anyway).
    pub max_sources: usize,
    /// The most gap ranges remembered per source (older ones are dropped; the count of
    /// missing sequences keeps growing).
    pub max_gap_ranges: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            sequence_window: 1024,
            time_window_secs: 300,
            max_sources: 100_000,
            max_gap_ranges: 64,
        }
    }
}

/// What the guard decided about one batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ReplayDecision {
    /// The next sequence (or the first seen from this source): accepted.
    Accept,
    /// Accepted, skipping sequences `missing_from..=missing_to`, which are recorded as a
    /// gap.
    AcceptWithGap {
        /// First missing sequence.
        missing_from: u64,
        /// Last missing sequence.
        missing_to: u64,
    },
    /// Accepted late: a sequence inside the window that had not been seen (fills a gap).
    AcceptLate,
    /// Refused: this (source, sequence) was already accepted.
    Replay,
    /// Refused: the sequence is below the window, so it cannot be told from a replay.
    Stale {
        /// The lowest sequence still accepted.
        lowest_accepted: u64,
    },
    /// Refused: the source timestamp is too far from the server's clock.
    OutsideTimeWindow {
        /// Source time minus server time, in seconds (negative: in the past).
        skew_secs: i64,
    },
    /// Refused: too many sources are being tracked and none can be forgotten.
    TooManySources,
}

impl ReplayDecision {
    /// True if the batch may be accepted.
    pub fn accepted(&self) -> bool {
        matches!(
            self,
            ReplayDecision::Accept
                | ReplayDecision::AcceptWithGap { .. }
                | ReplayDecision::AcceptLate
        )
    }
}

/// What is remembered about one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceState {
    /// The highest sequence accepted.
    pub highest: u64,
    /// Accepted sequences in `[highest - window, highest]`.
    pub recent: BTreeSet<u64>,
    /// Recorded gaps `(from, to)`, inclusive, most recent last.
    pub gaps: VecDeque<(u64, u64)>,
    /// Total sequences skipped over (not reduced when a late batch fills a gap).
    pub missing_total: u64,
    /// The server time of the last accepted batch, Unix ns.
    pub last_seen_unix_nanos: u64,
}

/// Per-source replay state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplayGuard {
    config: ReplayConfig,
    sources: BTreeMap<String, SourceState>,
}

const NANOS: i128 = 1_000_000_000;

impl ReplayGuard {
    /// An empty guard. The window is clamped to 65536 sequences.
    pub fn new(mut config: ReplayConfig) -> Self {
        config.sequence_window = config.sequence_window.min(65_536);
        Self {
            config,
            sources: BTreeMap::new(),
        }
    }

    /// The state kept for `source`.
    pub fn source(&self, source: &str) -> Option<&SourceState> {
        self.sources.get(source)
    }

    /// Decides on a batch `(source, sequence)` sent at `source_time` (Unix ns) and received
    /// at `now` (Unix ns), and records it if accepted.
    pub fn admit(
        &mut self,
        source: &str,
        sequence: u64,
        source_time_unix_nanos: u64,
        now_unix_nanos: u64,
    ) -> ReplayDecision {
        let skew = i128::from(source_time_unix_nanos) - i128::from(now_unix_nanos);
        if skew.unsigned_abs() > u128::from(self.config.time_window_secs) * NANOS as u128 {
            let secs = (skew / NANOS).clamp(i128::from(i64::MIN), i128::from(i64::MAX));
            return ReplayDecision::OutsideTimeWindow {
                skew_secs: secs as i64,
            };
        }
        self.admit_sequence(source, sequence, now_unix_nanos)
    }

    /// Records a batch that was accepted before (read back from the log or the WAL after
    /// a restart): the sequence rules of [`ReplayGuard::admit`] without the time window,
    /// so a replay of it is refused again. Returns what `admit` would have decided.
    pub fn restore(&mut self, source: &str, sequence: u64, seen_unix_nanos: u64) -> ReplayDecision {
        self.admit_sequence(source, sequence, seen_unix_nanos)
    }

    /// The guard with new settings (a persisted guard loaded under the current config).
    /// The window is clamped to 65536 sequences.
    pub fn with_config(mut self, mut config: ReplayConfig) -> Self {
        config.sequence_window = config.sequence_window.min(65_536);
        self.config = config;
        self
    }

    /// Every tracked source and its state, by name.
    pub fn sources(&self) -> impl Iterator<Item = (&str, &SourceState)> {
        self.sources.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn admit_sequence(
        &mut self,
        source: &str,
        sequence: u64,
        now_unix_nanos: u64,
    ) -> ReplayDecision {
        if !self.sources.contains_key(source) && !self.make_room(now_unix_nanos) {
            return ReplayDecision::TooManySources;
        }
        let window = self.config.sequence_window;
        let max_gaps = self.config.max_gap_ranges;
        let st = self.sources.entry(source.to_owned()).or_default();
        let first = st.recent.is_empty() && st.highest == 0 && st.last_seen_unix_nanos == 0;
        let decision = if first {
            st.highest = sequence;
            ReplayDecision::Accept
        } else if sequence > st.highest {
            let d = if sequence - st.highest > 1 {
                let gap = (st.highest + 1, sequence - 1);
                st.missing_total = st.missing_total.saturating_add(gap.1 - gap.0 + 1);
                st.gaps.push_back(gap);
                while st.gaps.len() > max_gaps {
                    st.gaps.pop_front();
                }
                ReplayDecision::AcceptWithGap {
                    missing_from: gap.0,
                    missing_to: gap.1,
                }
            } else {
                ReplayDecision::Accept
            };
            st.highest = sequence;
            d
        } else {
            let lowest = st.highest.saturating_sub(window);
            if sequence < lowest {
                return ReplayDecision::Stale {
                    lowest_accepted: lowest,
                };
            }
            if st.recent.contains(&sequence) {
                return ReplayDecision::Replay;
            }
            ReplayDecision::AcceptLate
        };
        st.recent.insert(sequence);
        let lowest = st.highest.saturating_sub(window);
        st.recent = st.recent.split_off(&lowest);
        st.last_seen_unix_nanos = now_unix_nanos.max(1);
        decision
    }

    /// Forgets one source idle for longer than the time window if the table is full.
    fn make_room(&mut self, now: u64) -> bool {
        if self.sources.len() < self.config.max_sources {
            return true;
        }
        let horizon =
            now.saturating_sub(self.config.time_window_secs.saturating_mul(1_000_000_000));
        let idle = self
            .sources
            .iter()
            .filter(|(_, s)| s.last_seen_unix_nanos < horizon)
            .min_by_key(|(_, s)| s.last_seen_unix_nanos)
            .map(|(k, _)| k.clone());
        match idle {
            Some(k) => {
                self.sources.remove(&k);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const NOW: u64 = 1_700_000_000 * S;

    #[test]
    fn accepts_in_order_and_refuses_replays() {
        let mut g = ReplayGuard::new(ReplayConfig::default());
        assert_eq!(g.admit("a", 10, NOW, NOW), ReplayDecision::Accept);
        assert_eq!(g.admit("a", 11, NOW, NOW), ReplayDecision::Accept);
        assert_eq!(g.admit("a", 11, NOW, NOW), ReplayDecision::Replay);
        assert_eq!(g.admit("a", 10, NOW, NOW), ReplayDecision::Replay);
        // Another source has its own sequence space.
        assert_eq!(g.admit("b", 11, NOW, NOW), ReplayDecision::Accept);
    }

    #[test]
    fn records_gaps_and_late_fills() {
        let mut g = ReplayGuard::new(ReplayConfig::default());
        g.admit("a", 1, NOW, NOW);
        assert_eq!(
            g.admit("a", 5, NOW, NOW),
            ReplayDecision::AcceptWithGap {
                missing_from: 2,
                missing_to: 4
            }
        );
        assert_eq!(g.admit("a", 3, NOW, NOW), ReplayDecision::AcceptLate);
        assert_eq!(g.admit("a", 3, NOW, NOW), ReplayDecision::Replay);
        let st = g.source("a").unwrap();
        assert_eq!(st.missing_total, 3);
        assert_eq!(st.gaps, VecDeque::from([(2, 4)]));
    }

    #[test]
    fn refuses_stale_and_out_of_window_times() {
        let mut g = ReplayGuard::new(ReplayConfig {
            sequence_window: 4,
            ..ReplayConfig::default()
        });
        g.admit("a", 100, NOW, NOW);
        assert_eq!(
            g.admit("a", 95, NOW, NOW),
            ReplayDecision::Stale {
                lowest_accepted: 96
            }
        );
        assert_eq!(g.admit("a", 97, NOW, NOW), ReplayDecision::AcceptLate);
        assert_eq!(
            g.admit("a", 101, NOW - 301 * S, NOW),
            ReplayDecision::OutsideTimeWindow { skew_secs: -301 }
        );
        assert_eq!(
            g.admit("a", 101, NOW + 400 * S, NOW),
            ReplayDecision::OutsideTimeWindow { skew_secs: 400 }
        );
        // A refused batch did not consume its sequence.
        assert_eq!(g.admit("a", 101, NOW, NOW), ReplayDecision::Accept);
    }

    #[test]
    fn restore_ignores_the_time_window_and_refuses_replays_after() {
        let mut g = ReplayGuard::new(ReplayConfig::default());
        // A batch accepted an hour ago, read back from the log after a restart.
        assert_eq!(g.restore("a", 7, NOW - 3600 * S), ReplayDecision::Accept);
        assert_eq!(g.admit("a", 7, NOW, NOW), ReplayDecision::Replay);
        assert_eq!(g.admit("a", 8, NOW, NOW), ReplayDecision::Accept);
        let g = g.with_config(ReplayConfig {
            sequence_window: 1 << 40,
            ..ReplayConfig::default()
        });
        assert_eq!(g.config.sequence_window, 65_536);
    }

    #[test]
    fn bounded_sources_forget_only_idle_ones() {
        let mut g = ReplayGuard::new(ReplayConfig {
            max_sources: 2,
            ..ReplayConfig::default()
        });
        g.admit("a", 1, NOW, NOW);
        g.admit("b", 1, NOW, NOW);
        assert_eq!(g.admit("c", 1, NOW, NOW), ReplayDecision::TooManySources);
        let later = NOW + 400 * S;
        g.admit("b", 2, later, later);
        assert_eq!(g.admit("c", 1, later, later), ReplayDecision::Accept);
        assert!(g.source("a").is_none());
        assert_eq!(g.sources().map(|(k, _)| k).collect::<Vec<_>>(), ["b", "c"]);
        let json = serde_json::to_string(&g).unwrap();
        let back: ReplayGuard = serde_json::from_str(&json).unwrap();
        assert_eq!(back, g);
    }
}
