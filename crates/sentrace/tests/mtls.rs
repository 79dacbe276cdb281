//! TLS client certificates as identities, end to end: the real server binary, a CA per
//! tenant and client certificates made at test time, a rustls client (through reqwest) and
//! curl where it is installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Server, hex, request, serve_once, span};
use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test CA that signs client certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let cert = p.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A client certificate with subject CN `cn`, the given SANs and validity years.
    fn leaf(&self, cn: &str, sans: Vec<SanType>, valid: (i32, i32)) -> Leaf {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = rcgen::date_time_ymd(valid.0, 1, 1);
        p.not_after = rcgen::date_time_ymd(valid.1, 1, 1);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

const VALID: (i32, i32) = (2024, 2099);
const EXPIRED: (i32, i32) = (2020, 2021);

fn uri(u: &str) -> Vec<SanType> {
    vec![SanType::URI(u.try_into().unwrap())]
}

/// A client certificate and its key.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Leaf {
    /// Writes `NAME.pem` and `NAME.key` under `dir` (for curl).
    fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, &self.cert_pem).unwrap();
        std::fs::write(&k, &self.key_pem).unwrap();
        (c, k)
    }
}

/// A rustls TLS 1.3 client configuration trusting the server's CA, presenting `leaf` if
/// given.
fn client_config(srv: &Server, leaf: Option<&Leaf>) -> rustls::ClientConfig {
    let pem = std::fs::read(srv.ca()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots);
    match leaf {
        Some(l) => builder
            .with_client_auth_cert(
                vec![l.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(l.key_der.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

/// A reqwest client over [`client_config`]; `h2_only` for gRPC.
fn client(srv: &Server, leaf: Option<&Leaf>, h2_only: bool) -> reqwest::blocking::Client {
    let mut tls = client_config(srv, leaf);
    let mut b = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60));
    if h2_only {
        tls.alpn_protocols = vec![b"h2".to_vec()];
        b = b.http2_prior_knowledge();
    }
    b.use_preconfigured_tls(tls).build().unwrap()
}

/// One OTLP/gRPC Export framed by hand: Ok(grpc-status) or the transport error.
fn grpc_export(
    srv: &Server,
    leaf: Option<&Leaf>,
    token: Option<&str>,
    service: &str,
    n: u64,
) -> Result<String, String> {
    let body = request(service, vec![span(n, "op")]).encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    let mut b = client(srv, leaf, true)
        .post(format!(
            "https://localhost:{}/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            srv.grpc_port
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = token {
        b = b.bearer_auth(t);
    }
    let r = b.body(frame).send().map_err(|e| format!("{e:?}"))?;
    assert_eq!(r.status().as_u16(), 200);
    let status = r.headers().get("grpc-status").cloned();
    // A successful unary response carries grpc-status in the trailers.
    let _ = r.bytes();
    Ok(status.map_or("0".into(), |v| v.to_str().unwrap().to_string()))
}

/// An OTLP/HTTP protobuf export: Ok(status) or the transport error.
fn http_export(
    srv: &Server,
    leaf: Option<&Leaf>,
    token: Option<&str>,
    service: &str,
    n: u64,
) -> Result<u16, String> {
    let mut b = client(srv, leaf, false)
        .post(srv.http_url())
        .header("content-type", "application/x-protobuf")
        .body(request(service, vec![span(n, "op")]).encode_to_vec());
    if let Some(t) = token {
        b = b.bearer_auth(t);
    }
    b.send()
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

/// A GET on the query listener: Ok(status) or the transport error.
fn query(
    srv: &Server,
    leaf: Option<&Leaf>,
    token: Option<&str>,
    path: &str,
) -> Result<u16, String> {
    let mut b = client(srv, leaf, false).get(srv.query_url(path));
    if let Some(t) = token {
        b = b.bearer_auth(t);
    }
    b.send()
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

/// Asserts that a request failed in transport (the handshake was refused).
#[track_caller]
fn refused<T: std::fmt::Debug>(r: Result<T, String>) {
    if let Ok(v) = r {
        panic!("expected a TLS refusal, got {v:?}");
    }
}

/// Handshakes with `port` over a plain rustls stream, presenting `leaf` if given, sends one
/// HTTP/1.1 request and returns what the first read brings: the TLS alert the server sent
/// (TLS 1.3 clients learn of a refused certificate only on their first read), or "ok".
fn alert(srv: &Server, port: u16, leaf: Option<&Leaf>) -> String {
    use std::io::{Read, Write};
    let cfg = client_config(srv, leaf);
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let req = "GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    let mut buf = [0u8; 64];
    match tls
        .write_all(req.as_bytes())
        .and_then(|_| tls.read(&mut buf))
    {
        Ok(_) => "ok".into(),
        Err(e) => match e.into_inner().map(|e| e.downcast::<rustls::Error>()) {
            Some(Ok(e)) => match *e {
                rustls::Error::AlertReceived(a) => format!("{a:?}"),
                other => format!("{other:?}"),
            },
            other => format!("{other:?}"),
        },
    }
}

struct Pki {
    acme: Ca,
    globex: Ca,
    other: Ca,
}

fn config(dir: &Path, pki: &Pki) -> String {
    let a = dir.join("acme-ca.pem");
    let g = dir.join("globex-ca.pem");
    std::fs::write(&a, &pki.acme.pem).unwrap();
    std::fs::write(&g, &pki.globex.pem).unwrap();
    format!(
        r#"
[tls.client_auth]
otlp_grpc = "required"
otlp_http = "optional"
query = "optional"

[[auth.mtls]]
tenant = "acme"
ca = "{}"
[[auth.mtls.rules]]
field = "uri"
pattern = "spiffe://acme.example/agent/*"
role = "ingest"
[[auth.mtls.rules]]
field = "cn"
pattern = "reader-*"
role = "viewer"
kind = "user"

[[auth.mtls]]
tenant = "globex"
ca = "{}"
[[auth.mtls.rules]]
field = "cn"
pattern = "reader-*"
role = "viewer"
kind = "user"
"#,
        a.display(),
        g.display()
    )
}

#[test]
fn client_certificates_are_identities() {
    let pki = Pki {
        acme: Ca::new("acme agents CA"),
        globex: Ca::new("globex CA"),
        other: Ca::new("someone else's CA"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::new(&config(tmp.path(), &pki)).start();

    let agent = pki
        .acme
        .leaf("agent-1", uri("spiffe://acme.example/agent/a1"), VALID);
    let reader = pki.acme.leaf("reader-1", vec![], VALID);
    let unmapped = pki.acme.leaf("stranger", vec![], VALID);
    let expired = pki
        .acme
        .leaf("agent-old", uri("spiffe://acme.example/agent/old"), EXPIRED);
    let globex_reader = pki.globex.leaf("reader-1", vec![], VALID);
    let foreign = pki
        .other
        .leaf("agent-1", uri("spiffe://acme.example/agent/a1"), VALID);

    // The right CA's agent certificate ingests without a token, over gRPC (required) and
    // OTLP/HTTP (optional).
    assert_eq!(
        grpc_export(&srv, Some(&agent), None, "acme-svc", 1).unwrap(),
        "0"
    );
    assert_eq!(
        http_export(&srv, Some(&agent), None, "acme-svc", 2).unwrap(),
        200
    );
    let acme_trace = hex(&span(1, "op").trace_id);
    let acme_http_trace = hex(&span(2, "op").trace_id);

    // A reading role reads its tenant's traces without a token; the ingest role may not read.
    let path = format!("/api/traces/{acme_trace}");
    assert_eq!(query(&srv, Some(&reader), None, &path).unwrap(), 200);
    assert_eq!(
        query(
            &srv,
            Some(&reader),
            None,
            &format!("/api/traces/{acme_http_trace}")
        )
        .unwrap(),
        200
    );
    assert_eq!(query(&srv, Some(&agent), None, &path).unwrap(), 403);

    // Tenant isolation: globex data is written with a token, read by globex's certificate,
    // never by acme's; and acme's data never by globex's.
    let globex_ingest = srv.token("globex", "ingest");
    assert_eq!(
        http_export(&srv, None, Some(&globex_ingest), "globex-svc", 3).unwrap(),
        200
    );
    let globex_path = format!("/api/traces/{}", hex(&span(3, "op").trace_id));
    assert_eq!(
        query(&srv, Some(&globex_reader), None, &globex_path).unwrap(),
        200
    );
    assert_eq!(query(&srv, Some(&reader), None, &globex_path).unwrap(), 404);
    assert_eq!(query(&srv, Some(&globex_reader), None, &path).unwrap(), 404);
    // A bearer token of another tenant on a certificate connection: refused.
    let globex_read = srv.token("globex", "read");
    assert_eq!(
        query(&srv, Some(&reader), Some(&globex_read), &globex_path).unwrap(),
        401
    );

    // Refused in the handshake, on every listener, with the alert that says why.
    refused(grpc_export(&srv, Some(&foreign), None, "x", 4));
    refused(http_export(&srv, Some(&foreign), None, "x", 4));
    refused(query(&srv, Some(&foreign), None, &path));
    refused(grpc_export(&srv, Some(&expired), None, "x", 5));
    refused(http_export(&srv, Some(&expired), None, "x", 5));
    refused(grpc_export(&srv, Some(&unmapped), None, "x", 6));
    refused(query(&srv, Some(&unmapped), None, &path));
    for port in [srv.grpc_port, srv.http_port, srv.query_port] {
        assert_eq!(alert(&srv, port, Some(&foreign)), "UnknownCA");
        assert_eq!(alert(&srv, port, Some(&expired)), "CertificateExpired");
        assert_eq!(alert(&srv, port, Some(&unmapped)), "AccessDenied");
        assert_eq!(alert(&srv, port, Some(&reader)), "ok");
    }

    // No certificate: refused on the required listener even with a valid token; on the
    // optional ones, bearer tokens work as before and nothing else does.
    let acme_ingest = srv.token("acme", "ingest");
    refused(grpc_export(&srv, None, Some(&acme_ingest), "acme-svc", 7));
    assert_eq!(alert(&srv, srv.grpc_port, None), "CertificateRequired");
    assert_eq!(alert(&srv, srv.query_port, None), "ok");
    assert_eq!(
        http_export(&srv, None, Some(&acme_ingest), "acme-svc", 8).unwrap(),
        200
    );
    assert_eq!(http_export(&srv, None, None, "acme-svc", 9).unwrap(), 401);
    assert_eq!(query(&srv, None, None, &path).unwrap(), 401);
    let acme_read = srv.token("acme", "read");
    assert_eq!(query(&srv, None, Some(&acme_read), &path).unwrap(), 200);

    // Every outcome is counted (the server's counters, not a tenant's: an operator's read).
    let operator = srv.token("default", "read");
    let metrics = client(&srv, None, false)
        .get(srv.query_url("/metrics"))
        .bearer_auth(&operator)
        .send()
        .unwrap()
        .text()
        .unwrap();
    for outcome in ["accepted", "unknown_ca", "expired", "unmapped", "missing"] {
        let line = format!("sentrace_client_cert_handshakes_total{{outcome=\"{outcome}\"}} ");
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in:\n{metrics}"))
            .parse()
            .unwrap();
        assert!(n >= 1, "{line}{n}");
    }

    // Every refused handshake is an authentication failure in the node's audit log.
    let node = srv.cli(&["audit", "--tenant", "_node", "--json", "--limit", "10000"]);
    let refused = node
        .lines()
        .filter(|l| l.contains("\"TLS handshake\"") && l.contains("\"unauthenticated\""))
        .count();
    assert!(
        refused >= 4,
        "refused handshakes audited: {refused}\n{node}"
    );

    let log = srv.log();
    assert!(
        log.contains("tenant acme's CA issued the certificate (cn=stranger), but no [[auth.mtls.rules]] entry maps it"),
        "no clear log line for the unmapped certificate:\n{log}"
    );

    // curl, as users will call it.
    if Command::new("curl").arg("--version").output().is_ok() {
        let dir = tmp.path();
        let curl = |leaf: Option<&str>, url: String, extra: &[&str]| {
            let mut cmd = Command::new("curl");
            cmd.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
                .arg(srv.ca())
                .args(extra);
            if let Some(leaf) = leaf {
                cmd.arg("--cert")
                    .arg(dir.join(format!("{leaf}.pem")))
                    .arg("--key")
                    .arg(dir.join(format!("{leaf}.key")));
            }
            let out = cmd.arg(url).output().unwrap();
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).to_lowercase(),
            )
        };
        agent.write(dir, "agent");
        reader.write(dir, "reader");
        unmapped.write(dir, "unmapped");
        foreign.write(dir, "foreign");
        expired.write(dir, "expired");
        let (code, err) = curl(Some("reader"), srv.query_url(&path), &[]);
        assert_eq!(code, "200", "{err}");
        let body = dir.join("export.pb");
        std::fs::write(
            &body,
            request("acme-svc", vec![span(10, "op")]).encode_to_vec(),
        )
        .unwrap();
        let data = format!("@{}", body.display());
        let (code, err) = curl(
            Some("agent"),
            srv.http_url(),
            &[
                "-H",
                "content-type: application/x-protobuf",
                "--data-binary",
                &data,
            ],
        );
        assert_eq!(code, "200", "{err}");
        let grpc = format!("https://localhost:{}/", srv.grpc_port);
        for (leaf, url, alert) in [
            (
                Some("unmapped"),
                srv.query_url(&path),
                "alert access denied",
            ),
            (Some("foreign"), srv.query_url(&path), "alert unknown ca"),
            (Some("expired"), srv.http_url(), "alert certificate expired"),
            (None, grpc, "alert certificate required"),
        ] {
            let (code, err) = curl(leaf, url, &[]);
            assert_eq!(code, "000", "curl with {leaf:?} got an answer");
            assert!(err.contains(alert), "curl with {leaf:?}: {err}");
        }
    }
}

#[test]
fn bad_trust_configuration_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("shared CA");
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, &ca.pem).unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let entry = |tenant: &str, file: &Path| {
        format!(
            "[[auth.mtls]]\ntenant = \"{tenant}\"\nca = \"{}\"\n[[auth.mtls.rules]]\nfield = \"cn\"\npattern = \"*\"\nrole = \"viewer\"\n",
            file.display()
        )
    };
    for (text, want) in [
        (
            entry("acme", &missing),
            format!("reading CA file {}", missing.display()),
        ),
        (
            entry("acme", &not_pem),
            format!("CA file {}: holds no CERTIFICATE block", not_pem.display()),
        ),
        (
            format!("{}{}", entry("acme", &pem), entry("globex", &pem)),
            "tenant acme also trusts".to_string(),
        ),
        (
            "[tls.client_auth]\nquery = \"required\"\n".to_string(),
            "no [[auth.mtls]] entry trusts a CA".to_string(),
        ),
    ] {
        let config = dir.path().join("sentrace.toml");
        std::fs::write(&config, format!("[listen]\nquery = \"127.0.0.1:0\"\notlp_grpc = \"127.0.0.1:0\"\notlp_http = \"127.0.0.1:0\"\n{text}")).unwrap();
        let (ok, stderr) = serve_once(&dir.path().join("data"), &config);
        assert!(!ok, "server started with:\n{text}");
        assert!(stderr.contains(&want), "want {want:?} in:\n{stderr}");
        // `sentrace config check` reads the CA files too.
        let out = Command::new(common::BIN)
            .args(["config", "check"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "config check passed:\n{text}");
        assert!(stderr.contains(&want), "want {want:?} in:\n{stderr}");
    }
}
