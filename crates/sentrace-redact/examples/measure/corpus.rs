//! A generated span corpus with personal data and credentials in realistic places, and
//! hard negatives that must survive.

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sentrace_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use sentrace_core::proto::resource::v1::Resource;
use sentrace_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

/// One generated span, what was planted in it, and what must survive.
pub struct Planted {
    pub spans: ResourceSpans,
    /// Sensitive values (kind name, value).
    pub sensitive: Vec<(&'static str, String)>,
    /// Hard negatives (kind name, value).
    pub negatives: Vec<(&'static str, String)>,
}

fn s(v: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(v.into())),
    }
}

fn i(v: i64) -> AnyValue {
    AnyValue {
        value: Some(Value::IntValue(v)),
    }
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(v),
        ..Default::default()
    }
}

const FIRST: &[&str] = &[
    "jane", "omar", "li", "maria", "john", "aiko", "pierre", "fatima", "sven", "priya",
];
const LAST: &[&str] = &[
    "doe", "haddad", "wei", "garcia", "smith", "tanaka", "martin", "khan", "berg", "patel",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "corp.example.de",
    "example.co.uk",
    "shop.example.io",
];

struct Gen {
    g: StdRng,
}

impl Gen {
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.g.random_range(0..v.len())]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.g.random_range(0..10u8)))
            .collect()
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.g.random_range(0..16)]))
            .collect()
    }
    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| char::from(A[self.g.random_range(0..A.len())]))
            .collect()
    }
    fn email(&mut self) -> String {
        format!(
            "{}.{}{}@{}",
            self.pick(FIRST),
            self.pick(LAST),
            self.g.random_range(1..99),
            self.pick(DOMAINS)
        )
    }
    fn card(&mut self) -> String {
        let prefix = self.pick(&["4", "51", "37", "6011"]).to_string();
        let len = if prefix == "37" { 15 } else { 16 };
        let body = format!("{prefix}{}", self.digits(len - prefix.len() - 1));
        let n = luhn_complete(&body);
        match self.g.random_range(0..3) {
            0 => n,
            1 if len == 16 => format!("{} {} {} {}", &n[..4], &n[4..8], &n[8..12], &n[12..]),
            _ if len == 16 => format!("{}-{}-{}-{}", &n[..4], &n[4..8], &n[8..12], &n[12..]),
            _ => n,
        }
    }
    fn bad_card(&mut self) -> String {
        // A 16-digit order number that fails Luhn.
        loop {
            let n = format!("4{}", self.digits(15));
            if !luhn_ok(&n) {
                return n;
            }
        }
    }
    fn phone(&mut self) -> String {
        match self.g.random_range(0..5) {
            0 => format!(
                "+1 ({}) {}-{}",
                self.g.random_range(200..999),
                self.digits(3),
                self.digits(4)
            ),
            1 => format!("+44 7700 {} {}", self.digits(3), self.digits(3)),
            2 => format!("+49 30 {}", self.digits(8)),
            3 => format!(
                "0{} {} {} {} {}",
                self.g.random_range(1..7),
                self.digits(2),
                self.digits(2),
                self.digits(2),
                self.digits(2)
            ),
            _ => format!("+91 9{} {}", self.digits(4), self.digits(5)),
        }
    }
    fn ssn(&mut self) -> String {
        format!(
            "{:03}-{:02}-{:04}",
            self.g.random_range(1..666),
            self.g.random_range(1..100),
            self.g.random_range(1..10000)
        )
    }
    fn iban(&mut self) -> String {
        let bban = format!("{}{}", self.digits(8), self.digits(10));
        let rearranged = format!("{bban}DE00");
        let mut rem: u32 = 0;
        for c in rearranged.chars() {
            let v = c.to_digit(36).unwrap_or(0);
            rem = if v >= 10 {
                (rem * 100 + v) % 97
            } else {
                (rem * 10 + v) % 97
            };
        }
        format!("DE{:02}{bban}", 98 - rem)
    }
    fn ip(&mut self) -> String {
        format!(
            "{}.{}.{}.{}",
            [self.g.random_range(11..127), self.g.random_range(128..223)]
                [self.g.random_range(0..2)],
            self.g.random_range(0..256),
            self.g.random_range(0..256),
            self.g.random_range(1..255)
        )
    }
    fn jwt(&mut self) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.{}",
            e.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            e.encode(format!(r#"{{"sub":"{}"}}"#, self.alnum(10))),
            self.alnum(43)
        )
    }
    fn secret(&mut self) -> String {
        match self.g.random_range(0..4) {
            0 => format!("ghp_{}", self.alnum(36)),
            1 => format!(
                "AKIA{}",
                self.alnum(16)
                    .to_uppercase()
                    .replace(['0', '1', '8', '9'], "Q")
            ),
            2 => format!("sk_live_{}", self.alnum(24)),
            _ => format!(
                "xoxb-{}-{}-{}",
                self.digits(12),
                self.digits(12),
                self.alnum(24)
            ),
        }
    }
    fn password(&mut self) -> String {
        format!(
            "{}{}!{}",
            self.pick(&["Summer", "hunter", "Tr0ub4dor", "letmein", "P@ss"]),
            self.digits(3),
            self.alnum(4)
        )
    }
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
    fn ts(&mut self) -> String {
        format!(
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}.{}Z",
            self.g.random_range(1..13),
            self.g.random_range(1..29),
            self.g.random_range(0..24),
            self.g.random_range(0..60),
            self.g.random_range(0..60),
            self.digits(3)
        )
    }
    fn version(&mut self) -> String {
        format!(
            "{}.{}.{}",
            self.g.random_range(0..5),
            self.g.random_range(0..40),
            self.g.random_range(0..20)
        )
    }
    fn price(&mut self) -> String {
        format!(
            "{}.{:02}",
            self.g.random_range(1..2000),
            self.g.random_range(0..100)
        )
    }
}

pub fn luhn_ok(n: &str) -> bool {
    sentrace_redact::detect::checks::luhn(n)
}

fn luhn_complete(body: &str) -> String {
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|c| luhn_ok(c))
        .unwrap_or_default()
}

/// Generates `n` spans (one resource each).
pub fn generate(n: usize, seed: u64) -> Vec<Planted> {
    let mut g = Gen {
        g: StdRng::seed_from_u64(seed),
    };
    (0..n).map(|k| one(&mut g, k)).collect()
}

fn one(g: &mut Gen, k: usize) -> Planted {
    let mut sens: Vec<(&'static str, String)> = Vec::new();
    let mut neg: Vec<(&'static str, String)> = Vec::new();
    let service = [
        "checkout",
        "accounts",
        "search",
        "payments",
        "notifications",
    ][k % 5];
    let trace = g.hex(32);
    let uuid = g.uuid();
    let sha = g.hex(40);
    let version = g.version();
    let order = g.bad_card();
    let ts = g.ts();
    let price = g.price();
    let route = "/api/v1/orders/{order_id}/items";
    neg.push(("trace-id", trace.clone()));
    neg.push(("uuid", uuid.clone()));
    neg.push(("git-sha", sha.clone()));
    neg.push(("version", version.clone()));
    neg.push(("order-number", order.clone()));
    neg.push(("timestamp", ts.clone()));
    neg.push(("price", price.clone()));
    neg.push(("route", route.to_string()));
    let mut attrs = vec![
        kv("http.route", s(route)),
        kv("app.version", s(version.clone())),
        kv("vcs.ref.head.revision", s(sha.clone())),
        kv("order.id", s(order.clone())),
        kv("order.total", s(format!("{price} EUR"))),
        kv("request.id", s(uuid.clone())),
        kv("app.trace_ref", s(format!("see trace {trace}"))),
        kv("app.event_time", s(ts.clone())),
        kv("http.response.status_code", i(200)),
        kv("server.address", s("api.internal.example.com")),
        kv("server.port", i(8443)),
        kv(
            "user_agent.original",
            s("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        ),
    ];
    let mut name = format!("GET {route}");
    let mut events = Vec::new();
    let mut status = None;
    match k % 6 {
        0 => {
            // HTTP server: query strings, Authorization, client address.
            let email = g.email();
            let tok = g.secret();
            let jwt = g.jwt();
            let ip = g.ip();
            attrs.push(kv("http.request.method", s("GET")));
            attrs.push(kv(
                "url.full",
                s(format!(
                    "https://shop.example.com/api/v1/orders/{uuid}?email={}&api_key={tok}&since={}",
                    email.replace('@', "%40"),
                    ts
                )),
            ));
            attrs.push(kv(
                "http.request.header.authorization",
                s(format!("Bearer {jwt}")),
            ));
            attrs.push(kv("client.address", s(ip.clone())));
            sens.extend([("email", email), ("secret", tok), ("jwt", jwt), ("ip", ip)]);
        }
        1 => {
            // Database: literals in SQL.
            let email = g.email();
            let card = g.card();
            attrs.push(kv("db.system", s("postgresql")));
            attrs.push(kv("db.statement", s(format!("SELECT id, status FROM payments WHERE email = '{email}' AND card = '{card}' AND amount > 100"))));
            name = "SELECT payments".into();
            sens.extend([("email", email), ("card", card)]);
        }
        2 => {
            // JSON request body.
            let email = g.email();
            let phone = g.phone();
            let pw = g.password();
            let iban = g.iban();
            attrs.push(kv("http.request.body", s(format!(r#"{{"user":{{"email":"{email}","phone":"{phone}","password":"{pw}"}},"payout":{{"iban":"{iban}"}},"order":"{order}","created":"{ts}"}}"#))));
            sens.extend([
                ("email", email),
                ("phone", phone),
                ("password", pw),
                ("iban", iban),
            ]);
        }
        3 => {
            // Exception event with PII in the message.
            let email = g.email();
            let card = g.card();
            let ssn = g.ssn();
            events.push(span::Event {
                name: "exception".into(),
                attributes: vec![
                    kv("exception.type", s("PaymentDeclined")),
                    kv("exception.message", s(format!("card {card} declined for {email} (ssn {ssn}) at {ts}, order {order}"))),
                    kv("exception.stacktrace", s(format!("at com.example.Pay.charge(Pay.java:42)\n  commit {sha}\n  version {version}"))),
                ],
                ..Default::default()
            });
            status = Some(Status {
                message: format!("declined for {email}"),
                code: 2,
            });
            sens.extend([("email", email), ("card", card), ("ssn", ssn)]);
        }
        4 => {
            // Log events and a span name with an e-mail in the path.
            let email = g.email();
            let ip = g.ip();
            let phone = g.phone();
            let conn_pw = g.password();
            name = format!("GET /users/{email}/profile");
            events.push(span::Event {
                name: "log".into(),
                attributes: vec![
                    kv(
                        "log.message",
                        s(format!(
                            "login ok for user from {ip}, sms sent to {phone} in 35 ms"
                        )),
                    ),
                    kv(
                        "db.connection_string",
                        s(format!(
                            "Server=db;Database=app;User Id=app;Password={conn_pw};"
                        )),
                    ),
                ],
                ..Default::default()
            });
            sens.extend([
                ("email", email),
                ("ip", ip),
                ("phone", phone),
                ("password", conn_pw),
            ]);
        }
        _ => {
            // Cookies, user ids, forms, arrays.
            let sid = g.alnum(26);
            let email = g.email();
            let pw = g.password();
            let cards = [g.card(), g.card()];
            attrs.push(kv(
                "http.request.header.cookie",
                s(format!("theme=dark; sessionid={sid}")),
            ));
            attrs.push(kv("enduser.id", s(email.clone())));
            attrs.push(kv(
                "http.request.body",
                s(format!("username=bob&password={pw}&remember=1")),
            ));
            attrs.push(kv(
                "payment.cards",
                AnyValue {
                    value: Some(Value::ArrayValue(
                        sentrace_core::proto::common::v1::ArrayValue {
                            values: vec![s(cards[0].clone()), s(format!("backup {}", cards[1]))],
                        },
                    )),
                },
            ));
            sens.extend([
                ("session_id", sid),
                ("email", email),
                ("password", pw),
                ("card", cards[0].clone()),
                ("card", cards[1].clone()),
            ]);
        }
    }
    let span = Span {
        trace_id: hex::decode(&trace).unwrap_or_default(),
        span_id: hex::decode(g.hex(16)).unwrap_or_default(),
        name,
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_050_000_000,
        attributes: attrs,
        events,
        status,
        ..Default::default()
    };
    Planted {
        spans: ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s(service))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        },
        sensitive: sens,
        negatives: neg,
    }
}
