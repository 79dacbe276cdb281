//! Behavioral detectors on hand-made traffic.

mod common;

use common::*;
use sentrace_core::TenantId;
use sentrace_core::proto::trace::v1::span::SpanKind;
use sentrace_detect::{Detector, Family, Ruleset};

const SEC: u64 = 1_000_000_000;

fn req(
    n: u64,
    t: u64,
    route: &str,
    path: &str,
    status: i64,
    client: &str,
    user: &str,
) -> Vec<sentrace_core::proto::trace::v1::ResourceSpans> {
    let mut s = span(
        (n % 250) as u8 + 1,
        (n % 250) as u8 + 1,
        None,
        SpanKind::Server,
        vec![
            kv("http.route", route),
            kv("url.path", path),
            kvi("http.response.status_code", status),
            kv("client.address", client),
            kv("enduser.id", user),
            kvi("http.response.body.size", 1000),
        ],
    );
    s.start_time_unix_nano = t;
    s.end_time_unix_nano = t + 10_000_000;
    vec![batch("frontend", vec![s])]
}

fn detector(warmup: u64) -> Detector {
    let mut rs = Ruleset::default_ruleset().unwrap();
    rs.behavior.warmup_secs = warmup;
    // Shift detectors are exercised by the simulator; keep them out of these unit cases.
    rs.behavior.shift_min_count = u64::MAX;
    Detector::new(rs).unwrap()
}

#[test]
fn new_endpoint_after_warmup_only() {
    let d = detector(60);
    let t = TenantId::new("acme").unwrap();
    let t0 = 1_700_000_000 * SEC;
    let mut fams = Vec::new();
    for i in 0..100 {
        fams.extend(
            d.inspect(
                &t,
                &req(i, t0 + i * SEC, "/a", "/a", 200, "1.1.1.1", "u"),
                0,
            )
            .into_iter()
            .map(|f| f.family),
        );
    }
    // `/b` first seen during warm-up: learned, not reported.
    fams.extend(
        d.inspect(
            &t,
            &req(1, t0 + 10 * SEC, "/b", "/b", 200, "1.1.1.1", "u"),
            0,
        )
        .into_iter()
        .map(|f| f.family),
    );
    assert!(fams.is_empty(), "{fams:?}");
    let f = d.inspect(
        &t,
        &req(2, t0 + 200 * SEC, "/debug", "/debug", 200, "1.1.1.1", "u"),
        0,
    );
    assert_eq!(
        f.iter().map(|f| f.family).collect::<Vec<_>>(),
        [Family::NewEndpoint]
    );
    let f = d.inspect(
        &t,
        &req(3, t0 + 201 * SEC, "/b", "/b", 200, "1.1.1.1", "u"),
        0,
    );
    assert!(f.is_empty());
}

#[test]
fn brute_force_stuffing_enumeration_probing() {
    let d = detector(0);
    let t = TenantId::new("acme").unwrap();
    let t0 = 1_700_000_000 * SEC;
    let mut n = 0;
    let mut run = |route: &str, path: &str, status: i64, client: &str, user: &str, dt: u64| {
        n += 1;
        d.inspect(&t, &req(n, t0 + dt, route, path, status, client, user), 0)
            .into_iter()
            .map(|f| f.family)
            .collect::<Vec<_>>()
    };
    // Warm the endpoints so new_endpoint stays quiet.
    for r in ["/login", "/orders/{id}", "/admin/users"] {
        run(r, r, 200, "9.9.9.9", "x", 0);
    }
    // 19 failures: below the default threshold of 20.
    let mut fams = Vec::new();
    for i in 0..19 {
        fams.extend(run("/login", "/login", 401, "10.0.0.1", "alice", i * SEC));
    }
    assert!(fams.is_empty(), "{fams:?}");
    // Reported by client address and by user.
    let f = run("/login", "/login", 401, "10.0.0.1", "alice", 20 * SEC);
    assert!(
        !f.is_empty() && f.iter().all(|x| *x == Family::BruteForce),
        "{f:?}"
    );
    // Spread over more than the window: no finding.
    let mut fams = Vec::new();
    for i in 0..25 {
        fams.extend(run(
            "/login",
            "/login",
            401,
            "10.0.0.2",
            "bob",
            1000 * SEC + i * 30 * SEC,
        ));
    }
    assert!(fams.is_empty(), "{fams:?}");
    // Ten users from one client.
    let mut fams = Vec::new();
    for i in 0..10 {
        fams.extend(run(
            "/login",
            "/login",
            401,
            "10.0.0.3",
            &format!("v{i}"),
            2000 * SEC + i * SEC,
        ));
    }
    assert_eq!(fams, [Family::CredentialStuffing]);
    // Thirty distinct ids answered 404.
    let mut fams = Vec::new();
    for i in 0..30 {
        fams.extend(run(
            "/orders/{id}",
            &format!("/orders/{}", 5000 + i),
            404,
            "10.0.0.4",
            "m",
            3000 * SEC + i * SEC,
        ));
    }
    assert_eq!(fams, [Family::Enumeration]);
    // The same id thirty times is not enumeration.
    let mut fams = Vec::new();
    for i in 0..30 {
        fams.extend(run(
            "/orders/{id}",
            "/orders/5",
            404,
            "10.0.0.5",
            "m",
            4000 * SEC + i * SEC,
        ));
    }
    assert!(fams.is_empty(), "{fams:?}");
    // Admin denials, then a success.
    let mut fams = Vec::new();
    for i in 0..5 {
        fams.extend(run(
            "/admin/users",
            "/admin/users",
            403,
            "10.0.0.6",
            "e",
            5000 * SEC + i * SEC,
        ));
    }
    assert!(fams.is_empty(), "{fams:?}");
    assert_eq!(
        run(
            "/admin/users",
            "/admin/users",
            200,
            "10.0.0.6",
            "e",
            5010 * SEC
        ),
        [Family::PrivilegeProbing]
    );
    // A success without prior denials is quiet.
    assert!(
        run(
            "/admin/users",
            "/admin/users",
            200,
            "10.0.0.7",
            "e",
            5020 * SEC
        )
        .is_empty()
    );
}

#[test]
fn exfiltration_against_endpoint_baseline() {
    let d = detector(0);
    let t = TenantId::new("acme").unwrap();
    let t0 = 1_700_000_000 * SEC;
    let with_size = |n: u64, dt: u64, size: i64| {
        let mut rs = req(n, t0 + dt, "/export", "/export", 200, "1.2.3.4", "u");
        let sp = &mut rs[0].scope_spans[0].spans[0];
        sp.attributes
            .retain(|kv| kv.key != "http.response.body.size");
        sp.attributes.push(kvi("http.response.body.size", size));
        rs
    };
    for i in 0..50 {
        let f = d.inspect(
            &t,
            &with_size(i, i * SEC, 40_000 + (i as i64 % 7) * 1000),
            0,
        );
        assert!(f.iter().all(|f| f.family != Family::Exfiltration));
    }
    // Large but within 8x the median: quiet.
    assert!(
        d.inspect(&t, &with_size(60, 60 * SEC, 200_000), 0)
            .is_empty()
    );
    let f = d.inspect(&t, &with_size(61, 61 * SEC, 50_000_000), 0);
    assert_eq!(
        f.iter().map(|f| f.family).collect::<Vec<_>>(),
        [Family::Exfiltration]
    );
}

#[test]
fn lateral_movement_new_edge() {
    let d = detector(0);
    let t = TenantId::new("acme").unwrap();
    let mk = |callee: &str| {
        let root = server(1, 1, vec![kv("http.route", "/x")]);
        let child = span(1, 2, Some(1), SpanKind::Server, vec![]);
        vec![batch("frontend", vec![root]), batch(callee, vec![child])]
    };
    let first: Vec<_> = d
        .inspect(&t, &mk("cart"), 0)
        .into_iter()
        .map(|f| f.family)
        .collect();
    // With no warm-up, the very first edge is already new.
    assert!(first.contains(&Family::LateralMovement));
    assert!(
        d.inspect(&t, &mk("cart"), 0)
            .into_iter()
            .all(|f| f.family != Family::LateralMovement)
    );
    let f: Vec<_> = d
        .inspect(&t, &mk("payments"), 0)
        .into_iter()
        .map(|f| f.family)
        .collect();
    assert!(f.contains(&Family::LateralMovement), "{f:?}");
}
