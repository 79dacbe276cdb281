//! Merkle trees as specified by RFC 9162 (Certificate Transparency 2.0), section 2.1.
//!
//! - [`leaf_hash`] and [`node_hash`] are the domain-separated hashes of §2.1.1.
//! - [`Tree`] is an in-memory append-only tree that keeps every complete subtree hash, so it
//!   gives the root at any earlier size and produces inclusion (§2.1.3.1) and consistency
//!   (§2.1.4.1) proofs.
//! - [`CompactRange`] keeps only the right frontier (at most 64 hashes) and gives the root
//!   of the leaves appended so far; [`span_root`] uses it.
//! - [`verify_inclusion`] and [`verify_consistency`] follow §2.1.3.2 and §2.1.4.2 step by step.

mod compact;
mod verify;

pub use compact::{CompactRange, span_root};
pub use verify::{ProofError, root_from_inclusion, verify_consistency, verify_inclusion};

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// The most hashes a proof can hold for a tree of at most 2^64 leaves.
pub const MAX_PROOF_HASHES: usize = 64;

/// RFC 9162 §2.1.1: `MTH({}) = SHA-256()`, the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// RFC 9162 §2.1.1: the hash of a leaf, `SHA-256(0x00 || d)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// RFC 9162 §2.1.1: the hash of an interior node, `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (RFC 9162's `k`); `n` must be ≥ 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// An error asking a [`Tree`] for something it does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A leaf index at or past the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size it was asked against.
        size: u64,
    },
    /// A size larger than the number of leaves held.
    #[error("tree size {size} is larger than the {held} leaves held")]
    SizeOutOfRange {
        /// The size asked for.
        size: u64,
        /// The leaves the tree holds.
        held: u64,
    },
    /// A consistency proof from a larger to a smaller size, or from size zero.
    #[error("no consistency proof from size {old} to size {new}")]
    BadConsistencyRange {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
}

/// An in-memory append-only RFC 9162 tree.
///
/// `levels[h][i]` is the hash of the complete subtree of height `h` whose leftmost leaf is
/// `i << h`. Only complete subtrees are stored, so an append costs amortised one hash and
/// the tree uses about two hashes per leaf.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over the given leaf hashes, in order.
    pub fn from_leaf_hashes(hashes: impl IntoIterator<Item = Hash>) -> Self {
        let mut t = Self::new();
        for h in hashes {
            t.push_leaf_hash(h);
        }
        t
    }

    /// Appends the leaf `data` and returns its index.
    pub fn push(&mut self, data: &[u8]) -> u64 {
        self.push_leaf_hash(leaf_hash(data))
    }

    /// Appends an already computed leaf hash and returns its index.
    pub fn push_leaf_hash(&mut self, hash: Hash) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let index = self.levels[0].len() as u64;
        self.levels[0].push(hash);
        let mut h = 0;
        while self.levels[h].len().is_multiple_of(2) {
            let n = self.levels[h].len();
            let parent = node_hash(&self.levels[h][n - 2], &self.levels[h][n - 1]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
        }
        index
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// All leaf hashes, in order.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// The hash of the complete subtree of height `height` at position `index` on that
    /// level, if it is complete.
    pub fn complete_node(&self, height: usize, index: u64) -> Option<Hash> {
        self.levels
            .get(height)?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// The root of the tree of the first `size` leaves (RFC 9162 §2.1.1 `MTH`).
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        Ok(self.mth(0, size))
    }

    /// The root at the current size.
    pub fn root(&self) -> Hash {
        self.root_at(self.size()).unwrap_or_else(|_| empty_root())
    }

    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        if size > self.size() {
            return Err(TreeError::SizeOutOfRange {
                size,
                held: self.size(),
            });
        }
        Ok(())
    }

    /// `MTH(D[start:end])` for a range the RFC recursion produces.
    fn mth(&self, start: u64, end: u64) -> Hash {
        let mut node = |h: u32, k: u64| -> Result<Hash, std::convert::Infallible> {
            Ok(self.levels[h as usize][k as usize])
        };
        match mth_with(&mut node, start, end) {
            Ok(h) => h,
            Err(never) => match never {},
        }
    }

    /// The inclusion proof of leaf `index` in the tree of size `size`
    /// (RFC 9162 §2.1.3.1, `PATH(m, D[n])`).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexOutOfRange { index, size });
        }
        let mut node = |h: u32, k: u64| -> Result<Hash, std::convert::Infallible> {
            Ok(self.levels[h as usize][k as usize])
        };
        match inclusion_proof_with(&mut node, index, size) {
            Ok(p) => Ok(p),
            Err(never) => match never {},
        }
    }

    /// The consistency proof between sizes `old` and `new` (RFC 9162 §2.1.4.1,
    /// `PROOF(m, D[n])`). For `old == new` the proof is empty; `old` must be at least 1.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(new)?;
        if old == 0 || old > new {
            return Err(TreeError::BadConsistencyRange { old, new });
        }
        let mut node = |h: u32, k: u64| -> Result<Hash, std::convert::Infallible> {
            Ok(self.levels[h as usize][k as usize])
        };
        match consistency_proof_with(&mut node, old, new) {
            Ok(p) => Ok(p),
            Err(never) => match never {},
        }
    }
}

/// `MTH(D[start:end])` over any store of complete subtree hashes: `node(h, k)` returns the
/// hash of the complete subtree of height `h` whose first leaf is `k << h`. The ranges of
/// the RFC recursion are aligned, so only complete subtrees are asked for.
pub fn mth_with<E>(
    node: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    start: u64,
    end: u64,
) -> Result<Hash, E> {
    let n = end - start;
    if n.is_power_of_two() {
        let height = n.trailing_zeros();
        return node(height, start >> height);
    }
    let k = split_point(n);
    Ok(node_hash(
        &mth_with(node, start, start + k)?,
        &mth_with(node, start + k, end)?,
    ))
}

/// RFC 9162 §2.1.3.1 `PATH(index, D[0:size])` over a store of complete subtree hashes
/// (see [`mth_with`]). The caller checks `index < size`.
pub fn inclusion_proof_with<E>(
    node: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, E> {
    let mut out = Vec::new();
    let (mut m, mut start, mut end) = (index, 0u64, size);
    // Walk down from the root, collecting siblings; reverse at the end so the proof
    // runs from the leaf's sibling up.
    while end - start > 1 {
        let k = split_point(end - start);
        if m < k {
            out.push(mth_with(node, start + k, end)?);
            end = start + k;
        } else {
            out.push(mth_with(node, start, start + k)?);
            start += k;
            m -= k;
        }
    }
    out.reverse();
    Ok(out)
}

/// RFC 9162 §2.1.4.1 `PROOF(old, D[0:new])` over a store of complete subtree hashes
/// (see [`mth_with`]). Empty for `old == new`; the caller checks `0 < old <= new`.
pub fn consistency_proof_with<E>(
    node: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, E> {
    let mut out = Vec::new();
    if old == new {
        return Ok(out);
    }
    // SUBPROOF(m, D[start:end], b), iteratively from the top; reversed at the end.
    let (mut m, mut start, mut end, mut b) = (old, 0u64, new, true);
    loop {
        let n = end - start;
        if m == n {
            if !b {
                out.push(mth_with(node, start, end)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            out.push(mth_with(node, start + k, end)?);
            end = start + k;
        } else {
            out.push(mth_with(node, start, start + k)?);
            start += k;
            m -= k;
            b = false;
        }
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests;
