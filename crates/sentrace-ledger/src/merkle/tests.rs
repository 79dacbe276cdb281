use super::*;
use proptest::prelude::*;

fn tree(n: u64) -> Tree {
    let mut t = Tree::new();
    for i in 0..n {
        t.push(&i.to_be_bytes());
    }
    t
}

#[test]
fn compact_range_matches_tree_and_reports_closed_subtrees() {
    let mut t = Tree::new();
    let mut c = CompactRange::new();
    for i in 0..300u64 {
        let h = leaf_hash(&i.to_le_bytes());
        t.push_leaf_hash(h);
        for (height, idx, hash) in c.push(h) {
            assert_eq!(t.complete_node(height as usize, idx), Some(hash));
        }
        assert_eq!(c.root(), t.root());
        let parts: Vec<Hash> = c.hashes().copied().collect();
        assert_eq!(CompactRange::from_parts(c.size(), &parts), Some(c.clone()));
    }
    assert_eq!(CompactRange::new().root(), empty_root());
}

#[test]
fn span_root_is_the_inner_tree_root() {
    let spans: Vec<Vec<u8>> = (0..5u8).map(|i| vec![1, i, i]).collect();
    let mut t = Tree::new();
    for s in &spans {
        t.push(s);
    }
    assert_eq!(span_root(spans.iter().map(Vec::as_slice)), t.root());
    assert_eq!(span_root(std::iter::empty()), empty_root());
}

#[test]
fn bad_requests_are_errors() {
    let t = tree(5);
    assert!(matches!(
        t.root_at(6),
        Err(TreeError::SizeOutOfRange { .. })
    ));
    assert!(matches!(
        t.inclusion_proof(5, 5),
        Err(TreeError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        t.consistency_proof(0, 5),
        Err(TreeError::BadConsistencyRange { .. })
    ));
    assert!(matches!(
        t.consistency_proof(4, 3),
        Err(TreeError::BadConsistencyRange { .. })
    ));
    assert_eq!(t.consistency_proof(5, 5), Ok(vec![]));
    let r = t.root();
    assert_eq!(verify_consistency(5, 5, &r, &r, &[]), Ok(()));
    assert!(verify_consistency(5, 5, &r, &empty_root(), &[]).is_err());
    assert_eq!(verify_consistency(0, 5, &empty_root(), &r, &[]), Ok(()));
    assert!(verify_consistency(0, 5, &empty_root(), &r, &[r]).is_err());
    assert!(verify_consistency(3, 2, &r, &r, &[r]).is_err());
    assert!(verify_inclusion(&r, 0, 0, &[], &r).is_err());
    assert!(matches!(
        verify_inclusion(&r, 0, 1, &[r; 65], &r),
        Err(ProofError::TooLong { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A proof verifies iff the leaf is in the tree: the genuine leaf at its index verifies,
    /// and any other leaf hash, index or proof does not.
    #[test]
    fn inclusion_iff_in_tree(n in 1u64..200, i in any::<u64>(), j in any::<u64>(), flip in any::<(usize, u8)>()) {
        let t = tree(n);
        let i = i % n;
        let root = t.root();
        let leaf = t.leaf(i).unwrap();
        let path = t.inclusion_proof(i, n).unwrap();
        prop_assert_eq!(verify_inclusion(&leaf, i, n, &path, &root), Ok(()));
        // A leaf not in the tree.
        let other = leaf_hash(b"not in the tree");
        prop_assert!(verify_inclusion(&other, i, n, &path, &root).is_err());
        // The same leaf claimed at another index.
        let j = j % n;
        if t.leaf(j) != Some(leaf) {
            let pj = t.inclusion_proof(j, n).unwrap();
            prop_assert!(verify_inclusion(&leaf, j, n, &pj, &root).is_err());
        }
        // A corrupted proof.
        if !path.is_empty() {
            let mut bad = path.clone();
            let k = flip.0 % bad.len();
            bad[k][flip.0 % 32] ^= flip.1 | 1;
            prop_assert!(verify_inclusion(&leaf, i, n, &bad, &root).is_err());
            let mut short = path.clone();
            short.pop();
            prop_assert!(verify_inclusion(&leaf, i, n, &short, &root).is_err());
        }
        let mut long = path.clone();
        long.push(root);
        prop_assert!(verify_inclusion(&leaf, i, n, &long, &root).is_err());
    }

    /// A consistency proof verifies iff the old tree is a prefix of the new tree.
    #[test]
    fn consistency_iff_prefix(n in 2u64..200, m in any::<u64>(), flip in any::<(usize, u8)>()) {
        let t = tree(n);
        let m = 1 + m % (n - 1);
        let old_root = t.root_at(m).unwrap();
        let new_root = t.root();
        let proof = t.consistency_proof(m, n).unwrap();
        prop_assert_eq!(verify_consistency(m, n, &old_root, &new_root, &proof), Ok(()));
        // A different history of the same old size.
        let mut forked = Tree::new();
        for k in 0..m {
            forked.push(&(k ^ 1 << 40).to_be_bytes());
        }
        let forked_root = forked.root();
        prop_assert!(verify_consistency(m, n, &forked_root, &new_root, &proof).is_err());
        let mut bad = proof.clone();
        let k = flip.0 % bad.len();
        bad[k][flip.0 % 32] ^= flip.1 | 1;
        prop_assert!(verify_consistency(m, n, &old_root, &new_root, &bad).is_err());
        // Wrong sizes.
        if m + 1 < n {
            prop_assert!(verify_consistency(m + 1, n, &old_root, &new_root, &proof).is_err());
        }
    }
}
