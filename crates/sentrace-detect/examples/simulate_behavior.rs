//! Seeded traffic simulator for the behavioral detectors: a small shop (frontend, catalog,
//! cart, checkout, payments, auth) with one incident of each behavior injected after a clean
//! warm-up. Runs the same traffic with and without incidents and reports, per incident,
//! whether a finding of the right family fired inside its window, and false alarms per hour
//! of clean traffic.
//!
//! `cargo run --release -p sentrace-detect --example simulate_behavior -- [--hours H] [--rps R] [--seed S]`

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sentrace_core::TenantId;
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use sentrace_detect::{Detector, Family, RuleKind};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_750_000_000 * SEC;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}
fn kvi(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

/// One request as the simulator describes it.
struct Req {
    t: u64,
    route: String,
    path: String,
    status: i64,
    size: i64,
    latency_ms: f64,
    client: String,
    user: Option<String>,
    calls: Vec<(&'static str, &'static str)>,
}

struct Shop {
    rng: StdRng,
    next_id: u64,
}

/// A route, the service calls it makes, and its share of traffic.
type Route = (&'static str, &'static [(&'static str, &'static str)], f64);

const ROUTES: &[Route] = &[
    ("/", &[("frontend", "catalog")], 0.25),
    ("/products/{id}", &[("frontend", "catalog")], 0.30),
    ("/search", &[("frontend", "catalog")], 0.15),
    ("/cart", &[("frontend", "cart")], 0.12),
    (
        "/checkout",
        &[
            ("frontend", "checkout"),
            ("checkout", "payments"),
            ("checkout", "cart"),
        ],
        0.05,
    ),
    ("/login", &[("frontend", "auth")], 0.06),
    ("/api/orders/{id}", &[("frontend", "checkout")], 0.05),
    ("/admin/users", &[("frontend", "auth")], 0.02),
];

impl Shop {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            next_id: 1,
        }
    }

    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        // Box-Muller.
        let u1: f64 = self.rng.random_range(1e-12..1.0);
        let u2: f64 = self.rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (sigma * z).exp()
    }

    fn normal_request(&mut self, t: u64) -> Req {
        let mut x: f64 = self.rng.random();
        let mut pick = ROUTES[0];
        for r in ROUTES {
            if x < r.2 {
                pick = *r;
                break;
            }
            x -= r.2;
        }
        let (route, calls, _) = pick;
        let id = self.rng.random_range(1..5000u32).to_string();
        let path = route.replace("{id}", &id);
        let user_n = self.rng.random_range(0..3000u32);
        let client = format!("198.51.{}.{}", user_n / 250, user_n % 250);
        let mut status = 200;
        let r: f64 = self.rng.random();
        if route == "/login" && r < 0.04 {
            status = 401;
        } else if route.contains("{id}") && r < 0.02 {
            status = 404;
        } else if route == "/admin/users" {
            status = if r < 0.05 { 403 } else { 200 };
        } else if r < 0.005 {
            status = 500;
        }
        let size = self.lognormal(
            if route == "/api/orders/{id}" {
                4000.0
            } else {
                20000.0
            },
            0.5,
        ) as i64;
        Req {
            t,
            route: route.into(),
            path,
            status,
            size,
            latency_ms: self.lognormal(30.0, 0.4),
            client,
            user: Some(format!("user{user_n}")),
            calls: calls.to_vec(),
        }
    }

    fn spans(&mut self, r: &Req) -> Vec<ResourceSpans> {
        let mut trace = [0u8; 16];
        trace[..8].copy_from_slice(&self.next_id.to_be_bytes());
        trace[8] = 1;
        let mut by_service: Vec<(&str, Vec<Span>)> = Vec::new();
        let root_id = self.next_id.wrapping_mul(16).wrapping_add(1);
        self.next_id += 1;
        let dur = (r.latency_ms * 1e6) as u64;
        let mut attrs = vec![
            kv("http.request.method", "GET"),
            kv("url.path", &r.path),
            kv("http.route", &r.route),
            kvi("http.response.status_code", r.status),
            kvi("http.response.body.size", r.size),
            kv("client.address", &r.client),
        ];
        if let Some(u) = &r.user {
            attrs.push(kv("enduser.id", u));
        }
        let root = Span {
            trace_id: trace.to_vec(),
            span_id: root_id.to_be_bytes().to_vec(),
            kind: SpanKind::Server as i32,
            name: format!("GET {}", r.route),
            start_time_unix_nano: r.t,
            end_time_unix_nano: r.t + dur,
            attributes: attrs,
            ..Default::default()
        };
        by_service.push(("frontend", vec![root]));
        let mut ids: Vec<(&str, u64)> = vec![("frontend", root_id)];
        for (i, (from, to)) in r.calls.iter().enumerate() {
            let parent = ids
                .iter()
                .rev()
                .find(|(s, _)| s == from)
                .map_or(root_id, |(_, id)| *id);
            let id = root_id.wrapping_add(i as u64 + 1);
            let span = Span {
                trace_id: trace.to_vec(),
                span_id: id.to_be_bytes().to_vec(),
                parent_span_id: parent.to_be_bytes().to_vec(),
                kind: SpanKind::Server as i32,
                name: format!("{to} handler"),
                start_time_unix_nano: r.t + 1000,
                end_time_unix_nano: r.t + dur / 2,
                ..Default::default()
            };
            ids.push((to, id));
            match by_service.iter_mut().find(|(s, _)| s == to) {
                Some((_, v)) => v.push(span),
                None => by_service.push((to, vec![span])),
            }
        }
        by_service
            .into_iter()
            .map(|(svc, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", svc)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect()
    }
}

/// An injected incident: its family, window, and the requests it adds.
struct Incident {
    name: &'static str,
    family: Family,
    start: u64,
    end: u64,
}

fn incident_requests(start: u64, hours: u64) -> (Vec<Incident>, Vec<Req>) {
    let h = 3600 * SEC;
    let slot = (T0 + hours * h - start) / 11;
    let at = |i: u64| start + i * slot;
    let mut inc = Vec::new();
    let mut reqs = Vec::new();
    let base = |t: u64,
                route: &str,
                path: &str,
                status: i64,
                client: &str,
                user: Option<String>,
                calls: Vec<(&'static str, &'static str)>| Req {
        t,
        route: route.into(),
        path: path.into(),
        status,
        size: 2000,
        latency_ms: 20.0,
        client: client.into(),
        user,
        calls,
    };
    // 1. lateral movement: cart starts calling payments directly.
    let t = at(0);
    for i in 0..3 {
        reqs.push(base(
            t + i * SEC,
            "/cart",
            "/cart",
            200,
            "198.51.1.1",
            None,
            vec![("frontend", "cart"), ("cart", "payments")],
        ));
    }
    inc.push(Incident {
        name: "lateral movement (new edge cart->payments)",
        family: Family::LateralMovement,
        start: t,
        end: t + 60 * SEC,
    });
    // 2. new endpoint.
    let t = at(1);
    reqs.push(base(
        t,
        "/debug/env",
        "/debug/env",
        200,
        "203.0.113.50",
        None,
        vec![],
    ));
    inc.push(Incident {
        name: "new endpoint /debug/env",
        family: Family::NewEndpoint,
        start: t,
        end: t + 60 * SEC,
    });
    // 3. brute force: one client, one user, 60 failures in 2 min.
    let t = at(2);
    for i in 0..60 {
        reqs.push(base(
            t + i * 2 * SEC,
            "/login",
            "/login",
            401,
            "203.0.113.7",
            Some("alice".into()),
            vec![("frontend", "auth")],
        ));
    }
    inc.push(Incident {
        name: "brute force on /login",
        family: Family::BruteForce,
        start: t,
        end: t + 180 * SEC,
    });
    // 4. credential stuffing: 40 users from one client.
    let t = at(3);
    for i in 0..40 {
        reqs.push(base(
            t + i * 3 * SEC,
            "/login",
            "/login",
            401,
            "203.0.113.8",
            Some(format!("victim{i}")),
            vec![("frontend", "auth")],
        ));
    }
    inc.push(Incident {
        name: "credential stuffing",
        family: Family::CredentialStuffing,
        start: t,
        end: t + 180 * SEC,
    });
    // 5. enumeration: 80 order ids, 403.
    let t = at(4);
    for i in 0..80 {
        let p = format!("/api/orders/{}", 900_000 + i);
        reqs.push(base(
            t + i * SEC,
            "/api/orders/{id}",
            &p,
            403,
            "203.0.113.9",
            Some("mallory".into()),
            vec![("frontend", "checkout")],
        ));
    }
    inc.push(Incident {
        name: "IDOR enumeration",
        family: Family::Enumeration,
        start: t,
        end: t + 120 * SEC,
    });
    // 6. exfiltration: one 60 MB order response.
    let t = at(5);
    let mut r = base(
        t,
        "/api/orders/{id}",
        "/api/orders/77",
        200,
        "203.0.113.10",
        Some("user77".into()),
        vec![("frontend", "checkout")],
    );
    r.size = 60_000_000;
    reqs.push(r);
    inc.push(Incident {
        name: "exfiltration (60 MB response)",
        family: Family::Exfiltration,
        start: t,
        end: t + 60 * SEC,
    });
    // 7. privilege probing: 8 admin 403s, then a 200.
    let t = at(6);
    for i in 0..8 {
        let p = format!("/admin/{}", ["users", "config", "keys", "billing"][i % 4]);
        reqs.push(base(
            t + i as u64 * 5 * SEC,
            "/admin/users",
            &p,
            403,
            "203.0.113.11",
            Some("eve".into()),
            vec![("frontend", "auth")],
        ));
    }
    reqs.push(base(
        t + 60 * SEC,
        "/admin/users",
        "/admin/users",
        200,
        "203.0.113.11",
        Some("eve".into()),
        vec![("frontend", "auth")],
    ));
    inc.push(Incident {
        name: "privilege probing on /admin",
        family: Family::PrivilegeProbing,
        start: t,
        end: t + 120 * SEC,
    });
    // 8-10: error, latency and volume shifts are applied to normal traffic (see main).
    inc.push(Incident {
        name: "error shift (frontend 5xx 3 min)",
        family: Family::Anomaly,
        start: at(7),
        end: at(7) + 300 * SEC,
    });
    inc.push(Incident {
        name: "latency shift (x10 for 3 min)",
        family: Family::Anomaly,
        start: at(8),
        end: at(8) + 300 * SEC,
    });
    inc.push(Incident {
        name: "volume shift (x5 for 2 min)",
        family: Family::Anomaly,
        start: at(9),
        end: at(9) + 240 * SEC,
    });
    (inc, reqs)
}

fn run(
    hours: u64,
    rps: u64,
    seed: u64,
    incidents: bool,
) -> (Vec<Incident>, Vec<sentrace_detect::Finding>, u64) {
    let d = Detector::with_default_rules().expect("default rules");
    let tenant = TenantId::new("shop").expect("tenant");
    let warmup = d.ruleset(&tenant).behavior.warmup_secs * SEC;
    let mut shop = Shop::new(seed);
    let (inc, mut extra) = if incidents {
        incident_requests(T0 + warmup + 600 * SEC, hours)
    } else {
        (Vec::new(), Vec::new())
    };
    extra.sort_by_key(|r| r.t);
    let mut extra = extra.into_iter().peekable();
    let end = T0 + hours * 3600 * SEC;
    let mut findings = Vec::new();
    let mut t = T0;
    let mut n = 0u64;
    let step = SEC / rps.max(1);
    while t < end {
        let in_win = |name: &str| {
            inc.iter().any(|i| {
                i.name.starts_with(name) && t >= i.start && t < i.start + (i.end - i.start) * 3 / 5
            })
        };
        let mut batch_reqs = Vec::new();
        let mut r = shop.normal_request(t);
        if in_win("error shift") && shop.rng.random::<f64>() < 0.5 {
            r.status = 503;
        }
        if in_win("latency shift") {
            r.latency_ms *= 10.0;
        }
        batch_reqs.push(r);
        if in_win("volume shift") {
            for _ in 0..4 {
                let r = shop.normal_request(t);
                batch_reqs.push(r);
            }
        }
        while extra.peek().is_some_and(|e| e.t <= t) {
            if let Some(e) = extra.next() {
                batch_reqs.push(e);
            }
        }
        for r in batch_reqs {
            let rs = shop.spans(&r);
            n += rs
                .iter()
                .map(|x| x.scope_spans[0].spans.len() as u64)
                .sum::<u64>();
            findings.extend(
                d.inspect(&tenant, &rs, r.t)
                    .into_iter()
                    .filter(|f| f.kind == RuleKind::Behavioral),
            );
        }
        t += step;
    }
    (inc, findings, n)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let hours = arg("--hours").unwrap_or(6);
    let rps = arg("--rps").unwrap_or(20);
    let seed = arg("--seed").unwrap_or(11);
    let d = Detector::with_default_rules().expect("rules");
    let warm_h = d
        .ruleset(&TenantId::new("shop").expect("t"))
        .behavior
        .warmup_secs as f64
        / 3600.0;

    let (inc, found, spans) = run(hours, rps, seed, true);
    println!(
        "# Behavioral detection: simulated shop, {hours} h at {rps} req/s, seed {seed}, warm-up {warm_h:.1} h, {spans} spans\n"
    );
    println!("| incident | family | detected | first finding after start |");
    println!("|---|---|---|---|");
    let mut matched = vec![false; found.len()];
    for i in &inc {
        let want_rule = match i.name.split(' ').next() {
            Some("error") => Some("beh-error-shift"),
            Some("latency") => Some("beh-latency-shift"),
            Some("volume") => Some("beh-volume-shift"),
            _ => None,
        };
        let hit = found.iter().enumerate().find(|(_, f)| {
            f.family == i.family
                && want_rule.is_none_or(|r| f.rule_id == r)
                && f.time_unix_nanos >= i.start
                && f.time_unix_nanos <= i.end + 120 * SEC
        });
        match hit {
            Some((k, f)) => {
                matched[k] = true;
                println!(
                    "| {} | {} | yes ({}) | {:.0} s |",
                    i.name,
                    i.family,
                    f.rule_id,
                    (f.time_unix_nanos - i.start) as f64 / 1e9
                );
            }
            None => println!("| {} | {} | **no** | - |", i.name, i.family),
        }
    }
    let unexplained: Vec<_> = found
        .iter()
        .zip(&matched)
        .filter(|(f, m)| {
            !**m && !inc
                .iter()
                .any(|i| f.time_unix_nanos >= i.start && f.time_unix_nanos <= i.end + 600 * SEC)
        })
        .map(|(f, _)| f)
        .collect();
    println!(
        "\nfindings outside incident windows in the incident run: {}",
        unexplained.len()
    );
    for f in unexplained.iter().take(10) {
        println!(
            "  {} {} {}",
            f.rule_id,
            (f.time_unix_nanos - T0) / SEC,
            f.message
        );
    }
    let (_, clean, _) = run(hours, rps, seed, false);
    let clean_hours = hours as f64 - warm_h;
    println!(
        "\nclean run: {} behavioral findings over {:.1} h after warm-up = {:.2} false alarms per hour",
        clean.len(),
        clean_hours,
        clean.len() as f64 / clean_hours.max(1e-9)
    );
    for f in clean.iter().take(10) {
        println!(
            "  {} t+{}s {}",
            f.rule_id,
            (f.time_unix_nanos - T0) / SEC,
            f.message
        );
    }
}
