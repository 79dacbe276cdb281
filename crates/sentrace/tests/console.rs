//! The web console end to end, against the real binary over TLS: every page, file and
//! action is refused without a session; login sets a HttpOnly, Secure, SameSite=Strict
//! cookie and refuses other origins; state-changing cookie requests need the CSRF token;
//! logout and revocation end the session; a session sees only its own tenant; every
//! console response carries the CSP.

mod common;
use common::*;

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, HeaderValue};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A client that does not follow redirects and keeps no cookies (the tests set them).
fn raw_client(srv: &Server) -> Client {
    let pem = std::fs::read(srv.ca()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

struct Console<'a> {
    srv: &'a Server,
    http: Client,
}

fn assert_console_headers(r: &Response, what: &str) {
    let h = r.headers();
    assert_eq!(
        h.get("content-security-policy")
            .map(|v| v.to_str().unwrap()),
        Some(CSP),
        "{what}: CSP"
    );
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
}

impl<'a> Console<'a> {
    fn new(srv: &'a Server) -> Self {
        Self {
            srv,
            http: raw_client(srv),
        }
    }

    fn origin(&self) -> String {
        format!("https://localhost:{}", self.srv.query_port)
    }

    fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let mut req = self.http.get(self.srv.query_url(path));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("sentrace_session={c}"));
        }
        req.send().unwrap()
    }

    fn post(&self, path: &str, cookie: Option<&str>, headers: &[(&str, &str)]) -> Response {
        let mut req = self.http.post(self.srv.query_url(path)).body("{}");
        if let Some(c) = cookie {
            req = req.header("cookie", format!("sentrace_session={c}"));
        }
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        req.headers(h)
            .header("content-type", "application/json")
            .send()
            .unwrap()
    }

    fn login_with(&self, token: &str, origin: Option<&str>, site: Option<&str>) -> Response {
        let mut req = self
            .http
            .post(self.srv.query_url("/console/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}", token.replace('+', "%2B")));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(s) = site {
            req = req.header("sec-fetch-site", s);
        }
        req.send().unwrap()
    }

    /// Logs in as a browser would; returns the session id.
    fn login(&self, token: &str) -> String {
        let r = self.login_with(token, Some(&self.origin()), Some("same-origin"));
        assert_eq!(r.status().as_u16(), 303, "login");
        assert_console_headers(&r, "POST /console/login");
        assert_eq!(r.headers()["location"], "/");
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "cookie {set:?} lacks {attr}");
        }
        let id = set
            .strip_prefix("sentrace_session=")
            .and_then(|s| s.split(';').next())
            .unwrap()
            .to_string();
        assert_eq!(id.len(), 43, "a 256-bit id in base64url");
        id
    }

    fn session(&self, cookie: &str) -> serde_json::Value {
        let r = self.get("/console/session", Some(cookie));
        assert_eq!(r.status().as_u16(), 200);
        assert_console_headers(&r, "GET /console/session");
        r.json().unwrap()
    }

    /// The asset prefix `/console/a/<version>/`, read from the login page.
    fn prefix(&self) -> String {
        let page = self.get("/console/login", None).text().unwrap();
        let i = page.find("/console/a/").unwrap();
        page[i..i + "/console/a/".len() + 17].to_string()
    }
}

fn token_id(token: &str) -> &str {
    &token["st_".len().."st_".len() + 16]
}

#[test]
fn every_page_file_and_action_is_refused_without_a_session() {
    let srv = Server::new("").start();
    let c = Console::new(&srv);
    let prefix = c.prefix();
    assert!(prefix.ends_with('/'), "{prefix}");

    let r = c.get("/", None);
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
    assert_console_headers(&r, "GET /");

    // What the login page itself needs is public; nothing else is.
    for path in ["/console/login".to_string(), format!("{prefix}app.css")] {
        let r = c.get(&path, None);
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_console_headers(&r, &path);
    }
    let mut refused = vec![
        "/console/session".to_string(),
        "/api/services".to_string(),
        "/api/traces?service=x".to_string(),
        "/api/findings".to_string(),
        "/api/audit".to_string(),
    ];
    for f in [
        "index.html",
        "app.js",
        "lib.js",
        "views/search.js",
        "views/trace.js",
        "views/findings.js",
        "views/finding.js",
        "views/map.js",
        "views/exposure.js",
        "views/integrity.js",
        "views/admin.js",
    ] {
        refused.push(format!("{prefix}{f}"));
    }
    for path in &refused {
        let r = c.get(path, None);
        assert_eq!(r.status().as_u16(), 401, "GET {path} without a session");
        if path.starts_with("/console") {
            assert_console_headers(&r, path);
        }
        // A made-up session id is no better.
        let r = c.get(path, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert_eq!(
            r.status().as_u16(),
            401,
            "GET {path} with an unknown session"
        );
    }
    let r = c.get("/", Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(r.status().as_u16(), 303);
    for path in ["/console/logout", "/api/break-glass"] {
        let r = c.post(path, None, &[]);
        assert_eq!(r.status().as_u16(), 401, "POST {path} without a session");
    }
    // Unknown console paths still carry the CSP.
    let r = c.get("/console/nope", None);
    assert_eq!(r.status().as_u16(), 404);
    assert_console_headers(&r, "/console/nope");
}

#[test]
fn login_cookie_csrf_logout_and_revocation() {
    let srv = Server::new("").start();
    let c = Console::new(&srv);
    let token = srv.token("acme", "admin");

    // A wrong token: the login page again, no cookie.
    let r = c.login_with("st_0000000000000000_nope", Some(&c.origin()), None);
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert_console_headers(&r, "failed login");
    assert!(r.text().unwrap().contains("not accepted"));
    // Login CSRF: another origin may not log a browser in.
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (None, Some("cross-site")),
        (Some("http://localhost:1"), Some("same-site")),
        (Some("null"), None),
        (Some("null"), Some("cross-site")),
    ] {
        let r = c.login_with(&token, origin, site);
        assert_eq!(r.status().as_u16(), 403, "{origin:?} {site:?}");
        assert!(r.headers().get("set-cookie").is_none());
    }

    // What Chromium sends for the login page's own form (Referrer-Policy: no-referrer).
    let r = c.login_with(&token, Some("null"), Some("same-origin"));
    assert_eq!(r.status().as_u16(), 303);

    let sid = c.login(&token);
    let r = c.get("/", Some(&sid));
    assert_eq!(r.status().as_u16(), 200);
    assert_console_headers(&r, "GET / with a session");
    assert!(r.text().unwrap().contains("app.js"));
    let who = c.session(&sid);
    assert_eq!(who["tenant"], "acme");
    assert_eq!(who["role"], "admin");
    let csrf = who["csrf"].as_str().unwrap().to_string();
    assert!(csrf.len() >= 43);
    let prefix = c.prefix();
    let r = c.get(&format!("{prefix}views/trace.js"), Some(&sid));
    assert_eq!(r.status().as_u16(), 200);
    assert_console_headers(&r, "asset");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    // The APIs take the cookie.
    assert_eq!(c.get("/api/services", Some(&sid)).status().as_u16(), 200);

    // CSRF: a state-changing cookie request needs the session's token and this origin.
    let origin = c.origin();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "missing X-CSRF-Token"),
        (&[("x-csrf-token", "wrong")], "does not match"),
        (
            &[
                ("x-csrf-token", csrf.as_str()),
                ("origin", "https://evil.example"),
            ],
            "cross-origin",
        ),
    ];
    for (headers, reason) in cases {
        let r = c.post("/api/break-glass", Some(&sid), headers);
        assert_eq!(r.status().as_u16(), 403, "{reason}");
        let body: serde_json::Value = r.json().unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(reason),
            "{body} names {reason}"
        );
        let r = c.post("/console/logout", Some(&sid), headers);
        assert_eq!(r.status().as_u16(), 403, "logout: {reason}");
    }
    // With both, the request reaches the API (which judges the body itself).
    let r = c.post(
        "/api/break-glass",
        Some(&sid),
        &[("x-csrf-token", csrf.as_str()), ("origin", origin.as_str())],
    );
    assert_ne!(r.status().as_u16(), 403, "{:?}", r.text());
    assert_ne!(r.status().as_u16(), 401);
    // A bearer header wins over the cookie and needs no CSRF token.
    let r = c
        .http
        .get(srv.query_url("/api/services"))
        .bearer_auth(&token)
        .header("cookie", "sentrace_session=AAAA")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Logout ends the session on the server, not just in the browser.
    let r = c.post(
        "/console/logout",
        Some(&sid),
        &[("x-csrf-token", csrf.as_str()), ("origin", origin.as_str())],
    );
    assert_eq!(r.status().as_u16(), 204);
    assert_console_headers(&r, "logout");
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(c.get("/console/session", Some(&sid)).status().as_u16(), 401);
    assert_eq!(c.get("/api/services", Some(&sid)).status().as_u16(), 401);
    assert_eq!(c.get("/", Some(&sid)).status().as_u16(), 303);

    // Revoking the token ends every session it opened, on their next request.
    let s1 = c.login(&token);
    let s2 = c.login(&token);
    assert_eq!(c.get("/api/services", Some(&s1)).status().as_u16(), 200);
    srv.cli(&["tokens", "revoke", token_id(&token)]);
    assert_eq!(c.get("/api/services", Some(&s1)).status().as_u16(), 401);
    assert_eq!(c.get("/console/session", Some(&s2)).status().as_u16(), 401);
    assert_eq!(c.get("/", Some(&s2)).status().as_u16(), 303);
    // And it cannot open a new one.
    let r = c.login_with(&token, Some(&c.origin()), None);
    assert_eq!(r.status().as_u16(), 401);
}

#[test]
fn a_session_sees_only_its_own_tenant() {
    let srv = Server::new("").start();
    let c = Console::new(&srv);
    let mut trace_of = std::collections::BTreeMap::new();
    for (tenant, service, n) in [("acme", "acme-web", 1u64), ("globex", "globex-api", 2)] {
        let ingest = srv.token(tenant, "ingest");
        let s = span(n, &format!("{tenant}-op"));
        trace_of.insert(tenant, hex(&s.trace_id));
        let r = srv.post_proto(&ingest, &request(service, vec![s]));
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    }
    let a = c.login(&srv.token("acme", "admin"));
    let b = c.login(&srv.token("globex", "admin"));
    let services = |sid: &str| -> Vec<String> {
        let v: serde_json::Value = c.get("/api/services", Some(sid)).json().unwrap();
        serde_json::from_value(v["data"].clone()).unwrap()
    };
    assert_eq!(services(&a), vec!["acme-web".to_string()]);
    assert_eq!(services(&b), vec!["globex-api".to_string()]);
    for (sid, own, other) in [(&a, "acme", "globex"), (&b, "globex", "acme")] {
        let r = c.get(&format!("/api/traces/{}", trace_of[own]), Some(sid));
        assert_eq!(r.status().as_u16(), 200, "{own} reads its trace");
        let r = c.get(&format!("/api/traces/{}", trace_of[other]), Some(sid));
        assert_eq!(
            r.status().as_u16(),
            404,
            "{own} must not see {other}'s trace"
        );
        let who = c.session(sid);
        assert_eq!(who["tenant"], own);
    }
}
