//! C2SP `tlog-tiles` (c2sp.org/tlog-tiles@v1.0.0): paths and contents of hash tiles and
//! entry bundles.
//!
//! - A hash tile at level `L` holds up to 256 consecutive hashes of complete subtrees of
//!   height `8L` (level 0: leaf hashes), concatenated. Path `tile/<L>/<N>[.p/<W>]`.
//! - An entry bundle holds up to 256 consecutive entries, each as a big-endian `u16` length
//!   followed by the entry. Path `tile/entries/<N>[.p/<W>]`.
//! - `<N>` is written in groups of three decimal digits, all but the last prefixed with
//!   `x` (`1234067` → `x001/x234/067`); `.p/<W>` marks a partial tile of width `W < 256`.

use std::collections::{BTreeMap, HashMap};

use crate::merkle::{Hash, node_hash};

/// Hashes (or entries) per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;
/// The largest entry a bundle can hold (its length is a `u16`).
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;
/// The path of the checkpoint next to the tiles.
pub const CHECKPOINT_PATH: &str = "checkpoint";

/// A tile or bundle problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// A hash tile whose length is not the expected number of hashes.
    #[error("hash tile {path} is {len} bytes; expected {expected}")]
    HashTileLength {
        /// The tile's path.
        path: String,
        /// Its length.
        len: usize,
        /// The expected length.
        expected: usize,
    },
    /// An entry bundle that does not split into the expected entries.
    #[error("entry bundle {path} is malformed: {why}")]
    Bundle {
        /// The bundle's path.
        path: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A tile or bundle the reader does not have.
    #[error("{path} is missing")]
    Missing {
        /// Its path.
        path: String,
    },
    /// The reader failed.
    #[error("reading {path}: {message}")]
    Read {
        /// The path.
        path: String,
        /// The reader's message.
        message: String,
    },
    /// An entry longer than 65535 bytes.
    #[error("entry of {0} bytes does not fit a bundle")]
    EntryTooLarge(usize),
    /// Tiles that do not reproduce the expected root.
    #[error("tiles for size {size} do not reproduce the checkpoint root")]
    RootMismatch {
        /// The tree size.
        size: u64,
    },
}

/// The `<N>` path element.
pub fn index_path(n: u64) -> String {
    let digits = n.to_string();
    let pad = (3 - digits.len() % 3) % 3;
    let digits = format!("{}{digits}", "0".repeat(pad));
    let groups: Vec<&str> = (0..digits.len() / 3)
        .map(|i| &digits[i * 3..i * 3 + 3])
        .collect();
    let mut out = String::new();
    for (i, g) in groups.iter().enumerate() {
        if i + 1 < groups.len() {
            out.push('x');
            out.push_str(g);
            out.push('/');
        } else {
            out.push_str(g);
        }
    }
    out
}

fn width_suffix(width: u64) -> String {
    if width < TILE_WIDTH {
        format!(".p/{width}")
    } else {
        String::new()
    }
}

/// The path of hash tile `n` at `level` holding `width` hashes (1..=256).
pub fn tile_path(level: u32, n: u64, width: u64) -> String {
    format!("tile/{level}/{}{}", index_path(n), width_suffix(width))
}

/// The path of entry bundle `n` holding `width` entries (1..=256).
pub fn bundle_path(n: u64, width: u64) -> String {
    format!("tile/entries/{}{}", index_path(n), width_suffix(width))
}

/// A parsed tile or bundle path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRef {
    /// The level of a hash tile; `None` for an entry bundle.
    pub level: Option<u32>,
    /// The tile index `<N>`.
    pub n: u64,
    /// Its width (256 for a full tile).
    pub width: u64,
}

/// Parses `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, strictly (the inverse of
/// [`tile_path`] and [`bundle_path`]); `None` for anything else.
pub fn parse_tile_path(path: &str) -> Option<TileRef> {
    let rest = path.strip_prefix("tile/")?;
    let (kind, rest) = rest.split_once('/')?;
    let level = match kind {
        "entries" => None,
        l => {
            let level: u32 = l.parse().ok()?;
            if level > 63 || l != level.to_string() {
                return None;
            }
            Some(level)
        }
    };
    let (index, width) = match rest.split_once(".p/") {
        Some((index, w)) => {
            let width: u64 = w.parse().ok()?;
            if !(1..TILE_WIDTH).contains(&width) || w != width.to_string() {
                return None;
            }
            (index, width)
        }
        None => (rest, TILE_WIDTH),
    };
    let mut n = 0u64;
    let groups: Vec<&str> = index.split('/').collect();
    for (i, g) in groups.iter().enumerate() {
        let digits = if i + 1 < groups.len() {
            g.strip_prefix('x')?
        } else {
            g
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    let canonical = match level {
        Some(l) => tile_path(l, n, width),
        None => bundle_path(n, width),
    };
    (canonical == path).then_some(TileRef { level, n, width })
}

/// The full tile (or bundle) path at the place of a partial one: `X` for `X.p/<W>`, with
/// `W`. `None` if `path` is not a partial tile or bundle.
pub fn full_of_partial(path: &str) -> Option<(String, u64)> {
    let t = parse_tile_path(path)?;
    if t.width == TILE_WIDTH {
        return None;
    }
    let full = match t.level {
        Some(l) => tile_path(l, t.n, TILE_WIDTH),
        None => bundle_path(t.n, TILE_WIDTH),
    };
    Some((full, t.width))
}

/// True if `path` is a partial tile or bundle that a log of `size` entries no longer needs:
/// the full tile at its place is part of that log. C2SP `tlog-tiles` lets a log delete such
/// a partial tile ("MAY delete any partial tile once the corresponding full tile is
/// available"); clients that still ask for it fall back to the full tile.
pub fn is_superseded_partial(path: &str, size: u64) -> bool {
    let Some(t) = parse_tile_path(path) else {
        return false;
    };
    if t.width == TILE_WIDTH {
        return false;
    }
    let level = t.level.unwrap_or(0);
    let nodes = size.checked_shr(level * TILE_HEIGHT).unwrap_or(0);
    t.n.checked_add(1)
        .and_then(|k| k.checked_mul(TILE_WIDTH))
        .is_some_and(|end| end <= nodes)
}

/// Reads a tile or bundle; a partial one that is gone (a log may delete it once the full
/// tile exists) is cut from the full tile's first `W` hashes or entries, as C2SP
/// `tlog-tiles` tells clients to do. Tiles are append-only, so the prefix is the same bytes.
pub fn read_tile(reader: &dyn LogReader, path: &str) -> Result<Option<Vec<u8>>, String> {
    if let Some(b) = reader.read(path)? {
        return Ok(Some(b));
    }
    let Some((full, width)) = full_of_partial(path) else {
        return Ok(None);
    };
    let Some(bytes) = reader.read(&full)? else {
        return Ok(None);
    };
    let w = usize::try_from(width).unwrap_or(usize::MAX);
    if path.starts_with("tile/entries/") {
        // The first `width` length-prefixed entries; a broken framing yields the whole
        // object, which the caller then rejects as malformed.
        let mut at = 0usize;
        for _ in 0..w {
            let Some(len) = bytes.get(at..at + 2) else {
                return Ok(Some(bytes));
            };
            at = at + 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        }
        Ok(Some(bytes.get(..at).map_or(bytes.clone(), <[u8]>::to_vec)))
    } else {
        Ok(Some(
            bytes
                .get(..w.saturating_mul(32))
                .map_or(bytes.clone(), <[u8]>::to_vec),
        ))
    }
}

/// The hash tiles of a tree of `size` leaves: `(level, n, width)` for every tile.
pub fn tiles_for_size(size: u64) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::new();
    let mut level = 0u32;
    loop {
        let nodes = size.checked_shr(level * TILE_HEIGHT).unwrap_or(0);
        if nodes == 0 {
            break;
        }
        for n in 0..nodes.div_ceil(TILE_WIDTH) {
            let width = (nodes - n * TILE_WIDTH).min(TILE_WIDTH);
            out.push((level, n, width));
        }
        level += 1;
    }
    out
}

/// The entry bundles of a log of `size` entries: `(n, width)` for every bundle.
pub fn bundles_for_size(size: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..size.div_ceil(TILE_WIDTH)).map(move |n| (n, (size - n * TILE_WIDTH).min(TILE_WIDTH)))
}

/// Concatenates hashes into a hash tile.
pub fn encode_hash_tile(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// Splits a hash tile that must hold exactly `width` hashes.
pub fn decode_hash_tile(path: &str, bytes: &[u8], width: u64) -> Result<Vec<Hash>, TileError> {
    let expected = usize::try_from(width)
        .unwrap_or(usize::MAX)
        .saturating_mul(32);
    if bytes.len() != expected || width > TILE_WIDTH {
        return Err(TileError::HashTileLength {
            path: path.to_owned(),
            len: bytes.len(),
            expected,
        });
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Encodes entries into a bundle.
pub fn encode_bundle<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge(e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits a bundle that must hold exactly `width` entries.
pub fn decode_bundle<'a>(
    path: &str,
    bytes: &'a [u8],
    width: u64,
) -> Result<Vec<&'a [u8]>, TileError> {
    let bad = |why| TileError::Bundle {
        path: path.to_owned(),
        why,
    };
    if width > TILE_WIDTH {
        return Err(bad("width above 256"));
    }
    let mut out = Vec::with_capacity(width as usize);
    let mut rest = bytes;
    while !rest.is_empty() {
        if out.len() as u64 == width {
            return Err(bad("more entries than its width"));
        }
        let (len, tail) = rest.split_at_checked(2).ok_or(bad("truncated length"))?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let (entry, tail) = tail.split_at_checked(len).ok_or(bad("truncated entry"))?;
        out.push(entry);
        rest = tail;
    }
    if out.len() as u64 != width {
        return Err(bad("fewer entries than its width"));
    }
    Ok(out)
}

/// Read access to a log's objects by tlog-tiles path (`checkpoint`, `tile/...`).
///
/// Synchronous on purpose: this crate does no I/O. An async store prefetches the paths it
/// needs (see [`tiles_for_size`], [`bundles_for_size`], [`crate::log::Log::reopen_paths`])
/// into a map, which implements this trait.
pub trait LogReader {
    /// The object at `path`, or `None` if there is none.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String>;
}

impl LogReader for BTreeMap<String, Vec<u8>> {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.get(path).cloned())
    }
}

impl LogReader for HashMap<String, Vec<u8>> {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.get(path).cloned())
    }
}

/// Reads a required object.
pub fn read_required(reader: &dyn LogReader, path: &str) -> Result<Vec<u8>, TileError> {
    reader
        .read(path)
        .map_err(|message| TileError::Read {
            path: path.to_owned(),
            message,
        })?
        .ok_or_else(|| TileError::Missing {
            path: path.to_owned(),
        })
}

/// Complete-subtree hashes of a tree of `size` leaves, read from its hash tiles (with a
/// cache), for proofs against a log whose leaves are not in memory.
pub struct TileHashes<'a> {
    reader: &'a dyn LogReader,
    size: u64,
    cache: HashMap<(u32, u64), Vec<Hash>>,
}

impl std::fmt::Debug for TileHashes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileHashes")
            .field("size", &self.size)
            .finish()
    }
}

impl<'a> TileHashes<'a> {
    /// Reads tiles of the tree of `size` leaves.
    pub fn new(reader: &'a dyn LogReader, size: u64) -> Self {
        Self {
            reader,
            size,
            cache: HashMap::new(),
        }
    }

    fn tile(&mut self, level: u32, n: u64) -> Result<&Vec<Hash>, TileError> {
        if !self.cache.contains_key(&(level, n)) {
            let nodes = self.size.checked_shr(level * TILE_HEIGHT).unwrap_or(0);
            let width = nodes.saturating_sub(n * TILE_WIDTH).min(TILE_WIDTH);
            let path = tile_path(level, n, width);
            let bytes = read_tile(self.reader, &path)
                .map_err(|message| TileError::Read {
                    path: path.clone(),
                    message,
                })?
                .ok_or_else(|| TileError::Missing { path: path.clone() })?;
            let hashes = decode_hash_tile(&path, &bytes, width)?;
            self.cache.insert((level, n), hashes);
        }
        self.cache.get(&(level, n)).ok_or(TileError::Missing {
            path: tile_path(level, n, 0),
        })
    }

    /// The inclusion proof of entry `index` in the tree of this size.
    pub fn inclusion_proof(&mut self, index: u64) -> Result<Vec<Hash>, TileError> {
        if index >= self.size {
            return Err(TileError::Missing {
                path: format!("entry {index} (log size {})", self.size),
            });
        }
        let size = self.size;
        crate::merkle::inclusion_proof_with(&mut |h, k| self.node(h, k), index, size)
    }

    /// The consistency proof from size `old` (1..=size) to this size.
    pub fn consistency_proof(&mut self, old: u64) -> Result<Vec<Hash>, TileError> {
        if old == 0 || old > self.size {
            return Err(TileError::Missing {
                path: format!("tree of size {old} (log size {})", self.size),
            });
        }
        let size = self.size;
        crate::merkle::consistency_proof_with(&mut |h, k| self.node(h, k), old, size)
    }

    /// The hash of the complete subtree of height `height` whose first leaf is
    /// `index << height`: read from the tile at level `height / 8` and folded.
    pub fn node(&mut self, height: u32, index: u64) -> Result<Hash, TileError> {
        let level = height / TILE_HEIGHT;
        let r = height % TILE_HEIGHT;
        let first = index << r;
        let n = first / TILE_WIDTH;
        let tile = self.tile(level, n)?;
        let from = (first % TILE_WIDTH) as usize;
        let count = 1usize << r;
        let mut layer: Vec<Hash> = tile
            .get(from..from + count)
            .ok_or(TileError::Missing {
                path: tile_path(level, n, tile.len() as u64),
            })?
            .to_vec();
        while layer.len() > 1 {
            layer = layer
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
        }
        Ok(layer[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(67), "067");
        assert_eq!(index_path(1234067), "x001/x234/067");
        assert_eq!(index_path(1000), "x001/000");
        assert_eq!(tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 3, 17), "tile/1/003.p/17");
        assert_eq!(bundle_path(5, 256), "tile/entries/005");
        assert_eq!(bundle_path(5, 1), "tile/entries/005.p/1");
    }

    #[test]
    fn tile_paths_parse_back_strictly() {
        for (l, n, w) in [(0, 0, 3), (0, 1234067, 256), (2, 5, 255), (63, 1000, 1)] {
            let p = tile_path(l, n, w);
            assert_eq!(
                parse_tile_path(&p),
                Some(TileRef {
                    level: Some(l),
                    n,
                    width: w
                }),
                "{p}"
            );
            let b = bundle_path(n, w);
            assert_eq!(
                parse_tile_path(&b),
                Some(TileRef {
                    level: None,
                    n,
                    width: w
                })
            );
        }
        for bad in [
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/03",
            "tile/0/0",
            "tile/00/000",
            "tile/64/000",
            "tile/0/001/000",
            "tile/0/x000/001",
            "tile/x/000",
            "checkpoint",
            "tile/entries/000.p/",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn superseded_partials_are_those_under_a_full_tile_of_the_log() {
        // At 300 entries: tile 0/000 and bundle 000 are full, 0/001 is partial (44).
        assert!(is_superseded_partial("tile/0/000.p/3", 300));
        assert!(is_superseded_partial("tile/0/000.p/255", 300));
        assert!(is_superseded_partial("tile/entries/000.p/7", 300));
        assert!(!is_superseded_partial("tile/0/001.p/44", 300));
        assert!(!is_superseded_partial("tile/0/001.p/3", 300));
        assert!(!is_superseded_partial("tile/entries/001.p/44", 300));
        assert!(!is_superseded_partial("tile/0/000", 300));
        // Level 1 tile 0 is full only at 65,536 entries.
        assert!(!is_superseded_partial("tile/1/000.p/1", 300));
        assert!(is_superseded_partial("tile/1/000.p/1", 65_536));
        assert!(!is_superseded_partial("tile/0/000.p/3", 255));
        assert!(!is_superseded_partial("checkpoint", 1 << 40));
    }

    #[test]
    fn a_deleted_partial_is_read_from_the_full_tile() {
        let hashes: Vec<Hash> = (0..256u32).map(|i| [i as u8; 32]).collect();
        let entries: Vec<Vec<u8>> = (0..256u32).map(|i| vec![i as u8; i as usize % 5]).collect();
        let mut m: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        m.insert(tile_path(0, 0, 256), encode_hash_tile(&hashes));
        m.insert(
            bundle_path(0, 256),
            encode_bundle(entries.iter().map(Vec::as_slice)).unwrap(),
        );
        m.insert(tile_path(0, 0, 9), b"kept".to_vec());
        let t = read_tile(&m, &tile_path(0, 0, 5)).unwrap().unwrap();
        assert_eq!(decode_hash_tile("t", &t, 5).unwrap(), hashes[..5].to_vec());
        let b = read_tile(&m, &bundle_path(0, 7)).unwrap().unwrap();
        let want: Vec<&[u8]> = entries[..7].iter().map(Vec::as_slice).collect();
        assert_eq!(decode_bundle("b", &b, 7).unwrap(), want);
        // A partial that still exists is read as is; no full tile, no fallback.
        assert_eq!(
            read_tile(&m, &tile_path(0, 0, 9)).unwrap().unwrap(),
            b"kept"
        );
        assert_eq!(read_tile(&m, &tile_path(0, 1, 3)).unwrap(), None);
    }

    #[test]
    fn tiles_for_sizes() {
        assert!(tiles_for_size(0).is_empty());
        assert_eq!(tiles_for_size(3), vec![(0, 0, 3)]);
        assert_eq!(tiles_for_size(256), vec![(0, 0, 256), (1, 0, 1)]);
        assert_eq!(
            tiles_for_size(600),
            vec![(0, 0, 256), (0, 1, 256), (0, 2, 88), (1, 0, 2)]
        );
        assert_eq!(
            bundles_for_size(257).collect::<Vec<_>>(),
            vec![(0, 256), (1, 1)]
        );
    }

    #[test]
    fn bundles_round_trip_and_are_strict() {
        let entries: Vec<&[u8]> = vec![b"a", b"", b"xyz"];
        let b = encode_bundle(entries.iter().copied()).unwrap();
        assert_eq!(decode_bundle("p", &b, 3).unwrap(), entries);
        assert!(decode_bundle("p", &b, 2).is_err());
        assert!(decode_bundle("p", &b, 4).is_err());
        assert!(decode_bundle("p", &b[..b.len() - 1], 3).is_err());
        assert!(encode_bundle([vec![0u8; 70_000].as_slice()]).is_err());
        let t = encode_hash_tile(&[[1; 32], [2; 32]]);
        assert_eq!(
            decode_hash_tile("t", &t, 2).unwrap(),
            vec![[1; 32], [2; 32]]
        );
        assert!(decode_hash_tile("t", &t, 3).is_err());
    }
}
