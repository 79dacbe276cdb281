//! Threat detection and automated response end to end on the real binary: an SQL injection
//! in a server span becomes a finding at `/api/findings`; the response policy quarantines
//! the source; its next spans are set aside (reported to the sender, absent from the Jaeger
//! API, listed in the quarantine); `sentrace response undo` lifts it and spans flow again.
//! A stuck webhook sink never slows ingest and its drops are counted in `/metrics`.

mod common;

use std::time::{Duration, Instant};

use common::{Server, hex, kv, request, span};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

const POLICY: &str = r#"
format = 1
[[rule]]
id = "tag-and-quarantine-sqli"
families = ["sqli"]
actions = [
  { type = "tag_trace" },
  { type = "quarantine", subject = "client_address", ttl_secs = 3600 },
]
"#;

fn server_span(n: u64, client: &str, query: &str) -> opentelemetry_proto::tonic::trace::v1::Span {
    let mut s = span(n, "GET /products");
    s.attributes = vec![
        kv("http.request.method", "GET"),
        kv("url.path", "/products"),
        kv("url.query", query),
        kv("http.route", "/products"),
        kv("client.address", client),
    ];
    s
}

fn export(
    srv: &Server,
    token: &str,
    spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>,
) -> ExportTraceServiceResponse {
    let resp = srv.post_proto(token, &request("shop", spans));
    assert_eq!(resp.status().as_u16(), 200, "export failed");
    ExportTraceServiceResponse::decode(resp.bytes().unwrap().as_ref()).unwrap()
}

fn json(srv: &Server, token: &str, path: &str) -> serde_json::Value {
    let r = srv.get(token, path);
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    r.json().unwrap()
}

fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {prefix} missing in\n{text}"))
}

#[test]
fn sqli_finding_quarantine_and_undo() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("response.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, "0123456789abcdef0123456789").unwrap();
    let findings_file = dir.path().join("findings.jsonl");
    // A webhook receiver that accepts connections and never answers.
    let stuck = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stuck_port = stuck.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in stuck.incoming() {
            held.push(s);
        }
    });
    let mut srv = Server::new(&format!(
        r#"
[detect.sinks]
queue_capacity = 2
max_attempts = 1
[detect.sinks.file]
path = "{}"
[[detect.sinks.webhook]]
name = "stuck"
url = "https://127.0.0.1:{stuck_port}/hook"
secret_file = "{}"
timeout_ms = 60000
[detect.response]
policy = "{}"
"#,
        findings_file.display(),
        secret.display(),
        policy.display()
    ));
    srv.launch();
    let ingest = srv.token("acme", "ingest");
    let read = srv.token("acme", "read");
    // Node-wide counters are for the operator tenant (`[access] operator_tenant`).
    let operator = srv.token("default", "read");

    // 1. A burst of injections from many sources: the stuck sink must not slow ingest.
    let burst: Vec<_> = (0..40u64)
        .map(|i| server_span(1000 + i, &format!("198.51.100.{i}"), "id=1' OR '1'='1' --"))
        .collect();
    let t0 = Instant::now();
    export(&srv, &ingest, burst);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "ingest waited on a sink"
    );

    // 2. One injection from the attacker.
    let attack = server_span(
        1,
        "203.0.113.7",
        "id=1' UNION SELECT username,password FROM users--",
    );
    let trace_hex = hex(&attack.trace_id);
    let span_hex = hex(&attack.span_id);
    let r = export(&srv, &ingest, vec![attack]);
    assert!(
        r.partial_success.is_none(),
        "the attack span itself is stored"
    );

    let v = json(
        &srv,
        &read,
        &format!("/api/findings?trace_id={trace_hex}&family=sqli"),
    );
    let data = v["data"].as_array().unwrap();
    assert!(!data.is_empty(), "no finding for the attack: {v}");
    let f = &data[0];
    assert_eq!(f["class_uid"], 2004);
    assert_eq!(f["src_endpoint"]["ip"], "203.0.113.7");
    assert_eq!(f["evidences"][0]["data"]["trace_id"], trace_hex);
    assert_eq!(f["evidences"][0]["data"]["span_id"], span_hex);
    let snippet = f["evidences"][0]["data"]["snippet"].as_str().unwrap();
    assert!(!snippet.contains("password FROM users") || snippet.len() <= 120);
    // Filters exclude.
    let none = json(
        &srv,
        &read,
        &format!("/api/findings?trace_id={trace_hex}&family=xss"),
    );
    assert_eq!(none["total"], 0);
    assert_eq!(
        srv.get(&read, "/api/findings?severity=bogus")
            .status()
            .as_u16(),
        400
    );
    // Another tenant sees nothing.
    let other = srv.token("other", "read");
    assert_eq!(json(&srv, &other, "/api/findings")["total"], 0);

    // The stored attack span is tagged by the tag_trace action.
    let t = json(&srv, &read, &format!("/api/traces/{trace_hex}"));
    let tags = t["data"][0]["spans"][0]["tags"].to_string();
    assert!(tags.contains("security.finding.family"), "{tags}");

    // 3. The response: a quarantine of the attacker's address, audited.
    let responses = json(&srv, &read, "/api/responses");
    let q = responses["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["action"]["type"] == "quarantine" && a["action"]["target"]["value"] == "203.0.113.7"
        })
        .unwrap_or_else(|| panic!("no quarantine action: {responses}"))
        .clone();
    assert_eq!(q["status"], "active");
    let id = q["id"].as_str().unwrap().to_string();
    let listed = srv.cli(&["response", "list"]);
    assert!(listed.contains(&id), "{listed}");

    // 4. The attacker's next (benign) span is set aside and reported; others still flow.
    let next = server_span(2, "203.0.113.7", "q=shoes");
    let next_trace = hex(&next.trace_id);
    let bystander = server_span(3, "192.0.2.44", "q=shoes");
    let bystander_trace = hex(&bystander.trace_id);
    let r = export(&srv, &ingest, vec![next, bystander]);
    let ps = r.partial_success.expect("partial success reported");
    assert_eq!(ps.rejected_spans, 1);
    assert!(
        ps.error_message.contains("quarantined"),
        "{}",
        ps.error_message
    );
    assert_eq!(
        srv.get(&read, &format!("/api/traces/{next_trace}"))
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        srv.get(&read, &format!("/api/traces/{bystander_trace}"))
            .status()
            .as_u16(),
        200
    );
    let qs = json(&srv, &read, "/api/responses/quarantine");
    assert!(qs.to_string().contains("203.0.113.7"), "{qs}");
    assert_eq!(json(&srv, &read, "/api/responses")["quarantined_spans"], 1);

    // 5. Undo through the CLI while the server runs; spans flow again.
    srv.cli(&["response", "undo", &id]);
    let listed = srv.cli(&["response", "list", "--all", "--json"]);
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&id) && l.contains("\"undone\"")),
        "{listed}"
    );
    let again = server_span(4, "203.0.113.7", "q=boots");
    let again_trace = hex(&again.trace_id);
    let r = export(&srv, &ingest, vec![again]);
    assert!(r.partial_success.is_none(), "still quarantined after undo");
    assert_eq!(
        srv.get(&read, &format!("/api/traces/{again_trace}"))
            .status()
            .as_u16(),
        200
    );

    // 6. Metrics: findings, quarantined spans, sink drops; the file sink got findings.
    let m = srv.get(&operator, "/metrics").text().unwrap();
    assert!(
        metric(&m, "sentrace_detect_findings_total{severity=\"high\"}")
            + metric(&m, "sentrace_detect_findings_total{severity=\"critical\"}")
            >= 41
    );
    assert_eq!(
        metric(
            &m,
            "sentrace_response_events_total{event=\"quarantined_spans\"}"
        ),
        1
    );
    assert!(metric(&m, "sentrace_response_events_total{event=\"undone\"}") >= 1);
    let dropped = metric(
        &m,
        "sentrace_detect_sink_findings_total{sink=\"stuck\",kind=\"webhook\",outcome=\"dropped\"}",
    );
    assert!(
        dropped >= 30,
        "drops of the stuck sink are counted: {dropped}"
    );
    // The file sink shares the small queue: what it did not drop, it wrote.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = srv.get(&operator, "/metrics").text().unwrap();
        let sent = metric(
            &m,
            "sentrace_detect_sink_findings_total{sink=\"file\",kind=\"file\",outcome=\"sent\"}",
        );
        let dropped = metric(
            &m,
            "sentrace_detect_sink_findings_total{sink=\"file\",kind=\"file\",outcome=\"dropped\"}",
        );
        let lines = std::fs::read_to_string(&findings_file).unwrap_or_default();
        let n = lines.lines().count() as u64;
        if sent + dropped >= 41 && n == sent && n >= 2 {
            let first: serde_json::Value =
                serde_json::from_str(lines.lines().next().unwrap()).unwrap();
            assert_eq!(first["class_uid"], 2004);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "file sink: {n} lines, sent {sent}, dropped {dropped}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // 7. Actions, findings and quarantined spans survive a restart (replayed from the
    // audit log minus undo, and from the encrypted journals).
    let findings_before = json(&srv, &read, "/api/findings?limit=1000");
    srv.stop();
    srv.launch();
    let findings_after = json(&srv, &read, "/api/findings?limit=1000");
    assert_eq!(
        findings_after, findings_before,
        "findings kept across the restart"
    );
    let qs = json(&srv, &read, "/api/responses/quarantine");
    assert!(qs.to_string().contains("203.0.113.7"), "{qs}");
    assert_eq!(json(&srv, &read, "/api/responses")["quarantined_spans"], 1);
    let responses = json(&srv, &read, "/api/responses");
    let q = responses["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(q["status"], "undone");
}

#[test]
fn offline_detect_reads_collector_json_lines() {
    let attack = server_span(7, "203.0.113.9", "id=1' OR '1'='1' --");
    let benign = server_span(8, "203.0.113.9", "q=o'brien shoes");
    let t_attack = hex(&attack.trace_id);
    // Two documents (JSON lines), the later one first: output follows time order.
    let mut late = benign.clone();
    late.start_time_unix_nano += 10_000_000_000;
    late.end_time_unix_nano += 10_000_000_000;
    let input = format!(
        "{}\n{}\n",
        serde_json::to_string(&request("shop", vec![late])).unwrap(),
        serde_json::to_string(&request("shop", vec![attack])).unwrap()
    );
    let mut child = std::process::Command::new(common::BIN)
        .arg("detect")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|f| f["class_uid"] == 2004));
    assert!(lines.iter().any(|f| f["finding_info"]["types"][0] == "sqli"
        && f["evidences"][0]["data"]["trace_id"] == t_attack));
    assert!(
        !lines.iter().any(|f| f["finding_info"]["types"][0] == "sqli"
            && f["evidences"][0]["data"]["trace_id"] != t_attack),
        "the benign apostrophe is not an injection"
    );
}

#[test]
fn offline_detect_streams_in_a_bounded_window() {
    use std::io::{BufRead, Write};
    // 40,000 one-span traces in 400 JSON lines (about 30 MB), an injection in the first and
    // in the last; regrouped in a window of 1,000 spans.
    const LINES: u64 = 400;
    const PER_LINE: u64 = 100;
    let last = LINES * PER_LINE - 1;
    let mut child = common::spawn_piped(&["detect", "--window", "1000", "--fail-on", "high"]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut w = std::io::BufWriter::new(&mut stdin);
        let mut ids = Vec::new();
        for line in 0..LINES {
            let spans: Vec<_> = (0..PER_LINE)
                .map(|i| {
                    let n = line * PER_LINE + i;
                    let query = if n == 0 || n == last {
                        "id=1' OR '1'='1' --".to_string()
                    } else {
                        format!("q=shoes&page={n}&ref={}", "x".repeat(400))
                    };
                    let mut s = server_span(n + 1, "203.0.113.9", &query);
                    s.start_time_unix_nano += n * 1_000_000;
                    s.end_time_unix_nano += n * 1_000_000;
                    if n == 0 || n == last {
                        ids.push(hex(&s.trace_id));
                    }
                    s
                })
                .collect();
            serde_json::to_writer(&mut w, &request("shop", spans)).unwrap();
            w.write_all(b"\n").unwrap();
        }
        w.flush().unwrap();
        ids
    });
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
            .collect::<Vec<_>>()
    });
    let (status, peak) = common::wait_sampling_rss(&mut child);
    let attacks = writer.join().unwrap();
    let findings = reader.join().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "--fail-on high with injections found"
    );
    let sqli: std::collections::BTreeSet<&str> = findings
        .iter()
        .filter(|f| f["finding_info"]["types"][0] == "sqli")
        .filter_map(|f| f["evidences"][0]["data"]["trace_id"].as_str())
        .collect();
    let expected: std::collections::BTreeSet<&str> = attacks.iter().map(String::as_str).collect();
    assert_eq!(
        sqli, expected,
        "injections found in exactly the two attack traces"
    );
    assert!(peak > 0);
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}
