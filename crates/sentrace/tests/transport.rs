//! Transport security on the real server: TLS 1.3 only, X25519MLKEM768 negotiated with a
//! post-quantum capable client, plaintext refused off loopback, backpressure as 429.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Barrier};

use common::*;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

fn roots(srv: &Server) -> rustls::RootCertStore {
    let pem = std::fs::read(srv.ca()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

fn handshake(
    srv: &Server,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ClientConnection, rustls::Error> {
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots(srv))
    .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", srv.query_port)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| match e.into_inner() {
                Some(inner) => match inner.downcast::<rustls::Error>() {
                    Ok(e) => *e,
                    Err(other) => rustls::Error::General(other.to_string()),
                },
                None => rustls::Error::General("io".into()),
            })?;
    }
    // Prove the channel works: an unauthenticated request gets the bare 401.
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"GET /api/services HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = Vec::new();
    let _ = tls.read_to_end(&mut resp);
    assert!(String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 401"));
    Ok(conn)
}

#[test]
fn tls13_with_hybrid_post_quantum_key_exchange() {
    let srv = Server::new("").start();
    let conn = handshake(&srv, &[&rustls::version::TLS13]).unwrap();
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(
        conn.negotiated_key_exchange_group().map(|g| g.name()),
        Some(rustls::NamedGroup::X25519MLKEM768)
    );
    // TLS 1.2 is refused.
    assert!(handshake(&srv, &[&rustls::version::TLS12]).is_err());
}

#[test]
fn plaintext_is_refused_off_loopback_and_works_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[listen]\nquery = \"0.0.0.0:0\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--insecure-plaintext", "--data-dir"])
        .arg(dir.path().join("d"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused on the non-loopback address 0.0.0.0:0"),
        "{err}"
    );

    let mut srv = Server::new("");
    // Loopback plaintext: a plain HTTP request is answered (401 without a token).
    let mut child = Command::new(BIN)
        .args(["serve", "--insecure-plaintext", "--data-dir"])
        .arg(&srv.data)
        .arg("--config")
        .arg(&srv.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{}/api/services", srv.query_port);
    let _ = rustls::crypto::CryptoProvider::install_default(
        rustls::crypto::aws_lc_rs::default_provider(),
    );
    let plain = reqwest::blocking::Client::new();
    // Poll until the listener answers (a loaded CI machine may take a while to start it).
    let mut status = 0;
    for _ in 0..600 {
        if let Ok(r) = plain.get(&url).send() {
            status = r.status().as_u16();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(status, 401);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("--insecure-plaintext"),
        "no loud warning: {log}"
    );
    srv.admin_token = None;
}

/// One burst of `n` concurrent requests of about 150 KB each, released together.
fn burst(
    srv: &Arc<Server>,
    admin: &str,
    round: u64,
    n: usize,
) -> Vec<(u16, Option<String>, String)> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n as u64)
        .map(|t| {
            let (srv, admin, barrier) = (srv.clone(), admin.to_string(), barrier.clone());
            std::thread::spawn(move || {
                let spans: Vec<_> = (0..100u64)
                    .map(|i| {
                        let mut s = span(round * 1_000_000 + t * 1000 + i, "bulk");
                        s.attributes.push(kv("payload", &"x".repeat(1400)));
                        s
                    })
                    .collect();
                let id = hex(&spans[0].trace_id);
                let body = prost::Message::encode_to_vec(&request("pressure", spans));
                let client = srv.client();
                barrier.wait();
                let r = client
                    .post(srv.http_url())
                    .bearer_auth(&admin)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .unwrap();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), retry, id)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn a_full_store_queue_answers_429_with_retry_after() {
    // The queue holds one request: two in flight at once must push one back. Whether two
    // overlap depends on scheduling, so bursts repeat until one does.
    let srv = Arc::new(Server::new("[store]\nmax_queue_bytes = 200000\n").start());
    let admin = srv.admin_token.clone().unwrap();
    let mut pushed_back = false;
    for round in 0..8u64 {
        let results = burst(&srv, &admin, round, 48);
        for (status, retry, id) in &results {
            assert!(matches!(status, 200 | 429), "unexpected {status}");
            if *status == 429 {
                pushed_back = true;
                let secs: u64 = retry
                    .as_deref()
                    .expect("429 without Retry-After")
                    .parse()
                    .unwrap();
                assert!(secs >= 1);
            }
            // Every acknowledged request is readable; nothing refused was stored.
            let r = srv
                .get(&admin, &format!("/api/traces/{id}"))
                .status()
                .as_u16();
            assert_eq!(r, if *status == 200 { 200 } else { 404 });
        }
        if pushed_back {
            break;
        }
    }
    assert!(pushed_back, "no request was pushed back in 8 bursts");
}
