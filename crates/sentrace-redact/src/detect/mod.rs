//! Typed detectors for personal data and credentials in free text.
//!
//! [`Detectors`] is compiled once. [`Detectors::find`] makes one cheap pass over the bytes
//! of a value (digit count, `@`, dots, colons) and one Aho-Corasick pass over the keywords
//! of every keyword-triggered rule, then runs only the regexes that can match. Every
//! regex candidate is then confirmed by a typed check (Luhn and IIN ranges, mod-97, SSN
//! ranges, a JWT header that decodes, a real IP address, phone-number formats or context).

pub mod checks;
mod pii;
pub mod secrets;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::Regex;

use crate::kind::Kind;

/// One detected value: a byte range of the scanned text, its kind and the rule that found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// Start byte offset (inclusive).
    pub start: usize,
    /// End byte offset (exclusive).
    pub end: usize,
    /// What was found.
    pub kind: Kind,
    /// The rule that found it (`email`, `card`, `github-token`, `kv-password`, ...).
    pub rule: &'static str,
}

/// What the caller knows about the text's context.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context {
    /// The value sits under a key that names a phone number: accept unformatted numbers.
    pub phone_key: bool,
    /// The value sits under an infrastructure key (`server.address`, `host.ip`): IP
    /// addresses there are not client addresses and are kept.
    pub infra_key: bool,
}

/// Why the detector set failed to build (a bug in a built-in pattern).
#[derive(Debug, thiserror::Error)]
#[error("built-in detector {rule} does not compile: {source}")]
pub struct DetectorBuildError {
    /// The rule id.
    pub rule: &'static str,
    /// The regex error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Which non-secret rule a prefilter keyword triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Secret(usize),
    Bearer,
    Basic,
    Jwt,
    Pem,
    KeyValue,
    UrlUserinfo,
    /// A possible marker of a value minimized upstream (`<`, `pse:`, `tok:`).
    Marker,
}

/// Keywords of the key=value rule (a sensitive key name followed by `=` or `:` in text).
const KV_KEYWORDS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "access-key",
    "accesskey",
    "private_key",
    "private-key",
    "credential",
    "session",
    "sid",
    "sessid",
    "authorization",
];

/// The compiled detector set. Cheap to share (`Send + Sync`); build it once.
#[derive(Debug)]
pub struct Detectors {
    prefilter: AhoCorasick,
    triggers: Vec<Trigger>,
    secret_res: Vec<Regex>,
    pii: pii::Pii,
    bearer: Regex,
    basic: Regex,
    jwt: Regex,
    pem: Regex,
    kv: Regex,
    userinfo: Regex,
}

/// Compiles a built-in pattern, ASCII-only (smaller, faster automata) when the pattern
/// allows it, with Unicode classes otherwise.
fn compile(rule: &'static str, re: &str) -> Result<Regex, DetectorBuildError> {
    let build = |unicode: bool| {
        regex::RegexBuilder::new(re)
            .unicode(unicode)
            .size_limit(8 << 20)
            .build()
    };
    build(false)
        .or_else(|_| build(true))
        .map_err(|e| DetectorBuildError {
            rule,
            source: Box::new(e),
        })
}

impl Detectors {
    /// Compiles every built-in detector.
    pub fn new() -> Result<Self, DetectorBuildError> {
        let mut patterns: Vec<&str> = Vec::new();
        let mut triggers = Vec::new();
        let mut secret_res = Vec::new();
        for (i, r) in secrets::RULES.iter().enumerate() {
            secret_res.push(compile(r.id, r.regex)?);
            for k in r.keywords {
                patterns.push(k);
                triggers.push(Trigger::Secret(i));
            }
        }
        for (k, t) in [
            ("bearer", Trigger::Bearer),
            ("basic", Trigger::Basic),
            ("eyj", Trigger::Jwt),
            ("-----begin", Trigger::Pem),
            ("://", Trigger::UrlUserinfo),
        ] {
            patterns.push(k);
            triggers.push(t);
        }
        for k in KV_KEYWORDS {
            patterns.push(k);
            triggers.push(Trigger::KeyValue);
        }
        // Not a detector: noted for the walk, which lists upstream-minimized values by
        // class, so that it needs no pass of its own over clean text.
        for k in ["<", "pse:", "tok:"] {
            patterns.push(k);
            triggers.push(Trigger::Marker);
        }
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|e| DetectorBuildError {
                rule: "prefilter",
                source: Box::new(e),
            })?;
        Ok(Self {
            prefilter,
            triggers,
            secret_res,
            pii: pii::Pii::new()?,
            bearer: compile("bearer", r"(?i:\bbearer)\s+([A-Za-z0-9\-._~+/]{8,}=*)")?,
            basic: compile("basic", r"(?i:\bbasic)\s+([A-Za-z0-9+/]{6,}={0,2})")?,
            jwt: compile(
                "jwt",
                r"\b(eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*)",
            )?,
            pem: compile(
                "private-key",
                r"(?s)(-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\z))",
            )?,
            kv: compile(
                "kv",
                r#"(?i)(?:^|[^A-Za-z0-9])([a-z0-9_\-]*?(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|credentials?|authorization|session[_\-]?id|sessid|sid|jsessionid|phpsessid))["']?\s*(?:=|:|=>)\s*["']?([^\s"'&;,<>{}\[\]()]+)"#,
            )?,
            userinfo: compile(
                "url-password",
                r"[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s/:@]*:([^\s/@]+)@",
            )?,
        })
    }

    /// Appends every sensitive value in `text` to `out`, then sorts `out` by position and
    /// removes overlaps (the earlier, then the longer, match wins).
    pub fn find(&self, text: &str, ctx: Context, out: &mut Vec<Found>) {
        self.find_noting_markers(text, ctx, out);
    }

    /// [`Detectors::find`], and whether `text` may hold a marker of a value minimized
    /// upstream (`<`, `pse:` or `tok:` occurs: a cheap superset, to be confirmed).
    pub(crate) fn find_noting_markers(
        &self,
        text: &str,
        ctx: Context,
        out: &mut Vec<Found>,
    ) -> bool {
        let base = out.len();
        self.pii.find(text, ctx, out);
        let marker = self.find_keyword_rules(text, out);
        resolve_overlaps(out, base);
        marker
    }

    /// Whether any detector fires on `text` (used by tests and the scan).
    pub fn detects(&self, text: &str) -> bool {
        let mut v = Vec::new();
        self.find(text, Context::default(), &mut v);
        !v.is_empty()
    }

    /// Runs the keyword-triggered rules; returns whether a marker keyword occurred.
    fn find_keyword_rules(&self, text: &str, out: &mut Vec<Found>) -> bool {
        // One pass: collect which rules are triggered (a rule is run once, whatever the
        // number of its keywords that occur).
        let mut secret_hit = 0u64;
        let mut other = 0u8;
        for m in self.prefilter.find_overlapping_iter(text) {
            match self.triggers.get(m.pattern().as_usize()) {
                Some(Trigger::Secret(i)) => secret_hit |= 1u64 << (*i & 63),
                Some(t) => other |= 1 << trigger_bit(*t),
                None => {}
            }
        }
        while secret_hit != 0 {
            let i = secret_hit.trailing_zeros() as usize;
            secret_hit &= secret_hit - 1;
            {
                let (Some(re), Some(rule)) = (self.secret_res.get(i), secrets::RULES.get(i)) else {
                    continue;
                };
                // The DFA answers "no match" cheaply; captures need the slower engines.
                if !re.is_match(text) {
                    continue;
                }
                for caps in re.captures_iter(text) {
                    if let Some(g) = caps.get(1)
                        && checks::entropy(g.as_str()) >= f64::from(rule.min_entropy)
                    {
                        out.push(Found {
                            start: g.start(),
                            end: g.end(),
                            kind: Kind::Secret,
                            rule: rule.id,
                        });
                    }
                }
            }
        }
        let has = |t: Trigger| other & (1 << trigger_bit(t)) != 0;
        let marker = has(Trigger::Marker);
        if other & !(1 << trigger_bit(Trigger::Marker)) == 0 {
            return marker;
        }
        if has(Trigger::Pem) {
            push_group(
                &self.pem,
                text,
                Kind::PrivateKey,
                "private-key",
                out,
                |_| true,
            );
        }
        if has(Trigger::Jwt) {
            push_group(&self.jwt, text, Kind::Jwt, "jwt", out, checks::jwt);
        }
        if has(Trigger::Bearer) {
            push_group(&self.bearer, text, Kind::Bearer, "bearer", out, |s| {
                checks::entropy(s) >= 2.5
            });
        }
        if has(Trigger::Basic) {
            push_group(
                &self.basic,
                text,
                Kind::BasicAuth,
                "basic",
                out,
                checks::basic_credential,
            );
        }
        if has(Trigger::UrlUserinfo) {
            push_group(
                &self.userinfo,
                text,
                Kind::Password,
                "url-password",
                out,
                |_| true,
            );
        }
        if has(Trigger::KeyValue) {
            self.find_key_values(text, out);
        }
        marker
    }

    fn find_key_values(&self, text: &str, out: &mut Vec<Found>) {
        if !self.kv.is_match(text) {
            return;
        }
        for caps in self.kv.captures_iter(text) {
            let (Some(key), Some(val)) = (caps.get(1), caps.get(2)) else {
                continue;
            };
            let v = val.as_str();
            if is_placeholder(v) {
                continue;
            }
            let k = key.as_str().to_ascii_lowercase();
            let kind = if k.contains("pass") || k.contains("pwd") {
                Kind::Password
            } else if k.contains("sess") || k.ends_with("sid") {
                Kind::SessionId
            } else {
                Kind::Secret
            };
            out.push(Found {
                start: val.start(),
                end: val.end(),
                kind,
                rule: "key-value",
            });
        }
    }
}

fn trigger_bit(t: Trigger) -> u8 {
    match t {
        Trigger::Secret(_) => 0,
        Trigger::Bearer => 1,
        Trigger::Basic => 2,
        Trigger::Jwt => 3,
        Trigger::Pem => 4,
        Trigger::KeyValue => 5,
        Trigger::UrlUserinfo => 6,
        Trigger::Marker => 7,
    }
}

/// Values that are already masked, templated or empty-ish: not a secret.
fn is_placeholder(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    v.starts_with('<')
        || v.starts_with("pse:")
        || v.starts_with("tok:")
        || v.starts_with('$')
        || v.starts_with('%')
        || v.starts_with(':')
        || v.starts_with('?')
        || v.chars()
            .all(|c| c == '*' || c == 'x' || c == 'X' || c == '.')
        || matches!(
            lower.as_str(),
            "bearer" | "basic" | "null" | "none" | "true" | "false" | "redacted" | "required"
        )
}

fn push_group(
    re: &Regex,
    text: &str,
    kind: Kind,
    rule: &'static str,
    out: &mut Vec<Found>,
    check: impl Fn(&str) -> bool,
) {
    if !re.is_match(text) {
        return;
    }
    for caps in re.captures_iter(text) {
        if let Some(g) = caps.get(1)
            && check(g.as_str())
        {
            out.push(Found {
                start: g.start(),
                end: g.end(),
                kind,
                rule,
            });
        }
    }
}

/// Sorts `out[base..]` by start and drops matches that overlap an earlier kept one; on
/// equal starts the longer match wins.
fn resolve_overlaps(out: &mut Vec<Found>, base: usize) {
    let tail = &mut out[base..];
    if tail.len() < 2 {
        return;
    }
    tail.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept: Vec<Found> = Vec::with_capacity(tail.len());
    for f in tail.iter() {
        match kept.last_mut() {
            Some(last) if f.start < last.end => {
                // Overlap: extend the kept match so that nothing of either leaks.
                if f.end > last.end {
                    last.end = f.end;
                }
            }
            _ => kept.push(*f),
        }
    }
    out.truncate(base);
    out.extend(kept);
}

#[cfg(test)]
mod tests;
