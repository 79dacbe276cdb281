//! The `sqli-*` pattern rules through the public API: escaped-quote breaks, MySQL number
//! tricks, cut-off comparisons, backtick and alias breaks, each with hard negatives.

mod common;

use common::findings;
use sentrace_detect::{Detector, Family};

/// The SQL injection rules that report `v`, as `id (reason)`.
fn sqli(d: &Detector, v: &str) -> Vec<String> {
    findings(d, v)
        .into_iter()
        .filter(|(f, _)| *f == Family::Sqli)
        .map(|(_, hit)| hit)
        .collect()
}

#[test]
fn sql_breaks_caught_by_patterns() {
    let d = Detector::with_default_rules().unwrap();
    for v in [
        // A backslash before the quote turns `\'` into `\\'` under addslashes.
        "\\'and",
        "foo\\''or'oof",
        "\\`or`1",
        "\\'or 1=1",
        "\\\"1 or 1-",
        "x\\' || 'a",
        // MySQL drops `1.e` before `(` and `.`.
        "1.e(ascii)",
        "1.e.tables",
        "' or 1.e(\")='",
        "information_schema 1.e.columns",
        "1.e(select password from users)",
        "1.e(ascii 1.e(substring(",
        // A comparison cut after LIKE/REGEXP.
        "something LIKE '",
        "name not like \"",
        "` REGEXP ",
        "`rlike",
        // A backtick identifier closed and the statement ended.
        "admin@juice-sh.op`;",
        "bob`; --",
        // A string break, an alias and a comment.
        "x' email--",
        "admin' foo#",
        "sleep(5)",
        "1 and sleep(5)",
        "count(*)=1",
        // SQL built-ins called and compared, listed or left open.
        "version()",
        "user()='root'",
        "database(),",
        "substring(version(),1,1)=5",
        "sleep(5",
        "benchmark(10000000,md5(1))",
        "x' sleep(20.to_i) '",
    ] {
        assert!(!sqli(&d, v).is_empty(), "missed {v:?}");
    }
}

#[test]
fn prose_and_data_near_those_patterns() {
    let d = Detector::with_default_rules().unwrap();
    for v in [
        // Escaped quotes in JSON text.
        "{\"note\":\"he said \\\"yes\\\" or no\"}",
        "{\"words\":[\"\\\"and\\\"\",\"\\\"or\\\"\"]}",
        "it\\'s fine, don\\'t worry",
        "\\\"1 or 2\\\" items",
        "{\"quote\":\"He wrote \\\"And so it begins\\\"\"}",
        "'He said \\'or else\\''",
        "\\\"Or\\\" is a conjunction",
        // Numbers with `e` and dots.
        "option 1.e.g. this one",
        "v1.e(beta)",
        "1.5e(10)",
        "2.e",
        // Outline numbering before a parenthesis.
        "See Section 4.e(1) of the agreement",
        "per clause 2.e(ii)",
        // LIKE and REGEXP in prose and code.
        "things I like",
        "I like 'em",
        "songs like 'Yesterday'",
        "looks like \"rain\" today",
        "I'd like \"",
        "we'd like '",
        "what's it like '",
        "{\"msg\":\"\\\"or 2 more\\\"\"}",
        "regexp: `^a+$`",
        // A delay with a unit, in prose.
        "sleep(8 hours) is not enough",
        "sleep(8 hours)",
        "count(3 items)",
        // Plural markers that look like calls.
        "user(s) and group(s)",
        "count(s) per day",
        // Backticks in markdown.
        "run `make`; then test",
        "`code`;",
        "use `a` or `b`",
        "})`;",
        "const q = `${a}`;",
        // Possessives and contractions before a dash.
        "don't--",
        "we'll--",
        "Jones' house -- nice",
        "it's fine--really",
        // Names with an apostrophe and a comment marker glued on.
        "O'Neill--",
        "o'connor#",
    ] {
        let h = sqli(&d, v);
        assert!(h.is_empty(), "false positive on {v:?}: {h:?}");
    }
}
