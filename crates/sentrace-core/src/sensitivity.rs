//! Sensitivity classes of attribute values, and the per-span list of minimized places.
//!
//! The minimizer (`sentrace-redact`) records, in every span it touched, which places held
//! a sensitive value and of which [`AttributeClass`]. The record is one reserved span
//! attribute, [`MINIMIZED_ATTRIBUTE`], so it is encoded, hashed, sealed and stored with the
//! span itself. The query service reads it back to mask values by class at read time.
//!
//! # Grammar of the attribute's string value
//!
//! ```text
//! list   = entry *( ";" entry )
//! entry  = place "=" class
//! place  = "name"                       ; the span name
//!        / "status"                     ; the status message
//!        / "*"                          ; anywhere in the span (list overflow)
//!        / "resource:" key              ; a resource attribute
//!        / "scope:" key                 ; an instrumentation-scope attribute
//!        / "span:" key                  ; a span attribute
//!        / "event[" index "]:" key      ; an attribute of event `index`
//!        / "event[" index "].name"      ; the name of event `index`
//!        / "link[" index "]:" key       ; an attribute of link `index`
//! class  = "pii" / "secret" / "financial"
//! key    = *( any character but "%" ";" "=" / "%25" / "%3B" / "%3D" )
//! index  = 1*10DIGIT                    ; position in the span's events or links
//! ```
//!
//! Keys are top-level attribute keys (a value nested in an array or key-value list is
//! recorded under its top-level key). A place may be listed once per class. Example:
//! `span:enduser.id=pii;span:http.request.header.authorization=secret;name=pii`.
//!
//! The writer keeps a list to [`MAX_MINIMIZED_ENTRIES`] entries and
//! [`MAX_MINIMIZED_BYTES`] bytes; what does not fit is recorded as `*=class`, which
//! readers treat as "a value of this class may be anywhere in the span" (fail closed).

use std::borrow::Cow;
use std::fmt;

/// The reserved span attribute holding the list of minimized places (see the module docs).
pub const MINIMIZED_ATTRIBUTE: &str = "sentrace.minimized";

/// The span attribute that carries the hex SHA-256 digest of the redaction policy that
/// minimized the span.
pub const POLICY_DIGEST_ATTRIBUTE: &str = "sentrace.policy.digest";

/// Most entries a writer puts in one list; the rest collapse into `*=class`.
pub const MAX_MINIMIZED_ENTRIES: usize = 64;

/// Most bytes of entries a writer puts in one list; the rest collapse into `*=class`.
pub const MAX_MINIMIZED_BYTES: usize = 4096;

/// Longest key a writer records by name; a longer key is recorded as `*=class`.
pub const MAX_MINIMIZED_KEY_BYTES: usize = 256;

/// Longest list value a reader accepts (twice the writer's bound, plus the wildcards).
pub const MAX_MINIMIZED_PARSE_BYTES: usize = 2 * MAX_MINIMIZED_BYTES + 64;

/// Most entries a reader accepts.
pub const MAX_MINIMIZED_PARSE_ENTRIES: usize = 2 * MAX_MINIMIZED_ENTRIES + 8;

/// The sensitivity class of a value: what reading it in clear requires.
///
/// A small, stable vocabulary. The mapping from detector kinds to classes lives in
/// `sentrace_redact::Kind::class`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeClass {
    /// Personal data: e-mail, phone, SSN, client IP, date of birth, user id, person name,
    /// timestamps a policy names as sensitive.
    Pii,
    /// Credentials: JWTs, bearer and basic credentials, cookies, session ids, passwords,
    /// private keys, API keys and other secrets.
    Secret,
    /// Payment data: card numbers, IBANs.
    Financial,
}

impl AttributeClass {
    /// Every class, in declaration order.
    pub const ALL: [AttributeClass; 3] = [
        AttributeClass::Pii,
        AttributeClass::Secret,
        AttributeClass::Financial,
    ];

    /// The name used in the list, in Cedar resources and in the mask text.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeClass::Pii => "pii",
            AttributeClass::Secret => "secret",
            AttributeClass::Financial => "financial",
        }
    }

    /// The class named `s` (exact, lower case).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The text a masked value of this class is replaced with: `<redacted:pii>`.
    pub fn mask_text(self) -> &'static str {
        match self {
            AttributeClass::Pii => "<redacted:pii>",
            AttributeClass::Secret => "<redacted:secret>",
            AttributeClass::Financial => "<redacted:financial>",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for AttributeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of classes (a bit set; `Copy`, no allocation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClassSet(u8);

impl ClassSet {
    /// The empty set.
    pub const EMPTY: ClassSet = ClassSet(0);

    /// Every class.
    pub fn all() -> Self {
        AttributeClass::ALL
            .into_iter()
            .fold(Self::EMPTY, |s, c| s.with(c))
    }

    /// This set with `c` added.
    #[must_use]
    pub fn with(self, c: AttributeClass) -> Self {
        ClassSet(self.0 | c.bit())
    }

    /// Adds `c`.
    pub fn insert(&mut self, c: AttributeClass) {
        self.0 |= c.bit();
    }

    /// Adds every class of `other`.
    pub fn extend(&mut self, other: ClassSet) {
        self.0 |= other.0;
    }

    /// Whether `c` is in the set.
    pub fn contains(self, c: AttributeClass) -> bool {
        self.0 & c.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The classes in the set, in [`AttributeClass::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = AttributeClass> {
        AttributeClass::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

/// Where in a span a minimized value sits. Keys are top-level attribute keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Place<'a> {
    /// The span name.
    Name,
    /// The span status message.
    Status,
    /// Anywhere in the span (written when the list overflows).
    Anywhere,
    /// A resource attribute.
    Resource(Cow<'a, str>),
    /// An instrumentation-scope attribute.
    Scope(Cow<'a, str>),
    /// A span attribute.
    Span(Cow<'a, str>),
    /// An attribute of the span's event at `index`.
    Event {
        /// Position in the span's events.
        index: u32,
        /// The attribute key.
        key: Cow<'a, str>,
    },
    /// The name of the span's event at `index`.
    EventName(u32),
    /// An attribute of the span's link at `index`.
    Link {
        /// Position in the span's links.
        index: u32,
        /// The attribute key.
        key: Cow<'a, str>,
    },
}

impl Place<'_> {
    /// The attribute key, for places that are attributes.
    pub fn key(&self) -> Option<&str> {
        match self {
            Place::Resource(k) | Place::Scope(k) | Place::Span(k) => Some(k),
            Place::Event { key, .. } | Place::Link { key, .. } => Some(key),
            Place::Name | Place::Status | Place::Anywhere | Place::EventName(_) => None,
        }
    }

    /// Appends the place in list form (key escaped).
    pub fn write_to(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Place::Name => out.push_str("name"),
            Place::Status => out.push_str("status"),
            Place::Anywhere => out.push('*'),
            Place::Resource(k) => {
                out.push_str("resource:");
                escape_key(k, out);
            }
            Place::Scope(k) => {
                out.push_str("scope:");
                escape_key(k, out);
            }
            Place::Span(k) => {
                out.push_str("span:");
                escape_key(k, out);
            }
            Place::Event { index, key } => {
                let _ = write!(out, "event[{index}]:");
                escape_key(key, out);
            }
            Place::EventName(index) => {
                let _ = write!(out, "event[{index}].name");
            }
            Place::Link { index, key } => {
                let _ = write!(out, "link[{index}]:");
                escape_key(key, out);
            }
        }
    }
}

/// One entry of the list: a place and the class of the value found there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MinimizedEntry<'a> {
    /// Where the value sits.
    pub place: Place<'a>,
    /// Its class.
    pub class: AttributeClass,
}

impl MinimizedEntry<'_> {
    /// Appends the entry in list form (`place=class`).
    pub fn write_to(&self, out: &mut String) {
        self.place.write_to(out);
        out.push('=');
        out.push_str(self.class.as_str());
    }
}

impl fmt::Display for MinimizedEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

/// Formats entries as a list value (no bounds applied: writers bound what they record).
pub fn format_minimized<'a>(entries: impl IntoIterator<Item = &'a MinimizedEntry<'a>>) -> String {
    let mut out = String::new();
    for e in entries {
        if !out.is_empty() {
            out.push(';');
        }
        e.write_to(&mut out);
    }
    out
}

/// Appends `key` escaped for the list (`%`, `;` and `=` as `%25`, `%3B`, `%3D`).
pub fn escape_key(key: &str, out: &mut String) {
    if !key.bytes().any(|b| matches!(b, b'%' | b';' | b'=')) {
        out.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            ';' => out.push_str("%3B"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
}

/// Why a list value did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MinimizedListError {
    /// The value is longer than [`MAX_MINIMIZED_PARSE_BYTES`].
    #[error("{MINIMIZED_ATTRIBUTE} is {len} bytes, more than the {max} a list may hold")]
    TooLong {
        /// Length of the value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_MINIMIZED_PARSE_ENTRIES`] entries.
    #[error("{MINIMIZED_ATTRIBUTE} has more than {max} entries")]
    TooManyEntries {
        /// The limit.
        max: usize,
    },
    /// An entry does not follow the grammar.
    #[error("{MINIMIZED_ATTRIBUTE} entry {index} ({entry:?}): {reason}")]
    BadEntry {
        /// Position of the entry in the list.
        index: usize,
        /// The entry text, cut to 80 bytes.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Parses a list value (see the module docs for the grammar). The empty string is the
/// empty list. Fails on anything outside the grammar; callers fail closed on an error.
pub fn parse_minimized(s: &str) -> Result<Vec<MinimizedEntry<'_>>, MinimizedListError> {
    if s.len() > MAX_MINIMIZED_PARSE_BYTES {
        return Err(MinimizedListError::TooLong {
            len: s.len(),
            max: MAX_MINIMIZED_PARSE_BYTES,
        });
    }
    let mut out = Vec::new();
    if s.is_empty() {
        return Ok(out);
    }
    for (index, entry) in s.split(';').enumerate() {
        if index >= MAX_MINIMIZED_PARSE_ENTRIES {
            return Err(MinimizedListError::TooManyEntries {
                max: MAX_MINIMIZED_PARSE_ENTRIES,
            });
        }
        let bad = |reason| MinimizedListError::BadEntry {
            index,
            entry: cut(entry, 80).to_string(),
            reason,
        };
        let (place, class) = entry.rsplit_once('=').ok_or_else(|| bad("no '='"))?;
        let class = AttributeClass::parse(class)
            .ok_or_else(|| bad("unknown class (expected pii, secret or financial)"))?;
        let place = parse_place(place).map_err(bad)?;
        out.push(MinimizedEntry { place, class });
    }
    Ok(out)
}

fn parse_place(p: &str) -> Result<Place<'_>, &'static str> {
    match p {
        "name" => return Ok(Place::Name),
        "status" => return Ok(Place::Status),
        "*" => return Ok(Place::Anywhere),
        _ => {}
    }
    if let Some(k) = p.strip_prefix("resource:") {
        return Ok(Place::Resource(unescape_key(k)?));
    }
    if let Some(k) = p.strip_prefix("scope:") {
        return Ok(Place::Scope(unescape_key(k)?));
    }
    if let Some(k) = p.strip_prefix("span:") {
        return Ok(Place::Span(unescape_key(k)?));
    }
    for (prefix, is_event) in [("event[", true), ("link[", false)] {
        let Some(rest) = p.strip_prefix(prefix) else {
            continue;
        };
        let (digits, tail) = rest.split_once(']').ok_or("no ']' after the index")?;
        if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("index is not a number of 1 to 10 digits");
        }
        let index: u32 = digits.parse().map_err(|_| "index above 2^32-1")?;
        if is_event && tail == ".name" {
            return Ok(Place::EventName(index));
        }
        let key = tail.strip_prefix(':').ok_or("expected ':' after ']'")?;
        let key = unescape_key(key)?;
        return Ok(if is_event {
            Place::Event { index, key }
        } else {
            Place::Link { index, key }
        });
    }
    Err("unknown place (expected name, status, *, resource:, scope:, span:, event[i] or link[i])")
}

fn unescape_key(k: &str) -> Result<Cow<'_, str>, &'static str> {
    if !k.contains('%') {
        return Ok(Cow::Borrowed(k));
    }
    let mut out = String::with_capacity(k.len());
    let mut rest = k;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).ok_or("truncated %-escape in key")?;
        out.push(match esc {
            "%25" => '%',
            "%3B" => ';',
            "%3D" => '=',
            _ => return Err("unknown %-escape in key (expected %25, %3B or %3D)"),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
