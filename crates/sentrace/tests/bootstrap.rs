//! First start on the real binary: what is created, with which modes, and the refusal to
//! run with a master key that others can read.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_start_creates_pki_key_and_admin_token_once() {
    let mut srv = Server::new("").start();
    let token = srv.admin_token.clone().expect("no admin token printed");
    let banner = srv.stdout_lines.join("\n");
    assert!(
        banner.contains(srv.ca().to_str().unwrap()),
        "CA path not shown: {banner}"
    );
    assert!(banner.contains("OTEL_EXPORTER_OTLP_HEADERS"));
    assert_eq!(mode(&srv.data.join("master.key")), 0o600);
    assert_eq!(mode(&srv.data.join("tls").join("ca.key")), 0o600);
    assert_eq!(mode(&srv.data.join("tls").join("server.key")), 0o600);
    assert_eq!(mode(&srv.data), 0o700);
    // The token is stored only as a hash.
    let tokens = std::fs::read_to_string(srv.data.join("tokens.json")).unwrap();
    let secret = &token["st_".len() + 17..];
    assert!(!tokens.contains(secret));
    assert_eq!(srv.get(&token, "/api/services").status().as_u16(), 200);
    // Standard output is not a terminal: the token went to a 0600 file, never to stdout.
    let token_file = srv.data.join("admin-token");
    assert_eq!(mode(&token_file), 0o600);
    assert!(!banner.contains(&token), "token on stdout: {banner}");
    // The banner's command works as printed (it names the data directory in use).
    let cmd = banner
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("sentrace tokens create"))
        .unwrap_or_else(|| panic!("no tokens command: {banner}"));
    assert!(
        cmd.contains(&format!("--data-dir {}", srv.data.display())),
        "{cmd}"
    );
    let out = std::process::Command::new(common::BIN)
        .args(cmd.split_whitespace().skip(1))
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd}: {out:?}");
    let ingest = String::from_utf8(out.stdout).unwrap();
    assert!(ingest.trim().starts_with("st_"), "{ingest}");

    // A second start prints no new token and keeps the old one working.
    srv.stop();
    srv.admin_token = None;
    srv.launch();
    assert!(
        srv.admin_token.is_none(),
        "a second admin token was printed"
    );
    assert_eq!(srv.get(&token, "/api/services").status().as_u16(), 200);
    srv.stop();

    // A master key readable by others: refuse to start, naming the file.
    let key = srv.data.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, err) = serve_once(&srv.data, &srv.config);
    assert!(!ok);
    assert!(err.contains("master.key"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // So is a TLS private key.
    let tls_key = srv.data.join("tls").join("server.key");
    std::fs::set_permissions(&tls_key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (ok, err) = serve_once(&srv.data, &srv.config);
    assert!(!ok);
    assert!(
        err.contains("server.key") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn a_failed_first_start_consumes_no_admin_token() {
    let mut srv = Server::new("[access]\npolicies = [\"missing-policies.cedar\"]\n");
    let (ok, err) = serve_once(&srv.data, &srv.config);
    assert!(!ok);
    assert!(err.contains("missing-policies.cedar"), "{err}");
    assert!(!srv.data.join("admin-token").exists());
    let tokens = std::fs::read_to_string(srv.data.join("tokens.json")).unwrap_or_default();
    assert!(!tokens.contains("first-start admin"), "{tokens}");
    // Fixed, the next start issues the token.
    let listen = std::fs::read_to_string(&srv.config).unwrap();
    let listen: String = listen.lines().take(4).map(|l| format!("{l}\n")).collect();
    std::fs::write(&srv.config, listen).unwrap();
    srv.launch();
    let token = srv
        .admin_token
        .clone()
        .expect("no admin token after the fix");
    assert_eq!(srv.get(&token, "/api/services").status().as_u16(), 200);
}
