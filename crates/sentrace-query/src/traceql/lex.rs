//! The TraceQL lexer: bytes to tokens, each with its byte offset. Tokens cover the whole
//! TraceQL operator set so that the parser can name an unsupported construct instead of
//! failing on an unknown character.

use super::{CmpOp, MAX_QUERY_LEN, TraceqlError};

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    LBrace,
    RBrace,
    LParen,
    RParen,
    AndAnd,
    OrOr,
    /// `|` (a pipeline).
    Pipe,
    /// `!` alone.
    Not,
    Cmp(CmpOp),
    /// Structural operators between span sets that are not also comparison operators:
    /// `>>`, `<<`, `!>>`, `!<<`, `!>`, `!<`, `~`, `&>>`, `&>`, `&<<`, `&<`, `&~`, ...
    Structural(String),
    /// Arithmetic or other punctuation (`+ - * / % ^ , [ ]`).
    Punct(char),
    Str(String),
    /// A number as written (integer or float), unsigned; the sign is a `-` punct or part
    /// of the literal when directly attached.
    Num(String),
    /// A number followed by a duration unit, in nanoseconds.
    Duration(u64),
    /// A bare word: keyword, intrinsic or attribute (`span.http.method`, `.x`, `span:name`).
    Word(String),
    /// A scope prefix ending in `.` and a quoted attribute name: `span."a b"`.
    Quoted(String, String),
}

impl Tok {
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::AndAnd => "`&&`".into(),
            Tok::OrOr => "`||`".into(),
            Tok::Pipe => "`|`".into(),
            Tok::Not => "`!`".into(),
            Tok::Cmp(op) => format!("`{}`", op.as_str()),
            Tok::Structural(s) => format!("`{s}`"),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Str(s) => format!("string {:?}", clip(s)),
            Tok::Num(n) => format!("number {n}"),
            Tok::Duration(_) => "a duration".into(),
            Tok::Word(w) => format!("`{}`", clip(w)),
            Tok::Quoted(p, n) => format!("`{p}{:?}`", clip(n)),
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '.'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '/')
}

/// Structural operators that are not also comparison operators, longest first.
const STRUCTURAL: &[&str] = &[
    "&>>", "&<<", "!>>", "!<<", "&>", "&<", "&~", "!>", "!<", ">>", "<<",
];

/// Splits `text` into tokens with their byte offsets.
pub(super) fn lex(text: &str) -> Result<Vec<(usize, Tok)>, TraceqlError> {
    if text.len() > MAX_QUERY_LEN {
        return Err(TraceqlError::Limit {
            what: "query longer than the limit in bytes",
            limit: MAX_QUERY_LEN,
        });
    }
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let syntax = |pos: usize, problem: String| TraceqlError::Syntax { pos, problem };
    while i < b.len() {
        let c = b[i] as char;
        let start = i;
        let two = |s: &str| text[i..].starts_with(s);
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let tok = if two("&&") {
            i += 2;
            Tok::AndAnd
        } else if two("||") {
            i += 2;
            Tok::OrOr
        } else if let Some(op) = STRUCTURAL.iter().find(|op| two(op)) {
            i += op.len();
            Tok::Structural((*op).to_string())
        } else if two("!=") {
            i += 2;
            Tok::Cmp(CmpOp::Ne)
        } else if two("!~") {
            i += 2;
            Tok::Cmp(CmpOp::NotRe)
        } else if two("=~") {
            i += 2;
            Tok::Cmp(CmpOp::Re)
        } else if two(">=") {
            i += 2;
            Tok::Cmp(CmpOp::Ge)
        } else if two("<=") {
            i += 2;
            Tok::Cmp(CmpOp::Le)
        } else {
            match c {
                '{' => {
                    i += 1;
                    Tok::LBrace
                }
                '}' => {
                    i += 1;
                    Tok::RBrace
                }
                '(' => {
                    i += 1;
                    Tok::LParen
                }
                ')' => {
                    i += 1;
                    Tok::RParen
                }
                '|' => {
                    i += 1;
                    Tok::Pipe
                }
                '!' => {
                    i += 1;
                    Tok::Not
                }
                '=' => {
                    i += 1;
                    Tok::Cmp(CmpOp::Eq)
                }
                '>' => {
                    i += 1;
                    Tok::Cmp(CmpOp::Gt)
                }
                '<' => {
                    i += 1;
                    Tok::Cmp(CmpOp::Lt)
                }
                '~' => {
                    i += 1;
                    Tok::Structural("~".into())
                }
                '"' | '`' => {
                    let (s, next) = string(text, i)?;
                    i = next;
                    Tok::Str(s)
                }
                '-' if b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                    let (t, next) = number(text, i + 1)?;
                    i = next;
                    match t {
                        Tok::Num(n) => Tok::Num(format!("-{n}")),
                        _ => return Err(syntax(start, "a duration cannot be negative".into())),
                    }
                }
                '0'..='9' => {
                    let (t, next) = number(text, i)?;
                    i = next;
                    t
                }
                c if is_word_start(c) => {
                    while i < b.len() && is_word_char(b[i] as char) {
                        i += 1;
                    }
                    let w = text[start..i].to_string();
                    // A quoted attribute name: `span."a b"`, `."x"`.
                    if w.ends_with('.') && b.get(i).is_some_and(|q| *q == b'"') {
                        let (name, next) = string(text, i)?;
                        i = next;
                        Tok::Quoted(w, name)
                    } else {
                        Tok::Word(w)
                    }
                }
                '+' | '-' | '*' | '/' | '%' | '^' | ',' | '[' | ']' | '&' => {
                    i += 1;
                    Tok::Punct(c)
                }
                _ => {
                    let ch = text[i..].chars().next().unwrap_or('?');
                    return Err(syntax(start, format!("unexpected character {ch:?}")));
                }
            }
        };
        out.push((start, tok));
    }
    Ok(out)
}

/// A quoted string starting at `i` (`"` with `\` escapes, or a raw `` ` `` string).
fn string(text: &str, i: usize) -> Result<(String, usize), TraceqlError> {
    let quote = text.as_bytes()[i] as char;
    let mut out = String::new();
    let mut chars = text[i + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        if c == quote {
            return Ok((out, i + 1 + off + 1));
        }
        if c == '\\' && quote == '"' {
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, e @ ('\\' | '"'))) => out.push(e),
                Some((p, e)) => {
                    return Err(TraceqlError::Syntax {
                        pos: i + 1 + p,
                        problem: format!("unknown escape \\{e} in a string"),
                    });
                }
                None => break,
            }
        } else {
            out.push(c);
        }
    }
    Err(TraceqlError::Syntax {
        pos: i,
        problem: format!("string opened with {quote} is not closed"),
    })
}

/// A number (and optional duration unit) starting at `i`.
fn number(text: &str, i: usize) -> Result<(Tok, usize), TraceqlError> {
    let b = text.as_bytes();
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
        j += 1;
    }
    let num = &text[i..j];
    let mut k = j;
    while k < b.len() && (b[k].is_ascii_alphabetic() || text[k..].starts_with('µ')) {
        k += text[k..].chars().next().map_or(1, char::len_utf8);
    }
    let unit = &text[j..k];
    if unit.is_empty() {
        if num.matches('.').count() > 1 || num.ends_with('.') {
            return Err(TraceqlError::Syntax {
                pos: i,
                problem: format!("malformed number {num:?}"),
            });
        }
        return Ok((Tok::Num(num.to_string()), j));
    }
    // Go durations may chain units: 1h30m, 1.5s, 100ms.
    match go_duration(&text[i..k]) {
        Some(n) => Ok((Tok::Duration(n), k)),
        None => Err(TraceqlError::Syntax {
            pos: i,
            problem: format!(
                "malformed duration {:?} (use a Go duration like 100ms, 1.5s, 2m, 1h)",
                &text[i..k]
            ),
        }),
    }
}

/// Parses a Go duration (`300ms`, `1.5h`, `1h30m`, `250us`, `10ns`) to nanoseconds.
pub(super) fn go_duration(text: &str) -> Option<u64> {
    let mut rest = text;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = rest.split_at(split);
        if num.is_empty() || num.matches('.').count() > 1 {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let per = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * per;
        rest = next;
    }
    (total.is_finite() && total >= 0.0 && total < u64::MAX as f64).then_some(total as u64)
}
