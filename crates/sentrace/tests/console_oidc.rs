//! Console login with OpenID Connect against a real provider (node oidc-provider in
//! tests/oidc): the authorization code flow with PKCE S256, state and nonce, then a session
//! whose credential is the provider's access token. The state is bound to the browser and
//! used once.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::oidc::*;
use common::*;
use reqwest::blocking::Client;

const CONSOLE_CLIENT: &str = "sentrace-console";

/// A client trusting both CAs that follows no redirect and keeps no cookie.
fn client(cas: &[&Path]) -> Client {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    for ca in cas {
        let pem = std::fs::read(ca).unwrap();
        for c in CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.unwrap()).unwrap();
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn set_cookies(r: &reqwest::blocking::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_value(set: &[String], name: &str) -> Option<String> {
    set.iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .map(|rest| rest.split(';').next().unwrap().to_string())
    })
}

/// Follows the provider's redirects (keeping its cookies, as a browser would) until one
/// points back at `callback`; returns that URL.
fn through_provider(http: &Client, mut url: reqwest::Url, callback: &str) -> reqwest::Url {
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..20 {
        if url.as_str().starts_with(callback) {
            return url;
        }
        let cookie: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let r = http
            .get(url.clone())
            .header("cookie", cookie.join("; "))
            .send()
            .unwrap();
        for c in set_cookies(&r) {
            let pair = c.split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    jar.remove(k);
                } else {
                    jar.insert(k.to_string(), v.to_string());
                }
            }
        }
        let Some(loc) = r.headers().get("location") else {
            panic!(
                "the provider stopped at {url}: {} {}",
                r.status(),
                r.text().unwrap_or_default()
            );
        };
        url = url.join(loc.to_str().unwrap()).unwrap();
    }
    panic!("too many redirects at the provider");
}

#[test]
fn console_login_with_authorization_code_and_pkce() {
    ensure_provider();
    let tls_dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_tls(tls_dir.path());
    // The server's port must be known before the provider registers the redirect URI.
    let mut srv = Server::new("");
    let callback = format!("https://localhost:{}/console/oidc/callback", srv.query_port);
    let idp = Provider::start(
        &cert,
        &key,
        "sentrace-viewers",
        Some((CONSOLE_CLIENT, &callback)),
    );
    let extra = format!(
        "[[auth.oidc]]\nissuer = {iss:?}\naudience = {RESOURCE:?}\ndiscovery = true\nca = {ca:?}\ntenant = \"acme\"\nroles = [{{ group = \"sentrace-viewers\", role = \"viewer\" }}]\n\
         [[console.oidc]]\nlabel = \"Test IdP\"\nissuer = {iss:?}\nclient_id = {CONSOLE_CLIENT:?}\nredirect_uri = {callback:?}\nresource = {RESOURCE:?}\nca = {ca:?}\n",
        iss = idp.issuer,
        ca = ca.display().to_string(),
    );
    let cfg = std::fs::read_to_string(&srv.config).unwrap();
    std::fs::write(&srv.config, format!("{cfg}{extra}")).unwrap();
    srv.launch();
    let ingest = srv.token("acme", "ingest");
    let s = span(77, "oidc-console-op");
    let tid = hex(&s.trace_id);
    assert_eq!(
        srv.post_proto(&ingest, &request("oidc-svc", vec![s]))
            .status()
            .as_u16(),
        200
    );

    let http = client(&[&srv.ca(), &ca]);
    let page = http
        .get(srv.query_url("/console/login"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("href=\"/console/oidc/0/start\">Log in with Test IdP</a>"),
        "{page}"
    );

    let login = |http: &Client| {
        let r = http
            .get(srv.query_url("/console/oidc/0/start"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{}", srv.log());
        let set = set_cookies(&r);
        let state_cookie = cookie_value(&set, "sentrace_oidc_state").unwrap();
        assert!(set[0].contains("HttpOnly; Secure; SameSite=Lax; Path=/console/oidc"));
        let to = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert!(
            to.as_str().starts_with(&format!("{}/auth?", idp.issuer)),
            "{to}"
        );
        let q: BTreeMap<String, String> = to.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"].len(), 43);
        assert_eq!(q["state"], state_cookie);
        assert!(q["nonce"].len() >= 43);
        assert_eq!(q["redirect_uri"], callback);
        (through_provider(http, to, &callback), state_cookie)
    };

    // A callback without the state cookie (another browser) is refused.
    let (back, _) = login(&http);
    let r = http.get(back.as_str()).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        set_cookies(&r)
            .iter()
            .all(|c| !c.starts_with("sentrace_session="))
    );

    // The whole flow: the callback sets the session and hands over to / from this origin.
    let (back, state) = login(&http);
    let r = http
        .get(back.as_str())
        .header("cookie", format!("sentrace_oidc_state={state}"))
        .send()
        .unwrap();
    let set = set_cookies(&r);
    let status = r.status().as_u16();
    let body = r.text().unwrap();
    assert_eq!(status, 200, "{body}\n{}", srv.log());
    assert!(body.contains("http-equiv=\"refresh\" content=\"0;url=/\""));
    let sid = cookie_value(&set, "sentrace_session").unwrap();
    assert!(
        set.iter().any(|c| c.starts_with("sentrace_session=")
            && c.contains("HttpOnly; Secure; SameSite=Strict"))
    );
    let cookie = format!("sentrace_session={sid}");
    let who: serde_json::Value = http
        .get(srv.query_url("/console/session"))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(who["tenant"], "acme");
    assert_eq!(who["role"], "viewer");
    let r = http
        .get(srv.query_url(&format!("/api/traces/{tid}")))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The same code and state again: refused (a login is used once).
    let r = http
        .get(back.as_str())
        .header("cookie", format!("sentrace_oidc_state={state}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
