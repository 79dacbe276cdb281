use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sentrace_core::{BatchContext, Identity, Role};
use sentrace_ledger::checkpoint::Origin;
use sentrace_ledger::manifest::{BatchManifest, SourceSigner, sign_batch};
use sentrace_ledger::note::KeyName;

use super::*;

fn spans(n: u8) -> Vec<ResourceSpans> {
    vec![ResourceSpans {
        scope_spans: vec![ScopeSpans {
            spans: (0..n)
                .map(|i| Span {
                    trace_id: vec![i + 1; 16],
                    span_id: vec![i + 1; 8],
                    name: format!("op-{i}"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }]
}

struct Fixture {
    dir: tempfile::TempDir,
    key: SourceSigner,
    sources: Arc<Sources>,
}

fn tenant(t: &str) -> TenantId {
    TenantId::new(t).unwrap()
}

fn fixture(cfg: SourcesConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = SourceSigner::generate(&KeyName::new("edge-1").unwrap()).unwrap();
    registry::add(dir.path(), &tenant("a"), "edge-1", &key.verifier()).unwrap();
    let sources = Sources::open(&cfg, dir.path(), &[]).unwrap();
    Fixture { dir, key, sources }
}

fn batch(t: &str, source: Option<SourceInfo>, rs: Vec<ResourceSpans>) -> Batch {
    let id = Identity::new(tenant(t), "tok", Role::Ingest);
    let mut context = BatchContext::new(id, now_nanos());
    context.source = source;
    Batch {
        context,
        resource_spans: rs,
    }
}

fn signed(key: &SourceSigner, seq: u64, at: u64, rs: &[ResourceSpans]) -> SourceInfo {
    let sig = sign_batch(key, "edge-1", seq, at, rs).unwrap();
    SourceInfo {
        source_id: "edge-1".into(),
        sequence: seq,
        sent_at_unix_nanos: at,
        signature: sig.encode(),
    }
}

#[test]
fn verifies_refuses_replays_and_records_gaps() {
    let f = fixture(SourcesConfig::default());
    let now = now_nanos();
    let rs = spans(3);
    let ok = batch("a", Some(signed(&f.key, 1, now, &rs)), rs.clone());
    f.sources.check(&ok).unwrap();
    assert!(matches!(
        f.sources.check(&ok),
        Err(SourceError::Replay { sequence: 1, .. })
    ));
    // Sequence 5 skips 2..=4.
    f.sources
        .check(&batch("a", Some(signed(&f.key, 5, now, &rs)), rs.clone()))
        .unwrap();
    let v = f.sources.view(&tenant("a")).unwrap();
    assert_eq!(v.sources.len(), 1);
    assert_eq!(v.sources[0].last_sequence, Some(5));
    assert_eq!(v.sources[0].gaps, vec![[2, 4]]);
    assert_eq!(v.sources[0].missing_total, 3);
    let sources = f.sources.clone();
    let m = crate::metrics::export::render(move |e| sources.encode_metrics(e));
    assert!(m.contains("sentrace_source_sequence_gaps_total 1"), "{m}");
    assert!(
        m.contains("sentrace_source_missing_sequences_total 3"),
        "{m}"
    );
    assert!(m.contains("{reason=\"replay\"} 1"), "{m}");
    assert!(m.contains("{outcome=\"verified\"} 2"), "{m}");
}

#[test]
fn refuses_forgeries_changes_and_other_tenants() {
    let f = fixture(SourcesConfig::default());
    let now = now_nanos();
    let rs = spans(2);
    // Spans changed after signing.
    let info = signed(&f.key, 1, now, &rs);
    let e = f.sources.check(&batch("a", Some(info.clone()), spans(3)));
    assert!(
        matches!(
            e,
            Err(SourceError::SpansChanged {
                signed_count: 2,
                received_count: 3,
                ..
            })
        ),
        "{e:?}"
    );
    // Claims changed after signing.
    let mut moved = info.clone();
    moved.sequence = 2;
    let e = f.sources.check(&batch("a", Some(moved), rs.clone()));
    assert!(
        matches!(e, Err(SourceError::BadSignature { sequence: 2, .. })),
        "{e:?}"
    );
    // Another key under the same name.
    let other = SourceSigner::generate(&KeyName::new("edge-1").unwrap()).unwrap();
    let e = f
        .sources
        .check(&batch("a", Some(signed(&other, 3, now, &rs)), rs.clone()));
    assert!(
        matches!(
            e,
            Err(SourceError::WrongKeyId {
                algorithm: "Ed25519",
                ..
            })
        ),
        "{e:?}"
    );
    // Registered for tenant a only.
    let e = f.sources.check(&batch("b", Some(info.clone()), rs.clone()));
    assert!(
        e.as_ref()
            .unwrap_err()
            .to_string()
            .contains("not registered for tenant b"),
        "{e:?}"
    );
    // Too old.
    let old = now - 3600 * 1_000_000_000;
    let e = f
        .sources
        .check(&batch("a", Some(signed(&f.key, 4, old, &rs)), rs.clone()));
    assert!(
        matches!(
            e,
            Err(SourceError::OutsideTimeWindow {
                window_secs: 300,
                ..
            })
        ),
        "{e:?}"
    );
    // None of the refusals burned sequence 1.
    f.sources.check(&batch("a", Some(info), rs)).unwrap();
}

#[test]
fn required_signatures_are_per_tenant() {
    let f = fixture(SourcesConfig {
        require_signatures: vec!["a".into()],
        ..SourcesConfig::default()
    });
    let e = f.sources.check(&batch("a", None, spans(1))).unwrap_err();
    assert_eq!(e.reason(), "unsigned");
    assert!(matches!(StageError::from(e), StageError::Invalid(m) if m.contains("requires signed")));
    f.sources.check(&batch("b", None, spans(1))).unwrap();
    assert!(f.sources.view(&tenant("a")).unwrap().require_signatures);
}

#[test]
fn a_restart_keeps_refusing_replays() {
    let f = fixture(SourcesConfig::default());
    let now = now_nanos();
    let rs = spans(1);
    let first = batch("a", Some(signed(&f.key, 10, now, &rs)), rs.clone());
    f.sources.check(&first).unwrap();
    assert_eq!(f.sources.persist().unwrap(), 1);
    assert_eq!(f.sources.persist().unwrap(), 0, "nothing changed since");
    // Accepted after the snapshot: only the WAL's manifest knows about it.
    let second = batch("a", Some(signed(&f.key, 11, now, &rs)), rs.clone());
    f.sources.check(&second).unwrap();
    let mut ctx = second.context.clone();
    ctx.received_at_unix_nanos = now;
    let origin = Origin::new("n/a").unwrap();
    let (count, root) = batch_span_root(&rs);
    let m = BatchManifest::from_context(origin, &ctx, count as u32, root).unwrap();
    let recovered = [sentrace_store::RecoveredManifest {
        tenant: tenant("a"),
        index: 1,
        manifest: bytes::Bytes::from(m.encode()),
    }];
    let again = Sources::open(&SourcesConfig::default(), f.dir.path(), &recovered).unwrap();
    assert!(matches!(
        again.check(&first),
        Err(SourceError::Replay { sequence: 10, .. })
    ));
    assert!(matches!(
        again.check(&second),
        Err(SourceError::Replay { sequence: 11, .. })
    ));
    again
        .check(&batch("a", Some(signed(&f.key, 12, now, &rs)), rs.clone()))
        .unwrap();
    // A damaged snapshot stops the start instead of forgetting.
    std::fs::write(persist::path(f.dir.path(), &tenant("a")), b"{").unwrap();
    assert!(Sources::open(&SourcesConfig::default(), f.dir.path(), &[]).is_err());
}
