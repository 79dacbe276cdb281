//! A SQL tokenizer and token-structure checks, in the spirit of libinjection.
//!
//! libinjection tokenizes the input three times: as-is, as if it started inside a
//! single-quoted string and inside a double-quoted string, folds the tokens and looks the
//! fingerprint up in a list. We tokenize the same three ways but, instead of a fingerprint
//! list, check a short set of token-structure shapes that an injection needs and ordinary
//! text does not have (a string break followed by a boolean operator or a comment,
//! `UNION SELECT`, a stacked statement, a tautology, a time-delay function, ...).
//! The same tokenizer gives the statement "shape" used by the trace-correlated detector.

#[path = "sqli_lex.rs"]
mod lex;
pub use lex::{MAX_TOKENS, Tok, Token, tokenize};
use lex::{apostrophes_only, classify_word};
#[path = "sqli_vocab.rs"]
mod vocab;
use vocab::{ATTACK_FUNCS, ATTACK_WORDS};

fn is_operand(t: Tok) -> bool {
    matches!(
        t,
        Tok::Str | Tok::Num | Tok::Word | Tok::Var | Tok::RParen | Tok::Kw
    )
}

/// Whether a token is a comparison operator (`=`, `<>`, `LIKE`, `IN`, ...).
fn is_cmp(t: Option<&Token<'_>>) -> bool {
    t.is_some_and(|x| {
        x.tok == Tok::Op
            && (x.text.starts_with(['=', '<', '>', '!'])
                || matches!(
                    x.text,
                    "like"
                        | "rlike"
                        | "regexp"
                        | "is"
                        | "in"
                        | "between"
                        | "sounds"
                        | "glob"
                        | "match"
                ))
    })
}

/// Whether a token is a literal (string, number or `NULL`/`TRUE`/`FALSE`).
fn is_literal(t: Option<&Token<'_>>) -> bool {
    t.is_some_and(|x| {
        matches!(x.tok, Tok::Str | Tok::Num)
            || (x.tok == Tok::Kw && matches!(x.text, "null" | "true" | "false"))
    })
}

/// Whether a whole input is one comparison of two literals (`1=1`, `42 like 42`,
/// `'a' not regexp 'b'`, `1 is not 2`, `42<=>42`): a tautology or contradiction that
/// only makes sense spliced into a WHERE clause.
fn literal_comparison(t: &[Token<'_>]) -> bool {
    let mut j = 1;
    if !is_literal(t.first()) {
        return false;
    }
    if t.get(j).is_some_and(|x| x.text == "not") {
        j += 1;
    }
    if !(is_cmp(t.get(j)) || t.get(j).is_some_and(|x| x.text.starts_with('?'))) {
        return false;
    }
    j += 1;
    if t.get(j).is_some_and(|x| x.text == "not") {
        j += 1;
    }
    is_literal(t.get(j)) && matches!(t.get(j + 1).map(|x| x.tok), None | Some(Tok::Comment))
}

/// Whether an input starts with a boolean operator and continues as a comparison
/// (`xor 5>`, `or 'a' <`, `|| name ==`, `&&(e===`, `OR '{"a":1}' ? 'a'`): the tail of a
/// condition that the input extends.
fn leading_boolean(t: &[Token<'_>]) -> bool {
    let Some(first) = t.first() else {
        return false;
    };
    if first.tok != Tok::Logic || first.text == "not" {
        return false;
    }
    let symbol = matches!(first.text, "&&" | "||" | "xor");
    let mut j = 1;
    while t.get(j).is_some_and(|x| x.tok == Tok::LParen) {
        j += 1;
    }
    let Some(operand) = t.get(j) else {
        return false;
    };
    let literal = is_literal(Some(operand)) || operand.tok == Tok::Var;
    let op = t.get(j + 1);
    // `or x ==`, `and flag !=`: a condition cut after an equality operator no prose uses.
    let dangling_equality = op
        .is_some_and(|x| x.tok == Tok::Op && matches!(x.text, "==" | "!=" | "===" | "!==" | "<>"))
        && matches!(t.get(j + 2).map(|x| x.tok), None | Some(Tok::Comment));
    if !(literal || (operand.tok == Tok::Word && (symbol || j > 1 || dangling_equality))) {
        return false;
    }
    let cmp = is_cmp(op) || op.is_some_and(|x| x.tok == Tok::Op && x.text.starts_with('?'));
    let arith = op.is_some_and(|x| x.tok == Tok::Op && matches!(x.text, "-" | "+"));
    match t.get(j + 2) {
        // Nothing (or a comment) after the operator: the input is a dangling condition.
        None
        | Some(Token {
            tok: Tok::Comment, ..
        }) => (cmp || (arith && literal)) && (literal || symbol || dangling_equality),
        Some(next) => cmp && is_value(next.tok) && (literal || symbol),
    }
}

fn is_value(t: Tok) -> bool {
    matches!(
        t,
        Tok::Str
            | Tok::Num
            | Tok::Word
            | Tok::Var
            | Tok::Func
            | Tok::LParen
            | Tok::Kw
            | Tok::Select
    )
}

fn word<'a>(t: &[Token<'a>], i: usize) -> &'a str {
    t.get(i).map_or("", |x| x.text)
}

/// Whether `t` (starting at a statement keyword) continues the way that statement does.
fn stacked_statement(t: &[Token<'_>]) -> bool {
    let next = t.get(1).map(|x| x.tok);
    match word(t, 0) {
        "update" => next == Some(Tok::Word) && word(t, 2) == "set",
        "delete" => next == Some(Tok::From),
        "insert" | "replace" => word(t, 1) == "into",
        "drop" | "create" | "alter" | "truncate" | "rename" => matches!(
            word(t, 1),
            "table"
                | "database"
                | "schema"
                | "index"
                | "view"
                | "procedure"
                | "function"
                | "user"
                | "trigger"
                | "login"
        ),
        "exec" | "execute" | "call" => {
            matches!(next, Some(Tok::Func | Tok::Str | Tok::Var | Tok::LParen))
                || (next == Some(Tok::Word)
                    && matches!(
                        t.get(2).map(|x| x.tok),
                        Some(
                            Tok::Dot | Tok::Str | Tok::Num | Tok::Var | Tok::LParen | Tok::Comment
                        )
                    ))
        }
        "declare" => next == Some(Tok::Var),
        "shutdown" => matches!(next, None | Some(Tok::Comment | Tok::Semi)),
        "waitfor" => matches!(word(t, 1), "delay" | "time"),
        "grant" | "revoke" => t.iter().any(|x| x.text == "on" || x.text == "to"),
        "load" => matches!(word(t, 1), "data" | "load_file"),
        _ => matches!(next, Some(Tok::Var | Tok::Func)),
    }
}

/// Whether a whole input is a SQL statement (`DROP TABLE x`, `DELETE FROM users;--`,
/// `DECLARE @x`, `EXEC xp_cmdshell ...`): stricter than [`stacked_statement`], since no
/// separator came before it.
fn start_statement(t: &[Token<'_>]) -> bool {
    let at = |i: usize| t.get(i).map(|x| x.tok);
    let sql_end = |i: usize| {
        t.get(i)
            .is_some_and(|x| x.tok == Tok::Semi || (x.tok == Tok::Comment && x.text == "--"))
    };
    match word(t, 0) {
        "drop" | "create" | "alter" | "truncate" | "rename" => {
            (stacked_statement(t) && !words_after_object_name(t))
                || (at(1) == Some(Tok::Word) && sql_end(2))
        }
        "delete" => at(1) == Some(Tok::From) && at(2) == Some(Tok::Word),
        // `UPDATE t SET col =`: with no separator before it, the assignment must be there
        // (`update kids set works with windows` is prose).
        "update" => stacked_statement(t) && is_cmp(t.get(4)),
        "insert" | "declare" | "waitfor" | "shutdown" => stacked_statement(t),
        "exec" | "execute" => {
            matches!(at(1), Some(Tok::Var))
                || word(t, 1) == "immediate"
                || word(t, 1).starts_with("xp_")
                || word(t, 1).starts_with("sp_")
        }
        _ => false,
    }
}

/// Whether the tokens before a boolean operator are only the string the input breaks out
/// of and at most two more quote runs (`'''or 1`, `x''' or 'a`): `''` inside a string is an
/// escaped quote, so an odd run of quotes still ends the query's string.
fn quote_run_break(before: &[Token<'_>]) -> bool {
    (1..=3).contains(&before.len()) && before.iter().all(|x| x.tok == Tok::Str)
}

/// Whether the boolean operator at `i` ends a comparison and opens a string that runs to
/// the end of the input (`' * from = 1 or '9`): the query's own closing quote completes
/// `OR '9'`, a truthy tail, as it completes the last literal of `' or '1'='1`.
fn truthy_string_tail(t: &[Token<'_>], i: usize) -> bool {
    matches!(word(t, i), "or" | "||" | "xor")
        && i + 2 == t.len()
        && i >= 2
        && is_literal(t.get(i - 1))
        && is_cmp(t.get(i - 2))
}

/// Whether `SET` at `i` assigns a session variable (`SET @old_sql_notes = 1`,
/// `;SET @saved_cs_client,`, `SET @old_unique_checks; --`): a statement of its own, which
/// dumps and stacked injections open with. The variable name must have an underscore (SQL
/// style, unlike most `@mentions`), `SET` must not follow a word (`I set @home`), and an
/// assignment, a statement end, or a `;` before `SET` must make it SQL: a bare
/// `set @my_var` or `/set @dev_team` is a chat command.
fn user_variable_assignment(t: &[Token<'_>], i: usize) -> bool {
    let prev = i.checked_sub(1).and_then(|p| t.get(p)).map(|x| x.tok);
    let after_word = matches!(prev, Some(Tok::Word | Tok::Str | Tok::Num | Tok::Kw));
    let var = t.get(i + 1).filter(|x| x.tok == Tok::Var);
    let next = t.get(i + 2);
    let assigned = next.is_some_and(|x| x.tok == Tok::Op && x.text == "=");
    let statement_end = next.is_some_and(|x| x.tok == Tok::Semi)
        && matches!(t.get(i + 3).map(|x| x.tok), None | Some(Tok::Comment));
    let stacked = prev == Some(Tok::Semi)
        && matches!(
            next.map(|x| x.tok),
            None | Some(Tok::Semi | Tok::Comma | Tok::Comment)
        );
    !after_word
        && var.is_some_and(|v| v.text.trim_start_matches('@').len() > 2 && v.text.contains('_'))
        && (assigned || statement_end || stacked)
}

/// Whether the token at `k` can open the column list of a subquery: a literal, a call,
/// a variable, `(` before an expression, `*` (not markdown's `**`), or a keyword that starts an expression
/// (`NULL`, `CASE`, `DISTINCT`, ...), not one that only prose puts after "select"
/// (`or select values`, `or select set`).
fn select_list_start(t: &[Token<'_>], k: usize) -> bool {
    let Some(x) = t.get(k) else {
        return false;
    };
    match x.tok {
        Tok::Num | Tok::Func | Tok::Var | Tok::Str => true,
        // `select (1)`, `select (sleep(5))`; not `select (optional)`.
        Tok::LParen => !matches!(t.get(k + 1).map(|y| y.tok), None | Some(Tok::Word)),
        Tok::Kw => matches!(
            x.text,
            "null" | "case" | "distinct" | "top" | "true" | "false" | "all" | "exists"
        ),
        Tok::Op => x.text == "*" && t.get(k + 1).is_none_or(|y| y.text != "*"),
        _ => false,
    }
}

/// Whether a number is an ordered-list marker (`1.` in `1. Order by Friday`): SQL
/// injections write `1 ORDER BY 3`, prose and markdown lists put a dot after the number.
fn list_marker(tk: &Token<'_>) -> bool {
    tk.tok == Tok::Num && tk.text.ends_with('.')
}

/// Whether `t` is `, <literal>` at least twice and nothing else but a trailing comment
/// (`', 2, 1`, `x', 'admin', 1--`): after a string break, the input supplies further
/// values of an `INSERT ... VALUES` or `IN (...)` list, or pads `UNION` columns.
///
/// `value` is the text the quote closes. A number there with only numbers after it and no
/// comment (`5', 6, 7`) is a measurement (feet, minutes) in a list of numbers, not a break.
fn value_list_tail(value: &Token<'_>, t: &[Token<'_>]) -> bool {
    let commented = t.last().is_some_and(|x| x.tok == Tok::Comment);
    let body = if commented { &t[..t.len() - 1] } else { t };
    let numeric = |x: &Token<'_>| !x.text.is_empty() && x.text.bytes().all(|c| c.is_ascii_digit());
    let list = body.len() >= 4
        && body.len() % 2 == 0
        && body
            .chunks(2)
            .all(|p| p[0].tok == Tok::Comma && is_literal(p.get(1)));
    list && (commented
        || !numeric(value)
        || body.iter().any(|x| x.tok != Tok::Comma && !numeric(x)))
}

/// Whether what follows `SELECT` reads as words rather than a column list: two bare words
/// in a row before any `,`, `FROM` or statement end (`union select the color`, `union
/// select off bluetooth`). A column list separates its items with commas and aliases
/// them with `AS`; an injected `UNION SELECT` lists numbers, `NULL`, calls or columns.
fn prose_after_select(t: &[Token<'_>]) -> bool {
    let mut prev_word = false;
    for x in t.iter().take(8) {
        if matches!(
            x.tok,
            Tok::From | Tok::Comma | Tok::Comment | Tok::Semi | Tok::Union | Tok::RParen
        ) {
            return false;
        }
        let word = x.tok == Tok::Word;
        if word && prev_word {
            return true;
        }
        prev_word = word;
    }
    false
}

/// Whether `t[j..j + 3]` is a word operator between two bare words (`password is shared`,
/// `pepper in the`, `it like me`): English, since SQL's `IS` takes `NULL`/`TRUE`/`NOT`,
/// `IN` a parenthesized list, and injected `LIKE`/`REGEXP` a literal.
fn word_op_between_words(t: &[Token<'_>], j: usize) -> bool {
    let tok = |k: usize| t.get(k).map(|x| x.tok);
    tok(j) == Some(Tok::Word)
        && tok(j + 2) == Some(Tok::Word)
        && word(t, j + 1).bytes().all(|c| c.is_ascii_alphabetic())
}

/// Whether the call at `j` reads as SQL: a function only injections use, or arguments
/// with SQL in them (a nested call, a subquery, a variable, a string, an operator or a
/// list), not a parenthetical remark (`Tom and Jerry (1940)`, `red or blue (any)`).
fn sql_call(t: &[Token<'_>], j: usize) -> bool {
    if t.get(j).is_some_and(|x| ATTACK_FUNCS.contains(&x.text)) {
        return true;
    }
    t.iter()
        .skip(j + 2)
        .take(6)
        .take_while(|x| x.tok != Tok::RParen)
        .any(|x| {
            matches!(
                x.tok,
                Tok::Func | Tok::Select | Tok::Var | Tok::Str | Tok::Op | Tok::Comma | Tok::LParen
            ) || (x.tok == Tok::Kw && x.text == "null")
        })
}

/// Whether a quote after `=` opens a value that starts with `#` (`href="#top"`,
/// `bgcolor="#fff"`): the quote opens an HTML attribute, it does not close a string.
fn anchor_value(before: &Token<'_>, comment: &Token<'_>) -> bool {
    comment.text == "#" && before.text.trim_end().ends_with('=')
}

/// Whether a "comment" is a command-line option in quotes (`try '--help'`, `'--use'`):
/// `--` glued to a word that a quote closes (the lexer keeps the letter only then).
/// Injections end the query with `'--`, `'-- -`, `'--+` or `'--x`.
fn quoted_option(comment: &Token<'_>) -> bool {
    comment.text.len() > 2 && comment.text.starts_with("--")
}

/// Whether `DROP TABLE <name>` (or CREATE/ALTER/...) goes on with a plain word that no
/// such statement has after the name (`drop table knife account lamp`, `create table
/// reservations for 4`): SQL continues with `;`, `(`, `,`, a comment, `CASCADE`, `ADD`, ...
fn words_after_object_name(t: &[Token<'_>]) -> bool {
    let name = if word(t, 2) == "if" { 4 } else { 2 };
    t.get(name).is_some_and(|x| x.tok == Tok::Word)
        && t.get(name + 1).is_some_and(|x| {
            x.tok == Tok::Word
                && !matches!(
                    x.text,
                    "cascade"
                        | "restrict"
                        | "purge"
                        | "add"
                        | "modify"
                        | "change"
                        | "to"
                        | "owner"
                        | "column"
                        | "engine"
                        | "character"
                        | "default"
                        | "with"
                        | "authorization"
                )
        })
}

/// Whether the input is prose that names a catalogue (`Great post on information_schema
/// views, thanks!`): three or more plain words and no SQL structure around them (no
/// SELECT, UNION, FROM, string, comment, `;` before a statement, a clause with its `by` or
/// number, or a statement word that starts a statement: `update t set`, `call f(`;
/// `the security update is great` and `call me at (555)` are prose; operators, booleans,
/// a `;` between sentences and a word before `(` are prose too: `!`, `-`, `and`, `(a)
/// restart; then`). A string counts unless every quote of the input is an apostrophe
/// inside a word (`it's`, `O'Neill`: `prose_quotes`); in a quoted context the leading
/// string is the text before the value's first quote. A catalogue name alone, or with SQL
/// around it, is still read as an attack.
fn prose_mention(t: &[Token<'_>], quoted: bool, prose_quotes: bool) -> bool {
    let words = t.iter().filter(|x| x.tok == Tok::Word).count();
    let stacked = t
        .windows(2)
        .any(|w| w[0].tok == Tok::Semi && matches!(w[1].tok, Tok::Select | Tok::Stmt));
    // `order by`, `limit 5`; `the order arrived` is prose.
    let clause = t
        .windows(2)
        .any(|w| w[0].tok == Tok::Clause && (w[1].tok == Tok::Num || w[1].text == "by"));
    words >= 3
        && !stacked
        && !clause
        && !t.iter().enumerate().any(|(i, x)| match x.tok {
            Tok::Union | Tok::Select | Tok::From | Tok::Comment => true,
            Tok::Stmt => stacked_statement(&t[i..]),
            Tok::Str => !(prose_quotes || (quoted && i == 0)),
            _ => false,
        })
}

/// Why a token stream looks like an injection, if it does. `prose_quotes`: the input's
/// quotes are all apostrophes inside words (`lex::apostrophes_only`).
pub fn check_tokens(t: &[Token<'_>], quoted: bool, prose_quotes: bool) -> Option<&'static str> {
    let n = t.len();
    let at = |i: usize| t.get(i).map(|x| x.tok);
    for (i, tk) in t.iter().enumerate() {
        match tk.tok {
            Tok::Union => {
                let mut j = i + 1;
                if matches!(t.get(j), Some(x) if x.text == "all" || x.text == "distinct") {
                    j += 1;
                }
                while at(j) == Some(Tok::LParen) {
                    j += 1;
                }
                if at(j) == Some(Tok::Select) && !prose_after_select(&t[j + 1..]) {
                    return Some("union select");
                }
            }
            Tok::Semi
                if i == 0
                    && !quoted
                    && matches!(at(1), Some(Tok::Stmt | Tok::Select))
                    && n <= 4 =>
            {
                return Some("statement after separator");
            }
            Tok::Semi if i > 0 || quoted => {
                let stmt_ok = match at(i + 1) {
                    Some(Tok::Select) => !prose_after_select(&t[i + 2..]),
                    Some(Tok::Stmt) => stacked_statement(&t[i + 1..]),
                    Some(Tok::Func) => t.get(i + 1).is_some_and(|x| ATTACK_FUNCS.contains(&x.text)),
                    _ => false,
                };
                if stmt_ok {
                    return Some("stacked statement");
                }
            }
            // `if(2=`, `iif(1=1`: a conditional function opened on a literal comparison.
            Tok::Func
                if i == 0
                    && !quoted
                    && matches!(tk.text, "if" | "iif")
                    && at(1) == Some(Tok::LParen)
                    && is_literal(t.get(2))
                    && is_cmp(t.get(3))
                    && (t.get(4).is_none() || is_literal(t.get(4))) =>
            {
                return Some("conditional function on a literal comparison");
            }
            Tok::Func if ATTACK_FUNCS.contains(&tk.text) => {
                // A call with SQL-looking arguments: `sleep(5)`, `char(65,66)`, `if(1=1,...)`.
                let args = &t[i + 1..n.min(i + 8)];
                let sqlish = args.iter().skip(1).take(4).any(|a| {
                    matches!(
                        a.tok,
                        Tok::Num | Tok::Select | Tok::Func | Tok::Var | Tok::Op | Tok::Comma
                    )
                });
                let strong = matches!(
                    tk.text,
                    "sleep"
                        | "pg_sleep"
                        | "benchmark"
                        | "load_file"
                        | "extractvalue"
                        | "updatexml"
                        | "xp_cmdshell"
                        | "name_const"
                        | "sys_eval"
                        | "randomblob"
                        | "dbms_pipe"
                        | "utl_inaddr"
                        | "utl_http"
                        | "waitfor"
                        | "pg_read_file"
                        | "group_concat"
                        | "openrowset"
                        | "is_srvrolemember"
                        | "json_keys"
                        | "gtid_subset"
                );
                let var_arg = args.iter().skip(1).take(2).any(|a| a.tok == Tok::Var);
                let prev_break = var_arg
                    || i > 0
                        && matches!(
                            at(i - 1),
                            Some(
                                Tok::Logic
                                    | Tok::Op
                                    | Tok::Select
                                    | Tok::Comma
                                    | Tok::Semi
                                    | Tok::LParen
                            )
                        );
                // `sleep(8 hours)`: a number with a unit is prose.
                let unit_arg = t
                    .get(i + 2)
                    .is_some_and(|x| x.tok == Tok::Num && !x.text.ends_with('.'))
                    && at(i + 3) == Some(Tok::Word);
                if sqlish && !unit_arg && (strong || prev_break) {
                    return Some("injection function call");
                }
            }
            Tok::Word | Tok::Var | Tok::Kw
                if (ATTACK_WORDS.contains(&tk.text) || tk.text.starts_with("@@"))
                    && !prose_mention(t, quoted, prose_quotes) =>
            {
                return Some("database catalog access");
            }
            Tok::Logic if i == 0 && !quoted && leading_boolean(t) => {
                return Some("boolean operator leading a condition");
            }
            Tok::Logic
                if tk.text != "not"
                    && i > 0
                    && matches!(at(i - 1), Some(Tok::Str | Tok::Num))
                    && at(i + 1) == Some(Tok::Comment)
                    && t[..i].iter().any(|x| is_cmp(Some(x))) =>
            {
                return Some("comparison, boolean operator and comment");
            }
            Tok::Logic if tk.text != "not" => {
                // Boolean injection: `<operand> OR <x> <op> <y>`, `... AND sleep(5)`.
                let before = i.checked_sub(1).and_then(at);
                if before.is_some_and(|b| !is_operand(b) && b != Tok::Op) {
                    continue;
                }
                let mut j = i + 1;
                while matches!(at(j), Some(Tok::Logic) | Some(Tok::LParen)) {
                    j += 1;
                }
                match (at(j), at(j + 1), at(j + 2)) {
                    (Some(a), Some(Tok::Op), Some(c))
                        if is_value(a)
                            && is_value(c)
                            && (word(t, j + 1) != "between" || word(t, j + 3) == "and")
                            && !word_op_between_words(t, j)
                            && (is_cmp(t.get(j + 1))
                                || matches!(a, Tok::Func | Tok::Select)
                                || matches!(c, Tok::Func | Tok::Select | Tok::LParen)) =>
                    {
                        return Some("boolean expression after input");
                    }
                    (Some(Tok::Func), _, _) if sql_call(t, j) => {
                        return Some("function call after boolean operator");
                    }
                    (Some(Tok::Select), Some(_), _) if select_list_start(t, j + 1) => {
                        return Some("subquery after boolean operator");
                    }
                    (Some(a), None | Some(Tok::Comment), _)
                        if quoted
                            && quote_run_break(&t[..i])
                            && matches!(a, Tok::Num | Tok::Str | Tok::Kw | Tok::Word) =>
                    {
                        return Some("boolean after string break");
                    }
                    (Some(Tok::Str), None, _) if quoted && truthy_string_tail(t, i) => {
                        return Some("comparison then OR on an open string");
                    }
                    (Some(Tok::Num), Some(Tok::Comment), _) => {
                        return Some("boolean then comment");
                    }
                    _ => {}
                }
            }
            Tok::Select
                if i == 0
                    && ((at(1) == Some(Tok::Func)
                        && t.get(1).is_some_and(|x| ATTACK_FUNCS.contains(&x.text)))
                        || (at(1) == Some(Tok::Num) && at(2) == Some(Tok::Comma))) =>
            {
                return Some("select of a function");
            }
            Tok::Select => {
                // `select <list> from <table>` with a SQL-looking column list.
                let mut j = i + 1;
                let mut saw = 0;
                let mut prev = Tok::Select;
                while let Some(x) = at(j) {
                    if x == Tok::From {
                        break;
                    }
                    if j > i + 12 || (x == Tok::Word && prev == Tok::Word) {
                        saw = 0;
                        break;
                    }
                    saw += 1;
                    prev = x;
                    j += 1;
                }
                if saw > 0
                    && at(j) == Some(Tok::From)
                    && matches!(at(j + 1), Some(Tok::Word | Tok::Kw | Tok::LParen))
                {
                    return Some("select from");
                }
                if i > 0
                    && matches!(
                        at(i - 1),
                        Some(Tok::LParen | Tok::Semi | Tok::Str | Tok::Logic)
                    )
                    && select_list_start(t, i + 1)
                {
                    return Some("subquery");
                }
            }
            // `' ORDER BY 3--`, `1 GROUP BY x HAVING 1=1`.
            Tok::Clause
                if i > 0
                    && matches!(at(i - 1), Some(Tok::Str | Tok::Num | Tok::RParen))
                    && !list_marker(&t[i - 1]) =>
            {
                let by = t.get(i + 1).is_some_and(|x| x.text == "by");
                let next = if by { at(i + 2) } else { at(i + 1) };
                if matches!(next, Some(Tok::Num | Tok::Func | Tok::Word))
                    && ((quoted && i == 1 && !t[0].text.contains(' '))
                        || at(n - 1) == Some(Tok::Comment)
                        || (tk.text == "having" && is_cmp(t.get(if by { i + 3 } else { i + 2 })))
                        || tk.text == "procedure")
                {
                    return Some("clause after input");
                }
            }
            // `) like (`, `)regexp('`: a closed parenthesis, then a word comparison on a
            // new operand: the input closes the query's expression and extends it.
            Tok::RParen
                if i == 0
                    && !quoted
                    && t.get(1).is_some_and(|x| {
                        x.tok == Tok::Op && matches!(x.text, "like" | "rlike" | "regexp")
                    })
                    && matches!(at(2), Some(Tok::LParen | Tok::Str | Tok::Num)) =>
            {
                return Some("paren break and comparison");
            }
            Tok::Comment if quoted && i == 1 && !anchor_value(&t[0], tk) && !quoted_option(tk) => {
                return Some("comment after string break");
            }
            Tok::Kw if tk.text == "set" && !quoted && user_variable_assignment(t, i) => {
                return Some("user variable assignment");
            }
            Tok::Stmt if i == 0 && !quoted && start_statement(t) => {
                return Some("SQL statement as input");
            }
            Tok::Str | Tok::Num | Tok::Kw if i == 0 && !quoted && literal_comparison(t) => {
                return Some("literal comparison");
            }
            Tok::Str
                if i == 0
                    && !quoted
                    && is_cmp(t.get(1))
                    && matches!(at(2), Some(Tok::Str | Tok::Num)) =>
            {
                return Some("literal comparison");
            }
            Tok::Num
                if i == 0
                    && t.get(1)
                        .is_some_and(|x| x.tok == Tok::Logic && x.text != "not")
                    && t.get(2)
                        .is_some_and(|x| matches!(x.text, "true" | "false" | "null"))
                    && n <= 4 =>
            {
                return Some("boolean literal after input");
            }
            Tok::Num
                if matches!(
                    i.checked_sub(1).and_then(at),
                    Some(Tok::Comma | Tok::Logic | Tok::LParen | Tok::Semi)
                ) && is_cmp(t.get(i + 1))
                    && at(i + 2) == Some(Tok::Num) =>
            {
                return Some("numeric comparison after separator");
            }
            Tok::Str if quoted && i == 0 => {
                // After the break: `'; ...`, `') or (...`, `' + f(x) + '`, `'||(select ...)`.
                let value_like = !tk.text.contains(' ') && tk.text.len() <= 40;
                let logic_at_1 = t
                    .get(1)
                    .is_some_and(|x| x.tok == Tok::Logic && x.text != "not");
                if logic_at_1 && value_like && at(2).is_some_and(is_value) {
                    return Some("boolean after string break");
                }
                if matches!(at(1), Some(Tok::Op | Tok::Logic | Tok::Kw | Tok::Clause))
                    && matches!(at(n - 1), Some(Tok::Comment | Tok::Semi))
                {
                    return Some("string break, expression and comment");
                }
                if matches!(at(1), Some(Tok::Union | Tok::Select | Tok::Stmt)) {
                    return Some("keyword after string break");
                }
                if at(1) == Some(Tok::Semi) && value_like {
                    return Some("statement end after string break");
                }
                if value_like && value_list_tail(tk, &t[1..]) {
                    return Some("string break into a value list");
                }
                match (at(1), at(2)) {
                    (
                        Some(Tok::RParen),
                        Some(Tok::Logic | Tok::Semi | Tok::Comment | Tok::Union),
                    ) => {
                        return Some("string and paren break");
                    }
                    (
                        Some(Tok::Op | Tok::Logic),
                        Some(Tok::Func | Tok::LParen | Tok::Select | Tok::Var),
                    ) => {
                        return Some("expression after string break");
                    }
                    (Some(Tok::Op), Some(Tok::Str)) if n <= 4 && is_cmp(t.get(1)) => {
                        return Some("string comparison after break");
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether a normalized input can make [`check_tokens`] report anything. It cannot when
/// it has only lower-case letters, digits, space and `_.,/-` (no `--` comment), and none
/// of its words is an SQL keyword or catalog name: then every token is a word, number,
/// comma, dot or `-`/`/` operator, and each check needs a keyword, a quote, a comparison
/// operator, a parenthesis, `;`, `@` or a comment. Most clean inputs exit here without
/// being tokenized.
pub fn may_be_sql(normalized: &str) -> bool {
    let b = normalized.as_bytes();
    if !b.iter().all(|c| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, b' ' | b'_' | b'.' | b',' | b'/' | b'-')
    }) || normalized.contains("--")
    {
        return true;
    }
    normalized
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| !w.is_empty() && (classify_word(w) != Tok::Word || ATTACK_WORDS.contains(&w)))
}

/// Runs the three contexts (as-is, single-quoted, double-quoted) on a normalized input.
pub fn detect(normalized: &str) -> Option<&'static str> {
    if normalized.len() < 2 || !may_be_sql(normalized) {
        return None;
    }
    detect_tokens(normalized)
}

/// [`detect`] without the [`may_be_sql`] prefilter.
fn detect_tokens(normalized: &str) -> Option<&'static str> {
    if normalized.len() < 2 {
        return None;
    }
    let prose_quotes = apostrophes_only(normalized);
    if let Some(r) = check_tokens(&tokenize(normalized, None), false, prose_quotes) {
        return Some(r);
    }
    for q in [b'\'', b'"'] {
        if normalized.as_bytes().contains(&q)
            && let Some(r) = check_tokens(&tokenize(normalized, Some(q)), true, prose_quotes)
        {
            return Some(r);
        }
    }
    None
}

/// The structural shape of a SQL statement: token classes with literals folded, so
/// `WHERE id = 42` and `WHERE id = 7` share a shape while `WHERE id = 42 OR 1=1` does not.
pub fn shape(statement: &str) -> Vec<Tok> {
    tokenize(statement, None)
        .into_iter()
        .map(|t| t.tok)
        .collect()
}

#[cfg(test)]
#[path = "sqli_tests.rs"]
mod tests;
