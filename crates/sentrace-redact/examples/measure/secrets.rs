//! Secrets: recall and precision per format on our own positive and negative samples,
//! side by side with the gitleaks rules (compiled from `gitleaks.toml` at run time, when
//! the corpus is present) on the same samples.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sentrace_redact::Kind;
use sentrace_redact::detect::{Context, Detectors, checks};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const HEX: &[u8] = b"0123456789abcdef";
const UPPER32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const UPPERNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BECH32: &[u8] = b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
const DIGITS: &[u8] = b"0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn r(rng: &mut StdRng, set: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| set[rng.random_range(0..set.len())] as char)
        .collect()
}

/// One credential format: a name and a generator of real-shaped values.
struct Format {
    name: &'static str,
    make: fn(&mut StdRng) -> String,
}

macro_rules! fmt {
    ($name:expr, |$g:ident| $body:expr) => {
        Format {
            name: $name,
            make: |$g: &mut StdRng| $body,
        }
    };
}

fn formats() -> Vec<Format> {
    vec![
        fmt!("aws-access-key-id", |g| format!(
            "AKIA{}",
            r(g, UPPER32, 16)
        )),
        fmt!("github-pat", |g| format!("ghp_{}", r(g, ALNUM, 36))),
        fmt!("github-oauth", |g| format!("gho_{}", r(g, ALNUM, 36))),
        fmt!("github-fine-grained-pat", |g| format!(
            "github_pat_{}",
            r(g, ALNUM, 82)
        )),
        fmt!("gitlab-pat", |g| format!("glpat-{}", r(g, URLSAFE, 20))),
        fmt!("slack-bot-token", |g| format!(
            "xoxb-{}-{}-{}",
            r(g, DIGITS, 12),
            r(g, DIGITS, 13),
            r(g, ALNUM, 24)
        )),
        fmt!("slack-webhook-url", |g| format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            r(g, UPPERNUM, 8),
            r(g, UPPERNUM, 8),
            r(g, ALNUM, 24)
        )),
        fmt!("stripe-secret-key", |g| format!(
            "sk_live_{}",
            r(g, ALNUM, 24)
        )),
        fmt!("gcp-api-key", |g| format!("AIza{}", r(g, URLSAFE, 35))),
        fmt!("sendgrid-api-key", |g| format!(
            "SG.{}.{}",
            r(g, URLSAFE, 22),
            r(g, URLSAFE, 43)
        )),
        fmt!("npm-access-token", |g| format!("npm_{}", r(g, ALNUM, 36))),
        fmt!("openai-api-key", |g| format!(
            "sk-proj-{}T3BlbkFJ{}",
            r(g, URLSAFE, 74),
            r(g, URLSAFE, 74)
        )),
        fmt!("anthropic-api-key", |g| format!(
            "sk-ant-api03-{}AA",
            r(g, URLSAFE, 93)
        )),
        fmt!("shopify-token", |g| format!("shpat_{}", r(g, HEX, 32))),
        fmt!("digitalocean-token", |g| format!(
            "dop_v1_{}",
            r(g, HEX, 64)
        )),
        fmt!("hashicorp-vault-token", |g| format!(
            "hvs.{}",
            r(g, URLSAFE, 95)
        )),
        fmt!("postman-api-key", |g| format!(
            "PMAK-{}-{}",
            r(g, HEX, 24),
            r(g, HEX, 34)
        )),
        fmt!("linear-api-key", |g| format!("lin_api_{}", r(g, ALNUM, 40))),
        fmt!("age-secret-key", |g| format!(
            "AGE-SECRET-KEY-1{}",
            r(g, BECH32, 58)
        )),
        fmt!("databricks-token", |g| format!("dapi{}", r(g, HEX, 32))),
        fmt!("pypi-upload-token", |g| format!(
            "pypi-AgEIcHlwaS5vcmc{}",
            r(g, URLSAFE, 70)
        )),
        fmt!("twilio-api-key", |g| format!("SK{}", r(g, HEX, 32))),
        fmt!("huggingface-token", |g| format!("hf_{}", r(g, LETTERS, 34))),
        fmt!("doppler-token", |g| format!("dp.pt.{}", r(g, ALNUM, 43))),
        fmt!("grafana-service-account", |g| format!(
            "glsa_{}_{}",
            r(g, ALNUM, 32),
            r(g, HEX, 8)
        )),
        fmt!("new-relic-user-key", |g| format!(
            "NRAK-{}",
            r(g, UPPERNUM, 27)
        )),
        fmt!("telegram-bot-token", |g| format!(
            "{}:AA{}",
            r(g, DIGITS, 10),
            r(g, URLSAFE, 33)
        )),
        fmt!("square-token", |g| format!("sq0atp-{}", r(g, URLSAFE, 22))),
        fmt!("jwt", |g| {
            use base64::Engine as _;
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!(
                "{}.{}.{}",
                e.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
                e.encode(format!(
                    r#"{{"sub":"{}","iat":1700000000}}"#,
                    r(g, ALNUM, 12)
                )),
                r(g, URLSAFE, 43)
            )
        }),
        fmt!("private-key", |g| format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n-----END RSA PRIVATE KEY-----",
            r(g, B64, 64),
            r(g, B64, 64)
        )),
    ]
}

/// Near misses of a real value, as they show up in docs and configs: a placeholder of the
/// right shape, the prefix with a descriptive placeholder, and the body without its prefix.
fn negatives(pos: &str) -> Vec<String> {
    let cut = pos
        .char_indices()
        .find(|(i, c)| *i >= 2 && (c.is_ascii_digit() || *i >= 4) && !matches!(c, '_' | '-' | '.'))
        .map_or(4, |(i, _)| i);
    let (prefix, body) = pos.split_at(cut.min(pos.len()));
    let mut v = vec![
        format!("{prefix}{}", "x".repeat(body.len())),
        format!("{prefix}your_token_here"),
    ];
    // The body alone is a near miss only when the prefix is what makes the format (not
    // for URLs or digit-led tokens, whose body is still the whole credential).
    if !prefix.starts_with("http") && !prefix.bytes().any(|b| b.is_ascii_digit()) {
        v.push(body.to_string());
    }
    v
}

struct GitleaksRule {
    id: String,
    re: regex::Regex,
    entropy: f64,
}

fn gitleaks(path: &str) -> Option<Vec<GitleaksRule>> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: toml::Value = toml::from_str(&text).ok()?;
    let mut out = Vec::new();
    for rule in doc.get("rules")?.as_array()? {
        let (Some(id), Some(re)) = (
            rule.get("id").and_then(|v| v.as_str()),
            rule.get("regex").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let Ok(re) = regex::RegexBuilder::new(re).size_limit(64 << 20).build() else {
            continue;
        };
        let entropy = rule
            .get("entropy")
            .and_then(|v| v.as_float())
            .unwrap_or(0.0);
        out.push(GitleaksRule {
            id: id.to_string(),
            re,
            entropy,
        });
    }
    Some(out)
}

fn gitleaks_hits(rules: &[GitleaksRule], text: &str) -> bool {
    rules.iter().any(|r| {
        r.re.captures_iter(text).any(|c| {
            let m = c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str());
            r.id != "generic-api-key" && checks::entropy(m) >= r.entropy
        })
    })
}

fn ours(det: &Detectors, text: &str) -> bool {
    let mut v = Vec::new();
    det.find(text, Context::default(), &mut v);
    v.iter().any(|f| {
        matches!(
            f.kind,
            Kind::Secret | Kind::Jwt | Kind::PrivateKey | Kind::Bearer
        )
    })
}

pub fn run(gitleaks_path: &str, det: &Detectors) {
    let mut g = StdRng::seed_from_u64(0x5ec2e7);
    let gl = gitleaks(gitleaks_path);
    if gl.is_none() {
        println!("gitleaks: {gitleaks_path} not found, gitleaks column skipped");
    }
    println!(
        "\n## secrets: 40 positives and up to 120 near-miss negatives per format, in context `token: <value>`"
    );
    println!(
        "{:<26} {:>8} {:>8} {:>10} {:>10}",
        "format", "R ours", "P ours", "R gitleaks", "P gitleaks"
    );
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    let (mut gtp, mut gfp, mut gfn) = (0u64, 0u64, 0u64);
    for f in formats() {
        let (mut t, mut fpos, mut fneg) = (0u64, 0u64, 0u64);
        let (mut gt, mut gfpos, mut gfneg) = (0u64, 0u64, 0u64);
        for _ in 0..40 {
            let pos = (f.make)(&mut g);
            let text = format!("token: {pos}");
            if ours(det, &text) {
                t += 1
            } else {
                fneg += 1;
                if std::env::var_os("MEASURE_VERBOSE").is_some() {
                    println!("  miss {}: {pos}", f.name);
                }
            }
            if let Some(rules) = &gl {
                if gitleaks_hits(rules, &text) {
                    gt += 1
                } else {
                    gfneg += 1
                }
            }
            for neg in negatives(&pos) {
                let text = format!("value {neg} seen");
                if ours(det, &text) {
                    fpos += 1;
                    if std::env::var_os("MEASURE_VERBOSE").is_some() {
                        println!("  false {}: {neg}", f.name);
                    }
                }
                if let Some(rules) = &gl
                    && gitleaks_hits(rules, &text)
                {
                    gfpos += 1;
                }
            }
        }
        let p = |tp: u64, fp: u64| {
            if tp + fp == 0 {
                1.0
            } else {
                tp as f64 / (tp + fp) as f64
            }
        };
        let rc = |tp: u64, fn_: u64| tp as f64 / (tp + fn_).max(1) as f64;
        if gl.is_some() {
            println!(
                "{:<26} {:>8.3} {:>8.3} {:>10.3} {:>10.3}",
                f.name,
                rc(t, fneg),
                p(t, fpos),
                rc(gt, gfneg),
                p(gt, gfpos)
            );
        } else {
            println!("{:<26} {:>8.3} {:>8.3}", f.name, rc(t, fneg), p(t, fpos));
        }
        tp += t;
        fp += fpos;
        fn_ += fneg;
        gtp += gt;
        gfp += gfpos;
        gfn += gfneg;
    }
    let p = |tp: u64, fp: u64| {
        if tp + fp == 0 {
            1.0
        } else {
            tp as f64 / (tp + fp) as f64
        }
    };
    let rc = |tp: u64, fn_: u64| tp as f64 / (tp + fn_).max(1) as f64;
    println!(
        "{:<26} {:>8.3} {:>8.3} {:>10.3} {:>10.3}",
        "all",
        rc(tp, fn_),
        p(tp, fp),
        rc(gtp, gfn),
        p(gtp, gfp)
    );
}
