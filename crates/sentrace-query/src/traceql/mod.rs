//! A TraceQL subset: span-set filters, parsed by hand with explicit limits, evaluated on
//! single-span views as the caller sees them (after scoping and masking).
//!
//! Supported (see `docs/tempo.md` for the user-facing description):
//! - span sets `{ }` (empty: every span) and `{ cond }`;
//! - conditions `field op value` with `=`, `!=`, `>`, `>=`, `<`, `<=`, `=~`, `!~` (regexes
//!   are fully anchored, as in Tempo);
//! - fields: the intrinsics `name`, `status`, `duration`, `kind` (also spelled `span:name`,
//!   ...), and attributes `resource.x`, `span.x`, `.x` (span first, then resource); quoted
//!   names (`span."a b"`);
//! - values: strings (`"..."` or `` `...` ``), integers, floats, `true`/`false`, Go
//!   durations (`100ms`, `1.5s`), status keywords (`ok`, `error`, `unset`) and kind
//!   keywords (`server`, `client`, `producer`, `consumer`, `internal`, `unspecified`);
//! - `&&`, `||` and parentheses inside a span set, and `&&`, `||` and parentheses between
//!   span sets (a trace matches `{a} && {b}` when some span matches `a` and some span
//!   matches `b`).
//!
//! Everything else (pipelines `|`, aggregates, metrics functions, structural operators,
//! `select`, `with`, arithmetic, `nil`, other intrinsics and scopes) is refused with a
//! [`TraceqlError`] that names the construct: never a silently different answer.

mod eval;
mod lex;
mod parse;
#[cfg(test)]
mod tests;

pub use eval::{field_value, span_matches};
pub use parse::{parse, parse_field};

/// Parses a Go duration (`100ms`, `1.5s`, `1h30m`) to nanoseconds.
pub fn go_duration_nanos(text: &str) -> Option<u64> {
    lex::go_duration(text.trim())
}

/// Longest query accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;
/// Deepest nesting of parentheses and span sets.
pub const MAX_DEPTH: usize = 16;
/// Most comparisons in one query.
pub const MAX_CONDITIONS: usize = 64;
/// Most span sets in one query.
pub const MAX_SPANSETS: usize = 16;
/// Largest compiled regex, in bytes (the `regex` crate's size limit).
pub const MAX_REGEX_SIZE: usize = 1 << 16;

/// Why a query was refused. `pos` is the byte offset in the query where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceqlError {
    /// The query is not valid TraceQL (or not valid in this subset's grammar).
    #[error("TraceQL syntax error at byte {pos}: {problem}")]
    Syntax {
        /// Byte offset.
        pos: usize,
        /// What was wrong and what was expected.
        problem: String,
    },
    /// Valid TraceQL, but outside the supported subset.
    #[error(
        "TraceQL at byte {pos}: {construct} is not supported (supported: span sets with comparisons on name, status, duration, kind, resource., span. and . attributes, && and ||; see docs/tempo.md)"
    )]
    Unsupported {
        /// Byte offset.
        pos: usize,
        /// The construct, as the user wrote it or named.
        construct: String,
    },
    /// A limit of the parser was exceeded.
    #[error("TraceQL query refused: {what} (limit {limit})")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: usize,
    },
}

/// An intrinsic span field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// Span name.
    Name,
    /// Status code: ok, error, unset.
    Status,
    /// `end - start`.
    Duration,
    /// Span kind.
    Kind,
}

impl Intrinsic {
    /// The TraceQL name.
    pub fn as_str(self) -> &'static str {
        match self {
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::Duration => "duration",
            Intrinsic::Kind => "kind",
        }
    }

    /// Every supported intrinsic.
    pub const ALL: [Intrinsic; 4] = [
        Intrinsic::Duration,
        Intrinsic::Kind,
        Intrinsic::Name,
        Intrinsic::Status,
    ];
}

/// Where an attribute is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrScope {
    /// `span.x`.
    Span,
    /// `resource.x`.
    Resource,
    /// `.x`: the span's attribute if it has one, else the resource's.
    Any,
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// An intrinsic.
    Intrinsic(Intrinsic),
    /// An attribute by scope and key.
    Attr(AttrScope, String),
}

impl Field {
    /// The key Tempo uses for this field in search results (`name`, `status`, or the
    /// attribute key without its scope).
    pub fn result_key(&self) -> &str {
        match self {
            Field::Intrinsic(i) => i.as_str(),
            Field::Attr(_, k) => k,
        }
    }

    /// The field as TraceQL text (for audit records and messages).
    pub fn to_traceql(&self) -> String {
        match self {
            Field::Intrinsic(i) => i.as_str().to_string(),
            Field::Attr(AttrScope::Span, k) => format!("span.{k}"),
            Field::Attr(AttrScope::Resource, k) => format!("resource.{k}"),
            Field::Attr(AttrScope::Any, k) => format!(".{k}"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Re => "=~",
            CmpOp::NotRe => "!~",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le)
    }
}

/// OTLP status codes by their TraceQL keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusValue {
    /// `unset` (0).
    Unset,
    /// `ok` (1).
    Ok,
    /// `error` (2).
    Error,
}

impl StatusValue {
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusValue::Unset => "unset",
            StatusValue::Ok => "ok",
            StatusValue::Error => "error",
        }
    }

    /// The status of an OTLP status code.
    pub fn of_code(code: i32) -> Self {
        match code {
            1 => StatusValue::Ok,
            2 => StatusValue::Error,
            _ => StatusValue::Unset,
        }
    }
}

/// OTLP span kinds by their TraceQL keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindValue {
    /// `unspecified` (0).
    Unspecified,
    /// `internal` (1).
    Internal,
    /// `server` (2).
    Server,
    /// `client` (3).
    Client,
    /// `producer` (4).
    Producer,
    /// `consumer` (5).
    Consumer,
}

impl KindValue {
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            KindValue::Unspecified => "unspecified",
            KindValue::Internal => "internal",
            KindValue::Server => "server",
            KindValue::Client => "client",
            KindValue::Producer => "producer",
            KindValue::Consumer => "consumer",
        }
    }

    /// The kind of an OTLP kind number.
    pub fn of_code(code: i32) -> Self {
        match code {
            1 => KindValue::Internal,
            2 => KindValue::Server,
            3 => KindValue::Client,
            4 => KindValue::Producer,
            5 => KindValue::Consumer,
            _ => KindValue::Unspecified,
        }
    }

    /// Every kind, in Tempo's autocomplete order.
    pub const ALL: [KindValue; 6] = [
        KindValue::Client,
        KindValue::Server,
        KindValue::Producer,
        KindValue::Consumer,
        KindValue::Internal,
        KindValue::Unspecified,
    ];
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone)]
pub enum Literal {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// A Go duration, in nanoseconds.
    Duration(u64),
    /// A status keyword.
    Status(StatusValue),
    /// A kind keyword.
    Kind(KindValue),
    /// A compiled, anchored regex (for `=~` and `!~`).
    Regex(Box<regex::Regex>),
}

/// One comparison.
#[derive(Debug, Clone)]
pub struct Condition {
    /// What is compared.
    pub field: Field,
    /// How.
    pub op: CmpOp,
    /// With what.
    pub value: Literal,
}

/// A boolean expression over one span.
#[derive(Debug, Clone)]
pub enum SpanExpr {
    /// Every span (`{ }`).
    All,
    /// A comparison.
    Cond(Condition),
    /// Both.
    And(Box<SpanExpr>, Box<SpanExpr>),
    /// Either.
    Or(Box<SpanExpr>, Box<SpanExpr>),
}

/// A boolean expression over span sets of one trace.
#[derive(Debug, Clone)]
pub enum SetExpr {
    /// One span set `{ ... }`.
    Spanset(SpanExpr),
    /// Both non-empty; the answer is their union.
    And(Box<SetExpr>, Box<SetExpr>),
    /// Either non-empty; the answer is the union of the non-empty ones.
    Or(Box<SetExpr>, Box<SetExpr>),
}

/// A parsed query.
#[derive(Debug, Clone)]
pub struct Query {
    /// The expression.
    pub root: SetExpr,
}

impl SpanExpr {
    fn fields<'a>(&'a self, out: &mut Vec<&'a Field>) {
        match self {
            SpanExpr::All => {}
            SpanExpr::Cond(c) => {
                if !out.contains(&&c.field) {
                    out.push(&c.field);
                }
            }
            SpanExpr::And(a, b) | SpanExpr::Or(a, b) => {
                a.fields(out);
                b.fields(out);
            }
        }
    }
}

impl SetExpr {
    fn spansets<'a>(&'a self, out: &mut Vec<&'a SpanExpr>) {
        match self {
            SetExpr::Spanset(e) => out.push(e),
            SetExpr::And(a, b) | SetExpr::Or(a, b) => {
                a.spansets(out);
                b.spansets(out);
            }
        }
    }
}

impl Query {
    /// The fields the query refers to, each once, in order of appearance.
    pub fn fields(&self) -> Vec<&Field> {
        let mut sets = Vec::new();
        self.root.spansets(&mut sets);
        let mut out = Vec::new();
        for s in sets {
            s.fields(&mut out);
        }
        out
    }

    /// The span sets, in order of appearance.
    pub fn spansets(&self) -> Vec<&SpanExpr> {
        let mut out = Vec::new();
        self.root.spansets(&mut out);
        out
    }

    /// The single span set of a query that has only one (filters can be pushed down to
    /// the store only then).
    pub fn single_spanset(&self) -> Option<&SpanExpr> {
        match &self.root {
            SetExpr::Spanset(e) => Some(e),
            _ => None,
        }
    }
}
