//! Response policy evaluation on real findings.

mod common;

use common::*;
use sentrace_core::TenantId;
use sentrace_detect::response::{Action, ResponsePolicy, Target};
use sentrace_detect::{Detector, Finding};

fn sqli_finding() -> Vec<Finding> {
    let d = Detector::with_default_rules().unwrap();
    let rs = vec![batch(
        "shop",
        vec![server(
            3,
            1,
            vec![
                kv("url.query", "id=1%27%20or%20%271%27%3D%271"),
                kv("client.address", "203.0.113.5"),
            ],
        )],
    )];
    let mut f = d.inspect(&TenantId::new("acme").unwrap(), &rs, 1);
    for x in &mut f {
        x.subject.principal = Some("agent-1".into());
    }
    f
}

const POLICY: &str = r#"
format = 1
[[rule]]
id = "contain-sqli"
families = ["sqli"]
min_severity = "high"
actions = [
  { type = "tag_trace" },
  { type = "quarantine", subject = "principal", ttl_secs = 60 },
  { type = "throttle", subject = "client_address", rate_per_sec = 5, ttl_secs = 600 },
  { type = "webhook", name = "waf-block" },
]
[[rule]]
id = "longer-quarantine"
min_confidence = 90
actions = [{ type = "quarantine", subject = "principal", ttl_secs = 3600 }]
[[rule]]
id = "xss-only"
families = ["xss"]
actions = [{ type = "keep_source", subject = "user", ttl_secs = 60 }]
"#;

#[test]
fn policy_maps_findings_to_merged_actions() {
    let p = ResponsePolicy::from_toml("p.toml", POLICY).unwrap();
    let findings = sqli_finding();
    assert!(!findings.is_empty());
    let now = 1_000_000_000_000;
    let acts = p.evaluate_all(&findings, now);
    let quarantines: Vec<_> = acts
        .iter()
        .filter(|a| matches!(a.action, Action::Quarantine { .. }))
        .collect();
    assert_eq!(quarantines.len(), 1, "{acts:?}");
    assert_eq!(
        quarantines[0].action,
        Action::Quarantine {
            target: Target::Principal("agent-1".into()),
            until_unix_nanos: now + 3600 * 1_000_000_000
        }
    );
    assert_eq!(quarantines[0].response_rule, "longer-quarantine");
    assert!(acts.iter().any(|a| a.action
        == Action::Throttle {
            target: Target::ClientAddress("203.0.113.5".into()),
            rate_per_sec: 5,
            until_unix_nanos: now + 600 * 1_000_000_000
        }));
    assert!(acts.iter().any(|a| matches!(&a.action, Action::TagTrace { trace_id, .. } if trace_id.to_hex() == "03".repeat(16))));
    assert!(
        acts.iter()
            .any(|a| matches!(&a.action, Action::Webhook { name, .. } if name == "waf-block"))
    );
    // The xss rule does not match, and the finding has no user anyway.
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a.action, Action::KeepSource { .. }))
    );
    // Ids are stable.
    assert_eq!(acts, p.evaluate_all(&findings, now));
}

#[test]
fn policy_validation_errors_name_the_rule() {
    let bad = POLICY.replace("ttl_secs = 60 }", "ttl_secs = 0 }");
    let e = ResponsePolicy::from_toml("p.toml", &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("contain-sqli") && e.contains("ttl_secs"), "{e}");
    let e = ResponsePolicy::from_toml(
        "p.toml",
        "format = 1\n[[rule]]\nid = \"x\"\nactions = [{ type = \"nuke\" }]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("p.toml:4"), "{e}");
    assert!(ResponsePolicy::default_policy().is_ok());
}

#[test]
fn quarantined_source_is_set_aside_end_to_end() {
    use sentrace_core::{Batch, BatchContext, Identity, Role, Stage};
    use sentrace_detect::enforce::ActiveResponses;
    use sentrace_detect::{DetectStage, MemorySink};
    use std::sync::Arc;

    // 1. An attack arrives from agent-1; the stage reports it.
    let detector = Arc::new(Detector::with_default_rules().unwrap());
    let sink = Arc::new(MemorySink::default());
    let stage = DetectStage::new(detector, sink.clone());
    let identity = Identity::new(TenantId::new("acme").unwrap(), "agent-1", Role::Ingest);
    let attack = vec![batch(
        "shop",
        vec![server(
            3,
            1,
            vec![
                kv("url.query", "id=1%27%20or%20%271%27%3D%271"),
                kv("client.address", "203.0.113.5"),
            ],
        )],
    )];
    let mut b = Batch {
        context: BatchContext::new(identity, 1_000),
        resource_spans: attack,
    };
    stage.process(&mut b).unwrap();
    let findings = sink.take();
    // 2. The policy decides; the actions are put in force.
    let p = ResponsePolicy::from_toml("p.toml", POLICY).unwrap();
    let mut active = ActiveResponses::new();
    active.apply(&p.evaluate_all(&findings, 1_000));
    // 3. The next batch from the same principal is set aside, not dropped; another source's is not.
    let mut next = vec![batch(
        "shop",
        vec![
            server(4, 2, vec![kv("url.path", "/")]),
            server(5, 3, vec![kv("url.path", "/x")]),
        ],
    )];
    let e = active.enforce(&mut next, "agent-1", 2_000);
    assert_eq!(e.quarantined_spans, 2);
    assert_eq!(next[0].scope_spans[0].spans.len(), 0);
    assert_eq!(e.quarantined[0].scope_spans[0].spans.len(), 2);
    let mut other = vec![batch("shop", vec![server(6, 4, vec![kv("url.path", "/")])])];
    let e = active.enforce(&mut other, "agent-2", 2_000);
    assert_eq!(e.quarantined_spans, 0);
    assert_eq!(other[0].scope_spans[0].spans.len(), 1);
    // The attacker's address is throttled wherever it shows up.
    let mut from_attacker = vec![batch(
        "shop",
        vec![server(7, 5, vec![kv("client.address", "203.0.113.5")])],
    )];
    assert_eq!(
        active
            .enforce(&mut from_attacker, "agent-2", 2_000)
            .throttle_per_sec,
        Some(5)
    );
    // 4. Expiry and undo.
    let mut later = vec![batch("shop", vec![server(8, 6, vec![])])];
    assert_eq!(
        active
            .enforce(&mut later, "agent-1", 1_000 + 3_601 * 1_000_000_000)
            .quarantined_spans,
        0
    );
    active.lift(&sentrace_detect::response::Target::Principal(
        "agent-1".into(),
    ));
    let mut again = vec![batch("shop", vec![server(9, 7, vec![])])];
    assert_eq!(
        active
            .enforce(&mut again, "agent-1", 2_000)
            .quarantined_spans,
        0
    );
}
