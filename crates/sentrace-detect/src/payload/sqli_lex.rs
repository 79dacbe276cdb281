//! The SQL tokenizer: token classes and [`tokenize`], with libinjection's three quoting
//! contexts (as-is, inside a single-quoted and inside a double-quoted string).

/// Most tokens produced for one input; the rest is ignored.
pub const MAX_TOKENS: usize = 512;

/// A SQL token class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tok {
    /// Quoted string (closed or not).
    Str,
    /// Number literal.
    Num,
    /// Identifier or unknown word.
    Word,
    /// A word followed by `(`.
    Func,
    /// `AND`, `OR`, `XOR`, `NOT`, `&&`, `||`.
    Logic,
    /// Comparison or arithmetic operator, and `LIKE`, `IN`, `IS`, `BETWEEN`, ...
    Op,
    /// `UNION`.
    Union,
    /// `SELECT`.
    Select,
    /// `FROM`.
    From,
    /// A statement starter other than SELECT (`INSERT`, `DROP`, `EXEC`, ...).
    Stmt,
    /// `ORDER BY`, `GROUP BY`, `HAVING`, `LIMIT`, `PROCEDURE`.
    Clause,
    /// Another SQL keyword (`WHERE`, `NULL`, `CASE`, `INTO`, ...).
    Kw,
    /// `@var` or `@@var`.
    Var,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `;`.
    Semi,
    /// `--`, `#` or an unterminated `/*`: the rest of the input is a comment.
    Comment,
    /// `.`.
    Dot,
    /// Anything else.
    Other,
}

/// One token with its lower-cased text (words only; empty for others).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    /// Class.
    pub tok: Tok,
    /// The token's text (a slice of the input; empty for punctuation).
    pub text: &'a str,
}

pub(super) fn classify_word(w: &str) -> Tok {
    match w {
        "and" | "or" | "xor" | "not" => Tok::Logic,
        "like" | "rlike" | "regexp" | "sounds" | "div" | "mod" | "is" | "in" | "between"
        | "glob" | "match" | "collate" | "escape" | "notnull" | "isnull" => Tok::Op,
        "union" | "intersect" | "except" | "minus" => Tok::Union,
        "select" => Tok::Select,
        "from" => Tok::From,
        "insert" | "update" | "delete" | "drop" | "create" | "alter" | "truncate" | "exec"
        | "execute" | "declare" | "shutdown" | "grant" | "revoke" | "replace" | "merge"
        | "call" | "waitfor" | "rename" | "load" | "handler" | "copy" | "attach" | "pragma" => {
            Tok::Stmt
        }
        "order" | "group" | "having" | "limit" | "procedure" | "offset" => Tok::Clause,
        "where" | "null" | "case" | "when" | "then" | "else" | "end" | "into" | "values"
        | "set" | "as" | "all" | "distinct" | "exists" | "table" | "true" | "false" | "by"
        | "top" | "outfile" | "dumpfile" | "delay" | "join" | "on" | "asc" | "desc"
        | "database" | "schema" | "if" | "begin" | "commit" | "rollback" => Tok::Kw,
        _ => Tok::Word,
    }
}

/// Tokenizes `s` (already normalized, lower-case). `quote` starts the input inside a
/// string opened by that quote character.
pub fn tokenize(s: &str, quote: Option<u8>) -> Vec<Token<'_>> {
    let b = s.as_bytes();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    fn push<'a>(out: &mut Vec<Token<'a>>, tok: Tok, text: &'a str) {
        if out.len() < MAX_TOKENS {
            out.push(Token { tok, text });
        }
    }
    if let Some(q) = quote {
        match b.iter().position(|c| *c == q) {
            Some(p) => {
                // The text of the leading string is kept: whether it looks like a value
                // (`admin`, `42`) or like prose (`is this yours`) matters below.
                push(&mut out, Tok::Str, &s[..p]);
                i = p + 1;
            }
            None => {
                push(&mut out, Tok::Str, "");
                return out;
            }
        }
    }
    while i < b.len() && out.len() < MAX_TOKENS {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
            b'\'' | b'"' => {
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        None => break,
                        Some(b'\\') => j += 2,
                        Some(x) if *x == c => {
                            if b.get(j + 1) == Some(&c) {
                                j += 2;
                            } else {
                                j += 1;
                                break;
                            }
                        }
                        Some(_) => j += 1,
                    }
                }
                push(&mut out, Tok::Str, "");
                i = j.min(b.len());
            }
            b'`' => {
                let j = b[i + 1..]
                    .iter()
                    .position(|x| *x == b'`')
                    .map_or(b.len(), |p| i + 2 + p);
                // The identifier inside the backticks, so catalog names are recognized.
                let inner = s.get(i + 1..j.saturating_sub(1).max(i + 1)).unwrap_or("");
                push(&mut out, Tok::Word, inner);
                i = j;
            }
            b'0'..=b'9' => {
                let mut j = i + 1;
                if c == b'0' && matches!(b.get(j), Some(b'x' | b'b')) {
                    j += 1;
                    while j < b.len() && b[j].is_ascii_hexdigit() {
                        j += 1;
                    }
                } else {
                    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.' || b[j] == b'e') {
                        j += 1;
                    }
                }
                // `1abc` is a word (an identifier) rather than a number followed by a word.
                if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_') {
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    push(&mut out, Tok::Word, &s[i..j]);
                } else {
                    push(&mut out, Tok::Num, &s[i..j]);
                }
                i = j;
            }
            b'@' => {
                let mut j = i + 1;
                while j < b.len()
                    && (b[j] == b'@'
                        || b[j].is_ascii_alphanumeric()
                        || b[j] == b'_'
                        || b[j] == b'.')
                {
                    j += 1;
                }
                push(&mut out, Tok::Var, &s[i..j]);
                i = j;
            }
            b'#' => {
                push(&mut out, Tok::Comment, "#");
                i = b.len();
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                // `'--help'`: an option word that a quote closes right after. The text
                // keeps its first letter, so checks can tell a quoted command-line option
                // from a comment. `admin'--x` and `1'--a comment` stay comments: MySQL
                // needs a space after `--`, but MSSQL, PostgreSQL, SQLite and Oracle do not.
                let mut j = i + 2;
                while b
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
                {
                    j += 1;
                }
                let option = b.get(i + 2).is_some_and(u8::is_ascii_alphabetic)
                    && matches!(b.get(j), Some(b'\'' | b'"' | b'`'));
                push(
                    &mut out,
                    Tok::Comment,
                    if option { &s[i..i + 3] } else { "--" },
                );
                i = b.len();
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // `/*! ... */` is MySQL executable code: tokenize its body.
                if b.get(i + 2) == Some(&b'!') {
                    let mut j = i + 3;
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                    continue;
                }
                match s[i + 2..].find("*/") {
                    Some(p) => i = i + 2 + p + 2,
                    None => {
                        push(&mut out, Tok::Comment, "");
                        i = b.len();
                    }
                }
            }
            b'*' if b.get(i + 1) == Some(&b'/') => i += 2,
            b'(' => {
                push(&mut out, Tok::LParen, "");
                i += 1;
            }
            b')' => {
                push(&mut out, Tok::RParen, "");
                i += 1;
            }
            b',' => {
                push(&mut out, Tok::Comma, "");
                i += 1;
            }
            b';' => {
                push(&mut out, Tok::Semi, "");
                i += 1;
            }
            b'.' => {
                push(&mut out, Tok::Dot, "");
                i += 1;
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                push(&mut out, Tok::Logic, "&&");
                i += 2;
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                push(&mut out, Tok::Logic, "||");
                i += 2;
            }
            // PostgreSQL JSON key tests: `?`, `?|`, `?&`.
            b'?' => {
                let j = if matches!(b.get(i + 1), Some(b'|' | b'&')) {
                    i + 2
                } else {
                    i + 1
                };
                push(&mut out, Tok::Op, &s[i..j]);
                i = j;
            }
            b'=' | b'<' | b'>' | b'!' | b'+' | b'-' | b'*' | b'/' | b'%' | b'|' | b'&' | b'^'
            | b'~' => {
                let mut j = i + 1;
                while j < b.len() && matches!(b[j], b'=' | b'<' | b'>' | b'!') && j - i < 3 {
                    j += 1;
                }
                push(&mut out, Tok::Op, &s[i..j]);
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                let mut j = i + 1;
                while j < b.len()
                    && (b[j].is_ascii_alphanumeric()
                        || b[j] == b'_'
                        || b[j] == b'$'
                        || b[j] >= 0x80)
                {
                    j += 1;
                }
                let w = &s[i..j];
                let mut tok = classify_word(w);
                let mut k = j;
                while k < b.len() && b[k] == b' ' {
                    k += 1;
                }
                if b.get(k) == Some(&b'(') && matches!(tok, Tok::Word | Tok::Kw | Tok::Stmt) {
                    tok = Tok::Func;
                }
                push(&mut out, tok, w);
                i = j;
            }
            _ => {
                push(&mut out, Tok::Other, "");
                i += 1;
            }
        }
    }
    out
}

/// Whether every quote of `s` is an apostrophe between two letters (`it's`, `don't`,
/// `O'Neill`), as in prose: no double quote, no quote that opens or closes a string.
pub(super) fn apostrophes_only(s: &str) -> bool {
    let b = s.as_bytes();
    !s.contains('"')
        && b.iter().enumerate().all(|(i, c)| {
            *c != b'\''
                || (i > 0
                    && b[i - 1].is_ascii_alphabetic()
                    && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic))
        })
}
