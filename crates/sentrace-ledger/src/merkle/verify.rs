//! Proof verification, following RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency)
//! step by step. Step numbers in comments are the RFC's.

use super::{Hash, MAX_PROOF_HASHES, node_hash};

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size (§2.1.3.2 step 1).
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof holds more hashes than any tree of 2^64 leaves needs.
    #[error("proof has {len} hashes; at most {MAX_PROOF_HASHES} are possible")]
    TooLong {
        /// Hashes in the proof.
        len: usize,
    },
    /// The proof has the wrong number of hashes for the sizes.
    #[error("proof length does not match the tree sizes")]
    WrongLength,
    /// The recomputed root differs from the expected root.
    #[error("recomputed root does not match")]
    RootMismatch,
    /// The old size is larger than the new size.
    #[error("old size {old} is larger than new size {new}")]
    SizeRegression {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// Equal sizes with different roots, or a non-empty proof for equal or zero sizes.
    #[error("sizes {old} and {new} need an empty proof and, when equal, equal roots")]
    Trivial {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// The proof is empty where the RFC requires hashes (§2.1.4.2 step 1).
    #[error("consistency proof is empty")]
    Empty,
}

/// Recomputes the root from a leaf hash and its inclusion proof (RFC 9162 §2.1.3.2 steps
/// 1-4); the caller compares it with a trusted root (step 5).
pub fn root_from_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
) -> Result<Hash, ProofError> {
    if path.len() > MAX_PROOF_HASHES {
        return Err(ProofError::TooLong { len: path.len() });
    }
    // 1. Compare leaf_index against tree_size. If leaf_index is greater than or equal to
    //    tree_size, then fail the proof verification.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // 2. Set fn to leaf_index and sn to tree_size - 1.
    let mut fnn = index;
    let mut sn = size - 1;
    // 3. Set r to hash.
    let mut r = *leaf;
    // 4. For each value p in the inclusion_path array:
    for p in path {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fnn & 1 == 1 || fnn == sn {
            // i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, &r);
            // ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            //     either LSB(fn) is set or fn is 0.
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise: i. Set r to HASH(0x01 || r || p).
            r = node_hash(&r, p);
        }
        // c. Finally, right-shift both fn and sn one time.
        fnn >>= 1;
        sn >>= 1;
    }
    // 5 (first half). Compare sn to 0.
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `size` leaves with
/// root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let r = root_from_inclusion(leaf, index, size, path)?;
    // 5. ... If sn is equal to 0 and r and the root_hash are equal, then the log has
    //    proven the inclusion of hash. Otherwise, fail the proof verification.
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `old` leaves with root `old_root` is a prefix of the tree of
/// `new` leaves with root `new_root` (RFC 9162 §2.1.4.2).
///
/// The RFC defines the algorithm for `0 < old < new`. Outside that range this function
/// follows the convention of C2SP `tlog-witness`: from size 0 any tree is consistent with
/// an empty proof, and equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::TooLong { len: proof.len() });
    }
    if old > new {
        return Err(ProofError::SizeRegression { old, new });
    }
    if old == 0 || old == new {
        if !proof.is_empty() || (old == new && old_root != new_root) {
            return Err(ProofError::Trivial { old, new });
        }
        return Ok(());
    }
    // 1. If consistency_path is an empty array, stop and fail the proof verification.
    if proof.is_empty() {
        return Err(ProofError::Empty);
    }
    // 2. If first is an exact power of 2, then prepend first_hash to the
    //    consistency_path array.
    let mut path = proof.iter();
    let first_value = if old.is_power_of_two() {
        *old_root
    } else {
        match path.next() {
            Some(h) => *h,
            None => return Err(ProofError::Empty),
        }
    };
    // 3. Set fn to first - 1 and sn to second - 1.
    let mut fnn = old - 1;
    let mut sn = new - 1;
    // 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not
    //    set.
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let mut fr = first_value;
    let mut sr = first_value;
    // 6. For each subsequent value c in the consistency_path array:
    for c in path {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fnn & 1 == 1 || fnn == sn {
            // i. Set fr to HASH(0x01 || c || fr).
            fr = node_hash(c, &fr);
            // ii. Set sr to HASH(0x01 || c || sr).
            sr = node_hash(c, &sr);
            // iii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            //      either LSB(fn) is set or fn is 0.
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise: i. Set sr to HASH(0x01 || sr || c).
            sr = node_hash(&sr, c);
        }
        // c. Finally, right-shift both fn and sn one time.
        fnn >>= 1;
        sn >>= 1;
    }
    // 7. Verify that the fr calculated is equal to the first_hash supplied, that the sr
    //    calculated is equal to the second_hash supplied, and that sn is 0.
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}
