//! The append side of a transparency log: entries in, tlog-tiles objects and checkpoint
//! bodies out. No I/O: the caller writes the returned `(path, bytes)` pairs.
//!
//! State is small and bounded: the right frontier of the tree (at most 64 hashes), the
//! right-edge hash tile of each level (at most 256 hashes each) and the entries of the
//! current bundle (at most 256). [`Log::reopen`] rebuilds it from the tiles.

use crate::checkpoint::{Checkpoint, Origin};
use crate::manifest::BatchManifest;
use crate::merkle::{CompactRange, Hash, leaf_hash, node_hash};
use crate::tiles::{
    LogReader, MAX_ENTRY_SIZE, TILE_HEIGHT, TILE_WIDTH, TileError, bundle_path, decode_bundle,
    decode_hash_tile, encode_bundle, encode_hash_tile, read_required, tile_path,
};

/// An object to write: a tlog-tiles path and its bytes.
pub type Write = (String, Vec<u8>);

/// When to publish a new checkpoint: after `every_secs` seconds or `every_entries` new
/// entries, whichever comes first (and only if the log grew).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointCadence {
    /// The longest time between checkpoints while entries arrive, in seconds (≥ 1).
    pub every_secs: u64,
    /// The most entries appended before a checkpoint is due (≥ 1).
    pub every_entries: u64,
}

impl Default for CheckpointCadence {
    fn default() -> Self {
        Self {
            every_secs: 5,
            every_entries: 1000,
        }
    }
}

/// A cadence value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint cadence: {0} must be at least 1")]
pub struct CadenceError(pub &'static str);

impl CheckpointCadence {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), CadenceError> {
        if self.every_secs == 0 {
            return Err(CadenceError("every_secs"));
        }
        if self.every_entries == 0 {
            return Err(CadenceError("every_entries"));
        }
        Ok(())
    }

    /// True if a checkpoint is due: the log grew since the last checkpoint (of
    /// `last_size`, published at `last_unix_secs`) and either limit was reached.
    pub fn due(&self, last_size: u64, last_unix_secs: u64, size: u64, now_unix_secs: u64) -> bool {
        size > last_size
            && (size - last_size >= self.every_entries
                || now_unix_secs.saturating_sub(last_unix_secs) >= self.every_secs)
    }
}

/// An append-only log.
#[derive(Debug, Clone)]
pub struct Log {
    origin: Origin,
    range: CompactRange,
    /// `edge[L]`: hashes at level `L` (height `8L`) in the current, incomplete tile.
    edge: Vec<Vec<Hash>>,
    /// Entries of the current, incomplete bundle.
    bundle: Vec<Vec<u8>>,
    /// Full tiles and bundles completed since the last [`Log::flush`].
    done: Vec<Write>,
}

impl Log {
    /// An empty log.
    pub fn new(origin: Origin) -> Self {
        Self {
            origin,
            range: CompactRange::new(),
            edge: Vec::new(),
            bundle: Vec::new(),
            done: Vec::new(),
        }
    }

    /// The origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.range.root()
    }

    /// The checkpoint body at the current size (sign it with
    /// [`crate::checkpoint::LogSigner::sign`] after writing [`Log::flush`]'s objects).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(self.origin.clone(), self.size(), self.root())
    }

    /// Appends a manifest; returns its index.
    pub fn append_manifest(&mut self, m: &BatchManifest) -> Result<u64, TileError> {
        self.append(&m.encode())
    }

    /// Appends one entry; returns its index.
    pub fn append(&mut self, entry: &[u8]) -> Result<u64, TileError> {
        if entry.len() > MAX_ENTRY_SIZE {
            return Err(TileError::EntryTooLarge(entry.len()));
        }
        let index = self.size();
        for (height, at, hash) in self.range.push(leaf_hash(entry)) {
            let height = u32::from(height);
            if height % TILE_HEIGHT != 0 {
                continue;
            }
            let level = (height / TILE_HEIGHT) as usize;
            if self.edge.len() <= level {
                self.edge.resize(level + 1, Vec::new());
            }
            self.edge[level].push(hash);
            if self.edge[level].len() as u64 == TILE_WIDTH {
                let path = tile_path(level as u32, at / TILE_WIDTH, TILE_WIDTH);
                self.done.push((path, encode_hash_tile(&self.edge[level])));
                self.edge[level].clear();
            }
        }
        self.bundle.push(entry.to_vec());
        if self.bundle.len() as u64 == TILE_WIDTH {
            let bytes = encode_bundle(self.bundle.iter().map(Vec::as_slice))?;
            self.done
                .push((bundle_path(index / TILE_WIDTH, TILE_WIDTH), bytes));
            self.bundle.clear();
        }
        Ok(index)
    }

    /// The objects to write before publishing a checkpoint at the current size: the full
    /// tiles and bundles completed since the last flush, then the partial tiles and bundle
    /// of the right edge. Writing them again is harmless (same path, same bytes).
    pub fn flush(&mut self) -> Result<Vec<Write>, TileError> {
        let mut out = std::mem::take(&mut self.done);
        let size = self.size();
        for (level, hashes) in self.edge.iter().enumerate() {
            if hashes.is_empty() {
                continue;
            }
            let nodes = size >> (level as u32 * TILE_HEIGHT);
            out.push((
                tile_path(level as u32, nodes / TILE_WIDTH, hashes.len() as u64),
                encode_hash_tile(hashes),
            ));
        }
        if !self.bundle.is_empty() {
            out.push((
                bundle_path(size / TILE_WIDTH, self.bundle.len() as u64),
                encode_bundle(self.bundle.iter().map(Vec::as_slice))?,
            ));
        }
        Ok(out)
    }

    /// The paths [`Log::reopen`] reads for a log of `size` entries.
    pub fn reopen_paths(size: u64) -> Vec<String> {
        let mut out = Vec::new();
        let mut level = 0u32;
        loop {
            let nodes = size.checked_shr(level * TILE_HEIGHT).unwrap_or(0);
            if nodes == 0 {
                break;
            }
            if !nodes.is_multiple_of(TILE_WIDTH) {
                out.push(tile_path(level, nodes / TILE_WIDTH, nodes % TILE_WIDTH));
            }
            level += 1;
        }
        if !size.is_multiple_of(TILE_WIDTH) {
            out.push(bundle_path(size / TILE_WIDTH, size % TILE_WIDTH));
        }
        out
    }

    /// Rebuilds the state of a log of `size` entries with root `root` (from its latest
    /// verified checkpoint) from its right-edge tiles, and checks the root.
    pub fn reopen(
        origin: Origin,
        size: u64,
        root: &Hash,
        reader: &dyn LogReader,
    ) -> Result<Self, TileError> {
        let mut edge = Vec::new();
        let mut level = 0u32;
        loop {
            let nodes = size.checked_shr(level * TILE_HEIGHT).unwrap_or(0);
            if nodes == 0 {
                break;
            }
            let width = nodes % TILE_WIDTH;
            let hashes = if width == 0 {
                Vec::new()
            } else {
                let path = tile_path(level, nodes / TILE_WIDTH, width);
                decode_hash_tile(&path, &read_required(reader, &path)?, width)?
            };
            edge.push(hashes);
            level += 1;
        }
        // Each complete subtree of the frontier lies in the right-edge tile of level
        // height / 8: fold its 2^(height % 8) hashes.
        let mut parts = Vec::new();
        for (height, start) in CompactRange::decomposition(size) {
            let height = u32::from(height);
            let level = (height / TILE_HEIGHT) as usize;
            let r = height % TILE_HEIGHT;
            let first = (start >> (level as u32 * TILE_HEIGHT)) % TILE_WIDTH;
            let tile = edge.get(level).ok_or(TileError::RootMismatch { size })?;
            let slice = tile
                .get(first as usize..first as usize + (1usize << r))
                .ok_or(TileError::RootMismatch { size })?;
            let mut layer = slice.to_vec();
            while layer.len() > 1 {
                layer = layer
                    .chunks_exact(2)
                    .map(|p| node_hash(&p[0], &p[1]))
                    .collect();
            }
            parts.push(layer[0]);
        }
        let range =
            CompactRange::from_parts(size, &parts).ok_or(TileError::RootMismatch { size })?;
        if &range.root() != root {
            return Err(TileError::RootMismatch { size });
        }
        let width = size % TILE_WIDTH;
        let bundle = if width == 0 {
            Vec::new()
        } else {
            let path = bundle_path(size / TILE_WIDTH, width);
            let bytes = read_required(reader, &path)?;
            let entries = decode_bundle(&path, &bytes, width)?;
            // The pending entries must be the leaves of the level-0 edge tile.
            let level0 = edge.first().map(Vec::as_slice).unwrap_or(&[]);
            if entries.len() != level0.len()
                || entries.iter().zip(level0).any(|(e, h)| &leaf_hash(e) != h)
            {
                return Err(TileError::Bundle {
                    path,
                    why: "entries do not match the level-0 tile",
                });
            }
            entries.into_iter().map(<[u8]>::to_vec).collect()
        };
        Ok(Self {
            origin,
            range,
            edge,
            bundle,
            done: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests;
