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
