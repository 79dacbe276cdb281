//! Bad input on the query listener, over the real server: every parameter outside the bounds
//! docs/openapi.yaml gives is a 4xx whose body names the parameter, never a 5xx, and a
//! malformed log tile path never reaches the store (nor the error log).

mod common;

use common::*;

/// (path and query, expected status, what the body must name)
const CASES: &[(&str, u16, &str)] = &[
    // Jaeger API.
    ("/api/traces?service=", 400, "service"),
    ("/api/traces?service=a&limit=0", 400, "limit"),
    ("/api/traces?service=a&limit=-1", 400, "limit"),
    (
        "/api/traces?service=a&start=99999999999999999999",
        400,
        "start",
    ),
    ("/api/traces?service=a&end=18446744073709552", 400, "end"),
    ("/api/traces?service=a&start=20&end=10", 400, "start"),
    ("/api/traces?service=a&spanKind=sideways", 400, "spanKind"),
    ("/api/traces?traceID=xyz", 400, "traceID"),
    ("/api/operations?service=", 400, "service"),
    (
        "/api/operations?service=a&spanKind=sideways",
        400,
        "spanKind",
    ),
    ("/api/traces/xyz", 400, "xyz"),
    (
        "/api/traces/000000000000000000000000000000001",
        400,
        "32 hex",
    ),
    ("/api/dependencies?endTs=-5", 400, "endTs"),
    ("/v1/traces/nothex", 400, "nothex"),
    // Tempo API.
    ("/tempo/api/search?limit=0", 400, "limit"),
    ("/tempo/api/search?start=4294967296", 400, "start"),
    ("/tempo/api/search?start=20&end=10", 400, "start"),
    ("/tempo/api/search?spss=101", 400, "spss"),
    ("/tempo/api/search?q=%7B", 400, "q"),
    ("/tempo/api/search/tags?scope=nowhere", 400, "scope"),
    ("/tempo/api/traces/xyz", 400, "xyz"),
    // Native and security views.
    ("/api/findings?limit=0", 400, "limit"),
    ("/api/findings?limit=1001", 400, "limit"),
    ("/api/findings?limit=99999999999999999999999", 400, "limit"),
    ("/api/findings?since=5&until=5", 400, "since"),
    ("/api/findings?severity=dire", 400, "severity"),
    ("/api/findings?trace_id=xyz", 400, "xyz"),
    ("/api/exposure?since=9&until=3", 400, "since"),
    ("/api/map?lookback_ms=0", 400, "lookback_ms"),
    ("/api/audit?limit=0", 400, "limit"),
    ("/api/audit?since=yesterday", 400, "since"),
    ("/api/findings/a%20b", 400, "id"),
    // A log tile path outside the C2SP tlog-tiles grammar.
    (
        "/.well-known/sentrace/log/default/tile/0/x001/..",
        400,
        "path",
    ),
    ("/.well-known/sentrace/log/default/tile/0/1234", 400, "path"),
    // Another tenant's log, and a provider that does not exist.
    ("/.well-known/sentrace/log/other/checkpoint", 404, "log"),
    ("/console/oidc/7/start", 404, "unknown"),
];

#[test]
fn out_of_bounds_parameters_are_4xx_naming_the_parameter() {
    let srv = Server::new("").start();
    let admin = srv
        .admin_token
        .clone()
        .expect("first start wrote the admin token");
    // Something stored, so the log and the searches are not empty.
    let r = srv.post_proto(&admin, &request("shop", vec![span(1, "GET /")]));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());

    let mut wrong = Vec::new();
    for (path, status, names) in CASES {
        let r = srv.get(&admin, path);
        let got = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        if got != *status || !body.contains(names) {
            wrong.push(format!(
                "{path}: {got} {body:?} (expected {status} naming {names:?})"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn an_overlong_tile_path_segment_is_400_and_not_logged_as_an_error() {
    let srv = Server::new("").start();
    let admin = srv
        .admin_token
        .clone()
        .expect("first start wrote the admin token");
    // 130 × 'é' is 260 bytes of UTF-8: longer than a file name may be.
    let segment = "%C3%A9".repeat(130);
    let r = srv.get(
        &admin,
        &format!("/.well-known/sentrace/log/default/tile/0/{segment}"),
    );
    assert_eq!(r.status(), 400);
    let body = r.text().unwrap();
    assert!(body.contains("parameter \"path\""), "{body}");
    assert!(body.len() < 400, "the answer echoes the whole path: {body}");
    let log = srv.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("ERROR") && (l.contains("é") || l.contains("log object"))),
        "{log}"
    );
    // A well-formed tile path still reads (or is simply absent).
    let r = srv.get(&admin, "/.well-known/sentrace/log/default/tile/0/000.p/1");
    assert!([200, 404].contains(&r.status().as_u16()), "{}", r.status());
}
