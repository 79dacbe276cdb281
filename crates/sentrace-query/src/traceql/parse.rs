//! The TraceQL subset's recursive-descent parser. Depth, condition and span-set counts are
//! bounded; constructs of full TraceQL outside the subset are recognized and named.

use super::lex::{Tok, lex};
use super::{
    AttrScope, CmpOp, Condition, Field, Intrinsic, KindValue, Literal, MAX_CONDITIONS, MAX_DEPTH,
    MAX_REGEX_SIZE, MAX_SPANSETS, Query, SetExpr, SpanExpr, StatusValue, TraceqlError,
};

/// Metrics functions (TraceQL metrics queries).
const METRICS_FUNCTIONS: &[&str] = &[
    "rate",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "quantile_over_time",
    "histogram_over_time",
    "compare",
    "topk",
    "bottomk",
];
/// Aggregates of pipelines and scalar filters.
const AGGREGATES: &[&str] = &["count", "avg", "min", "max", "sum"];
/// Pipeline stages and other keywords.
const KEYWORDS: &[&str] = &["select", "by", "coalesce", "with", "nil"];
/// Intrinsics of full TraceQL that the subset does not evaluate.
const OTHER_INTRINSICS: &[&str] = &[
    "statusMessage",
    "rootName",
    "rootServiceName",
    "traceDuration",
    "nestedSetLeft",
    "nestedSetRight",
    "nestedSetParent",
    "childCount",
    "parent",
    "id",
];
/// Attribute scopes of full TraceQL that the subset does not evaluate.
const OTHER_SCOPES: &[&str] = &["event.", "link.", "instrumentation.", "trace.", "parent."];

/// Parses a whole query.
pub fn parse(text: &str) -> Result<Query, TraceqlError> {
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err(TraceqlError::Syntax {
            pos: 0,
            problem: "empty query (use `{ }` for every trace)".into(),
        });
    }
    let mut p = Parser {
        toks,
        i: 0,
        end: text.len(),
        depth: 0,
        conditions: 0,
        spansets: 0,
    };
    let root = p.set_or()?;
    if let Some((pos, t)) = p.peek() {
        return Err(match t {
            Tok::Pipe => unsupported(pos, "the pipeline operator `|`"),
            Tok::Cmp(CmpOp::Gt | CmpOp::Lt | CmpOp::NotRe) | Tok::Structural(_) => {
                unsupported(pos, format!("the structural operator {}", t.describe()))
            }
            Tok::Word(w) if w == "with" => unsupported(pos, "query hints `with (...)`"),
            _ => syntax(
                pos,
                format!(
                    "unexpected {} after the query (expected `&&`, `||` or the end)",
                    t.describe()
                ),
            ),
        });
    }
    Ok(Query { root })
}

/// Parses one field as Tempo's tag endpoints take it (`resource.service.name`, `.x`,
/// `span.http.method`, `name`, `status`, `kind`, `duration`).
pub fn parse_field(text: &str) -> Result<Field, TraceqlError> {
    let toks = lex(text)?;
    match toks.as_slice() {
        [(pos, Tok::Word(w))] => field_of(w, *pos),
        [(pos, Tok::Quoted(prefix, name))] => quoted_field(prefix, name, *pos),
        _ => Err(syntax(
            0,
            format!("{:?} is not a TraceQL attribute or intrinsic", clip(text)),
        )),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

fn syntax(pos: usize, problem: impl Into<String>) -> TraceqlError {
    TraceqlError::Syntax {
        pos,
        problem: problem.into(),
    }
}

fn unsupported(pos: usize, construct: impl Into<String>) -> TraceqlError {
    TraceqlError::Unsupported {
        pos,
        construct: construct.into(),
    }
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    i: usize,
    end: usize,
    depth: usize,
    conditions: usize,
    spansets: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Tok)> {
        self.toks.get(self.i).map(|(p, t)| (*p, t))
    }

    fn pos(&self) -> usize {
        self.peek().map_or(self.end, |(p, _)| p)
    }

    fn next(&mut self) -> Option<(usize, Tok)> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn eat(&mut self, want: &Tok) -> bool {
        if self.peek().is_some_and(|(_, t)| t == want) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), TraceqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(TraceqlError::Limit {
                what: "nesting of parentheses and span sets too deep",
                limit: MAX_DEPTH,
            });
        }
        Ok(())
    }

    fn expect_close(&mut self, want: Tok, opened_at: usize) -> Result<(), TraceqlError> {
        if self.eat(&want) {
            self.depth -= 1;
            return Ok(());
        }
        let pos = self.pos();
        Err(match self.peek() {
            None => syntax(
                pos,
                format!(
                    "{} opened at byte {opened_at} is not closed",
                    opening(&want)
                ),
            ),
            Some((_, Tok::Pipe)) => unsupported(pos, "the pipeline operator `|`"),
            Some((_, t)) => syntax(
                pos,
                format!("expected {}, found {}", want.describe(), t.describe()),
            ),
        })
    }

    // Span-set level.

    fn set_or(&mut self) -> Result<SetExpr, TraceqlError> {
        let mut left = self.set_and()?;
        while self.eat(&Tok::OrOr) {
            let right = self.set_and()?;
            left = SetExpr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn set_and(&mut self) -> Result<SetExpr, TraceqlError> {
        let mut left = self.set_primary()?;
        while self.eat(&Tok::AndAnd) {
            let right = self.set_primary()?;
            left = SetExpr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn set_primary(&mut self) -> Result<SetExpr, TraceqlError> {
        let pos = self.pos();
        match self.next() {
            Some((_, Tok::LBrace)) => {
                self.enter()?;
                self.spansets += 1;
                if self.spansets > MAX_SPANSETS {
                    return Err(TraceqlError::Limit {
                        what: "too many span sets",
                        limit: MAX_SPANSETS,
                    });
                }
                let e = if self.peek().is_none() {
                    return Err(syntax(
                        pos,
                        format!("`{{` opened at byte {pos} is not closed"),
                    ));
                } else if self.peek().is_some_and(|(_, t)| *t == Tok::RBrace) {
                    SpanExpr::All
                } else {
                    self.or()?
                };
                self.expect_close(Tok::RBrace, pos)?;
                Ok(SetExpr::Spanset(e))
            }
            Some((_, Tok::LParen)) => {
                self.enter()?;
                let e = self.set_or()?;
                self.expect_close(Tok::RParen, pos)?;
                Ok(e)
            }
            Some((_, Tok::Word(w))) => Err(word_at_set_level(&w, pos)),
            Some((_, t)) => Err(syntax(
                pos,
                format!("expected a span set `{{ ... }}`, found {}", t.describe()),
            )),
            None => Err(syntax(
                pos,
                "expected a span set `{ ... }` at the end of the query",
            )),
        }
    }

    // Inside a span set.

    fn or(&mut self) -> Result<SpanExpr, TraceqlError> {
        let mut left = self.and()?;
        while self.eat(&Tok::OrOr) {
            let right = self.and()?;
            left = SpanExpr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<SpanExpr, TraceqlError> {
        let mut left = self.unary()?;
        while self.eat(&Tok::AndAnd) {
            let right = self.unary()?;
            left = SpanExpr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<SpanExpr, TraceqlError> {
        let pos = self.pos();
        match self.peek() {
            Some((_, Tok::LParen)) => {
                self.i += 1;
                self.enter()?;
                let e = self.or()?;
                self.expect_close(Tok::RParen, pos)?;
                Ok(e)
            }
            Some((_, Tok::Not)) => Err(unsupported(pos, "negation `!`")),
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<SpanExpr, TraceqlError> {
        let pos = self.pos();
        let field = match self.next() {
            Some((p, Tok::Word(w))) => {
                if w == "true" || w == "false" {
                    return Err(unsupported(
                        p,
                        format!("a bare boolean `{w}` in a span set (use `{{ }}` for every span)"),
                    ));
                }
                field_of(&w, p)?
            }
            Some((p, Tok::Quoted(prefix, name))) => quoted_field(&prefix, &name, p)?,
            Some((p, Tok::Str(_) | Tok::Num(_) | Tok::Duration(_))) => {
                return Err(unsupported(
                    p,
                    "a literal on the left of a comparison (write `field op value`)",
                ));
            }
            Some((p, t)) => {
                return Err(syntax(
                    p,
                    format!(
                        "expected a field such as `name` or `span.foo`, found {}",
                        t.describe()
                    ),
                ));
            }
            None => {
                return Err(syntax(
                    pos,
                    "expected a condition before the end of the query",
                ));
            }
        };
        let op_pos = self.pos();
        let op = match self.next() {
            Some((_, Tok::Cmp(op))) => op,
            Some((p, Tok::Punct(c))) if "+-*/%^".contains(c) => {
                return Err(unsupported(p, format!("arithmetic `{c}`")));
            }
            Some((p, t)) => {
                return Err(syntax(
                    p,
                    format!(
                        "expected a comparison operator after `{}`, found {} (an attribute on its own is not a condition)",
                        field.to_traceql(),
                        t.describe()
                    ),
                ));
            }
            None => {
                return Err(syntax(
                    op_pos,
                    format!(
                        "expected a comparison operator after `{}`",
                        field.to_traceql()
                    ),
                ));
            }
        };
        let value = self.literal(&field, op)?;
        if let Some((p, Tok::Punct(c))) = self.peek()
            && "+-*/%^".contains(*c)
        {
            return Err(unsupported(p, format!("arithmetic `{c}`")));
        }
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(TraceqlError::Limit {
                what: "too many conditions",
                limit: MAX_CONDITIONS,
            });
        }
        Ok(SpanExpr::Cond(Condition { field, op, value }))
    }

    fn literal(&mut self, field: &Field, op: CmpOp) -> Result<Literal, TraceqlError> {
        let pos = self.pos();
        let what = field.to_traceql();
        let lit = match self.next() {
            Some((_, Tok::Str(s))) => Literal::Str(s),
            Some((p, Tok::Num(n))) => {
                if n.contains('.') {
                    Literal::Float(
                        n.parse()
                            .map_err(|_| syntax(p, format!("malformed number {n}")))?,
                    )
                } else {
                    Literal::Int(
                        n.parse()
                            .map_err(|_| syntax(p, format!("integer {n} out of range")))?,
                    )
                }
            }
            Some((_, Tok::Duration(d))) => Literal::Duration(d),
            Some((p, Tok::Word(w))) => match w.as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "ok" => Literal::Status(StatusValue::Ok),
                "error" => Literal::Status(StatusValue::Error),
                "unset" => Literal::Status(StatusValue::Unset),
                "nil" => return Err(unsupported(p, "`nil`")),
                w => match KindValue::ALL.into_iter().find(|k| k.as_str() == w) {
                    Some(k) => Literal::Kind(k),
                    None => {
                        return Err(if field_of(w, p).is_ok() {
                            unsupported(p, format!("comparing two fields (`{what}` with `{w}`)"))
                        } else {
                            syntax(
                                p,
                                format!(
                                    "expected a value after `{what} {}`, found `{}` (quote strings)",
                                    op.as_str(),
                                    clip(w)
                                ),
                            )
                        });
                    }
                },
            },
            Some((p, Tok::Quoted(..))) => {
                return Err(unsupported(
                    p,
                    format!("comparing two fields (`{what}` with an attribute)"),
                ));
            }
            Some((p, t)) => {
                return Err(syntax(
                    p,
                    format!(
                        "expected a value after `{what} {}`, found {}",
                        op.as_str(),
                        t.describe()
                    ),
                ));
            }
            None => {
                return Err(syntax(
                    pos,
                    format!("expected a value after `{what} {}`", op.as_str()),
                ));
            }
        };
        check(field, op, lit, pos)
    }
}

fn opening(close: &Tok) -> &'static str {
    match close {
        Tok::RBrace => "`{`",
        _ => "`(`",
    }
}

/// A word where a span set was expected: name what it is.
fn word_at_set_level(w: &str, pos: usize) -> TraceqlError {
    if METRICS_FUNCTIONS.contains(&w) {
        unsupported(pos, format!("the metrics function `{w}`"))
    } else if AGGREGATES.contains(&w) {
        unsupported(pos, format!("the aggregate `{w}()` (scalar filters)"))
    } else if KEYWORDS.contains(&w) {
        unsupported(pos, format!("`{w}`"))
    } else {
        syntax(
            pos,
            format!("expected a span set `{{ ... }}`, found `{}`", clip(w)),
        )
    }
}

fn field_of(w: &str, pos: usize) -> Result<Field, TraceqlError> {
    let intrinsic = match w {
        "name" | "span:name" => Some(Intrinsic::Name),
        "status" | "span:status" => Some(Intrinsic::Status),
        "duration" | "span:duration" => Some(Intrinsic::Duration),
        "kind" | "span:kind" => Some(Intrinsic::Kind),
        _ => None,
    };
    if let Some(i) = intrinsic {
        return Ok(Field::Intrinsic(i));
    }
    for (prefix, scope) in [
        ("resource.", AttrScope::Resource),
        ("span.", AttrScope::Span),
        (".", AttrScope::Any),
    ] {
        if let Some(key) = w.strip_prefix(prefix) {
            if key.is_empty() {
                return Err(syntax(
                    pos,
                    format!("attribute name missing after `{prefix}`"),
                ));
            }
            return Ok(Field::Attr(scope, key.to_string()));
        }
    }
    if let Some(s) = OTHER_SCOPES.iter().find(|s| w.starts_with(**s)) {
        return Err(unsupported(pos, format!("the attribute scope `{s}`")));
    }
    if w.contains(':') || OTHER_INTRINSICS.contains(&w) {
        return Err(unsupported(pos, format!("the intrinsic `{}`", clip(w))));
    }
    if METRICS_FUNCTIONS.contains(&w) || AGGREGATES.contains(&w) || KEYWORDS.contains(&w) {
        return Err(word_at_set_level(w, pos));
    }
    Err(syntax(
        pos,
        format!(
            "unknown field `{}`: intrinsics are name, status, duration and kind; attributes need a scope (`span.{0}`, `resource.{0}` or `.{0}`)",
            clip(w)
        ),
    ))
}

fn quoted_field(prefix: &str, name: &str, pos: usize) -> Result<Field, TraceqlError> {
    let scope = match prefix {
        "resource." => AttrScope::Resource,
        "span." => AttrScope::Span,
        "." => AttrScope::Any,
        other => return Err(unsupported(pos, format!("the attribute scope `{other}`"))),
    };
    if name.is_empty() {
        return Err(syntax(pos, "empty quoted attribute name"));
    }
    Ok(Field::Attr(scope, name.to_string()))
}

/// Checks that `lit` can be compared with `field` by `op`; compiles regexes.
fn check(field: &Field, op: CmpOp, lit: Literal, pos: usize) -> Result<Literal, TraceqlError> {
    let what = field.to_traceql();
    let bad = |m: String| Err(syntax(pos, m));
    if matches!(op, CmpOp::Re | CmpOp::NotRe) {
        let Literal::Str(re) = lit else {
            return bad(format!(
                "`{}` needs a string regex on the right",
                op.as_str()
            ));
        };
        if matches!(field, Field::Intrinsic(i) if *i != Intrinsic::Name) {
            return bad(format!("`{what}` cannot be matched with a regex"));
        }
        let compiled = regex::RegexBuilder::new(&format!("^(?:{re})$"))
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map_err(|e| syntax(pos, format!("invalid regex: {}", clip(&e.to_string()))))?;
        return Ok(Literal::Regex(Box::new(compiled)));
    }
    let ordering = op.is_ordering();
    match (field, &lit) {
        (Field::Intrinsic(Intrinsic::Name), Literal::Str(_)) => Ok(lit),
        (Field::Intrinsic(Intrinsic::Name), _) => bad("`name` compares with a quoted string".into()),
        (Field::Intrinsic(Intrinsic::Status), Literal::Status(_)) if !ordering => Ok(lit),
        (Field::Intrinsic(Intrinsic::Status), _) => bad(
            "`status` compares with `=` or `!=` and one of ok, error, unset (without quotes)".into(),
        ),
        (Field::Intrinsic(Intrinsic::Kind), Literal::Kind(_)) if !ordering => Ok(lit),
        (Field::Intrinsic(Intrinsic::Kind), _) => bad(
            "`kind` compares with `=` or `!=` and one of server, client, producer, consumer, internal, unspecified (without quotes)".into(),
        ),
        (Field::Intrinsic(Intrinsic::Duration), Literal::Duration(_)) => Ok(lit),
        (Field::Intrinsic(Intrinsic::Duration), _) => {
            bad("`duration` compares with a Go duration like 100ms or 1.5s".into())
        }
        (Field::Attr(..), Literal::Str(_) | Literal::Int(_) | Literal::Float(_)) => Ok(lit),
        (Field::Attr(..), Literal::Bool(_)) if !ordering => Ok(lit),
        (Field::Attr(..), Literal::Bool(_)) => bad(format!("`{what}` compared with a boolean needs `=` or `!=`")),
        (Field::Attr(..), Literal::Duration(_)) => {
            bad(format!("a duration compares only with `duration`, not `{what}`"))
        }
        (Field::Attr(..), Literal::Status(s)) => bad(format!(
            "`{}` is a status keyword, which compares only with `status` (quote it to compare `{what}` with a string)",
            s.as_str()
        )),
        (Field::Attr(..), Literal::Kind(k)) => bad(format!(
            "`{}` is a kind keyword, which compares only with `kind` (quote it to compare `{what}` with a string)",
            k.as_str()
        )),
        (Field::Attr(..), Literal::Regex(_)) => Ok(lit),
    }
}
