use super::*;
use crate::{Action, Kind};

#[test]
fn default_policy_parses_and_is_safe() {
    let base = parse(DEFAULT_POLICY_TOML, "default_policy.toml").unwrap();
    let p = Policy::default();
    assert_eq!(p.source(), "default_policy.toml");
    let r = p.resolve("t", "svc");
    for k in Kind::ALL {
        assert!(
            base.actions.contains_key(&k),
            "default policy does not name {k}"
        );
        assert_ne!(r.action(k), Action::Keep, "{k} kept by default");
    }
    assert_eq!(r.action(Kind::Email), Action::Pseudonym);
    assert_eq!(r.action(Kind::Ip), Action::Generalize);
    assert_eq!(r.action(Kind::Card), Action::Mask);
}

#[test]
fn overrides_layer_in_order() {
    let text = r#"
version = 1
[actions]
phone = "truncate"

[[override]]
tenant = "acme"
[override.actions]
email = "token"

[[override]]
tenant = "acme"
service = "checkout"
[override.actions]
email = "drop"
[override.keys]
allowed = ["http.route"]
"#;
    let p = Policy::from_toml(text, "p.toml").unwrap();
    let other = p.resolve("other", "checkout");
    assert_eq!(other.action(Kind::Phone), Action::Truncate);
    assert_eq!(other.action(Kind::Email), Action::Pseudonym);
    assert!(other.is_allowed("anything"));
    let acme = p.resolve("acme", "web");
    assert_eq!(acme.action(Kind::Email), Action::Token);
    let acme_co = p.resolve("acme", "checkout");
    assert_eq!(acme_co.action(Kind::Email), Action::Drop);
    assert!(acme_co.is_allowed("http.route"));
    assert!(!acme_co.is_allowed("user.email"));
}

#[test]
fn digest_is_canonical() {
    let a = Policy::from_toml(
        "version = 1\n[actions]\nphone = \"drop\"\nemail = \"mask\"\n",
        "a",
    )
    .unwrap();
    let b = Policy::from_toml(
        "# comment\nversion=1\n\n[actions]\nemail=\"mask\"\n  phone   = \"drop\"",
        "b",
    )
    .unwrap();
    let c = Policy::from_toml(
        "version = 1\n[actions]\nphone = \"mask\"\nemail = \"mask\"\n",
        "c",
    )
    .unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_ne!(a.digest(), c.digest());
    assert_ne!(a.digest(), Policy::default().digest());
    assert_eq!(Policy::default().digest(), Policy::default().digest());
    assert_eq!(a.digest_hex().len(), 64);
}

fn err(text: &str) -> PolicyError {
    Policy::from_toml(text, "bad.toml").unwrap_err()
}

#[test]
fn bad_files_say_file_line_and_reason() {
    let e = err("version = 1\n[actions]\nemial = \"mask\"\n");
    match &e {
        PolicyError::Parse {
            file, line, reason, ..
        } => {
            assert_eq!(file, "bad.toml");
            assert_eq!(*line, 3);
            assert!(reason.contains("emial"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().starts_with("bad.toml:3:"), "{e}");

    let e = err("version = 1\n[actions]\nemail = \"scramble\"\n");
    assert!(
        matches!(&e, PolicyError::Parse { line: 3, reason, .. } if reason.contains("scramble")),
        "{e}"
    );

    let e = err("version = 1\n[options]\ntruncate_keep = 99\n");
    assert!(
        matches!(&e, PolicyError::Invalid { line: 3, reason, .. } if reason.contains("truncate_keep")),
        "{e}"
    );

    let e = err("version = 2\n");
    assert!(matches!(&e, PolicyError::Invalid { line: 1, .. }), "{e}");

    let e = err("version = 1\n\n[[override]]\n[override.actions]\nemail = \"mask\"\n");
    assert!(
        matches!(&e, PolicyError::Invalid { line: 3, reason, .. } if reason.contains("tenant")),
        "{e}"
    );

    let e = err("version = 1\n[[override]]\ntenant = \"Bad Tenant\"\n");
    assert!(matches!(&e, PolicyError::Parse { line: 3, .. }), "{e}");

    let e = err("version = 1\n[keys]\nsensitiv = {}\n");
    assert!(
        matches!(&e, PolicyError::Parse { line: 3, reason, .. } if reason.contains("sensitiv")),
        "{e}"
    );

    let e = err("version = 1\n[actions\n");
    assert!(matches!(&e, PolicyError::Parse { line: 2, .. }), "{e}");
}
