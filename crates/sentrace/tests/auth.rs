//! Authentication on every endpoint: missing, wrong, expired and revoked tokens get a bare
//! 401; a read token cannot ingest; another tenant's trace reads as not found.

mod common;

use common::*;

const QUERY_PATHS: &[&str] = &[
    "/api/services",
    "/api/services/x/operations",
    "/api/operations?service=x",
    "/api/traces?service=x",
    "/api/traces/0102030405060708090a0b0c0d0e0f10",
    "/api/dependencies",
    "/v1/traces/0102030405060708090a0b0c0d0e0f10",
    "/metrics",
];

fn assert_401(resp: reqwest::blocking::Response, what: &str) {
    assert_eq!(resp.status().as_u16(), 401, "{what}");
    let body = resp.text().unwrap();
    assert_eq!(
        body, "unauthenticated\n",
        "{what}: the 401 says more than it should"
    );
}

#[test]
fn tokens_missing_wrong_expired_revoked() {
    let srv = Server::new("").start();
    let c = srv.client();
    let ingest = srv.token("acme", "ingest");
    let reader = srv.token("acme", "read");
    let expiring = srv.cli(&[
        "tokens",
        "create",
        "--tenant",
        "acme",
        "--role",
        "read",
        "--expires",
        "1s",
    ]);
    let expiring = expiring.trim().to_string();
    let body = request("auth-svc", vec![span(1, "op")]);

    // Missing and wrong, on every endpoint.
    for path in QUERY_PATHS {
        assert_401(c.get(srv.query_url(path)).send().unwrap(), path);
        assert_401(
            c.get(srv.query_url(path))
                .bearer_auth("st_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                .send()
                .unwrap(),
            path,
        );
        assert_401(
            c.get(srv.query_url(path))
                .header("authorization", "Basic YWRtaW46YWRtaW4=")
                .send()
                .unwrap(),
            path,
        );
    }
    use prost::Message;
    let r = c
        .post(srv.http_url())
        .header("content-type", "application/x-protobuf")
        .body(body.encode_to_vec())
        .send()
        .unwrap();
    assert_401(r, "ingest without token");
    // A tenant header does not authenticate anything.
    let r = c
        .post(srv.http_url())
        .header("content-type", "application/x-protobuf")
        .header("x-scope-orgid", "acme")
        .body(body.encode_to_vec())
        .send()
        .unwrap();
    assert_401(r, "ingest with only a tenant header");

    // A read token may not ingest; an ingest token may not read.
    assert_eq!(srv.post_proto(&reader, &body).status().as_u16(), 403);
    assert_eq!(srv.get(&ingest, "/api/services").status().as_u16(), 403);
    assert_eq!(srv.post_proto(&ingest, &body).status().as_u16(), 200);

    // Expired.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_401(srv.get(&expiring, "/api/services"), "expired token");

    // Revoked while the server runs: refused on the next request.
    assert_eq!(srv.get(&reader, "/api/services").status().as_u16(), 200);
    let id = &reader["st_".len().."st_".len() + 16];
    srv.cli(&["tokens", "revoke", id]);
    assert_401(srv.get(&reader, "/api/services"), "revoked token");

    let list = srv.cli(&["tokens", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with(id) && l.contains("revoked")),
        "{list}"
    );
    assert!(
        !list.contains(&reader["st_".len() + 17..]),
        "tokens list shows a secret"
    );
}

#[test]
fn tenants_are_isolated() {
    let srv = Server::new("").start();
    let a_ingest = srv.token("tenant-a", "ingest");
    let a_read = srv.token("tenant-a", "read");
    let b_read = srv.token("tenant-b", "read");
    let s = span(77, "secret-op");
    let tid = hex(&s.trace_id);
    assert_eq!(
        srv.post_proto(&a_ingest, &request("a-svc", vec![s]))
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        srv.get(&a_read, &format!("/api/traces/{tid}"))
            .status()
            .as_u16(),
        200
    );
    // Tenant B: not found, and not listed, whatever the path.
    assert_eq!(
        srv.get(&b_read, &format!("/api/traces/{tid}"))
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        srv.get(&b_read, &format!("/v1/traces/{tid}"))
            .status()
            .as_u16(),
        404
    );
    let services: serde_json::Value = srv.get(&b_read, "/api/services").json().unwrap();
    assert_eq!(services["data"], serde_json::json!([]));
    let found: serde_json::Value = srv
        .get(&b_read, "/api/traces?service=a-svc")
        .json()
        .unwrap();
    assert_eq!(found["data"], serde_json::json!([]));
}
