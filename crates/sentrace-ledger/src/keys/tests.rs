use super::*;
use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointPolicy, LogSigner, LogVerifier, Origin, Require,
    has_altered_genuine_signature, open_checkpoint,
};
use crate::note::Note;

fn name(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

fn signer() -> LogSigner {
    LogSigner::from_seeds(&name("node1/acme"), [1; 32], [2; 32])
}

fn cp(size: u64) -> Checkpoint {
    Checkpoint::new(Origin::new("node1/acme").unwrap(), size, [size as u8; 32])
}

#[test]
fn vkeys_and_secrets_round_trip() {
    let s = signer();
    let v = s.verifier();
    assert_eq!(LogVerifier::parse(&v.to_vkeys()).unwrap(), v);
    let back = LogSigner::from_secret_string(&s.to_secret_string()).unwrap();
    assert_eq!(back.verifier(), v);
    let ml = v.mldsa.to_vkey();
    let (_, rest) = ml.split_once('+').unwrap();
    assert_eq!(&rest[..8], format!("{:08x}", v.mldsa.key_id()));
    // The ML-DSA-44 key ID is over type 0x06 and the 1312-byte public key.
    let raw = STANDARD.decode(ml.splitn(3, '+').nth(2).unwrap()).unwrap();
    assert_eq!(raw.len(), 1 + MLDSA44_PUBLIC_KEY_LEN);
    assert_eq!(raw[0], TYPE_MLDSA44);
    assert_eq!(
        key_id(&name("node1/acme"), 0x06, &raw[1..]),
        v.mldsa.key_id()
    );
    // A tampered key ID is caught.
    let bad = v.ed25519.to_vkey().replacen('+', "+0", 1);
    assert!(VerifierKey::parse(&bad).is_err());
    let mut wrong_id = v.ed25519.to_vkey();
    let id_start = wrong_id.find('+').unwrap() + 1;
    let c = if &wrong_id[id_start..=id_start] == "0" {
        "1"
    } else {
        "0"
    };
    wrong_id.replace_range(id_start..=id_start, c);
    assert!(matches!(
        VerifierKey::parse(&wrong_id),
        Err(KeyError::KeyIdMismatch { .. })
    ));
    assert!(format!("{:?}", s.ed25519).find("seed").is_none());
}

#[test]
fn generated_keys_differ_and_sign() {
    let a = LogSigner::generate(&name("x/y")).unwrap();
    let b = LogSigner::generate(&name("x/y")).unwrap();
    assert_ne!(a.verifier(), b.verifier());
    let note = a.sign(&cp(3), 1_700_000_000).unwrap();
    let policy = CheckpointPolicy::new(a.verifier());
    assert!(open_checkpoint(note.to_text().as_bytes(), &policy).is_ok());
}

#[test]
fn hybrid_checkpoint_verifies_under_each_policy() {
    let s = signer();
    let note = s.sign(&cp(7), 1_700_000_000).unwrap();
    let text = note.to_text();
    assert_eq!(note.signatures.len(), 2);
    assert_eq!(note.signatures[0].signature.len(), 64);
    assert_eq!(
        note.signatures[1].signature.len(),
        8 + MLDSA44_SIGNATURE_LEN
    );
    let mut policy = CheckpointPolicy::new(s.verifier());
    let v = open_checkpoint(text.as_bytes(), &policy).unwrap();
    assert_eq!(v.checkpoint, cp(7));

    // Only the Ed25519 line: accepted if Ed25519 is enough, refused if ML-DSA is required.
    let mut ed_only = Note::new(note.text()).unwrap();
    ed_only.signatures.push(note.signatures[0].clone());
    let ed_only = ed_only.to_text();
    let mut ml_only = Note::new(note.text()).unwrap();
    ml_only.signatures.push(note.signatures[1].clone());
    let ml_only = ml_only.to_text();
    for (require, ed_ok, ml_ok) in [
        (Require::Ed25519, true, false),
        (Require::MlDsa, false, true),
        (Require::Both, false, false),
    ] {
        policy.require = require;
        assert_eq!(
            open_checkpoint(ed_only.as_bytes(), &policy).is_ok(),
            ed_ok,
            "{require:?}"
        );
        assert_eq!(
            open_checkpoint(ml_only.as_bytes(), &policy).is_ok(),
            ml_ok,
            "{require:?}"
        );
        assert!(open_checkpoint(text.as_bytes(), &policy).is_ok());
    }
    policy.require = Require::Both;
    assert_eq!(
        open_checkpoint(ed_only.as_bytes(), &policy).unwrap_err(),
        CheckpointError::MissingRequired(SigKind::MlDsa44)
    );
}

#[test]
fn forged_and_altered_checkpoints_are_told_apart() {
    let s = signer();
    let policy = CheckpointPolicy::new(s.verifier());
    // Forged: same name, another key.
    let forger = LogSigner::from_seeds(&name("node1/acme"), [9; 32], [8; 32]);
    let forged = forger.sign(&cp(7), 1).unwrap().to_text();
    assert_eq!(
        open_checkpoint(forged.as_bytes(), &policy).unwrap_err(),
        CheckpointError::NoTrustedSignature
    );
    assert!(!has_altered_genuine_signature(
        forged.as_bytes(),
        &s.verifier()
    ));
    // Altered body: a trusted signature fails.
    let genuine = s.sign(&cp(7), 1).unwrap();
    let altered = genuine.to_text().replacen("\n7\n", "\n8\n", 1);
    assert!(matches!(
        open_checkpoint(altered.as_bytes(), &policy).unwrap_err(),
        CheckpointError::BadSignature { .. }
    ));
    // Altered key name on a genuine line: diagnosed as altered, not forged.
    let mut renamed = genuine.clone();
    for sig in &mut renamed.signatures {
        sig.name = name("node1/acmf");
    }
    let renamed = renamed.to_text();
    assert_eq!(
        open_checkpoint(renamed.as_bytes(), &policy).unwrap_err(),
        CheckpointError::NoTrustedSignature
    );
    assert!(has_altered_genuine_signature(
        renamed.as_bytes(),
        &s.verifier()
    ));
    // Wrong origin.
    let mut p2 = policy.clone();
    p2.origin = Some(Origin::new("node2/acme").unwrap());
    assert!(matches!(
        open_checkpoint(genuine.to_text().as_bytes(), &p2).unwrap_err(),
        CheckpointError::WrongOrigin { .. }
    ));
}

#[test]
fn cosignature_types_verify_and_bind_their_message() {
    let cp = cp(20);
    let text = cp.to_text();
    for kind in [SigKind::Ed25519Cosignature, SigKind::MlDsa44] {
        let w = NoteSigner::from_seed(name("witness.example/w1"), kind, [5; 32]);
        let sig = w.sign_note(&text, 1_679_315_147).unwrap();
        assert_eq!(&sig.signature[..8], &1_679_315_147u64.to_be_bytes());
        assert_eq!(
            w.verifier().verify_note(&text, &sig.signature),
            Ok(Some(1_679_315_147))
        );
        let mut bad = sig.signature.clone();
        bad[7] ^= 1; // the timestamp is signed
        assert_eq!(
            w.verifier().verify_note(&text, &bad),
            Err(SigError::Invalid)
        );
        let other = Checkpoint {
            size: 21,
            ..cp.clone()
        }
        .to_text();
        assert_eq!(
            w.verifier().verify_note(&other, &sig.signature),
            Err(SigError::Invalid)
        );
        let back = VerifierKey::parse(&w.verifier().to_vkey()).unwrap();
        assert_eq!(&back, w.verifier());
    }
}

#[test]
fn subtree_message_layout() {
    let m = subtree_v1_message(&name("w"), 2, "o", 0, 5, &[3; 32]).unwrap();
    let mut want = b"subtree/v1\n\0".to_vec();
    want.extend_from_slice(&[1, b'w']);
    want.extend_from_slice(&2u64.to_be_bytes());
    want.extend_from_slice(&[1, b'o']);
    want.extend_from_slice(&0u64.to_be_bytes());
    want.extend_from_slice(&5u64.to_be_bytes());
    want.extend_from_slice(&[3; 32]);
    assert_eq!(m, want);
    assert_eq!(
        cosignature_v1_message(1679315147, "a\n"),
        b"cosignature/v1\ntime 1679315147\na\n".to_vec()
    );
}

#[test]
fn raw_signatures_are_domain_separated() {
    for kind in [SigKind::Ed25519, SigKind::MlDsa44] {
        let k = NoteSigner::from_seed(name("agent"), kind, [4; 32]);
        let sig = k.sign_raw(b"ctx-a", b"msg").unwrap();
        assert_eq!(k.verifier().verify_raw(b"ctx-a", b"msg", &sig), Ok(()));
        assert!(k.verifier().verify_raw(b"ctx-b", b"msg", &sig).is_err());
        assert!(k.verifier().verify_raw(b"ctx-a", b"msh", &sig).is_err());
    }
}
