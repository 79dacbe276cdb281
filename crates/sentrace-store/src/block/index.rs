//! The block index: what the store keeps in memory about every block so that a read opens
//! only the blocks that may answer it.
//!
//! It is written into the block's encrypted footer (key-value metadata [`super::INDEX_KEY`],
//! JSON) and holds a split-block bloom filter (Parquet's SBBF) over the block's trace ids
//! and, per service, the earliest and latest span start. A few kilobytes per block of
//! 100,000 spans.

use std::collections::{BTreeMap, HashSet};

use base64::Engine;
use parquet::bloom_filter::Sbbf;
use sentrace_core::TraceId;

use super::write::BLOOM_FPP;
use crate::{SpanEntry, SpanFilter, StoreError};

/// Longest index accepted from a footer.
const MAX_INDEX_JSON: usize = 16 << 20;
/// Most services an index may list.
const MAX_SERVICES: usize = 100_000;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    /// Base64 SBBF bitset over every trace id of the block.
    bloom: String,
    /// Service name → [earliest start, latest start], Unix nanoseconds.
    services: BTreeMap<String, [u64; 2]>,
}

/// What a block may hold, without opening it.
#[derive(Debug, Default)]
pub(crate) struct BlockIndex {
    /// Over all trace ids; `None` for blocks written before the index existed.
    bloom: Option<Sbbf>,
    /// Per service, the span start range; `None` for blocks without an index.
    services: Option<BTreeMap<String, (u64, u64)>>,
}

/// Collects a [`BlockIndex`] while a block is written.
pub(crate) struct IndexBuilder {
    traces: HashSet<TraceId>,
    services: BTreeMap<String, (u64, u64)>,
}

impl IndexBuilder {
    pub fn add<S: std::borrow::Borrow<SpanEntry>>(&mut self, spans: &[S]) {
        for s in spans {
            let s = s.borrow();
            self.traces.insert(s.trace_id);
            let st = s.start_unix_nanos;
            match self.services.get_mut(s.service.as_str()) {
                Some(r) => *r = (r.0.min(st), r.1.max(st)),
                None => {
                    self.services.insert(s.service.clone(), (st, st));
                }
            }
        }
    }

    /// The JSON kept in the footer.
    pub fn finish(self, block: &str) -> Result<String, StoreError> {
        let err = |reason: String| StoreError::Parquet {
            block: block.to_string(),
            reason,
        };
        let mut sbbf = Sbbf::new_with_ndv_fpp(self.traces.len().max(1) as u64, BLOOM_FPP)
            .map_err(|e| err(e.to_string()))?;
        for t in &self.traces {
            sbbf.insert(t.as_bytes().as_slice());
        }
        let mut bits = Vec::new();
        sbbf.write_bitset(&mut bits)
            .map_err(|e| err(e.to_string()))?;
        let stored = Stored {
            bloom: base64::engine::general_purpose::STANDARD.encode(bits),
            services: self
                .services
                .into_iter()
                .map(|(k, (a, b))| (k, [a, b]))
                .collect(),
        };
        serde_json::to_string(&stored).map_err(|e| err(e.to_string()))
    }
}

impl BlockIndex {
    pub fn builder() -> IndexBuilder {
        IndexBuilder {
            traces: HashSet::new(),
            services: BTreeMap::new(),
        }
    }

    /// Parses the footer's index; `Ok(None)` if the block has none (older blocks).
    pub fn parse(json: Option<&str>) -> Result<Option<Self>, String> {
        let Some(json) = json else {
            return Ok(None);
        };
        if json.len() > MAX_INDEX_JSON {
            return Err(format!("block index of {} bytes is too long", json.len()));
        }
        let stored: Stored = serde_json::from_str(json).map_err(|e| format!("block index: {e}"))?;
        if stored.services.len() > MAX_SERVICES {
            return Err("block index lists too many services".into());
        }
        let bits = base64::engine::general_purpose::STANDARD
            .decode(&stored.bloom)
            .map_err(|e| format!("block index bloom filter: {e}"))?;
        if bits.is_empty() || bits.len() % 32 != 0 {
            return Err("block index bloom filter has a bad length".into());
        }
        let mut services = BTreeMap::new();
        for (k, [a, b]) in stored.services {
            if a > b {
                return Err(format!("block index: service {k:?} starts after it ends"));
            }
            services.insert(k, (a, b));
        }
        Ok(Some(Self {
            bloom: Some(Sbbf::new(&bits)),
            services: Some(services),
        }))
    }

    /// False only if the block certainly holds no span of `trace_id`.
    pub fn may_hold_trace(&self, trace_id: &TraceId) -> bool {
        self.bloom
            .as_ref()
            .is_none_or(|b| b.check(trace_id.as_bytes().as_slice()))
    }

    /// The services the block holds (none for blocks without an index).
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services
            .iter()
            .flat_map(|m| m.keys().map(String::as_str))
    }

    /// The latest start of a span that may match `f` (its service and time bounds), `None`
    /// if no span of the block can match, `Some(u64::MAX)` if the index cannot tell.
    pub fn newest_match(&self, f: &SpanFilter) -> Option<u64> {
        let Some(services) = &self.services else {
            return Some(u64::MAX);
        };
        let ranges: Vec<&(u64, u64)> = match &f.service {
            Some(s) => services.get(s.as_str()).into_iter().collect(),
            None => services.values().collect(),
        };
        let mut newest: Option<u64> = None;
        for &(lo, hi) in ranges {
            if f.start_range_overlaps(lo, hi) {
                let n = f.start_max_unix_nanos.map_or(hi, |m| hi.min(m));
                newest = Some(newest.map_or(n, |a| a.max(n)));
            }
        }
        newest
    }
}
