//! Sinks against real local receivers: a JSON-lines file, an HTTPS server that checks the
//! HMAC signature, and TCP and TLS syslog listeners that parse RFC 5424 frames and CEF.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use sentrace_core::{SpanId, TenantId, TraceId};
use sentrace_detect::{Evidence, Family, RuleKind, Subject};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc as tmpsc;

use super::*;
use crate::detect::config::{FileSinkConfig, SinksConfig, SyslogSinkConfig, WebhookSinkConfig};
use crate::tls::{TlsPaths, ensure_local_pki, server_config};

fn finding(n: u8) -> Finding {
    let mut f = Finding {
        uid: String::new(),
        tenant: TenantId::new("acme").unwrap(),
        rule_id: "sqli-tokenizer".into(),
        title: "SQL injection | in input".into(),
        family: Family::Sqli,
        kind: RuleKind::Payload,
        severity: Severity::High,
        confidence: 90,
        technique: "T1190".into(),
        ruleset_version: "1".into(),
        time_unix_nanos: 1_700_000_000_123_456_789,
        service: "shop".into(),
        subject: Subject {
            client_address: Some("203.0.113.9".into()),
            ..Default::default()
        },
        evidences: vec![Evidence {
            trace_id: Some(TraceId::from_bytes([n.max(1); 16]).unwrap()),
            span_id: Some(SpanId::from_bytes([7; 8]).unwrap()),
            attribute: "url.query".into(),
            snippet: "id=0' or '0'='0".into(),
            reason: "tautology".into(),
        }],
        message: "m".into(),
        downgraded: false,
    };
    f.uid = f.compute_uid();
    f
}

fn base() -> SinksConfig {
    SinksConfig {
        queue_capacity: 16,
        max_attempts: 3,
        retry_backoff_ms: 10,
        ..Default::default()
    }
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn signature_round_trip_and_tamper() {
    let sig = sign(b"0123456789abcdef", 1_700_000_000, b"{\"a\":1}");
    assert!(sig.starts_with("t=1700000000,v1="));
    assert_eq!(
        verify(b"0123456789abcdef", &sig, b"{\"a\":1}"),
        Some(1_700_000_000)
    );
    assert_eq!(verify(b"0123456789abcdef", &sig, b"{\"a\":2}"), None);
    assert_eq!(verify(b"0123456789abcdeX", &sig, b"{\"a\":1}"), None);
    let other_t = sig.replace("t=1700000000", "t=1700000001");
    assert_eq!(verify(b"0123456789abcdef", &other_t, b"{\"a\":1}"), None);
}

#[test]
fn rfc3339_known_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(
        rfc3339(1_700_000_000_123_456_789),
        "2023-11-14T22:13:20.123456Z"
    );
    assert_eq!(
        rfc3339(951_782_400_000_000_000),
        "2000-02-29T00:00:00.000000Z"
    );
}

#[tokio::test]
async fn file_sink_writes_ocsf_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.jsonl");
    let mut cfg = base();
    cfg.file = Some(FileSinkConfig { path: path.clone() });
    let sinks = Sinks::start(&cfg).unwrap();
    sinks.send(&finding(1));
    sinks.send(&finding(2));
    let c = sinks.counters("file").unwrap();
    wait_for(|| c.sent.load(Relaxed) == 2).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["class_uid"], 2004);
    let mode = std::fs::metadata(&path).unwrap().permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o600);
}

struct Pki {
    _dir: tempfile::TempDir,
    paths: TlsPaths,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let paths = TlsPaths::under(dir.path());
    ensure_local_pki(&paths, &["localhost".into()]).unwrap();
    Pki { _dir: dir, paths }
}

#[tokio::test]
async fn webhook_sink_signs_with_hmac_and_retries() {
    let pki = pki();
    let secret = b"s3cret-s3cret-s3cret".to_vec();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, [secret.as_slice(), b"\n"].concat()).unwrap();
    let (tx, mut rx) = tmpsc::unbounded_channel::<(bool, serde_json::Value)>();
    let calls = std::sync::Arc::new(AtomicU64::new(0));
    let calls2 = calls.clone();
    let key = secret.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let key = key.clone();
            let calls = calls2.clone();
            async move {
                // The first call fails: the sink must retry.
                if calls.fetch_add(1, Relaxed) == 0 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let sig = headers
                    .get(SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let ok = verify(&key, sig, &body).is_some_and(|t| t.abs_diff(now_secs()) < 300);
                let v = serde_json::from_slice(&body).unwrap_or_default();
                let _ = tx.send((ok, v));
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = server_config(&pki.paths.server_cert, &pki.paths.server_key).unwrap();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(crate::tls::serve(listener, Some(tls), router, stop_rx));

    let mut cfg = base();
    cfg.webhook.push(WebhookSinkConfig {
        name: "siem".into(),
        url: format!("https://localhost:{port}/hook"),
        secret_file,
        ca: Some(pki.paths.ca_cert.clone()),
        all_findings: true,
        timeout_ms: 5000,
    });
    let sinks = Sinks::start(&cfg).unwrap();
    sinks.send(&finding(3));
    let (ok, v) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(ok, "the receiver recomputed the HMAC and it matched");
    assert_eq!(v["class_uid"], 2004);
    let c = sinks.counters("siem").unwrap();
    wait_for(|| c.sent.load(Relaxed) == 1).await;
    assert_eq!(c.retries.load(Relaxed), 1);
    // A named call from a response action goes to the same webhook.
    assert!(sinks.call_webhook("siem", &finding(4)));
    assert!(!sinks.call_webhook("nope", &finding(4)));
    let (ok, _) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(ok);
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> String {
    let mut len = Vec::new();
    r.read_until(b' ', &mut len).await.unwrap();
    let n: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
    let mut msg = vec![0u8; n];
    r.read_exact(&mut msg).await.unwrap();
    String::from_utf8(msg).unwrap()
}

/// Parses an RFC 5424 message into (pri, version, timestamp, app, msgid, msg).
fn parse_5424(m: &str) -> (u32, String, String, String, String, String) {
    let rest = m.strip_prefix('<').unwrap();
    let (pri, rest) = rest.split_once('>').unwrap();
    let mut parts = rest.splitn(8, ' ');
    let version = parts.next().unwrap().to_string();
    let ts = parts.next().unwrap().to_string();
    let _host = parts.next().unwrap();
    let app = parts.next().unwrap().to_string();
    let _procid = parts.next().unwrap();
    let msgid = parts.next().unwrap().to_string();
    let sd = parts.next().unwrap();
    assert_eq!(sd, "-");
    (
        pri.parse().unwrap(),
        version,
        ts,
        app,
        msgid,
        parts.next().unwrap().to_string(),
    )
}

fn check_cef(msg: &str) {
    assert!(msg.starts_with("CEF:0|Sentrace|sentrace|"), "{msg}");
    // CEF header has 7 unescaped pipes; the title's pipe is escaped.
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut esc = false;
    for ch in msg.chars() {
        if esc {
            cur.push(ch);
            esc = false;
        } else if ch == '\\' {
            cur.push(ch);
            esc = true;
        } else if ch == '|' && fields.len() < 7 {
            fields.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    assert_eq!(fields.len(), 7, "{msg}");
    assert_eq!(fields[4], "sqli-tokenizer");
    assert_eq!(fields[5], "SQL injection \\| in input");
    assert_eq!(fields[6], "8");
    assert!(cur.contains("src=203.0.113.9"), "{cur}");
}

#[tokio::test]
async fn syslog_sink_over_tcp_and_tls() {
    // Plain TCP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = base();
    cfg.syslog.push(SyslogSinkConfig {
        name: "soc".into(),
        address: addr.to_string(),
        tls: false,
        ca: None,
        timeout_ms: 5000,
    });
    let sinks = Sinks::start(&cfg).unwrap();
    sinks.send(&finding(5));
    sinks.send(&finding(6));
    let (sock, _) = listener.accept().await.unwrap();
    let mut r = BufReader::new(sock);
    for _ in 0..2 {
        let m = read_frame(&mut r).await;
        let (pri, version, ts, app, msgid, msg) = parse_5424(&m);
        assert_eq!(pri, 10 * 8 + 3, "authpriv.err for a high finding");
        assert_eq!(version, "1");
        assert_eq!(ts, "2023-11-14T22:13:20.123456Z");
        assert_eq!(app, "sentrace");
        assert_eq!(msgid, "finding");
        check_cef(&msg);
    }

    // TLS (RFC 5425).
    let pki = pki();
    let acceptor = tokio_rustls::TlsAcceptor::from(
        server_config(&pki.paths.server_cert, &pki.paths.server_key)
            .unwrap()
            .any,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = base();
    cfg.syslog.push(SyslogSinkConfig {
        name: "soc-tls".into(),
        address: format!("localhost:{port}"),
        tls: true,
        ca: Some(pki.paths.ca_cert.clone()),
        timeout_ms: 5000,
    });
    let sinks = Sinks::start(&cfg).unwrap();
    sinks.send(&finding(7));
    let (sock, _) = listener.accept().await.unwrap();
    let tls = acceptor.accept(sock).await.unwrap();
    let mut r = BufReader::new(tls);
    let (_, _, _, _, _, msg) = parse_5424(&read_frame(&mut r).await);
    check_cef(&msg);
}

#[tokio::test]
async fn a_stuck_sink_never_blocks_and_counts_drops() {
    // A receiver that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "0123456789abcdef0123").unwrap();
    let mut cfg = base();
    cfg.queue_capacity = 4;
    cfg.webhook.push(WebhookSinkConfig {
        name: "stuck".into(),
        url: format!("https://127.0.0.1:{}/x", addr.port()),
        secret_file,
        ca: None,
        all_findings: true,
        timeout_ms: 60_000,
    });
    let sinks = Sinks::start(&cfg).unwrap();
    let t0 = Instant::now();
    for n in 0..200u8 {
        sinks.send(&finding(n));
    }
    assert!(t0.elapsed() < Duration::from_secs(1), "send never waits");
    let c = sinks.counters("stuck").unwrap();
    let dropped = c.dropped.load(Relaxed);
    assert!((195..=196).contains(&dropped), "dropped {dropped}");
    let sinks = Arc::new(sinks);
    let text = sentrace_pipeline::metrics::export::render(move |e| sinks.encode_metrics(e));
    assert!(text.contains(&format!(
        "sentrace_detect_sink_findings_total{{sink=\"stuck\",kind=\"webhook\",outcome=\"dropped\"}} {dropped}"
    )), "{text}");
}
