//! A real OpenID provider for the OIDC tests: `oidc-provider` (npm, pinned in
//! tests/oidc/package.json) on loopback over HTTPS with a certificate made at test time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

use super::client_for;

pub const CLIENT_ID: &str = "sentrace-e2e";
pub const CLIENT_SECRET: &str = "e2e-secret-made-for-this-test-only";
pub const RESOURCE: &str = "urn:sentrace:api";

pub fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc")
}

/// Fails unless node is installed; installs the pinned provider when it is missing.
pub fn ensure_provider() {
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
pub fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
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
pub struct Provider {
    child: Child,
    /// The issuer URL (`https://127.0.0.1:<port>`).
    pub issuer: String,
}

impl Provider {
    /// Starts a provider whose access tokens carry `groups`; `console` adds an
    /// authorization-code client (client id, redirect URI) for the console's login.
    pub fn start(cert: &Path, key: &Path, groups: &str, console: Option<(&str, &str)>) -> Self {
        let mut cmd = Command::new("node");
        if let Some((client, redirect)) = console {
            cmd.env("OIDC_CONSOLE_CLIENT_ID", client)
                .env("OIDC_CONSOLE_REDIRECT", redirect);
        }
        let mut child = cmd
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
    pub fn token(&self, ca: &Path) -> String {
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
