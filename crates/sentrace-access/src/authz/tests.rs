use super::*;
use sentrace_core::{PrincipalKind, Role};

fn tenant(t: &str) -> TenantId {
    TenantId::new(t).unwrap()
}

fn who(role: Role, team: Option<&str>) -> Identity {
    let mut id = Identity::new(tenant("acme"), "token:1", role);
    id.team = team.map(str::to_string);
    id
}

fn store() -> PolicyStore {
    let teams = Teams::from([("payments".to_string(), vec!["checkout".to_string()])]);
    PolicyStore::load(&[], true, &teams).unwrap()
}

fn allowed(s: &PolicyStore, id: &Identity, a: Action, r: Resource) -> bool {
    s.decide(id, a, &r, RequestContext::default()).allowed
}

#[test]
fn defaults_validate_and_grant_the_documented_roles() {
    let s = store();
    let svc = || Resource::Service("checkout".into());
    let other = || Resource::Service("ledger".into());
    let pii = || Resource::AttributeClass("pii".into());

    let admin = who(Role::Admin, None);
    for a in Action::ALL {
        assert!(
            allowed(&s, &admin, a, Resource::Tenant)
                || a == Action::ReadTrace
                || a == Action::ViewSensitive
                || a == Action::Detokenize,
            "{a}"
        );
    }
    assert!(allowed(&s, &admin, Action::Detokenize, pii()));

    let analyst = who(Role::SecurityAnalyst, None);
    assert!(allowed(&s, &analyst, Action::ViewSensitive, pii()));
    assert!(allowed(
        &s,
        &analyst,
        Action::ReadFindings,
        Resource::Tenant
    ));
    assert!(!allowed(&s, &analyst, Action::Detokenize, pii()));
    assert!(!allowed(&s, &analyst, Action::ReadAudit, Resource::Tenant));
    // The legacy read role decides as security-analyst.
    let read = who(Role::Read, None);
    assert!(allowed(&s, &read, Action::ViewSensitive, pii()));
    assert!(allowed(&s, &read, Action::ReadTrace, other()));

    let viewer = who(Role::Viewer, None);
    assert!(allowed(&s, &viewer, Action::ReadTrace, other()));
    assert!(!allowed(&s, &viewer, Action::ViewSensitive, pii()));
    assert!(!allowed(
        &s,
        &viewer,
        Action::ReadFindings,
        Resource::Tenant
    ));

    let dev = who(Role::Developer, Some("payments"));
    assert!(allowed(&s, &dev, Action::ReadTrace, svc()));
    assert!(allowed(&s, &dev, Action::Search, Resource::Tenant));
    assert!(!allowed(&s, &dev, Action::ReadTrace, other()));
    assert!(!allowed(&s, &dev, Action::Search, other()));
    assert!(!allowed(&s, &dev, Action::ReadMetrics, Resource::Tenant));
    let teamless = who(Role::Developer, None);
    assert!(!allowed(&s, &teamless, Action::ReadTrace, svc()));

    let auditor = who(Role::Auditor, None);
    assert!(allowed(&s, &auditor, Action::ReadAudit, Resource::Tenant));
    assert!(!allowed(&s, &auditor, Action::ReadTrace, svc()));
    assert!(!allowed(&s, &auditor, Action::Search, Resource::Tenant));

    let ingest = who(Role::Ingest, None);
    assert!(allowed(&s, &ingest, Action::Ingest, Resource::Tenant));
    assert!(!allowed(&s, &ingest, Action::Search, Resource::Tenant));
}

#[test]
fn tenants_never_cross_even_for_admin() {
    let s = store();
    let admin = who(Role::Admin, None);
    for a in Action::ALL {
        let d = s.decide_in(
            &admin,
            a,
            &Resource::Tenant,
            &tenant("other"),
            RequestContext::default(),
        );
        assert!(!d.allowed, "{a}");
        // Either the isolation policy forbade it, or the action does not apply to a tenant.
        assert!(
            d.policies.iter().any(|p| p.contains("tenant-isolation")) || !d.errors.is_empty(),
            "{a}: {d:?}"
        );
    }
}

#[test]
fn break_glass_unmasks_for_readers_only() {
    let s = store();
    let ctx = RequestContext { break_glass: true };
    let pii = Resource::AttributeClass("pii".into());
    let viewer = who(Role::Viewer, None);
    assert!(s.decide(&viewer, Action::ViewSensitive, &pii, ctx).allowed);
    assert!(s.decide(&viewer, Action::Detokenize, &pii, ctx).allowed);
    let auditor = who(Role::Auditor, None);
    assert!(!s.decide(&auditor, Action::ViewSensitive, &pii, ctx).allowed);
    let ingest = who(Role::Ingest, None);
    assert!(!s.decide(&ingest, Action::Detokenize, &pii, ctx).allowed);
}

#[test]
fn decisions_name_the_deciding_policies() {
    let s = store();
    let d = s.decide(
        &who(Role::Viewer, None),
        Action::Search,
        &Resource::Tenant,
        RequestContext::default(),
    );
    assert!(d.allowed);
    assert_eq!(d.policies.len(), 1, "{:?}", d.policies);
    assert!(
        d.policies[0].starts_with("<default policies>:"),
        "{:?}",
        d.policies
    );
    assert!(
        d.policies[0].contains("@id(\"viewer\")"),
        "{:?}",
        d.policies
    );
    let d = s.decide(
        &who(Role::Viewer, None),
        Action::ReadAudit,
        &Resource::Tenant,
        RequestContext::default(),
    );
    assert!(!d.allowed);
    assert!(d.policies.is_empty());
}

#[test]
fn principal_kinds_are_all_principals() {
    let s = store();
    for kind in [
        PrincipalKind::User,
        PrincipalKind::ServiceAccount,
        PrincipalKind::Agent,
    ] {
        let mut id = who(Role::Viewer, None);
        id.kind = kind;
        assert!(
            allowed(&s, &id, Action::Search, Resource::Tenant),
            "{kind:?}"
        );
    }
}

#[test]
fn invalid_policies_are_refused_with_file_line_and_reason() {
    let teams = Teams::new();
    let src = |t: &str| PolicySource {
        name: "ops.cedar".into(),
        text: t.into(),
    };
    // Syntax error on line 3.
    let e = PolicyStore::load(
        &[src(
            "// x\n\npermit (principal, action, resource) when { principal.role == };\n",
        )],
        true,
        &teams,
    )
    .unwrap_err();
    assert_eq!(e.file, "ops.cedar");
    assert_eq!(e.line, 3, "{e}");
    // Type error: an attribute the schema does not have, on line 2.
    let e = PolicyStore::load(
        &[src(
            "\npermit (principal, action, resource) when { principal.department == \"x\" };\n",
        )],
        true,
        &teams,
    )
    .unwrap_err();
    assert_eq!(e.file, "ops.cedar", "{e}");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.reason.contains("department"), "{e}");
    // Unknown action.
    let e = PolicyStore::load(
        &[src(
            "permit (principal, action == Action::\"delete_everything\", resource);",
        )],
        true,
        &teams,
    )
    .unwrap_err();
    assert!(e.reason.contains("delete_everything"), "{e}");
}

#[test]
fn operator_policies_add_and_forbid() {
    let teams = Teams::new();
    let extra = PolicySource {
        name: "ops.cedar".into(),
        text: "@id(\"no-ledger\")\nforbid (principal, action, resource is Service) when { resource == Service::\"ledger\" };\n".into(),
    };
    let s = PolicyStore::load(&[extra], true, &teams).unwrap();
    let d = s.decide(
        &who(Role::Admin, None),
        Action::ReadTrace,
        &Resource::Service("ledger".into()),
        RequestContext::default(),
    );
    assert!(!d.allowed);
    assert_eq!(
        d.policies,
        vec!["ops.cedar:1 @id(\"no-ledger\")".to_string()]
    );
    // Without the defaults nothing is allowed until a permit is written.
    let s = PolicyStore::load(&[], false, &teams).unwrap();
    assert!(s.is_empty());
    assert!(!allowed(
        &s,
        &who(Role::Admin, None),
        Action::Search,
        Resource::Tenant
    ));
}

#[test]
fn resources_parse_from_cedar_syntax() {
    assert_eq!(
        Resource::parse("Service::\"checkout\"").unwrap(),
        (Resource::Service("checkout".into()), None)
    );
    assert_eq!(
        Resource::parse("Tenant::\"acme\"").unwrap(),
        (Resource::Tenant, Some(tenant("acme")))
    );
    assert!(Resource::parse("Bucket::\"x\"").is_err());
    assert!(Resource::parse("checkout").is_err());
}

#[test]
fn cached_decisions_equal_fresh_ones_and_follow_every_input() {
    let s = store();
    let fresh = store();
    let dev = who(Role::Developer, Some("payments"));
    let mut other_team = dev.clone();
    other_team.team = Some("finance".into());
    let mut other_role = dev.clone();
    other_role.role = Role::Viewer;
    let ctx = RequestContext::default();
    for _ in 0..3 {
        for id in [&dev, &other_team, &other_role] {
            for r in [
                Resource::Service("checkout".into()),
                Resource::Service("ledger".into()),
                Resource::Tenant,
                Resource::AttributeClass("pii".into()),
            ] {
                for a in [Action::ReadTrace, Action::Search, Action::ViewSensitive] {
                    for glass in [false, true] {
                        let c = RequestContext { break_glass: glass };
                        assert_eq!(
                            s.decide(id, a, &r, c),
                            fresh.decide(id, a, &r, c),
                            "{id:?} {a} {r}"
                        );
                    }
                }
            }
        }
    }
    // The same principal name with another team or role is another key.
    assert!(
        s.decide(
            &dev,
            Action::ReadTrace,
            &Resource::Service("checkout".into()),
            ctx
        )
        .allowed
    );
    assert!(
        !s.decide(
            &other_team,
            Action::ReadTrace,
            &Resource::Service("checkout".into()),
            ctx
        )
        .allowed
    );
}

#[test]
fn console_actions_go_to_the_documented_roles() {
    let s = store();
    let cases = [
        (Action::RunVerify, [Role::Admin, Role::Auditor].as_slice()),
        (
            Action::UndoResponse,
            [Role::Admin, Role::SecurityAnalyst, Role::Read].as_slice(),
        ),
        (Action::ReadAdmin, [Role::Admin, Role::Auditor].as_slice()),
    ];
    let roles = [
        Role::Admin,
        Role::SecurityAnalyst,
        Role::Read,
        Role::Viewer,
        Role::Developer,
        Role::Auditor,
        Role::Ingest,
    ];
    for (action, granted) in cases {
        for role in roles {
            let id = who(role, Some("payments"));
            assert_eq!(
                allowed(&s, &id, action, Resource::Tenant),
                granted.contains(&role),
                "{action} for {role:?}"
            );
        }
        assert_eq!(Action::parse(action.as_str()), Some(action));
    }
}
