//! Store configuration.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::StoreError;

/// Configuration of the embedded store (`[store]` in the server's TOML).
///
/// Durations accept whole seconds (`30`) or a string with a unit suffix
/// (`"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// How often spans buffered in the WAL memtable are written out as Parquet blocks.
    #[serde(with = "duration")]
    pub flush_interval: Duration,
    /// Flush early once this many spans are buffered in memory (across tenants). Appends
    /// get `StoreError::Busy` while twice this many are buffered (flushing is behind).
    pub flush_max_spans: usize,
    /// Blocks whose newest span ended longer ago than this are deleted.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// Bound on encoded bytes waiting for the WAL writer; an append beyond it gets
    /// `StoreError::Busy` instead of being buffered.
    pub max_queue_bytes: usize,
    /// A WAL segment is closed and a new one started once it reaches this size in bytes.
    pub wal_segment_bytes: u64,
    /// Maximum number of rows in one Parquet row group (the unit of pruning and of reading).
    pub block_row_group_rows: usize,
    /// zstd level of block columns (1-22): higher is smaller and slower to write.
    pub block_zstd_level: i32,
    /// Decrypted block footers kept in memory (least recently used out first); 0 keeps none.
    pub block_footer_cache: usize,
    /// What to do when replay finds a damaged record that is not the tail of the last
    /// segment: `false` (default) refuses to open the store; `true` keeps the records
    /// before the damage, renames the segment to `*.corrupt` for forensics and reports it.
    pub quarantine_corrupt_wal: bool,
    /// Where blocks and transparency-log objects live: `s3://bucket/prefix` for an
    /// S3-compatible bucket, `gs://bucket/prefix` for Google Cloud Storage,
    /// `az://container/prefix` for Azure Blob Storage (credentials and endpoints from the
    /// provider's environment variables, never from here). Absent: the data directory's
    /// `blocks/`. The WAL always stays on local disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A PEM CA certificate to trust (besides the system roots) for TLS to the object
    /// store at `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// With `url` and several nodes sharing the bucket: how often this node lists the
    /// other nodes' blocks and keys. Their spans become visible here within their flush
    /// interval plus this.
    #[serde(with = "duration")]
    pub peer_refresh_interval: Duration,
    /// Compaction: once a tenant has this many small blocks of this node (fewer than a
    /// quarter of `flush_max_spans` spans each), they are merged into one after a flush,
    /// keeping every span's seal so `verify` still passes. 0 (default) turns it off.
    pub compact_min_blocks: usize,
    /// On SIGTERM or ctrl-c, `sentrace serve` flushes buffered spans into blocks before it
    /// exits, waiting at most this long, so that a rolling restart leaves nothing only in
    /// the WAL. A flush that fails or takes longer is reported; its spans stay in the WAL
    /// and are replayed at the next start. 0 turns it off.
    #[serde(with = "duration")]
    pub shutdown_flush_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(30),
            flush_max_spans: 100_000,
            retention: Duration::from_secs(7 * 24 * 3600),
            max_queue_bytes: 64 << 20,
            wal_segment_bytes: 64 << 20,
            block_row_group_rows: 2048,
            block_zstd_level: 1,
            block_footer_cache: 256,
            quarantine_corrupt_wal: false,
            url: None,
            ca_file: None,
            peer_refresh_interval: Duration::from_secs(5),
            compact_min_blocks: 0,
            shutdown_flush_timeout: Duration::from_secs(30),
        }
    }
}

impl StoreConfig {
    /// Checks value ranges; run before opening a store.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |field, reason: &str| {
            Err(StoreError::Config {
                field,
                reason: reason.to_string(),
            })
        };
        if self.flush_interval < Duration::from_millis(10) {
            return bad("flush_interval", "must be at least 10ms");
        }
        if self.flush_max_spans == 0 {
            return bad("flush_max_spans", "must be at least 1");
        }
        if self.retention < Duration::from_secs(1) {
            return bad("retention", "must be at least 1s");
        }
        if self.max_queue_bytes < 1024 || self.max_queue_bytes > u32::MAX as usize {
            return bad("max_queue_bytes", "must be between 1 KiB and 4 GiB");
        }
        if self.wal_segment_bytes < 4096 {
            return bad("wal_segment_bytes", "must be at least 4096");
        }
        if self.block_row_group_rows == 0 {
            return bad("block_row_group_rows", "must be at least 1");
        }
        if !(1..=22).contains(&self.block_zstd_level) {
            return bad("block_zstd_level", "must be between 1 and 22");
        }
        if self.peer_refresh_interval < Duration::from_millis(100) {
            return bad("peer_refresh_interval", "must be at least 100ms");
        }
        if self.shutdown_flush_timeout > Duration::from_secs(3600) {
            return bad(
                "shutdown_flush_timeout",
                "must be at most 1h (0 turns it off)",
            );
        }
        if self.compact_min_blocks == 1 {
            return bad("compact_min_blocks", "must be 0 (off) or at least 2");
        }
        if let Some(url) = &self.url {
            crate::objects::StoreUrl::parse(url)?;
        } else if self.ca_file.is_some() {
            return bad(
                "ca_file",
                "is only used with url = \"s3://...\", \"gs://...\" or \"az://...\"",
            );
        }
        Ok(())
    }
}

/// Serde for durations: integer seconds or a string with a unit.
pub mod duration {
    use super::*;

    /// Parses `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"` or a bare number of seconds.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (num, unit) = text.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a duration like \"30s\", \"5m\" or \"7d\""))?;
        let mult_ms: u64 = match unit.trim() {
            "ms" => 1,
            "" | "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
        };
        n.checked_mul(mult_ms)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("duration {text:?} is too large"))
    }

    /// Formats as whole seconds (`"30s"`) or milliseconds when needed.
    pub fn format(d: &Duration) -> String {
        if d.subsec_millis() == 0 {
            format!("{}s", d.as_secs())
        } else {
            format!("{}ms", d.as_millis())
        }
    }

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        format(d).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_typos() {
        let cfg: StoreConfig =
            toml::from_str("flush_interval = \"5s\"\nretention = \"2d\"\nmax_queue_bytes = 4096")
                .unwrap();
        assert_eq!(cfg.flush_interval, Duration::from_secs(5));
        assert_eq!(cfg.retention, Duration::from_secs(2 * 86_400));
        assert_eq!(cfg.max_queue_bytes, 4096);
        cfg.validate().unwrap();
        let back: StoreConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        assert!(toml::from_str::<StoreConfig>("flush_intervall = 5").is_err());
        assert!(toml::from_str::<StoreConfig>("retention = \"5 fortnights\"").is_err());
        let secs: StoreConfig = toml::from_str("flush_interval = 7").unwrap();
        assert_eq!(secs.flush_interval, Duration::from_secs(7));
        assert!(
            StoreConfig {
                flush_max_spans: 0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
