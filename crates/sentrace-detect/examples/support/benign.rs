//! Seeded generator of realistic benign request values and spans: search queries, names
//! with apostrophes, JSON bodies, markdown, rich-text HTML, prices, URLs, cookies, user
//! agents, dates, ids and tokens. Shared by the evaluation example and the benchmark.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const WORDS: &[&str] = &[
    "red",
    "blue",
    "running",
    "shoes",
    "women's",
    "men's",
    "kids",
    "jacket",
    "waterproof",
    "organic",
    "coffee",
    "beans",
    "laptop",
    "stand",
    "usb-c",
    "cable",
    "wireless",
    "mouse",
    "desk",
    "lamp",
    "yoga",
    "mat",
    "cotton",
    "t-shirt",
    "summer",
    "dress",
    "winter",
    "boots",
    "gift",
    "card",
    "select",
    "size",
    "from",
    "drop",
    "off",
    "union",
    "station",
    "order",
    "by",
    "date",
    "and",
    "or",
    "not",
    "where",
    "table",
    "chair",
    "update",
    "delete",
    "account",
    "script",
    "alert",
    "system",
    "exec",
    "sleep",
    "mask",
    "java",
    "python",
    "cat",
    "food",
    "ls",
    "id",
    "echo",
    "dot",
    "eval",
    "insert",
    "into",
    "values",
    "between",
    "like",
    "having",
    "group",
    "limit",
    "set",
    "join",
    "case",
    "when",
    "null",
    "true",
    "false",
    "if",
    "else",
    "home",
    "garden",
    "kitchen",
    "knife",
    "set",
    "best",
    "cheap",
    "new",
    "sale",
    "2024",
    "pro",
    "max",
    "mini",
    "black",
    "white",
    "large",
    "xl",
    "8.5",
    "10",
    "pack",
    "of",
    "3",
    "bluetooth",
    "headphones",
    "noise",
    "cancelling",
    "rock",
    "roll",
    "c++",
    "c#",
    "node.js",
    "what's",
    "don't",
    "can't",
    "it's",
    "rock'n'roll",
    "l'oreal",
    "levi's",
    "children's",
    "temp",
    "env",
    "config",
    "admin",
    "login",
    "root",
    "bin",
    "etc",
    "local",
    "host",
    "data",
];

const FIRST: &[&str] = &[
    "Alice",
    "Bob",
    "Jean-Luc",
    "Zoë",
    "José",
    "Siobhán",
    "Mary Ann",
    "D'Andre",
    "Li",
    "Søren",
    "Renée",
    "Anne-Marie",
    "Chloé",
    "Muhammad",
    "Priya",
    "O'Neil",
    "Björk",
    "Łukasz",
    "Nguyễn",
];
const LAST: &[&str] = &[
    "O'Brien",
    "D'Angelo",
    "O'Connor",
    "Smith",
    "van der Berg",
    "McDonald",
    "García",
    "Müller",
    "Dell'Acqua",
    "St. John",
    "Smith-Jones",
    "de la Cruz",
    "Ó Súilleabháin",
    "N'Diaye",
    "L'Estrange",
    "Null",
    "Select",
    "Drop",
    "Union",
    "Echo",
    "Cat",
];
const SENTENCES: &[&str] = &[
    "Great product, would buy again!",
    "Arrived late -- but works fine.",
    "It's 5'10\" tall & fits well; 10/10",
    "Don't order the XL, it's huge (trust me).",
    "Size chart: S/M/L = 36/38/40",
    "Price went from $20 to $25?! Not cool.",
    "Works with Windows & Mac; no drivers needed.",
    "Use code SAVE10 at checkout -> 10% off",
    "I'd rate it 4/5 -- the \"premium\" version is better",
    "Q: does it fit a 15\" laptop? A: yes, easily.",
    "Tried it on 2024-03-01, returned on 03/15.",
    "My kid's favourite; she says \"it's the best!\"",
    "Select the color from the drop-down, then click 'Add'.",
    "Order by Friday for delivery on Monday.",
    "1 or 2 sizes smaller than usual",
    "Set the table and drop the kids at school",
    "Love it <3",
    "Compare: A > B but B < C",
    "email me: jane.doe@example.org",
    "Call 555-0123 or (555) 987-6543 ext. 4",
    "Ship to 221B Baker St., London NW1 6XE",
    "Path of exile; update 3.24 notes",
    "The cat sat on the mat; the dog did not.",
    "Echo Dot (5th gen) + smart plug bundle",
    "Null and void? Not this warranty.",
    "100% cotton | machine-washable | 30°C",
];
const TLDS: &[&str] = &["com", "org", "net", "io", "co.uk", "de", "shop"];
const DOMAINS: &[&str] = &[
    "example", "shop-cdn", "images", "partner", "blog", "docs", "news", "cdn",
];
const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "curl/8.7.1",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240605.024)",
];

/// A seeded generator.
pub struct Benign {
    rng: StdRng,
}

impl Benign {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn words(&mut self, lo: usize, hi: usize) -> String {
        let n = self.rng.random_range(lo..=hi);
        (0..n)
            .map(|_| self.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| A[self.rng.random_range(0..A.len())] as char)
            .collect()
    }

    fn b64(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..n)
            .map(|_| A[self.rng.random_range(0..A.len())] as char)
            .collect()
    }

    fn name(&mut self) -> String {
        format!("{} {}", self.pick(FIRST), self.pick(LAST))
    }

    fn price(&mut self) -> String {
        let v = self.rng.random_range(1..200_000) as f64 / 100.0;
        match self.rng.random_range(0..5) {
            0 => format!("${v:.2}"),
            1 => format!("{v:.2} EUR"),
            2 => format!("€{}", format!("{v:.2}").replace('.', ",")),
            3 => format!("{:.0}", v * 100.0),
            _ => format!("{v:.2}"),
        }
    }

    fn url(&mut self) -> String {
        let d = self.pick(DOMAINS);
        let t = self.pick(TLDS);
        let path = self
            .words(1, 3)
            .replace(' ', "-")
            .replace(['\'', '#', '+'], "");
        match self.rng.random_range(0..4) {
            0 => format!("https://www.{d}.{t}/{path}"),
            1 => format!(
                "https://{d}.{t}/p/{}?ref=home&utm_source=newsletter&page={}",
                self.rng.random_range(1..99999),
                self.rng.random_range(1..9)
            ),
            2 => format!(
                "https://{d}.{t}/callback?code={}&state={}",
                self.alnum(24),
                self.alnum(12)
            ),
            _ => format!("http://{d}.{t}/images/{}.jpg", self.alnum(10)),
        }
    }

    fn markdown(&mut self) -> String {
        let s1 = self.pick(SENTENCES);
        let s2 = self.pick(SENTENCES);
        let w = self.words(2, 4);
        let u = self.url();
        match self.rng.random_range(0..4) {
            0 => format!("# {w}\n\n* {s1}\n* {s2}\n\nSee [details]({u})."),
            1 => format!("**{w}** -- {s1}\n\n> {s2}\n\n`size: M`"),
            2 => format!("1. {s1}\n2. {s2}\n\n_{w}_ ![photo]({u})"),
            _ => format!(
                "{s1}\n\n```\nsize = {}\n```\n{s2}",
                self.rng.random_range(1..50)
            ),
        }
    }

    fn rich_html(&mut self) -> String {
        let s1 = self
            .pick(SENTENCES)
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let u = self.url();
        match self.rng.random_range(0..4) {
            0 => format!("<p>{s1}</p><p><b>{}</b></p>", self.words(1, 3)),
            1 => format!("<p>{s1} <a href=\"{u}\">link</a></p>"),
            2 => format!(
                "<ul><li>{}</li><li>{}</li></ul>",
                self.words(1, 3),
                self.words(1, 3)
            ),
            _ => format!("<p><img src=\"{u}\" alt=\"photo\"> {s1}</p><br>"),
        }
    }

    fn json(&mut self) -> String {
        let name = self.name().replace('"', "\\\"");
        let note = self
            .pick(SENTENCES)
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        match self.rng.random_range(0..4) {
            0 => format!(
                "{{\"name\":\"{name}\",\"email\":\"user{}@example.com\",\"qty\":{},\"price\":{:.2},\"note\":\"{note}\"}}",
                self.rng.random_range(1..9999),
                self.rng.random_range(1..10),
                self.rng.random_range(1.0..500.0)
            ),
            1 => format!(
                "{{\"items\":[{{\"sku\":\"SKU-{}\",\"qty\":{}}},{{\"sku\":\"SKU-{}\",\"qty\":1}}],\"coupon\":null,\"gift\":true}}",
                self.alnum(6),
                self.rng.random_range(1..5),
                self.alnum(6)
            ),
            2 => format!(
                "{{\"query\":\"{}\",\"filters\":{{\"price_min\":{},\"price_max\":{},\"brand\":[\"Levi's\",\"O'Neill\"]}},\"sort\":\"price:asc\"}}",
                self.words(1, 4),
                self.rng.random_range(0..50),
                self.rng.random_range(50..500)
            ),
            _ => format!(
                "{{\"address\":{{\"line1\":\"{} Main St. Apt #{}\",\"city\":\"Saint-Étienne\",\"zip\":\"{}\"}},\"phone\":\"+1 (555) {}-{}\"}}",
                self.rng.random_range(1..999),
                self.rng.random_range(1..99),
                self.rng.random_range(10000..99999),
                self.rng.random_range(100..999),
                self.rng.random_range(1000..9999)
            ),
        }
    }

    fn cookie(&mut self) -> String {
        format!(
            "session={}; _ga=GA1.2.{}.{}; theme=dark; cart=%5B%7B%22id%22%3A{}%7D%5D",
            self.alnum(32),
            self.rng.random_range(100000000..999999999u64),
            self.rng.random_range(1600000000..1700000000u64),
            self.rng.random_range(1..999)
        )
    }

    fn jwt(&mut self) -> String {
        format!(
            "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
            self.b64(80),
            self.b64(43)
        )
    }

    /// A multi-line support or review message as a browser posts a textarea: CRLF line
    /// breaks, greeting, short lines that start with ordinary words (some of which are
    /// also protocol verbs: "Help", "List", "Top", "Data", "Status").
    fn message(&mut self) -> String {
        const OPENERS: &[&str] = &[
            "Hi,",
            "Hello team",
            "Help",
            "Status?",
            "Data attached",
            "List of items:",
            "Top 3",
            "Thanks",
            "User feedback",
            "Order 12345",
        ];
        let mut lines = vec![self.pick(OPENERS).to_string()];
        for _ in 0..self.rng.random_range(1..4) {
            let line = match self.rng.random_range(0..4) {
                0 => self.pick(SENTENCES).to_string(),
                1 => self.pick(OPENERS).to_string(),
                2 => format!("- {}", self.words(1, 4)),
                _ => self.words(2, 6),
            };
            lines.push(line);
        }
        lines.push(self.name());
        lines.join("\r\n")
    }

    /// One benign value of a random kind, and the kind's name.
    pub fn value(&mut self) -> (&'static str, String) {
        match self.rng.random_range(0..17) {
            0..=2 => ("search", self.words(1, 6)),
            16 => ("message", self.message()),
            3 => ("name", self.name()),
            4 => ("sentence", self.pick(SENTENCES).to_string()),
            5 => ("price", self.price()),
            6 => ("url", self.url()),
            7 => ("markdown", self.markdown()),
            8 => ("html", self.rich_html()),
            9 => ("json", self.json()),
            10 => (
                "email",
                format!(
                    "{}.{}@{}.{}",
                    self.pick(FIRST).to_lowercase().replace(' ', ""),
                    self.alnum(4).to_lowercase(),
                    self.pick(DOMAINS),
                    self.pick(TLDS)
                ),
            ),
            11 => (
                "date",
                format!(
                    "2024-{:02}-{:02}T{:02}:{:02}:00Z",
                    self.rng.random_range(1..13),
                    self.rng.random_range(1..29),
                    self.rng.random_range(0..24),
                    self.rng.random_range(0..60)
                ),
            ),
            12 => (
                "id",
                format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                    self.rng.random::<u32>(),
                    self.rng.random::<u16>(),
                    self.rng.random_range(0..4096),
                    self.rng.random_range(0..4096),
                    self.rng.random::<u64>() & 0xffff_ffff_ffff
                ),
            ),
            13 => ("token", self.jwt()),
            14 => (
                "path",
                format!(
                    "/{}/{}/{}",
                    self.pick(&[
                        "products",
                        "api/v1/orders",
                        "docs",
                        "static/img",
                        "users",
                        "blog/2024"
                    ]),
                    self.words(1, 2)
                        .replace(' ', "-")
                        .replace(['\'', '#', '+'], ""),
                    self.rng.random_range(1..100000)
                ),
            ),
            _ => (
                "sentence",
                format!("{} {}", self.words(2, 5), self.pick(SENTENCES)),
            ),
        }
    }

    /// Benign request attributes (key, value) for one server span.
    pub fn request(&mut self) -> Vec<(String, String)> {
        let (kind, v) = self.value();
        let mut attrs = vec![
            (
                "http.request.method".to_string(),
                if kind == "json" { "POST" } else { "GET" }.to_string(),
            ),
            (
                "user_agent.original".to_string(),
                self.pick(UAS).to_string(),
            ),
        ];
        let enc = |s: &str| {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else if b == b' ' {
                        "+".into()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        };
        match (kind, self.rng.random_range(0..6)) {
            ("json", _) => {
                attrs.push(("url.path".into(), "/api/v1/orders".into()));
                attrs.push((
                    "http.request.header.content-type".into(),
                    "application/json".into(),
                ));
                attrs.push(("http.request.body".into(), v));
            }
            ("path", _) => attrs.push(("url.path".into(), v)),
            ("token", _) => {
                attrs.push(("url.path".into(), "/api/v1/me".into()));
                attrs.push(("http.request.header.authorization".into(), v));
            }
            (_, 0) => {
                attrs.push(("url.path".into(), "/account/profile".into()));
                attrs.push((
                    "http.request.body".into(),
                    format!("field={}&csrf={}", enc(&v), self.alnum(20)),
                ));
            }
            (_, 1) => {
                attrs.push(("url.path".into(), "/".into()));
                attrs.push(("http.request.header.cookie".into(), self.cookie()));
                attrs.push(("http.request.header.referer".into(), self.url()));
            }
            _ => {
                attrs.push(("url.path".into(), "/search".into()));
                attrs.push((
                    "url.query".into(),
                    format!("q={}&page={}", enc(&v), self.rng.random_range(1..20)),
                ));
            }
        }
        attrs
    }
}
