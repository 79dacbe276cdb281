use super::*;
use crate::note::KeyName;
use proptest::prelude::*;

pub(crate) fn sample(seq: u64) -> BatchManifest {
    BatchManifest {
        origin: Origin::new("node1/acme").unwrap(),
        source: "agent-7".into(),
        sequence: seq,
        source_time_unix_nanos: 1_700_000_000_000_000_000,
        receive_time_unix_nanos: 1_700_000_000_100_000_000,
        span_count: 3,
        span_root: [seq as u8; 32],
        policy_digest: Some([9; 32]),
        source_signature: None,
    }
}

#[test]
fn round_trips_and_is_strict() {
    let m = sample(5);
    let b = m.encode();
    assert_eq!(BatchManifest::decode(&b).unwrap(), m);
    assert_eq!(b[0], MANIFEST_VERSION);
    let mut no_policy = m.clone();
    no_policy.policy_digest = None;
    assert_eq!(
        BatchManifest::decode(&no_policy.encode()).unwrap(),
        no_policy
    );
    let mut trailing = b.clone();
    trailing.push(0);
    assert_eq!(
        BatchManifest::decode(&trailing),
        Err(ManifestError::Trailing(1))
    );
    for cut in 0..b.len() {
        assert!(
            BatchManifest::decode(&b[..cut]).is_err(),
            "prefix of {cut} bytes"
        );
    }
    let mut v2 = b.clone();
    v2[0] = 2;
    assert_eq!(BatchManifest::decode(&v2), Err(ManifestError::Version(2)));
    let mut bad_flag = no_policy.encode();
    let at = bad_flag.len() - 2;
    bad_flag[at] = 7;
    assert!(matches!(
        BatchManifest::decode(&bad_flag),
        Err(ManifestError::Field { .. })
    ));
    assert!(matches!(
        BatchManifest::decode(&vec![1; MAX_MANIFEST_SIZE + 1]),
        Err(ManifestError::TooLarge { .. })
    ));
}

#[test]
fn source_signature_verifies_and_detects_changes() {
    let key = SourceSigner::from_seeds(&KeyName::new("agent-7").unwrap(), [3; 32], [4; 32]);
    let mut m = sample(11);
    let sig = SourceSignature::sign(
        &key,
        "agent-7",
        11,
        m.source_time_unix_nanos,
        3,
        m.span_root,
    )
    .unwrap();
    m.source_signature = Some(sig.clone());
    let b = m.encode();
    assert!(b.len() < MAX_MANIFEST_SIZE);
    let back = BatchManifest::decode(&b).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.verify_source(&key.verifier()), Ok(Some(false)));
    // The server re-minimized: the sealed root differs from the signed one.
    let mut changed = m.clone();
    changed.span_root = [0xee; 32];
    assert_eq!(changed.verify_source(&key.verifier()), Ok(Some(true)));
    // A replayed signature under another sequence does not verify.
    let mut moved = m.clone();
    moved.sequence = 12;
    assert!(moved.verify_source(&key.verifier()).is_err());
    // Another key does not verify.
    let other = SourceSigner::from_seeds(&KeyName::new("agent-7").unwrap(), [5; 32], [6; 32]);
    assert!(m.verify_source(&other.verifier()).is_err());
    assert_eq!(sample(1).verify_source(&key.verifier()), Ok(None));
    // Wire form for gRPC metadata.
    assert_eq!(SourceSignature::decode(&sig.encode()).unwrap(), sig);
    assert!(SourceSignature::decode(&sig.encode()[1..]).is_err());
}

#[cfg(feature = "core")]
#[test]
fn from_context_uses_the_source_claims() {
    use sentrace_core::{BatchContext, Identity, Role, SourceInfo, TenantId};
    let id = Identity::new(TenantId::new("acme").unwrap(), "token-1", Role::Ingest);
    let mut ctx = BatchContext::new(id, 42);
    let origin = Origin::new("node1/acme").unwrap();
    let m = BatchManifest::from_context(origin.clone(), &ctx, 2, [1; 32]).unwrap();
    assert_eq!(
        (m.source.as_str(), m.sequence, m.receive_time_unix_nanos),
        ("token-1", 0, 42)
    );
    ctx.source = Some(SourceInfo {
        source_id: "agent-9".into(),
        sequence: 77,
        sent_at_unix_nanos: 40,
        signature: vec![1, 2, 3],
    });
    assert!(BatchManifest::from_context(origin.clone(), &ctx, 2, [1; 32]).is_err());
    if let Some(s) = ctx.source.as_mut() {
        s.signature.clear();
    }
    let m = BatchManifest::from_context(origin, &ctx, 2, [1; 32]).unwrap();
    assert_eq!(
        (m.source.as_str(), m.sequence, m.source_time_unix_nanos),
        ("agent-9", 77, 40)
    );
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = BatchManifest::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }
}

#[cfg(feature = "core")]
#[test]
fn batch_span_root_matches_the_sealed_root_and_sign_batch_verifies() {
    use sentrace_core::canonical::ResourceEncoder;
    use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let span = |n: u8| Span {
        trace_id: vec![n; 16],
        span_id: vec![n; 8],
        name: format!("op-{n}"),
        ..Default::default()
    };
    let rs = vec![
        ResourceSpans {
            scope_spans: vec![
                ScopeSpans {
                    spans: vec![span(1), span(2)],
                    ..Default::default()
                },
                ScopeSpans {
                    spans: vec![span(3)],
                    schema_url: "s".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
        ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span(4)],
                ..Default::default()
            }],
            ..Default::default()
        },
    ];
    // The same bytes the pipeline encodes for the store, one allocation per span.
    let mut each = Vec::new();
    for r in &rs {
        let enc = ResourceEncoder::new(r);
        for ss in &r.scope_spans {
            let scope = ResourceEncoder::scope(ss);
            for s in &ss.spans {
                let mut b = Vec::new();
                enc.encode_into(&mut b, ss, &scope, s);
                each.push(b);
            }
        }
    }
    let expected = crate::merkle::span_root(each.iter().map(Vec::as_slice));
    assert_eq!(batch_span_root(&rs), (4, expected));
    assert_ne!(batch_span_root(&rs[..1]).1, expected);

    let key = SourceSigner::from_seeds(&KeyName::new("edge").unwrap(), [7; 32], [8; 32]);
    let sig = sign_batch(&key, "edge", 5, 99, &rs).unwrap();
    assert_eq!((sig.span_count, sig.span_root), (4, expected));
    assert!(sig.verify(&key.verifier(), "edge", 5, 99).is_ok());
    assert!(sig.verify(&key.verifier(), "edge", 6, 99).is_err());
}
