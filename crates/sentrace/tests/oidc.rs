//! OIDC end to end with a real OpenID provider: `oidc-provider` (npm, pinned in
//! tests/oidc/package.json) runs on loopback over HTTPS with a certificate made here. The
//! server is configured with its issuer (discovery), a client-credentials access token
//! (an RFC 9068 JWT) from it reads a trace ingested with an API token, while a token from a
//! second provider that is not configured, a tampered token and no token get 401.

mod common;

use common::oidc::*;
use common::*;

#[test]
fn client_credentials_token_from_a_real_provider_reads_a_trace() {
    ensure_provider();
    let tls_dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_tls(tls_dir.path());
    let idp = Provider::start(&cert, &key, "staff,sentrace-viewers", None);
    let stranger = Provider::start(&cert, &key, "sentrace-viewers", None);

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
