//! Known-answer tests against vectors computed by an independent implementation
//! (`tests/data/gen_merkle_vectors.py`, Python hashlib) and the RFC 6962 test tree.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sentrace_ledger::merkle::{Hash, Tree, verify_consistency, verify_inclusion};
use serde_json::Value;

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

fn h(v: &Value) -> Hash {
    b64(v).try_into().unwrap()
}

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn python_vectors() {
    let v = load("merkle_vectors.json");
    let leaves: Vec<Vec<u8>> = v["leaves"].as_array().unwrap().iter().map(b64).collect();
    let mut t = Tree::new();
    for l in &leaves {
        t.push(l);
    }
    let roots: Vec<Hash> = v["roots"].as_array().unwrap().iter().map(h).collect();
    assert_eq!(roots.len(), leaves.len() + 1);
    for (n, root) in roots.iter().enumerate() {
        assert_eq!(&t.root_at(n as u64).unwrap(), root, "root at size {n}");
    }
    let mut checked = 0;
    for case in v["inclusion"].as_array().unwrap() {
        let (i, n) = (
            case["index"].as_u64().unwrap(),
            case["size"].as_u64().unwrap(),
        );
        let path: Vec<Hash> = case["path"].as_array().unwrap().iter().map(h).collect();
        assert_eq!(
            t.inclusion_proof(i, n).unwrap(),
            path,
            "inclusion {i} in {n}"
        );
        verify_inclusion(&t.leaf(i).unwrap(), i, n, &path, &roots[n as usize]).unwrap();
        checked += 1;
    }
    for case in v["consistency"].as_array().unwrap() {
        let (m, n) = (case["old"].as_u64().unwrap(), case["new"].as_u64().unwrap());
        let proof: Vec<Hash> = case["proof"].as_array().unwrap().iter().map(h).collect();
        assert_eq!(
            t.consistency_proof(m, n).unwrap(),
            proof,
            "consistency {m} -> {n}"
        );
        verify_consistency(m, n, &roots[m as usize], &roots[n as usize], &proof).unwrap();
        checked += 1;
    }
    assert!(checked > 300, "only {checked} vectors checked");
}

#[test]
fn rfc6962_test_tree() {
    let v = load("rfc6962_roots.json");
    let mut t = Tree::new();
    for (leaf, root) in v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .zip(v["roots"].as_array().unwrap())
    {
        t.push(&hex::decode(leaf.as_str().unwrap()).unwrap());
        assert_eq!(hex::encode(t.root()), root.as_str().unwrap());
    }
    assert_eq!(t.size(), 8);
}
