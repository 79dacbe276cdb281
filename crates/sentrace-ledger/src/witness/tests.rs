use super::*;
use crate::checkpoint::LogSigner;
use crate::keys::SigKind;
use crate::merkle::Tree;
use crate::note::KeyName;

fn name(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

struct Setup {
    log: LogSigner,
    tree: Tree,
    witness: Witness,
}

fn setup() -> Setup {
    let log = LogSigner::from_seeds(&name("node1/acme"), [1; 32], [2; 32]);
    let mut logs = BTreeMap::new();
    logs.insert(
        Origin::new("node1/acme").unwrap(),
        KnownLog {
            key: log.verifier(),
            require: Require::Both,
        },
    );
    let signers = vec![
        NoteSigner::from_seed(
            name("witness.example/w1"),
            SigKind::Ed25519Cosignature,
            [7; 32],
        ),
        NoteSigner::from_seed(name("witness.example/w1"), SigKind::MlDsa44, [8; 32]),
    ];
    let witness = Witness::new(signers, logs, WitnessState::default()).unwrap();
    let mut tree = Tree::new();
    for i in 0..40u32 {
        tree.push(&i.to_be_bytes());
    }
    Setup { log, tree, witness }
}

fn signed(s: &Setup, size: u64) -> String {
    let cp = Checkpoint::new(
        Origin::new("node1/acme").unwrap(),
        size,
        s.tree.root_at(size).unwrap(),
    );
    s.log.sign(&cp, 100).unwrap().to_text()
}

fn request(s: &Setup, old: u64, size: u64) -> Vec<u8> {
    let proof = if old == 0 {
        vec![]
    } else {
        s.tree.consistency_proof(old, size).unwrap()
    };
    AddCheckpoint {
        old_size: old,
        proof,
        checkpoint: signed(s, size),
    }
    .encode()
}

#[test]
fn request_body_round_trips_and_matches_the_spec_shape() {
    let s = setup();
    let body = request(&s, 10, 20);
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.starts_with("old 10\n"));
    let parsed = AddCheckpoint::parse(&body).unwrap();
    assert_eq!(parsed.encode(), body);
    assert!(AddCheckpoint::parse(b"old 01\n\nx").is_err());
    assert!(AddCheckpoint::parse(b"new 1\n\nx").is_err());
    let many = format!(
        "old 1\n{}\ncp",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(64)
    );
    assert!(AddCheckpoint::parse(many.as_bytes()).is_err());
}

#[test]
fn witness_follows_the_protocol() {
    let mut s = setup();
    // First contact: old 0.
    let r = s.witness.add_checkpoint(&request(&s, 0, 10), 1000);
    let WitnessResponse::Cosigned(lines) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(lines.lines().count(), 2);
    // Client side: the cosignatures verify, and the merged checkpoint meets a quorum.
    let note = Note::parse(signed(&s, 10).as_bytes()).unwrap();
    let keys = s.witness.verifiers();
    let cosigs = check_cosignatures(&note, lines, &keys).unwrap();
    let mut merged = note.clone();
    merged.signatures.extend(cosigs);
    let mut policy = CheckpointPolicy::new(s.log.verifier());
    policy.witnesses = keys.clone();
    policy.quorum = 1;
    let v = open_checkpoint(merged.to_text().as_bytes(), &policy).unwrap();
    assert_eq!(v.witnesses, vec![name("witness.example/w1")]);
    policy.quorum = 2;
    let w2 = NoteSigner::from_seed(
        name("witness.example/w2"),
        SigKind::Ed25519Cosignature,
        [9; 32],
    );
    policy.witnesses.push(w2.verifier().clone());
    let err = open_checkpoint(merged.to_text().as_bytes(), &policy).unwrap_err();
    assert_eq!(
        err,
        CheckpointError::Quorum {
            have: 1,
            need: 2,
            cosigned: vec!["witness.example/w1".into()],
            missing: vec!["witness.example/w2".into()],
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("no valid cosignature from: witness.example/w2"),
        "{msg}"
    );
    policy.witnesses.pop();
    policy.quorum = 1;
    assert!(open_checkpoint(note.to_text().as_bytes(), &policy).is_err());

    // Stale old size: 409 with the recorded size.
    let r = s.witness.add_checkpoint(&request(&s, 5, 20), 1001);
    assert_eq!(r, WitnessResponse::Conflict(10));
    assert_eq!(r.body(), (SIZE_CONTENT_TYPE, "10\n".to_string()));
    assert_eq!(parse_conflict_size(&r.body().1), Some(10));
    // Correct old size: cosigned, state advances.
    assert_eq!(
        s.witness
            .add_checkpoint(&request(&s, 10, 20), 1002)
            .status(),
        200
    );
    assert_eq!(s.witness.state().logs["node1/acme"].size, 20);
    // Old size above the checkpoint: 400.
    assert_eq!(
        s.witness
            .add_checkpoint(&request(&s, 20, 20).replacen_old(30), 1003)
            .status(),
        400
    );
    // Same size again: cosigned if the root is the same.
    assert_eq!(
        s.witness
            .add_checkpoint(&request(&s, 20, 20), 1004)
            .status(),
        200
    );
}

trait ReplaceOld {
    fn replacen_old(self, old: u64) -> Vec<u8>;
}
impl ReplaceOld for Vec<u8> {
    fn replacen_old(self, old: u64) -> Vec<u8> {
        let s = String::from_utf8(self).unwrap();
        let (_, rest) = s.split_once('\n').unwrap();
        format!("old {old}\n{rest}").into_bytes()
    }
}

#[test]
fn witness_refuses_split_views_and_bad_signatures() {
    let mut s = setup();
    assert_eq!(
        s.witness.add_checkpoint(&request(&s, 0, 16), 1).status(),
        200
    );
    // A forked log: same origin and key, different history.
    let mut fork = Tree::new();
    for i in 0..40u32 {
        fork.push(&(i + 1000).to_be_bytes());
    }
    let forked = Setup {
        log: LogSigner::from_seeds(&name("node1/acme"), [1; 32], [2; 32]),
        tree: fork,
        witness: Witness::new(
            vec![NoteSigner::from_seed(
                name("w"),
                SigKind::Ed25519Cosignature,
                [1; 32],
            )],
            BTreeMap::new(),
            WitnessState::default(),
        )
        .unwrap(),
    };
    let r = s.witness.evaluate(&request(&forked, 16, 30), 2);
    assert_eq!(r.response, WitnessResponse::InvalidProof);
    assert_eq!(r.record, None);
    // Same size, different root: 409.
    let mut body = request(&forked, 16, 16);
    body = body.replacen_old(16);
    assert_eq!(
        s.witness.add_checkpoint(&body, 3),
        WitnessResponse::Conflict(16)
    );
    // Signed by another key: 403.
    let other = Setup {
        log: LogSigner::from_seeds(&name("node1/acme"), [5; 32], [6; 32]),
        tree: s.tree.clone(),
        witness: Witness::new(
            vec![NoteSigner::from_seed(
                name("w"),
                SigKind::Ed25519Cosignature,
                [1; 32],
            )],
            BTreeMap::new(),
            WitnessState::default(),
        )
        .unwrap(),
    };
    assert_eq!(
        s.witness
            .add_checkpoint(&request(&other, 16, 20), 4)
            .status(),
        403
    );
    // Unknown origin: 404.
    let stranger = LogSigner::from_seeds(&name("node9/x"), [1; 32], [2; 32]);
    let cp = Checkpoint::new(Origin::new("node9/x").unwrap(), 1, [0; 32]);
    let body = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: stranger.sign(&cp, 1).unwrap().to_text(),
    };
    assert_eq!(s.witness.add_checkpoint(&body.encode(), 5).status(), 404);
    assert_eq!(s.witness.add_checkpoint(b"garbage", 6).status(), 400);
    assert_eq!(s.witness.state().logs["node1/acme"].size, 16);
    // State survives serialization.
    let json = serde_json::to_string(s.witness.state()).unwrap();
    assert_eq!(
        &serde_json::from_str::<WitnessState>(&json).unwrap(),
        s.witness.state()
    );
}

#[test]
fn client_rejects_bad_cosignatures() {
    let mut s = setup();
    let WitnessResponse::Cosigned(lines) = s.witness.add_checkpoint(&request(&s, 0, 8), 9) else {
        panic!()
    };
    let note = Note::parse(signed(&s, 8).as_bytes()).unwrap();
    let keys = s.witness.verifiers();
    // Cosignatures over another checkpoint fail.
    let other = Note::parse(signed(&s, 9).as_bytes()).unwrap();
    assert!(matches!(
        check_cosignatures(&other, &lines, &keys),
        Err(WitnessError::BadCosignature(_))
    ));
    // Unknown witnesses only: nothing valid.
    assert_eq!(
        check_cosignatures(&note, &lines, &[]),
        Err(WitnessError::NoCosignature)
    );
}
