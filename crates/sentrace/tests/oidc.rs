//! OIDC end to end with a real OpenID provider: `oidc-provider` (npm, pinned in
//! tests/oidc/package.json) runs on loopback over HTTPS with a certificate made here. The
//! server is configured with its issuer (discovery), a client-credentials access token
//! (an RFC 9068 JWT) from it reads a trace ingested with an API token, while a token from a
//! second provider that is not configured, a tampered token and no token get 401.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

const CLIENT_ID: &str = "sentrace-e2e";
const CLIENT_SECRET: &str = "e2e-secret-made-for-this-test-only";
const RESOURCE: &str = "urn:sentrace:api";

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc")
}

/// Fails unless node is installed; installs the pinned provider when it is missing.
fn ensure_provider() {
    let node = Command::new("node").arg("--version").output().ok();
    let Some(node) = node.filter(|o| o.status.success()) else {
        panic!(
            "node is not installed: the OIDC end-to-end test needs Node.js and npm \
             (scripts/test.sh installs them: apt-get install nodejs npm)"
        );
    };
    eprintln!(
        "oidc e2e: node {}",
        String::from_utf8_lossy(&node.stdout).trim()
    );
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider/package.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("running npm ci in tests/oidc");
        assert!(status.success(), "npm ci in tests/oidc failed");
    }
}

/// A CA and a server certificate for 127.0.0.1, as PEM files under `dir`; returns the CA
/// file, the certificate chain and the key.
fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "oidc e2e test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, "oidc provider");
    leaf.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let paths = (dir.join("ca.pem"), dir.join("idp.pem"), dir.join("idp.key"));
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, format!("{}{}", cert.pem(), ca_cert.pem())).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// A running provider; killed on drop (it also exits when its stdin closes).
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    fn start(cert: &Path, key: &Path, groups: &str) -> Self {
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(provider_dir())
            .env("OIDC_TLS_CERT", cert)
            .env("OIDC_TLS_KEY", key)
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_RESOURCE", RESOURCE)
            .env("OIDC_GROUPS", groups)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting node tests/oidc/provider.mjs");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the OIDC provider did not start within 60 s");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let issuer = v["issuer"].as_str().unwrap().to_string();
        Provider { child, issuer }
    }

    /// A client-credentials access token for the Sentrace resource.
    fn token(&self, ca: &Path) -> String {
        let body = format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&resource={}",
            RESOURCE.replace(':', "%3A")
        );
        let resp = client_for(ca)
            .post(format!("{}/token", self.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "token endpoint refused");
        let v: serde_json::Value = resp.json().unwrap();
        let token = v["access_token"].as_str().unwrap().to_string();
        assert_eq!(token.split('.').count(), 3, "access token is not a JWT");
        token
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn client_credentials_token_from_a_real_provider_reads_a_trace() {
    ensure_provider();
    let tls_dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_tls(tls_dir.path());
    let idp = Provider::start(&cert, &key, "staff,sentrace-viewers");
    let stranger = Provider::start(&cert, &key, "sentrace-viewers");

    let srv = Server::new(&format!(
        "[[auth.oidc]]\nissuer = {:?}\naudience = {RESOURCE:?}\ndiscovery = true\nca = {:?}\ntenant = \"acme\"\nroles = [{{ group = \"sentrace-admins\", role = \"admin\" }}, {{ group = \"sentrace-viewers\", role = \"viewer\" }}]\n",
        idp.issuer,
        ca.display().to_string(),
    ))
    .start();

    let ingest = srv.token("acme", "ingest");
    let s = span(4242, "oidc-op");
    let tid = hex(&s.trace_id);
    let r = srv.post_proto(&ingest, &request("oidc-svc", vec![s]));
    assert_eq!(r.status().as_u16(), 200);
    let path = format!("/api/traces/{tid}");

    // The configured provider's client-credentials token reads the trace.
    let jwt = idp.token(&ca);
    let r = srv.get(&jwt, &path);
    assert_eq!(r.status().as_u16(), 200, "log:\n{}", srv.log());
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["data"][0]["traceID"], tid.as_str());
    let spans = body["data"][0]["spans"].as_array().unwrap();
    assert_eq!(spans[0]["operationName"], "oidc-op");
    // As a viewer it may not ingest.
    let r = srv.post_proto(&jwt, &request("oidc-svc", vec![span(1, "x")]));
    assert_eq!(r.status().as_u16(), 403);

    // A real token from a provider that is not configured: 401, and a bare one.
    let foreign = stranger.token(&ca);
    let r = srv.get(&foreign, &path);
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.text().unwrap(), "unauthenticated\n");
    // The configured provider's token with its claims changed: 401.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    assert_eq!(srv.get(&parts.join("."), &path).status().as_u16(), 401);
    // No token: 401.
    let r = srv.client().get(srv.query_url(&path)).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let log = srv.log();
    assert!(log.contains("OIDC issuer keys loaded"), "{log}");
}
