//! Tests of the response state: audit before effect, quarantine, throttle, undo, replay.

use super::*;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use sentrace_core::proto::trace::v1::{ScopeSpans, Span};
use sentrace_core::{BatchContext, Identity, Role, SpanId, TraceId};
use sentrace_detect::{Evidence, Family, RuleKind, Severity, Subject};

const POLICY: &str = r#"
format = 1
[[rule]]
id = "contain"
families = ["sqli"]
actions = [
  { type = "quarantine", subject = "client_address", ttl_secs = 60 },
  { type = "throttle", subject = "user", rate_per_sec = 3, ttl_secs = 60 },
]
"#;
const S: u64 = 1_000_000_000;

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn finding(client: &str, user: &str) -> Finding {
    let mut f = Finding {
        uid: String::new(),
        tenant: tenant(),
        rule_id: "sqli-tokenizer".into(),
        title: "t".into(),
        family: Family::Sqli,
        kind: RuleKind::Payload,
        severity: Severity::High,
        confidence: 90,
        technique: "T1190".into(),
        ruleset_version: "1".into(),
        time_unix_nanos: 100 * S,
        service: "shop".into(),
        subject: Subject {
            client_address: Some(client.into()),
            user: Some(user.into()),
            principal: None,
        },
        evidences: vec![Evidence {
            trace_id: Some(TraceId::from_bytes([1; 16]).unwrap()),
            span_id: Some(SpanId::from_bytes([1; 8]).unwrap()),
            attribute: "url.query".into(),
            snippet: "x".into(),
            reason: "r".into(),
        }],
        message: "m".into(),
        downgraded: false,
    };
    f.uid = f.compute_uid();
    f
}

fn attr(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn batch(spans: &[(&str, &str)], now: u64) -> Batch {
    let spans = spans
        .iter()
        .enumerate()
        .map(|(i, (client, user))| Span {
            trace_id: vec![9; 16],
            span_id: vec![u8::try_from(i + 1).unwrap(); 8],
            kind: 2,
            attributes: vec![attr("client.address", client), attr("enduser.id", user)],
            ..Default::default()
        })
        .collect();
    Batch {
        context: BatchContext::new(Identity::new(tenant(), "tok_1", Role::Ingest), now),
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn open(dir: &Path) -> ResponseState {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let cfg = ResponseConfig {
        policy: Some(policy),
        max_quarantined_spans_per_tenant: 3,
        ..Default::default()
    };
    let keys = std::sync::Arc::new(
        sentrace_store::KeyRing::open(
            &dir.join("keys"),
            &sentrace_store::MasterKey::from_bytes([5; 32]),
        )
        .unwrap(),
    );
    ResponseState::open(&cfg, dir, keys).unwrap()
}

fn keys(dir: &Path) -> std::sync::Arc<sentrace_store::KeyRing> {
    std::sync::Arc::new(
        sentrace_store::KeyRing::open(
            &dir.join("keys"),
            &sentrace_store::MasterKey::from_bytes([5; 32]),
        )
        .unwrap(),
    )
}

#[test]
fn audit_quarantine_undo_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let st = open(dir.path());
    let now = 100 * S;
    let actions = st.on_finding(&finding("203.0.113.7", "mallory"), now);
    assert_eq!(actions.len(), 2);
    // Audited before taking effect (outside the server: the pipeline waits for it).
    st.flush().unwrap();
    let audit = read_audit(&responses_dir(dir.path()), keys(dir.path()))
        .unwrap()
        .records;
    assert_eq!(audit.len(), 2);
    // Encrypted at rest: neither the tenant, the rule nor the target in the clear.
    let raw = std::fs::read(responses_dir(dir.path()).join("audit/acme.journal")).unwrap();
    for needle in [&b"acme"[..], b"203.0.113.7", b"contain"] {
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
    }
    // A second finding from the same source adds nothing while the first is in force.
    assert!(
        st.on_finding(&finding("203.0.113.7", "mallory"), now + S)
            .is_empty()
    );
    assert_eq!(
        read_audit(&responses_dir(dir.path()), keys(dir.path()))
            .unwrap()
            .records
            .len(),
        2
    );

    let mut b = batch(
        &[("203.0.113.7", "alice"), ("192.0.2.1", "bob")],
        now + 2 * S,
    );
    st.enforce(&mut b, now + 2 * S).unwrap();
    assert_eq!(b.span_count(), 1, "the quarantined span left the batch");
    assert_eq!(b.context.rejected_spans, 1);
    assert!(b.context.warnings[0].contains("quarantined"));
    assert_eq!(st.quarantined(&tenant()).1, 1);
    // Bounded: the oldest quarantined spans go first, counted.
    for i in 0..3u64 {
        let mut b = batch(&[("203.0.113.7", "alice")], now + (3 + i) * S);
        st.enforce(&mut b, now + (3 + i) * S).unwrap();
    }
    assert_eq!(st.quarantined(&tenant()).1, 3);
    assert!(
        st.render_metrics()
            .contains("event=\"quarantine_evicted_spans\"} 1")
    );

    // Throttle: user mallory may send 3 spans/s.
    let mut b = batch(&[("192.0.2.1", "mallory"); 3], now + 10 * S);
    st.enforce(&mut b, now + 10 * S).unwrap();
    let mut b = batch(&[("192.0.2.1", "mallory"); 2], now + 10 * S + 1);
    assert!(matches!(
        st.enforce(&mut b, now + 10 * S + 1),
        Err(StageError::Exhausted { .. })
    ));

    // Undo the quarantine as the CLI does; the state notices the file change.
    let q = actions
        .iter()
        .find(|a| matches!(a.action, Action::Quarantine { .. }))
        .unwrap();
    undo(&responses_dir(dir.path()), &q.id, now + 11 * S).unwrap();
    let mut b = batch(&[("203.0.113.7", "alice")], now + 12 * S);
    st.enforce(&mut b, now + 12 * S).unwrap();
    assert_eq!(b.span_count(), 1, "spans flow again after undo");
    let list = st.list(&tenant(), now + 12 * S);
    assert!(
        list.iter()
            .any(|a| a["id"] == q.id.as_str() && a["status"] == "undone")
    );

    // Expiry.
    let mut b = batch(&[("192.0.2.1", "mallory"); 5], now + 100 * S);
    st.enforce(&mut b, now + 100 * S).unwrap();

    // Replay on start: the throttle is back in force, the quarantine stays undone, and
    // the spans set aside are still there (encrypted on disk, not in plaintext).
    st.flush().unwrap();
    let st2 = open(dir.path());
    let (kept, n) = st2.quarantined(&tenant());
    assert_eq!(n, 3);
    assert_eq!(kept.len(), 3);
    let raw = std::fs::read(responses_dir(dir.path()).join("quarantine/acme.journal")).unwrap();
    assert!(!raw.windows(5).any(|w| w == b"alice"));
    let mut b = batch(&[("203.0.113.7", "x")], now + 13 * S);
    st2.enforce(&mut b, now + 13 * S).unwrap();
    assert_eq!(b.span_count(), 1);
    let mut b = batch(&[("192.0.2.1", "mallory"); 5], now + 13 * S);
    assert!(st2.enforce(&mut b, now + 13 * S).is_err());
}

/// An action whose audit line cannot be written is taken back, counted, and fails the
/// wait of the batch that triggered it (so nothing it affected is stored or acknowledged).
#[tokio::test]
async fn an_unwritable_audit_line_takes_the_action_back() {
    let dir = tempfile::tempdir().unwrap();
    let st = open(dir.path());
    // The tenant's audit journal's path is taken by a directory: every write of it fails.
    std::fs::create_dir_all(responses_dir(dir.path()).join("audit/acme.journal")).unwrap();
    let now = 100 * S;
    let mark = st.mark();
    let actions = st.on_finding(&finding("203.0.113.7", "mallory"), now);
    assert_eq!(actions.len(), 2, "in force while the line is queued");
    assert!(st.wait_since(mark).await.is_err());
    assert!(st.list(&tenant(), now).is_empty(), "taken back");
    let mut b = batch(&[("203.0.113.7", "alice")], now + S);
    st.enforce(&mut b, now + S).unwrap();
    assert_eq!(b.span_count(), 1, "no quarantine without an audit line");
    assert!(st.render_metrics().contains("event=\"audit_failed\"} 2"));
    assert!(st.render_metrics().contains("event=\"applied\"} 0"));
}

/// A plaintext `audit.jsonl` of an earlier version is moved into the encrypted journals on
/// start and deleted; its actions (and their lifts) stay in force, and a crash before the
/// delete does not duplicate records.
#[test]
fn a_plaintext_audit_log_of_an_earlier_version_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let now = 100 * S;
    // Written as the earlier version wrote it: JSON lines with the tenant in the clear.
    let planned = {
        let st = open(dir.path());
        let p = st.on_finding(&finding("203.0.113.7", "mallory"), now);
        st.flush().unwrap();
        p
    };
    let rdir = responses_dir(dir.path());
    std::fs::remove_dir_all(rdir.join("audit")).unwrap();
    let q = planned
        .iter()
        .find(|a| matches!(a.action, Action::Quarantine { .. }))
        .unwrap();
    let mut text = String::new();
    for p in &planned {
        let rec = AuditRecord::Applied {
            time_unix_nanos: now,
            tenant: tenant(),
            planned: p.clone(),
        };
        text.push_str(&serde_json::to_string(&rec).unwrap());
        text.push('\n');
    }
    let undone = AuditRecord::Undone {
        time_unix_nanos: now + S,
        id: q.id.clone(),
        by: "cli".into(),
    };
    text.push_str(&serde_json::to_string(&undone).unwrap());
    text.push('\n');
    std::fs::write(rdir.join("audit.jsonl"), &text).unwrap();
    undo(&rdir, &q.id, now + S).unwrap();
    // The readers show the old file's records before any server moved them.
    let before = read_audit(&rdir, keys(dir.path())).unwrap();
    assert_eq!(before.records.len(), 3);
    assert!(before.legacy_file.is_some());

    let st = open(dir.path());
    assert!(
        !rdir.join("audit.jsonl").exists(),
        "the plaintext file is gone"
    );
    let raw = std::fs::read(rdir.join("audit/acme.journal")).unwrap();
    assert!(!raw.windows(7).any(|w| w == b"contain"));
    let recs = read_audit(&rdir, keys(dir.path())).unwrap().records;
    assert_eq!(recs.len(), 3, "{recs:?}");
    assert!(recs.iter().all(|(t, _)| *t == tenant()));
    let list = st.list(&tenant(), now + 2 * S);
    assert!(
        list.iter()
            .any(|a| a["id"] == q.id.as_str() && a["status"] == "undone")
    );
    assert!(list.iter().any(|a| a["status"] == "active"));
    drop(st);
    // A crash before the delete: the same file again adds nothing twice.
    std::fs::write(rdir.join("audit.jsonl"), &text).unwrap();
    let _st = open(dir.path());
    assert_eq!(
        read_audit(&rdir, keys(dir.path())).unwrap().records.len(),
        3
    );
}
