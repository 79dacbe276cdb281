//! Payload detectors: match each normalized request input against the payload rules.

pub mod dotdot;
pub mod extract;
pub mod ldap;
pub mod paths;
pub mod prefilter;
pub mod shortcmd;
pub mod sqli;
pub mod ssrf;
pub mod xss;

use regex::bytes::RegexSet;

use crate::rules::{Rule, RuleKind, View};
use extract::Part;

/// Names of the builtin payload matchers a rule may use as `matcher`.
pub const BUILTIN_MATCHERS: &[&str] = &[
    "sqli",
    "xss_tags",
    "ssrf_internal",
    "rfi_url",
    "java_base64",
    "nosql_operator",
    "crlf_protocol",
    "ldap_filter",
    "absolute_system_path",
    "short_command",
    "dot_dot_separator",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Builtin {
    Sqli,
    XssTags,
    SsrfInternal,
    RfiUrl,
    JavaBase64,
    NosqlOperator,
    CrlfProtocol,
    LdapFilter,
    AbsoluteSystemPath,
    ShortCommand,
    DotDotSeparator,
}

impl Builtin {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sqli" => Self::Sqli,
            "xss_tags" => Self::XssTags,
            "ssrf_internal" => Self::SsrfInternal,
            "rfi_url" => Self::RfiUrl,
            "java_base64" => Self::JavaBase64,
            "nosql_operator" => Self::NosqlOperator,
            "crlf_protocol" => Self::CrlfProtocol,
            "ldap_filter" => Self::LdapFilter,
            "absolute_system_path" => Self::AbsoluteSystemPath,
            "short_command" => Self::ShortCommand,
            "dot_dot_separator" => Self::DotDotSeparator,
            _ => return None,
        })
    }
}

/// A payload rule hit on one normalized input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadHit {
    /// Index of the rule in the ruleset.
    pub rule: usize,
    /// Why it matched (builtin reason or `pattern`).
    pub reason: &'static str,
}

/// Compiled payload rules.
#[derive(Debug)]
pub struct PayloadEngine {
    set: PatternSet,
    shell_set: PatternSet,
    builtins: Vec<(usize, Builtin)>,
}

/// A compiled pattern set and, for inert inputs ([`prefilter::is_inert`]), the subset of
/// its patterns that can match them at all.
#[derive(Debug)]
struct PatternSet {
    all: RegexSet,
    all_rule: Vec<usize>,
    inert: RegexSet,
    inert_rule: Vec<usize>,
}

impl PatternSet {
    fn new(patterns: &[(&str, usize)]) -> Result<Self, regex::Error> {
        let build = |p: Vec<&str>| {
            regex::bytes::RegexSetBuilder::new(p)
                .unicode(false)
                .size_limit(64 << 20)
                .dfa_size_limit(32 << 20)
                .build()
        };
        let inert: Vec<&(&str, usize)> = patterns
            .iter()
            .filter(|(p, _)| prefilter::can_match_over_inert(p))
            .collect();
        Ok(Self {
            all: build(patterns.iter().map(|(p, _)| *p).collect())?,
            all_rule: patterns.iter().map(|(_, r)| *r).collect(),
            inert: build(inert.iter().map(|(p, _)| *p).collect())?,
            inert_rule: inert.iter().map(|(_, r)| *r).collect(),
        })
    }

    /// Calls `f` with the rule of every matching pattern.
    fn each_match(&self, text: &[u8], inert: bool, mut f: impl FnMut(usize)) {
        let (set, rules) = if inert {
            (&self.inert, &self.inert_rule)
        } else {
            (&self.all, &self.all_rule)
        };
        // Most inputs match nothing: a plain (non-overlapping) search answers that
        // faster than the overlapping one that names every matching pattern.
        if set.is_empty() || !set.is_match(text) {
            return;
        }
        for idx in set.matches(text).iter() {
            if let Some(r) = rules.get(idx) {
                f(*r);
            }
        }
    }
}

/// Java gadget and class names looked for inside base64-looking tokens (one
/// case-insensitive alternation: a single pass over the decoded bytes).
static JAVA_GADGETS: std::sync::LazyLock<Option<regex::bytes::Regex>> = std::sync::LazyLock::new(
    || {
        regex::bytes::Regex::new(
        "(?i-u)processbuilder|runtime|invokertransformer|instantiatetransformer|chainedtransformer|\
         constanttransformer|clonetransformer|forclosure|whileclosure|templatesimpl|\
         annotationinvocationhandler|java\\.lang|javax\\.management|com\\.sun\\.org|org\\.apache\\.commons|\
         ysoserial|rmi://|ldap://|jndi:|clonefactory|instantiatefactory|java\\.util|hashmap|\
         badattributevalueexpexception|serializationfactory",
    )
    .ok()
    },
);

const MONGO_OPERATORS: &[&str] = &[
    "$ne",
    "$eq",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$regex",
    "$where",
    "$exists",
    "$expr",
    "$function",
    "$accumulator",
    "$or",
    "$and",
    "$not",
    "$nor",
    "$elemmatch",
    "$lookup",
    "$type",
    "$size",
    "$all",
    "$mod",
    "$text",
    "$jsonschema",
];

fn nosql(s: &str) -> Option<&'static str> {
    // `user[$ne]=`, `{"$gt": ""}`, `$where`, and operator keys in JSON bodies.
    let mut rest = s;
    while let Some(p) = rest.find('$') {
        let after = &rest[p..];
        let end = after[1..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(after.len(), |q| q + 1);
        let op = &after[..end];
        let at_key_start = p == 0
            || matches!(
                rest.as_bytes()[p - 1],
                b'[' | b'"' | b'\'' | b'{' | b' ' | b','
            );
        if at_key_start && MONGO_OPERATORS.contains(&op) {
            return Some("query operator");
        }
        rest = &after[end.max(1)..];
    }
    None
}

/// Base64 symbol values (standard and URL-safe alphabets); 0xff for other bytes.
const BASE64_LUT: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0u8;
    while i < 26 {
        t[(b'A' + i) as usize] = i;
        t[(b'a' + i) as usize] = i + 26;
        i += 1;
    }
    let mut d = 0u8;
    while d < 10 {
        t[(b'0' + d) as usize] = d + 52;
        d += 1;
    }
    t[b'+' as usize] = 62;
    t[b'-' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b'_' as usize] = 63;
    t
};

/// IMAP commands (RFC 9051), which follow a tag: `A1 LOGIN u p`.
const IMAP_VERBS: &[&str] = &[
    "login",
    "authenticate",
    "select",
    "examine",
    "create",
    "delete",
    "rename",
    "subscribe",
    "lsub",
    "list",
    "status",
    "append",
    "check",
    "close",
    "expunge",
    "search",
    "fetch",
    "store",
    "copy",
    "move",
    "uid",
    "logout",
    "capability",
    "noop",
    "starttls",
];

/// SASL mechanisms that clients send (RFC 4422 registry and common extensions), in lower
/// case: the `AUTH <mechanism>` forms without an initial response accept these only.
const SASL_MECHANISMS: &[&str] = &[
    "plain",
    "login",
    "cram-md5",
    "xoauth2",
    "oauthbearer",
    "digest-md5",
    "ntlm",
    "gssapi",
    "scram-sha-1",
    "scram-sha-256",
];

/// Whether `w` is a SASL mechanism name as a client writes it: a known mechanism in any
/// case, an `X-` extension, or a name in the registry's form (RFC 4422 §3.1: upper-case
/// letters, digits, `-` and `_`, at most 20 characters). A lower-case word is prose
/// (`Auth token eyJ...`, `auth key Xk9...`), not an unknown mechanism.
fn is_sasl_name(w: &str) -> bool {
    let lower = w.to_ascii_lowercase();
    SASL_MECHANISMS.contains(&lower.as_str())
        || ((1..=20).contains(&w.len())
            && w.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
            && (lower.starts_with("x-")
                || (w.bytes().any(|c| c.is_ascii_uppercase())
                    && !w.bytes().any(|c| c.is_ascii_lowercase()))))
}

/// Whether `w` is a SASL initial response (RFC 4954 §4): base64 with its padding, at
/// least three groups, mixing upper and lower case with digits, `+`, `/` or padding as
/// encoded bytes do (prose words and codes such as `abcd1234` do not).
fn is_sasl_response(w: &str) -> bool {
    let body = w.trim_end_matches('=');
    let b = body.as_bytes();
    w.len() >= 12
        && w.len().is_multiple_of(4)
        && w.len() - body.len() <= 2
        && b.iter()
            .all(|c| matches!(*c, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/'))
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && (body.len() < w.len()
            || b.iter()
                .any(|c| c.is_ascii_digit() || matches!(c, b'+' | b'/')))
}

/// SMTP and POP3 commands without an argument that a client may also send after an
/// IMAP-style tag (`A1 QUIT`, `a2 RSET`); the argument-less IMAP commands (`a2 NOOP`,
/// `A3 LOGOUT`) are in [`IMAP_VERBS`]. The tag carries a digit, so `Help quit` is not one.
const TAGGED_BARE_VERBS: &[&str] = &["quit", "rset"];

fn is_num(w: &str) -> bool {
    !w.is_empty() && w.len() <= 10 && w.bytes().all(|c| c.is_ascii_digit())
}

/// Whether one line is a mail or file-transfer protocol command with the arguments that
/// command takes (SMTP RFC 5321, POP3 RFC 1939, IMAP RFC 9051, FTP RFC 959). The
/// argument grammar is what separates `RETR 1` from a line of prose such as `Top 3` or
/// `Data attached`.
fn protocol_line(line: &str) -> bool {
    let words: Vec<&str> = line.split_ascii_whitespace().take(8).collect();
    let Some((verb, args)) = words.split_first() else {
        return false;
    };
    let verb = verb.to_ascii_lowercase();
    let n = args.len();
    let domain = |w: &str| {
        w.contains('.')
            && w.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-[]:".contains(&c))
    };
    let single = match verb.as_str() {
        "data" | "quit" | "rset" | "noop" | "stat" | "capa" | "starttls" | "pasv" | "rein" => {
            n == 0
        }
        "retr" | "dele" => n == 1 && is_num(args[0]),
        "list" | "uidl" => n == 1 && is_num(args[0]),
        "top" => n == 2 && is_num(args[0]) && is_num(args[1]),
        "helo" | "ehlo" => n == 1 && domain(args[0]),
        "mail" | "rcpt" => args.first().is_some_and(|a| {
            let a = a.to_ascii_lowercase();
            a.starts_with("from:") || a.starts_with("to:")
        }),
        "apop" => n == 2 && args[1].len() == 32 && args[1].bytes().all(|c| c.is_ascii_hexdigit()),
        // `AUTH <mechanism> <initial response>`: a mechanism as a client writes it, or any
        // name after the verb in the upper case that clients send (`AUTH corerulest ...`).
        "auth" if n == 2 && is_sasl_response(args[1]) => {
            is_sasl_name(args[0])
                || (words[0] == "AUTH"
                    && args[0]
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_')))
        }
        "auth" => {
            (1..=2).contains(&n) && SASL_MECHANISMS.contains(&args[0].to_ascii_lowercase().as_str())
        }
        // `USER name` and `PASS word` read like prose ("User feedback"): not used.
        "port" => n == 1 && args[0].split(',').count() == 6 && args[0].split(',').all(is_num),
        _ => false,
    };
    if single {
        return true;
    }
    // IMAP: `tag command args`, the tag an atom with a digit, or args in IMAP syntax.
    let Some((cmd, rest)) = args.split_first() else {
        return false;
    };
    let imap_syntax = rest.iter().any(|w| {
        w.starts_with(['(', '"', '{', '\\'])
            || (w.contains(':')
                && w.bytes()
                    .all(|c| c.is_ascii_digit() || c == b':' || c == b'*'))
    });
    let tag_ok = verb.len() <= 8
        && verb.bytes().all(|c| c.is_ascii_alphanumeric())
        && ((verb.bytes().any(|c| c.is_ascii_digit())
            && verb.bytes().any(|c| c.is_ascii_alphabetic()))
            || imap_syntax);
    let bare = rest.is_empty()
        && TAGGED_BARE_VERBS
            .iter()
            .any(|v| cmd.eq_ignore_ascii_case(v));
    tag_ok
        && (bare
            || (IMAP_VERBS.iter().any(|v| cmd.eq_ignore_ascii_case(v))
                && (imap_syntax || rest.len() <= 3)))
}

/// A line, after a line break inside the input, that is a protocol command with its
/// arguments (`\r\nRETR 1`, `\r\nA1 LOGIN u p`, `\r\nDATA`): CRLF injection into a mail
/// or file-transfer conversation.
fn crlf_protocol(raw: &str) -> Option<&'static str> {
    let b = raw.as_bytes();
    if !b.iter().any(|c| matches!(c, b'\n' | b'\r' | b'%' | b'&')) {
        return None;
    }
    // `%0d`/`%0a`, or a character reference such as `&#13;` or `&#xa;` (XML bodies).
    let encoded_break = b
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && matches!(w[2], b'a' | b'A' | b'd' | b'D'))
        || raw.contains("&#");
    if !encoded_break && !b.iter().any(|c| matches!(c, b'\n' | b'\r')) {
        return None;
    }
    let decoded = crate::normalize::decode(raw);
    // The first line is the value the application expected; the rest were injected.
    decoded
        .split(['\r', '\n'])
        .skip(1)
        .any(protocol_line)
        .then_some("protocol command after a line break")
}

#[inline]
fn base64_val(c: u8) -> Option<u8> {
    let v = BASE64_LUT[usize::from(c)];
    (v != 0xff).then_some(v)
}

fn b64_decode_lossy(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    b64_decode_into(s, 0, &mut out);
    out
}

/// Decodes base64 symbols into `out` (cleared first) as if `skip` zero symbols came
/// before them (re-aligning a fragment cut at any 6-bit boundary); stops at the first
/// non-base64 byte.
fn b64_decode_into(s: &[u8], skip: u32, out: &mut Vec<u8>) {
    out.clear();
    let mut acc: u32 = 0;
    let mut bits = 6 * skip;
    for c in s {
        let Some(v) = base64_val(*c) else { break };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
}

/// The magic number and version that open a Java serialization stream
/// (`STREAM_MAGIC` 0xACED, `STREAM_VERSION` 5; Java Object Serialization Specification §6.4.2).
const JAVA_STREAM_HEADER: [u8; 4] = [0xac, 0xed, 0x00, 0x05];

/// Shortest base64 run decoded for the Java checks: six symbols hold the stream header.
const MIN_JAVA_BASE64: usize = 6;

/// Decodes base64-looking runs (case-sensitive raw input) at every alignment and looks for
/// a Java serialization stream header or Java gadget names, as a serialized-object or
/// expression-language payload would carry.
fn java_base64(raw: &str) -> Option<&'static str> {
    let gadgets = JAVA_GADGETS.as_ref()?;
    // Every alignment of every run, NUL-separated (no gadget name holds a NUL, so no
    // match spans two pieces), searched in one pass.
    let mut all = Vec::new();
    let mut buf = Vec::new();
    for tok in raw.split(|c: char| base64_val(c as u8).is_none() || !c.is_ascii()) {
        // base64 of four or more bytes of text or of a serialization header mixes upper-
        // and lower-case symbols; single-case words (`products`, `search`) are skipped.
        if tok.len() < MIN_JAVA_BASE64
            || tok.len() > 4096
            || !tok.bytes().any(|c| c.is_ascii_uppercase())
            || !tok.bytes().any(|c| c.is_ascii_lowercase())
        {
            continue;
        }
        // A fragment cut out of a longer base64 text starts at any 6-bit boundary:
        // decode it as if 0 to 3 filler symbols came first.
        for pad in 0..4 {
            b64_decode_into(tok.as_bytes(), pad, &mut buf);
            all.extend_from_slice(&buf);
            all.push(0);
        }
    }
    if all
        .windows(JAVA_STREAM_HEADER.len())
        .any(|w| w == JAVA_STREAM_HEADER)
    {
        return Some("base64 java serialization stream");
    }
    (!all.is_empty() && gadgets.is_match(&all)).then_some("base64 java gadget")
}

/// Shortest base64 input that is decoded and rescanned.
pub const MIN_BASE64_CHARS: usize = 12;

/// The text inside a base64 (standard or URL-safe) value, if it decodes to printable text.
fn base64_text(raw: &str) -> Option<String> {
    let body = raw.trim_end_matches('=');
    if body.len() < MIN_BASE64_CHARS
        || body.len() > crate::normalize::MAX_INPUT_BYTES
        || !body.bytes().all(|b| base64_val(b).is_some())
        || !body.bytes().any(|b| b.is_ascii_uppercase())
        || !body.bytes().any(|b| b.is_ascii_lowercase())
    {
        return None;
    }
    let dec = b64_decode_lossy(body.as_bytes());
    let printable = dec
        .iter()
        .filter(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        .count();
    (printable * 10 >= dec.len() * 9 && !dec.is_empty())
        .then(|| String::from_utf8_lossy(&dec).into_owned())
}

/// [`base64_text`] of a value whose base64 is itself URL-encoded or written with
/// `\\uXXXX`/`\\xNN` escapes (`\\u0058\\u0079QkTk...`, `d2hp...Cg%3D%3D`); decoded only when the
/// raw text is made of base64 symbols and escapes alone.
fn escaped_base64_text(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let escaped = raw.bytes().any(|b| matches!(b, b'%' | b'\\'));
    if !escaped
        || raw.len() < MIN_BASE64_CHARS
        || !raw
            .bytes()
            .all(|b| base64_val(b).is_some() || matches!(b, b'%' | b'\\' | b'='))
    {
        return None;
    }
    base64_text(crate::normalize::decode(raw).trim())
}

/// Longest parameter name [`encoded_pair_value`] accepts.
const MAX_PAIR_NAME: usize = 64;

/// The value of a `name=value` pair whose `=` was percent-encoded in the raw input
/// (`pay%3D%26%26%28e%3D%3D%3D`): the extractor could not split it, but an application
/// that decodes the input twice, or a proxy that decodes it before the application
/// splits it, sees the parameter `pay` with the value `&&(e===`. `None` when the raw
/// input has a literal `=` (the extractor split it already), the name is not an
/// identifier, or the value is empty.
fn encoded_pair_value<'a>(raw: &str, norm: &'a str) -> Option<&'a str> {
    if raw.contains('=') {
        return None;
    }
    let (name, value) = norm.split_once('=')?;
    let b = name.as_bytes();
    let ident = !b.is_empty()
        && b.len() <= MAX_PAIR_NAME
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'[' | b']' | b'.'));
    (ident && !value.trim().is_empty()).then_some(value)
}

/// Parameter names through which published exploits of old PHP applications (Mambo and
/// Joomla components, Geeklog, Gallery, phpBB, AppServ) include a file the request names:
/// the application builds `include($param . "/file.php")`, so a remote URL there runs the
/// attacker's code. Compared without case.
const RFI_PARAMS: &[&str] = &[
    "_conf[path]",
    "_server[document_root]",
    "appserv_root",
    "config[root_dir]",
    "gallery_basedir",
    "mosconfig_absolute_path",
    "path[docroot]",
    "phpbb_root_path",
];

fn is_rfi_param(field: &str) -> bool {
    // PHP reads `.`, space and `+` (a space in a query) in a parameter name as `_`, and
    // drops leading spaces: `mosConfig.absolute.path` reaches `$mosConfig_absolute_path`.
    let is = |f: &str| {
        let f = f.trim_start_matches([' ', '+']);
        RFI_PARAMS.iter().any(|p| {
            p.len() == f.len()
                && p.bytes().zip(f.bytes()).all(|(a, b)| {
                    let b = if matches!(b, b'.' | b' ' | b'+') {
                        b'_'
                    } else {
                        b
                    };
                    a == b.to_ascii_lowercase()
                })
        })
    };
    // A name arrives as sent: `_CONF%5Bpath%5D` is `_CONF[path]`.
    is(field) || field.contains('%') && is(&crate::normalize::decode_cow(field))
}

/// A URL that fetches from another host (`http`, `https`, `ftp`, `ftps`), scheme
/// compared without case.
fn remote_url(value: &str) -> bool {
    let t = value.trim_start();
    ["http://", "https://", "ftp://", "ftps://"]
        .iter()
        .any(|s| t.get(..s.len()).is_some_and(|h| h.eq_ignore_ascii_case(s)) && t.len() > s.len())
}

impl PayloadEngine {
    /// Compiles the payload rules of a (validated) ruleset.
    pub fn new(rules: &[Rule]) -> Result<Self, regex::Error> {
        let mut patterns = Vec::new();
        let mut shell_patterns = Vec::new();
        let mut builtins = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if r.kind != RuleKind::Payload {
                continue;
            }
            if let Some(b) = r.matcher.as_deref().and_then(Builtin::from_name) {
                builtins.push((i, b));
            }
            for p in &r.patterns {
                if r.view == View::Shell {
                    shell_patterns.push((p.as_str(), i));
                } else {
                    patterns.push((p.as_str(), i));
                }
            }
        }
        Ok(Self {
            set: PatternSet::new(&patterns)?,
            shell_set: PatternSet::new(&shell_patterns)?,
            builtins,
        })
    }

    /// Scans one input: `raw` as received, `norm` its normalized form. Hits are appended
    /// (at most one per rule). A base64-encoded input that decodes to text is scanned
    /// decoded as well.
    pub fn scan(&self, raw: &str, norm: &str, part: Part, hits: &mut Vec<PayloadHit>) {
        self.scan_decoded(raw, &crate::normalize::decode_cow(raw), norm, part, hits);
    }

    /// [`PayloadEngine::scan`] with the input's decoded form (`normalize::decode`, not
    /// folded), which the caller has at hand: checks that need line breaks and case read
    /// it instead of decoding again.
    pub fn scan_decoded(
        &self,
        raw: &str,
        decoded: &str,
        norm: &str,
        part: Part,
        hits: &mut Vec<PayloadHit>,
    ) {
        self.scan_view(raw, decoded, norm, part, hits);
        if let Some(text) = base64_text(raw.trim()).or_else(|| escaped_base64_text(raw)) {
            let d = crate::normalize::decode(&text);
            let n = crate::normalize::fold(&d);
            self.scan_view(&text, &d, &n, part, hits);
        }
    }

    /// Hits that depend on the parameter name a value came under, which the detector's
    /// per-batch cache of scans (keyed by value) must not hold: a remote URL in a
    /// parameter through which old PHP applications include a file ([`RFI_PARAMS`]).
    /// `decoded` is the value's decoded form (`normalize::decode`).
    pub fn scan_field(&self, field: &str, decoded: &str, part: Part, hits: &mut Vec<PayloadHit>) {
        if part != Part::Value || !is_rfi_param(field) || !remote_url(decoded) {
            return;
        }
        for (rule, b) in &self.builtins {
            if *b == Builtin::RfiUrl && !hits.iter().any(|h| h.rule == *rule) {
                hits.push(PayloadHit {
                    rule: *rule,
                    reason: "remote URL in a parameter that PHP applications include",
                });
            }
        }
    }

    fn scan_view(
        &self,
        raw: &str,
        decoded: &str,
        norm: &str,
        part: Part,
        hits: &mut Vec<PayloadHit>,
    ) {
        if norm.is_empty() {
            return;
        }
        let start = hits.len();
        let mut add = |rule: usize, reason: &'static str| {
            if !hits[start..].iter().any(|h| h.rule == rule) {
                hits.push(PayloadHit { rule, reason });
            }
        };
        // A single word or number carries no attack; base64 runs are checked below.
        let plain = norm.bytes().all(|b| b.is_ascii_alphanumeric() || b >= 0x80);
        // Inert text (letters, digits, space, `-_.,/`) only runs the patterns that can
        // match such text at all, and skips the markup and script-URL checks.
        let inert = !plain && prefilter::is_inert(norm);
        if !plain {
            // In a markdown table a `|` is a cell border: the patterns see a space.
            let untabled = shortcmd::markdown_table(decoded).then(|| norm.replace('|', " "));
            let norm = untabled.as_deref().unwrap_or(norm);
            self.set
                .each_match(norm.as_bytes(), inert, |r| add(r, "pattern"));
            let shell = if inert {
                None
            } else {
                crate::normalize::shell_view(norm)
            };
            self.shell_set
                .each_match(shell.as_deref().unwrap_or(norm).as_bytes(), inert, |r| {
                    add(r, "pattern (shell view)")
                });
        }
        let mut ssrf_target = None;
        let mut ssrf_done = false;
        let mut ssrf_of = |norm: &str| {
            if !ssrf_done {
                ssrf_target = ssrf::detect(norm);
                ssrf_done = true;
            }
            ssrf_target
        };
        for (rule, b) in &self.builtins {
            let reason = match b {
                Builtin::Sqli if !plain => sqli::detect(norm)
                    .or_else(|| encoded_pair_value(raw, norm).and_then(sqli::detect)),
                Builtin::XssTags if !plain && !inert => xss::detect_value(raw, norm),
                Builtin::SsrfInternal if !plain => match ssrf_of(norm) {
                    Some(ssrf::Target::Metadata) => Some("cloud metadata address"),
                    Some(ssrf::Target::Loopback) => Some("loopback address"),
                    Some(ssrf::Target::Private) => Some("private network address"),
                    Some(ssrf::Target::Scheme) => Some("internal-only URL scheme"),
                    _ => None,
                },
                Builtin::RfiUrl if !plain && part == Part::Value => match ssrf_of(norm) {
                    Some(ssrf::Target::PublicIp) => Some("URL with an IP-literal host"),
                    _ => None,
                },
                // Serialized-object base64 has no spaces; text around it is split out
                // by the extractor (cookies, parameters, XML text nodes).
                Builtin::JavaBase64 if !raw.contains(' ') => java_base64(raw),
                Builtin::NosqlOperator if norm.contains('$') => nosql(norm),
                Builtin::CrlfProtocol => crlf_protocol(raw),
                Builtin::LdapFilter if !plain && norm.contains(')') => ldap::detect(norm),
                // A path is one token: a value that starts at a root or a drive letter.
                Builtin::AbsoluteSystemPath
                    if !plain
                        && part == Part::Value
                        && (norm.starts_with('/') || norm.as_bytes().get(1) == Some(&b':')) =>
                {
                    paths::detect(norm)
                }
                // Read before white space is folded (a line break separates commands)
                // and in its case (`ID` is a word, `id` a command).
                Builtin::DotDotSeparator
                    if !plain && (norm.contains("..") || norm.contains(". .")) =>
                {
                    dotdot::detect(norm)
                }
                // (`%0Aid` folds to the plain word `id`: not gated on `plain`.)
                Builtin::ShortCommand
                    if part == Part::Value && shortcmd::may_chain(raw, norm, plain || inert) =>
                {
                    shortcmd::detect(decoded)
                }
                _ => None,
            };
            if let Some(r) = reason {
                add(*rule, r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_pair_values() {
        assert_eq!(
            encoded_pair_value("pay%3D%26%26%28e", "pay=&&(e"),
            Some("&&(e")
        );
        assert_eq!(encoded_pair_value("a%5B0%5D%3Dx", "a[0]=x"), Some("x"));
        // A literal `=`: the extractor split it already.
        assert_eq!(encoded_pair_value("pay=x", "pay=x"), None);
        // Not a parameter name, or nothing after the `=`.
        assert_eq!(encoded_pair_value("1%2B1%3D2", "1+1=2"), None);
        assert_eq!(encoded_pair_value("a b%3Dc", "a b=c"), None);
        assert_eq!(encoded_pair_value("pay%3D", "pay="), None);
    }

    #[test]
    fn nosql_operators() {
        assert!(nosql("user[$ne]").is_some());
        assert!(nosql("$where").is_some());
        assert!(nosql("{\"$gt\": \"\"}").is_some());
        assert!(nosql("price $5").is_none());
        assert!(nosql("costs us$ne").is_none());
    }

    #[test]
    fn protocol_commands_after_line_breaks() {
        for s in [
            "x\r\nRETR 123",
            "\r\nDATA",
            "%0d%0aQUIT",
            "\r\nA1 LOGIN bob secret",
            "\r\nd store 2  FLAGS (\\Deleted)",
            "\r\nTOP 1 2",
            "\r\na002 copy 2:4 MEETING\n",
            "\r\nEHLO test.com",
            "&#13;&#10;DATA",
            "&#xd;&#xa;RETR 1",
            "\r\nAUTH PLAIN AGJvYgBzZWNyZXQ=",
            "\r\nAUTH x-custom dGhpc2lzIWF0ZXN0cGFzcw==",
            "&#13;&#10;A1 QUIT",
            "\r\nb7 logout",
        ] {
            assert!(crlf_protocol(s).is_some(), "missed {s:?}");
        }
        for s in [
            "RETR 123",
            "Hello,\r\nthe data is attached, see the list below.\r\nThanks",
            "line one\nTop 10 tips for summer, really.",
            "Thanks\r\nData attached\r\nTop 3\r\nList of items:\r\nStatus?\r\nHelp",
            "Hi\r\nI list the items below\r\nAlice",
            "Status?\r\n10 select node.js join\r\nZoe",
            "1. Set the table\n2. Order by Friday",
            "# shoes\n\n* It's 5'10\" tall",
            "Hi\r\nAuth failed for user bob\r\nThanks",
            "Hi\r\nauth token abcd1234\r\nbye",
            "Hi\r\nauth code 12345678",
            "Hi\r\nAuth with PasswordReset",
            "Round two\r\nSo I quit\r\nThen noop",
            "Team\r\nA1 quit early",
        ] {
            assert!(crlf_protocol(s).is_none(), "false positive on {s:?}");
        }
    }

    #[test]
    fn escaped_base64_is_decoded() {
        // base64("while(true);") with its padding URL-encoded, and with JS escapes.
        assert_eq!(
            escaped_base64_text("d2hpbGUodHJ1ZSk7Cg%3D%3D").as_deref(),
            Some("while(true);\n")
        );
        assert_eq!(
            escaped_base64_text("\\u0064\\u0032hpbGUodHJ1ZSk7Cg==").as_deref(),
            Some("while(true);\n")
        );
        assert_eq!(escaped_base64_text("100%25 cotton, 2 pack"), None);
        assert_eq!(escaped_base64_text("d2hpbGUodHJ1ZSk7Cg=="), None);
    }

    #[test]
    fn base64_gadgets() {
        // base64("java.lang.ProcessBuilder") in three alignments.
        assert!(java_base64("amF2YS5sYW5nLlByb2Nlc3NCdWlsZGVy").is_some());
        assert!(java_base64("xamF2YS5sYW5nLlByb2Nlc3NCdWlsZGVy").is_some());
        assert!(java_base64("dXNlcm5hbWU9Ym9iJnBhc3M9MTIz").is_none());
        assert!(java_base64("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0").is_none());
        // The serialization stream header 0xACED0005 at each byte alignment, cut short.
        for s in [
            "rO0ABQ", "rO0ABXNy", "KztAAU", "xKztAAUx", "Cs7QAF", "aCs7QAFz",
        ] {
            assert!(java_base64(s).is_some(), "missed {s}");
        }
        // base64("prototypeserializationfactory"), a commons-collections gadget.
        assert!(java_base64("cHJvdG90eXBlc2VyaWFsaXphdGlvbmZhY3Rvcnk").is_some());
        for s in ["Abcdef", "rO0ABC", "Session1", "KztAAA", "Password1"] {
            assert!(java_base64(s).is_none(), "false positive on {s}");
        }
    }
}
