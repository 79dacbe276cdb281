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

/// A detector whose services warm up after `warmup` seconds of span time, 50 spans and 50
/// distinct traces (no warm-up at all when `warmup` is 0).
fn detector(warmup: u64) -> Detector {
    let mut rs = Ruleset::default_ruleset().unwrap();
    rs.behavior.warmup_secs = warmup;
    let need = if warmup == 0 { 0 } else { 50 };
    rs.behavior.warmup_min_spans = need;
    rs.behavior.warmup_min_sources = need;
    // Shift detectors are exercised by the simulator; keep them out of these unit cases.
    rs.behavior.shift_min_count = u64::MAX;
    Detector::new(rs).unwrap()
}

fn fams(f: Vec<sentrace_detect::Finding>) -> Vec<Family> {
    f.into_iter().map(|f| f.family).collect()
}

#[test]
fn new_endpoint_after_warmup_only() {
    let d = detector(60);
    let t = TenantId::new("acme").unwrap();
    let t0 = 1_700_000_000 * SEC;
    let mut seen = Vec::new();
    for i in 0..100 {
        seen.extend(fams(d.inspect(
            &t,
            &req(i, t0 + i * SEC, "/a", "/a", 200, "1.1.1.1", "u"),
            0,
        )));
        if i == 10 {
            // `/b` first seen while the service has little evidence: learned, not reported.
            seen.extend(fams(d.inspect(
                &t,
                &req(1, t0 + 10 * SEC, "/b", "/b", 200, "1.1.1.1", "u"),
                0,
            )));
        }
    }
    assert!(seen.is_empty(), "{seen:?}");
    let f = d.inspect(
        &t,
        &req(2, t0 + 200 * SEC, "/debug", "/debug", 200, "1.1.1.1", "u"),
        0,
    );
    assert_eq!(fams(f), [Family::NewEndpoint]);
    let f = d.inspect(
        &t,
        &req(3, t0 + 201 * SEC, "/b", "/b", 200, "1.1.1.1", "u"),
        0,
    );
    assert!(f.is_empty());
}

#[test]
fn warmup_needs_many_traces_not_one_busy_one() {
    let d = detector(60);
    let t = TenantId::new("acme").unwrap();
    let t0 = 1_700_000_000 * SEC;
    // 500 spans over 500 s, all in one trace: one source, so still cold.
    for i in 0..500 {
        let f = d.inspect(
            &t,
            &req(7, t0 + i * SEC, "/a", "/a", 200, "1.1.1.1", "u"),
            0,
        );
        assert!(f.is_empty());
    }
    let f = d.inspect(
        &t,
        &req(7, t0 + 501 * SEC, "/new", "/new", 200, "1.1.1.1", "u"),
        0,
    );
    assert!(f.is_empty(), "{:?}", fams(f));
}

/// Frontend calls `callee` in trace `n` at span time `at`.
fn call(n: u64, at: u64, callee: &str) -> Vec<sentrace_core::proto::trace::v1::ResourceSpans> {
    let tr = (n % 250) as u8 + 1;
    let mut root = span(
        tr,
        1,
        None,
        SpanKind::Server,
        vec![kv("http.route", "/checkout")],
    );
    let mut child = span(tr, 2, Some(1), SpanKind::Server, vec![]);
    root.start_time_unix_nano = at;
    child.start_time_unix_nano = at + 1;
    vec![batch("frontend", vec![root]), batch(callee, vec![child])]
}

#[test]
fn baselines_survive_a_restart() {
    let t = TenantId::new("acme").unwrap();
    let t0 = 1_700_000_000 * SEC;
    let before = detector(60);
    for i in 0..100 {
        let f = before.inspect(&t, &call(i, t0 + i * SEC, "cart"), 0);
        assert!(f.is_empty(), "{:?}", fams(f));
    }
    let snaps = before.baseline_snapshots();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].edge_count(), 1);
    assert!(
        before.baseline_snapshots().is_empty(),
        "nothing changed since"
    );
    // Through bytes, as the server keeps it.
    let bytes = serde_json::to_vec(&snaps[0]).unwrap();

    // A restart in the middle of the scenario: the restored detector needs no warm-up.
    let after = detector(60);
    after
        .restore_baseline(&t, serde_json::from_slice(&bytes).unwrap())
        .unwrap();
    let at = t0 + 101 * SEC;
    assert!(after.inspect(&t, &call(101, at, "cart"), 0).is_empty());
    assert_eq!(
        fams(after.inspect(&t, &call(102, at, "payments"), 0)),
        [Family::LateralMovement]
    );
    // Without the snapshot, the same new edge right after a start is learned silently.
    let fresh = detector(60);
    assert!(fresh.inspect(&t, &call(102, at, "payments"), 0).is_empty());

    // A snapshot is only restored for its own tenant and format.
    let other = TenantId::new("globex").unwrap();
    assert!(
        after
            .restore_baseline(&other, serde_json::from_slice(&bytes).unwrap())
            .is_err()
    );
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["format"] = 99.into();
    assert!(
        after
            .restore_baseline(&t, serde_json::from_value(v).unwrap())
            .is_err()
    );
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
