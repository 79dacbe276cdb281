//! The right frontier of an append-only RFC 9162 tree and the inner span tree.

use super::{Hash, empty_root, leaf_hash, node_hash};

/// The complete subtrees covering leaves `[0, size)`, largest first: the only state an
/// append-only tree needs to compute its root and keep appending (at most 64 hashes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// `(height, hash)` of each complete subtree, heights strictly decreasing.
    nodes: Vec<(u8, Hash)>,
}

impl CompactRange {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from the complete subtree hashes of a tree of `size` leaves,
    /// largest first (one per set bit of `size`). Returns `None` if the count is wrong.
    pub fn from_parts(size: u64, hashes: &[Hash]) -> Option<Self> {
        if hashes.len() != size.count_ones() as usize {
            return None;
        }
        let heights = (0..64u8).rev().filter(|h| size >> h & 1 == 1);
        let nodes = heights.zip(hashes.iter().copied()).collect();
        Some(Self { size, nodes })
    }

    /// The heights of the complete subtrees a tree of `size` leaves decomposes into,
    /// largest first, with the index of each subtree's first leaf.
    pub fn decomposition(size: u64) -> impl Iterator<Item = (u8, u64)> {
        let mut start = 0u64;
        (0..64u8)
            .rev()
            .filter(move |h| size >> h & 1 == 1)
            .map(move |h| {
                let s = start;
                start += 1u64 << h;
                (h, s)
            })
    }

    /// Appends a leaf hash. Returns the complete subtrees that this append closed, as
    /// `(height, index on that level, hash)`, smallest first (height 0 is the leaf).
    pub fn push(&mut self, leaf: Hash) -> Vec<(u8, u64, Hash)> {
        let index = self.size;
        self.size += 1;
        let mut closed = vec![(0u8, index, leaf)];
        let mut cur = (0u8, leaf);
        while let Some(&(h, left)) = self.nodes.last() {
            if h != cur.0 {
                break;
            }
            self.nodes.pop();
            let parent = node_hash(&left, &cur.1);
            cur = (h + 1, parent);
            closed.push((cur.0, index >> cur.0, parent));
        }
        self.nodes.push(cur);
        closed
    }

    /// Appends a leaf hash without reporting the closed subtrees.
    pub fn push_hash(&mut self, leaf: Hash) {
        let mut cur = (0u8, leaf);
        while let Some(&(h, left)) = self.nodes.last() {
            if h != cur.0 {
                break;
            }
            self.nodes.pop();
            cur = (h + 1, node_hash(&left, &cur.1));
        }
        self.nodes.push(cur);
        self.size += 1;
    }

    /// The number of leaves appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The complete subtree hashes, largest first.
    pub fn hashes(&self) -> impl Iterator<Item = &Hash> {
        self.nodes.iter().map(|(_, h)| h)
    }

    /// The RFC 9162 root of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return empty_root();
        };
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// The `span_root` of a batch: the RFC 9162 root of the tree whose leaves are the canonical
/// span encodings (`sentrace_core::canonical`), in batch order. An empty batch has the
/// empty-tree root `SHA-256()`.
pub fn span_root<'a>(canonical_spans: impl IntoIterator<Item = &'a [u8]>) -> Hash {
    let mut range = CompactRange::new();
    for span in canonical_spans {
        range.push_hash(leaf_hash(span));
    }
    range.root()
}
