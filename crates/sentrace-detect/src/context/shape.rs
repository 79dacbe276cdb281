//! The shape of one input value: its character classes and its token structures, as bits.
//!
//! A value's shape is a `u32`: the low bits are character classes (letters, digits, shell
//! metacharacters, angle brackets, ...), the high bits token structures (a shell command
//! line, an SQL statement, HTML markup, active HTML, a file path, dot-dot, JSON, a template
//! expression). The classifiers are cheap single passes and deliberately independent of the
//! payload rules: a field learns "carries shell" from what its values are, and a rule hit is
//! only explained by a structure the value itself carries.

use crate::rules::Family;

/// Letters.
pub const ALPHA: u32 = 1 << 0;
/// Digits.
pub const DIGIT: u32 = 1 << 1;
/// Space or tab.
pub const SPACE: u32 = 1 << 2;
/// Line breaks.
pub const NEWLINE: u32 = 1 << 3;
/// `'` or `"`.
pub const QUOTE: u32 = 1 << 4;
/// A backtick.
pub const BACKTICK: u32 = 1 << 5;
/// `;`, `|`, `&` or `$`.
pub const SHELL_META: u32 = 1 << 6;
/// `<` or `>`.
pub const ANGLE: u32 = 1 << 7;
/// `(){}[]`.
pub const BRACKET: u32 = 1 << 8;
/// `/` or `\`.
pub const SLASH: u32 = 1 << 9;
/// `%` (an escape after decoding is a second layer of encoding).
pub const PERCENT: u32 = 1 << 10;
/// Other ASCII punctuation (`=:,.-_+*?!#@~^`).
pub const PUNCT: u32 = 1 << 11;
/// Characters outside ASCII.
pub const NON_ASCII: u32 = 1 << 12;
/// Control characters other than tab and line breaks.
pub const CONTROL: u32 = 1 << 13;
/// Mask of the character-class bits.
pub const CLASSES: u32 = (1 << 14) - 1;

/// A shell command line: a known command where a command starts, with shell syntax.
pub const SHELL: u32 = 1 << 16;
/// An SQL statement or fragment: a statement keyword, a clause keyword and SQL punctuation.
pub const SQL: u32 = 1 << 17;
/// HTML markup: an element tag.
pub const HTML: u32 = 1 << 18;
/// HTML that runs script: `<script`, an event-handler attribute, a `javascript:` URL, or an
/// element that loads or runs code (`object`, `embed`, `svg`, `base`, `meta`, ...).
pub const ACTIVE_HTML: u32 = 1 << 19;
/// A file path (`/a/b`, `./a`, `C:\a`, `~/a`).
pub const PATH: u32 = 1 << 20;
/// A dot-dot path step (`../`, `..\`).
pub const DOTDOT: u32 = 1 << 21;
/// A JSON document.
pub const JSON: u32 = 1 << 22;
/// A template or expression-language marker (`{{`, `${`, `#{`, `<%`).
pub const TEMPLATE: u32 = 1 << 23;
/// The whole value is the absolute path of a system file or folder (`/etc/nginx/nginx.conf`,
/// `/var/www/html/index.php`, `/home/u/.profile`, `C:\inetpub\wwwroot\web.config`), as
/// [`crate::payload::paths`] reads it. A file manager's or an admin console's `path`
/// field learns it; a field of names, ids or ordinary paths (`docs/a.md`, `/srv/files/a.pdf`,
/// web routes) does not, so a system path read there is not explained by its `path` bit.
pub const SYSTEM_PATH: u32 = 1 << 24;
/// Program source in a general-purpose language (JavaScript, Python, Go, Rust, Java, C#,
/// C, Ruby, PHP): a declaration or control keyword where a statement starts (`const`,
/// `def`, `return`, `import`, `if (`, `<?php`, ...) or a spaced assignment there
/// (`user = ...`), together with a call (`fetch(url)`, `os.path.join(`) or a second such
/// statement. A paste service's or a code review tool's `content` field learns it; shell
/// scripts (`if [ ... ]; then`, `X=1 make`), markup and prose are not code, so a CI
/// `script` or a CMS `html` field never learns it and a code-injection hit there stays
/// high.
pub const CODE: u32 = 1 << 25;

/// Every bit with its name (for reports, pins and the profile commands).
pub const NAMES: &[(u32, &str)] = &[
    (ALPHA, "alpha"),
    (DIGIT, "digit"),
    (SPACE, "space"),
    (NEWLINE, "newline"),
    (QUOTE, "quote"),
    (BACKTICK, "backtick"),
    (SHELL_META, "shell_meta"),
    (ANGLE, "angle"),
    (BRACKET, "bracket"),
    (SLASH, "slash"),
    (PERCENT, "percent"),
    (PUNCT, "punct"),
    (NON_ASCII, "non_ascii"),
    (CONTROL, "control"),
    (SHELL, "shell"),
    (SQL, "sql"),
    (HTML, "html"),
    (ACTIVE_HTML, "active_html"),
    (PATH, "path"),
    (DOTDOT, "dotdot"),
    (JSON, "json"),
    (TEMPLATE, "template"),
    (SYSTEM_PATH, "system_path"),
    (CODE, "code"),
];

/// Names of the structure bits an operator may pin.
pub const STRUCTURE_NAMES: &[&str] = &[
    "shell",
    "sql",
    "html",
    "active_html",
    "path",
    "dotdot",
    "json",
    "template",
    "system_path",
    "code",
];

/// The bit of a name in [`NAMES`].
pub fn bit_of(name: &str) -> Option<u32> {
    NAMES.iter().find(|(_, n)| *n == name).map(|(b, _)| *b)
}

/// The names of the bits set in `bits`.
pub fn names(bits: u32) -> Vec<&'static str> {
    NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The structure a payload family's hit is about, if learned context may explain it: a
/// command-injection hit on a value that is a shell command line, an XSS hit on markup, an
/// SQL-injection hit on SQL, a traversal hit on a path, a code-injection hit on program
/// source. Families with no normal carrier (JNDI, SSRF, SSTI, XXE, NoSQL, LDAP) are never
/// explained.
pub fn structure_of(family: Family) -> Option<u32> {
    match family {
        Family::Cmdi => Some(SHELL),
        Family::Xss => Some(HTML),
        Family::Sqli => Some(SQL),
        Family::PathTraversal => Some(PATH),
        Family::CodeInjection => Some(CODE),
        _ => None,
    }
}

/// Commands common in scripts and in command injections, looked for where a command starts.
const COMMANDS: &[&str] = &[
    "apk",
    "apt",
    "apt-get",
    "awk",
    "base64",
    "bash",
    "brew",
    "bundle",
    "cargo",
    "cat",
    "cd",
    "chmod",
    "chown",
    "cmake",
    "cp",
    "curl",
    "cut",
    "date",
    "dd",
    "df",
    "diff",
    "dig",
    "docker",
    "dotnet",
    "du",
    "echo",
    "env",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "find",
    "for",
    "gcc",
    "git",
    "go",
    "gradle",
    "grep",
    "gzip",
    "head",
    "helm",
    "hostname",
    "id",
    "if",
    "ifconfig",
    "java",
    "jq",
    "kill",
    "kubectl",
    "ln",
    "ls",
    "make",
    "mkdir",
    "mv",
    "mvn",
    "nc",
    "netstat",
    "node",
    "npm",
    "npx",
    "perl",
    "php",
    "ping",
    "pip",
    "pip3",
    "pnpm",
    "printf",
    "ps",
    "pwd",
    "pytest",
    "python",
    "python3",
    "rm",
    "rsync",
    "ruby",
    "scp",
    "sed",
    "set",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "source",
    "ssh",
    "sudo",
    "tail",
    "tar",
    "tee",
    "terraform",
    "test",
    "touch",
    "tr",
    "true",
    "uname",
    "unzip",
    "wc",
    "wget",
    "whoami",
    "xargs",
    "yarn",
    "zip",
    "zsh",
];

fn is_command(word: &str) -> bool {
    if word.starts_with("./") && word.len() > 2 {
        return true;
    }
    let w = word.rsplit('/').next().unwrap_or(word);
    (1..=16).contains(&w.len()) && COMMANDS.binary_search(&w).is_ok()
}

/// Character classes of `v`.
pub fn classes(v: &str) -> u32 {
    let mut bits = 0;
    for b in v.bytes() {
        bits |= match b {
            b'a'..=b'z' | b'A'..=b'Z' => ALPHA,
            b'0'..=b'9' => DIGIT,
            b' ' | b'\t' => SPACE,
            b'\n' | b'\r' => NEWLINE,
            b'\'' | b'"' => QUOTE,
            b'`' => BACKTICK,
            b';' | b'|' | b'&' | b'$' => SHELL_META,
            b'<' | b'>' => ANGLE,
            b'(' | b')' | b'{' | b'}' | b'[' | b']' => BRACKET,
            b'/' | b'\\' => SLASH,
            b'%' => PERCENT,
            0x80..=0xff => NON_ASCII,
            0..=0x1f | 0x7f => CONTROL,
            _ => PUNCT,
        };
    }
    bits
}

/// Whether `v` is a shell command line: a known command where a command starts (the
/// value's start, a line start, after `;`, `&&`, `||`, `|`, `$(`, a backtick, `then` or
/// `do`), and either two such commands or one with shell syntax (an option, a variable,
/// a pipe, a redirection).
fn shell(v: &str, cls: u32) -> bool {
    let mut commands = 0;
    let mut syntax = cls & (SHELL_META | BACKTICK) != 0;
    for seg in v.split(['\n', ';', '|', '&', '`', '(']) {
        let mut words = seg.split_ascii_whitespace();
        let mut w = words.next();
        // Skip `sudo`, `then`, `do`, `else`, env assignments.
        while let Some(x) = w {
            if matches!(x, "sudo" | "then" | "do" | "else" | "!" | "{")
                || (x.contains('=') && !x.starts_with('='))
            {
                w = words.next();
            } else {
                break;
            }
        }
        let Some(first) = w else { continue };
        let first = first.trim_start_matches(['$', '{']);
        if is_command(first) {
            commands += 1;
            // An option, a variable or a redirection among its first arguments.
            if words
                .take(8)
                .any(|a| a.starts_with('-') || a.contains('$') || a.starts_with('>'))
            {
                syntax = true;
            }
        }
        if commands >= 2 || (commands >= 1 && syntax) {
            return true;
        }
    }
    false
}

/// A statement keyword and the keywords that follow it within a few words in SQL.
const SQL_PAIRS: &[(&str, &[&str])] = &[
    (
        "select",
        &[
            "from",
            "null",
            "version",
            "user",
            "database",
            "sleep",
            "pg_sleep",
            "current_setting",
            "set_config",
            "serverproperty",
            "sqlite_version",
        ],
    ),
    ("insert", &["into"]),
    ("update", &["set"]),
    ("delete", &["from"]),
    ("union", &["select", "all"]),
    ("drop", &["table", "database", "schema", "user"]),
    (
        "create",
        &[
            "table",
            "database",
            "index",
            "user",
            "function",
            "procedure",
        ],
    ),
    ("alter", &["table", "user", "database"]),
    ("truncate", &["table"]),
    ("waitfor", &["delay", "time"]),
    ("order", &["by"]),
    ("group", &["by"]),
    ("exec", &["master", "xp_cmdshell", "sp_executesql"]),
];

/// Whether `v` reads as SQL: a statement keyword followed within four words by a keyword
/// it takes (`select .. from`, `union select`, `update .. set`), and SQL punctuation.
fn sql(v: &str, cls: u32) -> bool {
    if cls & (QUOTE | BRACKET | PUNCT | SHELL_META) == 0 || cls & ALPHA == 0 {
        return false;
    }
    let punct = v
        .bytes()
        .any(|b| matches!(b, b'\'' | b'=' | b'*' | b'(' | b',' | b';' | b'@'))
        || v.contains("--");
    if !punct {
        return false;
    }
    // Words, borrowed; at most 4096 looked at.
    let words: Vec<&str> = v
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| (2..=16).contains(&w.len()))
        .take(4096)
        .collect();
    words.iter().enumerate().any(|(i, w)| {
        SQL_PAIRS.iter().any(|(verb, next)| {
            w.eq_ignore_ascii_case(verb)
                && words
                    .iter()
                    .skip(i + 1)
                    .take(4)
                    .any(|x| next.iter().any(|n| x.eq_ignore_ascii_case(n)))
        })
    })
}

/// Elements and attributes that load or run code.
const ACTIVE: &[&str] = &[
    "<script",
    "javascript:",
    "vbscript:",
    "data:text/html",
    "srcdoc",
    "<object",
    "<embed",
    "<applet",
    "<base",
    "<meta",
    "<svg",
    "<math",
    "<style",
    "<link",
    "<form",
    "expression(",
];

/// HTML markup (an element tag) and whether it is active.
fn html(v: &str) -> (bool, bool) {
    let b = v.as_bytes();
    let mut tag = false;
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|c| *c == b'<') {
        let at = i + p;
        let rest = &b[at + 1..];
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        let name = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-')
            .count();
        if name > 0
            && rest[0].is_ascii_alphabetic()
            && rest
                .get(name)
                .is_none_or(|c| c.is_ascii_whitespace() || matches!(c, b'>' | b'/'))
        {
            tag = true;
            break;
        }
        i = at + 1;
    }
    let lower = v.to_ascii_lowercase();
    let active = ACTIVE.iter().any(|a| lower.contains(a)) || event_handler(&lower);
    (tag, active)
}

/// An event-handler attribute: ` on<letters>=` (with optional spaces), or after `/` or a quote.
fn event_handler(lower: &str) -> bool {
    let b = lower.as_bytes();
    let mut i = 0;
    while let Some(p) = lower[i..].find("on") {
        let at = i + p;
        let before_ok = at > 0 && matches!(b[at - 1], b' ' | b'/' | b'"' | b'\'' | b'\t' | b'\n');
        let letters = b[at + 2..]
            .iter()
            .take_while(|c| c.is_ascii_lowercase())
            .count();
        let mut j = at + 2 + letters;
        while b.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
            j += 1;
        }
        if before_ok && letters >= 3 && b.get(j) == Some(&b'=') {
            return true;
        }
        i = at + 2;
    }
    false
}

/// A path token: `/a/b`, `./a`, `~/a`, `a/b/c`, or `C:\a`.
fn path(v: &str) -> bool {
    v.split(|c: char| c.is_ascii_whitespace() || matches!(c, '"' | '\'' | '=' | '(' | ')'))
        .any(|t| {
            let b = t.as_bytes();
            let drive = b.len() > 3
                && b[0].is_ascii_alphabetic()
                && b[1] == b':'
                && matches!(b[2], b'\\' | b'/');
            let seps = t.bytes().filter(|c| matches!(c, b'/' | b'\\')).count();
            !t.contains("://")
                && (drive
                    || ((t.starts_with('/') || t.starts_with("./") || t.starts_with("~/"))
                        && t.len() > 2)
                    || seps >= 2)
        })
}

/// Whether the whole value is the absolute path of a system file or folder (the check of
/// the `lfi-absolute-path` rule, on the value as that rule reads it).
fn system_path(v: &str) -> bool {
    let t = v.trim_start_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    let b = t.as_bytes();
    let rooted =
        b.first() == Some(&b'/') || (b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':');
    rooted
        && v.len() <= crate::payload::paths::MAX_PATH_BYTES
        && crate::payload::paths::detect(&crate::normalize::fold_cow(v)).is_some()
}

/// Keywords that start a declaration or statement in a general-purpose language (not in
/// shell: `if`, `for` and `while` count only before `(` or on a line that opens a block).
const CODE_KEYWORDS: &[&str] = &[
    "<?php",
    "async",
    "await",
    "catch",
    "class",
    "const",
    "def",
    "elif",
    "fn",
    "func",
    "function",
    "impl",
    "import",
    "let",
    "package",
    "private",
    "protected",
    "pub",
    "public",
    "return",
    "static",
    "struct",
    "throw",
    "using",
    "var",
];

/// Longest value looked at for [`CODE`] (snippets past it are judged on their start).
const MAX_CODE_SCAN: usize = 8192;

/// Whether `v` reads as program source (see [`CODE`]).
fn code(v: &str, cls: u32) -> bool {
    if cls & BRACKET == 0 || cls & ALPHA == 0 {
        return false;
    }
    let mut end = v.len().min(MAX_CODE_SCAN);
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    let v = &v[..end];
    // A call: an identifier glued to `(` (`fetch(url)`, `os.path.join(`, a Rust macro
    // `format!(`); `$(` and `((` are shell.
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let call = v
        .as_bytes()
        .windows(3)
        .any(|w| w[2] == b'(' && (ident(w[1]) || (w[1] == b'!' && ident(w[0]))));
    let mut statements = 0;
    for stmt in v.split(['\n', ';', '{', '}']) {
        let t = stmt.trim_start();
        // The first identifier (PHP variables start with `$`).
        let n = t
            .bytes()
            .enumerate()
            .take_while(|(i, c)| c.is_ascii_alphanumeric() || *c == b'_' || (*i == 0 && *c == b'$'))
            .count();
        let (first, rest) = if t.starts_with("<?php") {
            t.split_at(5)
        } else {
            t.split_at(n)
        };
        let keyword = if CODE_KEYWORDS.binary_search(&first).is_ok() {
            first == "<?php" || rest.is_empty() || rest.starts_with([' ', '\t', '('])
        } else {
            // C-style control flow; shell writes `if [`, `for f in`, `while read`.
            matches!(first, "if" | "for" | "while" | "switch")
                && rest.trim_start().starts_with('(')
                && !rest.trim_start().starts_with("((")
        };
        if keyword || (n > 0 && spaced_assignment(rest)) {
            statements += 1;
        }
        if (statements >= 1 && call) || statements >= 2 {
            return true;
        }
    }
    false
}

/// Whether `rest`, the text after a statement's first identifier, assigns to it with
/// spaces around the operator (`user = ...`, `a[i] += 1`, `x := f()`, `this.n = 0`); a
/// shell assignment has no spaces (`X=1`), a comparison is `==`, an arrow `=>`.
fn spaced_assignment(rest: &str) -> bool {
    let b = rest.as_bytes();
    let mut i = 0;
    // A member or index chain glued to the identifier: `.name`, `[i]`.
    while let Some(c) = b.get(i) {
        match c {
            b'.' | b'_' => i += 1,
            c if c.is_ascii_alphanumeric() && i > 0 => i += 1,
            b'[' => match b[i..].iter().position(|x| *x == b']') {
                Some(p) => i += p + 1,
                None => return false,
            },
            _ => break,
        }
    }
    let r = &rest[i..];
    let Some(r) = r.strip_prefix([' ', '\t']) else {
        return false;
    };
    let r = r.trim_start();
    let r = r
        .strip_prefix(['+', '-', '*', '/', ':', '|', '&'])
        .unwrap_or(r);
    r.starts_with('=')
        && !r.starts_with("==")
        && !r.starts_with("=>")
        && r[1..].starts_with([' ', '\t'])
}

/// Whether a value without angle brackets holds a script URL (`javascript:`, `vbscript:`,
/// `data:text/html`), case-insensitively, without allocating.
fn script_url(v: &str) -> bool {
    v.as_bytes()
        .windows(7)
        .any(|w| w.eq_ignore_ascii_case(b"script:"))
        || v.as_bytes()
            .windows(14)
            .any(|w| w.eq_ignore_ascii_case(b"data:text/html"))
}

/// The shape of a decoded input value.
pub fn shape(v: &str) -> u32 {
    let cls = classes(v);
    let mut bits = cls;
    // A word or number carries no structure.
    if cls & !(ALPHA | DIGIT | NON_ASCII) == 0 {
        return bits;
    }
    if cls & (SPACE | NEWLINE | SHELL_META | BACKTICK | BRACKET) != 0 && shell(v, cls) {
        bits |= SHELL;
    }
    if sql(v, cls) {
        bits |= SQL;
    }
    if cls & ANGLE != 0 || (v.contains(':') && script_url(v)) {
        let (tag, active) = html(v);
        if tag {
            bits |= HTML;
        }
        if active {
            bits |= ACTIVE_HTML;
        }
    }
    if cls & SLASH != 0 {
        if path(v) {
            bits |= PATH;
        }
        if v.contains("../") || v.contains("..\\") {
            bits |= DOTDOT | PATH;
        }
        if bits & PATH != 0 && system_path(v) {
            bits |= SYSTEM_PATH;
        }
    }
    if code(v, cls) {
        bits |= CODE;
    }
    let t = v.trim();
    if ((t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']')))
        && t.contains("\":")
    {
        bits |= JSON;
    }
    if v.contains("{{") || v.contains("${") || v.contains("#{") || v.contains("<%") {
        bits |= TEMPLATE;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_sorted() {
        assert!(COMMANDS.windows(2).all(|w| w[0] < w[1]));
    }

    /// `code` looks keywords up by binary search.
    #[test]
    fn code_keywords_are_sorted() {
        assert!(CODE_KEYWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn structures() {
        let has = |v: &str, b: u32| shape(v) & b != 0;
        for v in [
            "npm ci && npm test; chmod +x ./deploy.sh",
            "curl -fsSL https://get.example.dev/install.sh -o install.sh",
            "rm -rf build dist",
            "x; cat /etc/passwd",
            "a | id",
            "make -j$(nproc) all",
            "kubectl apply -f k8s/web.yaml",
        ] {
            assert!(has(v, SHELL), "shell: {v}");
        }
        for v in [
            "Hi team; the order arrived late (again), but it is great.",
            "Options are A | B | C, pick one.",
            "shoes",
            "rm",
        ] {
            assert!(!has(v, SHELL), "not shell: {v}");
        }
        assert!(has("1' union select password from users--", SQL));
        assert!(has("SELECT id FROM users WHERE id = 1", SQL));
        assert!(!has("please update the settings page", SQL));
        assert!(!has(
            "<h2>security update</h2><table><tr><td>M</td></tr></table>",
            SQL
        ));
        assert!(has("1 waitfor delay '0:0:5'", SQL));
        let iframe = "<iframe src=\"https://player.example/embed/x\" allowfullscreen></iframe>";
        assert!(has(iframe, HTML) && !has(iframe, ACTIVE_HTML));
        assert!(has("<img src=x onerror=alert(1)>", ACTIVE_HTML));
        assert!(has("<script>alert(1)</script>", ACTIVE_HTML));
        assert!(has("<a href=\"javascript:alert(1)\">x</a>", ACTIVE_HTML));
        assert!(!has("price < 5 and > 2", HTML));
        assert!(!has("Contact us online", ACTIVE_HTML));
        assert!(has("../../etc/passwd", DOTDOT) && has("/etc/passwd", PATH));
        assert!(!has("https://example.com/a", PATH));
        // System paths: the whole value, as the absolute-path rule reads it.
        for v in [
            "/etc/nginx/nginx.conf",
            "/var/www/html/index.php",
            "/home/deploy/.profile",
            "C:\\inetpub\\wwwroot\\web.config",
            " /etc/passwd",
        ] {
            assert!(has(v, SYSTEM_PATH), "{v}");
        }
        for v in [
            "/srv/files/alice/report.pdf",
            "/api/v1/users",
            "docs/guide/intro.md",
            "see /etc/passwd for users",
            "cat /etc/passwd",
            "https://example.com/etc/passwd",
        ] {
            assert!(!has(v, SYSTEM_PATH), "{v}");
        }
        // Program source: a statement keyword or a spaced assignment with a call, or two
        // such statements.
        for v in [
            "const url = `${base}/api/${id}`;\nfetch(url).then(r => r.json());",
            "def total(items):\n    return sum(i.price * i.qty for i in items)",
            "for (let i = 0; i < n; i++) { sum += a[i]; }",
            "if err != nil {\n\treturn fmt.Errorf(\"open %s: %w\", path, err)\n}",
            "let greeting = format!(\"Hello, {}!\", name);",
            "import os\nprint(os.path.join(base_dir, 'static'))",
            "user = User.find_by(email: params[:email])",
            "<?php echo htmlspecialchars($name); ?>",
            "x := compute(y)",
        ] {
            assert!(has(v, CODE), "code: {v}");
        }
        for v in [
            // Shell scripts: assignments without spaces, `if [`, `for f in`, `$(`.
            "export NODE_ENV=production\nnpm ci && npm test",
            "if [ \"$CI_COMMIT_BRANCH\" = \"main\" ]; then ./scripts/release.sh; fi",
            "for f in dist/*.js; do gzip -k \"$f\"; done",
            "make -j$(nproc) all",
            "for ((i = 0; i < 3; i++)); do echo $i; done",
            // Prose, markup, CSS, SQL, payloads without a statement.
            "Let me know if this works (thanks)",
            "We tried both (a) restart and (b) reinstall; neither worked.",
            "<p>Plug in (USB-C) and wait.</p>",
            "@media (max-width: 600px) { .nav { display: none; } }",
            "SELECT current_setting('search_path');",
            "system('id')",
            "eval(base64_decode($_POST['x']))",
            "a == b(c)",
        ] {
            assert!(!has(v, CODE), "not code: {v}");
        }
        assert!(has("SELECT current_setting('search_path');", SQL));
        assert!(has("{\"a\": 1}", JSON));
        assert!(has("${jndi:ldap://x/a}", TEMPLATE));
        assert_eq!(names(SHELL | ALPHA), ["alpha", "shell"]);
        assert_eq!(bit_of("html"), Some(HTML));
    }
}
