//! Short shell commands appended to a value: `127.0.0.1; hostname`, `report.pdf | ls -la`,
//! `x && id`, `alice` then a new line and `whoami`, `$(id)`, `` `uname -a` ``.
//!
//! An application that passes a value to a shell (`ping -c 1 ` + host) runs whatever
//! follows a command separator. The probes that confirm it are short: one recon command,
//! perhaps an option or a path. Other rules read shell syntax anywhere in a value; this
//! one reads the value's structure, on the decoded text before white space is folded (so
//! that a line break still separates):
//!
//! 1. the value splits at its first separator (`;`, `|`, `||`, `&`, `&&`, a line break,
//!    `$(` or a backtick) into what the application expected and what follows;
//! 2. what it expected is value-shaped, not shell-shaped: empty, or at most three words
//!    (a host, a name, a file name, an id) none of which is a command; a CI script
//!    (`npm ci && npm test`) or a sentence with a semicolon is not, and in a markdown
//!    table (a line that starts and ends with `|`) a `|` is a cell border;
//! 3. what follows is exactly one short command: a lower-case recon command (shells are
//!    case-sensitive: `ID` and `Ping` are words, not commands), with at most four
//!    arguments of command-line shape (options, paths, hosts, numbers, quoted strings;
//!    no argument at all only for commands that are no English word, and `id`, `ps`),
//!    then the end, a closing `)` or backtick, a comment or another separator.

/// Longest value read.
const MAX_BYTES: usize = 2048;

/// Commands that are no English word: a probe even with no argument.
const STRONG: &[&str] = &[
    "whoami",
    "hostname",
    "uname",
    "ifconfig",
    "ipconfig",
    "netstat",
    "systeminfo",
    "printenv",
    "nslookup",
    "tasklist",
    "getmac",
    "lsb_release",
    "pwd",
    "uptime",
    "ls",
    "env",
];

/// Commands that are also words (or too short to tell): only with options, paths,
/// hosts or numbers as arguments (`id -u`, `cat /etc/hosts`, `ping -c 3 10.0.0.1`,
/// `sleep 5`), or alone where [`ALONE`] allows.
const WORDLIKE: &[&str] = &[
    "id", "cat", "ps", "ping", "sleep", "curl", "wget", "nc", "ncat", "type", "dir", "head",
    "tail", "find", "bash", "sh", "python", "python3", "perl", "echo", "who", "w", "ver", "net",
    "dig", "host", "ip", "groups", "last", "df", "free", "nproc",
];

/// Word-like commands that are a probe even with no argument.
const ALONE: &[&str] = &["id", "ps", "who", "ver", "groups"];

fn is_command(w: &str) -> bool {
    STRONG.contains(&w) || WORDLIKE.contains(&w)
}

/// Whether an argument has command-line shape: an option, a path, a host or address, a
/// number, or a quoted string.
fn arg_shaped(a: &str) -> bool {
    let b = a.as_bytes();
    match b.first() {
        Some(b'-' | b'/' | b'.' | b'~' | b'$' | b'\'' | b'"') => true,
        Some(c) if c.is_ascii_digit() => true,
        Some(c) if c.is_ascii_alphabetic() => {
            // `c:\windows`, `example.com`, `10.0.0.1`, `http://x`.
            (b.len() > 2 && b[1] == b':')
                || (a.contains('.')
                    && a.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':')))
        }
        _ => false,
    }
}

/// The command and arguments up to the end of the probe, if `rest` starts with exactly one
/// short command (step 3 of the module documentation).
fn short_command(rest: &str) -> bool {
    let rest = rest.trim_start_matches([' ', '\t']);
    // The probe ends at the end, a closing substitution, a comment or a separator.
    let end = rest
        .find([';', '|', '&', '\n', '\r', '`', ')', '#'])
        .unwrap_or(rest.len());
    let mut words = rest[..end].split_ascii_whitespace();
    let Some(cmd) = words.next() else {
        return false;
    };
    // `/usr/bin/id`, `/bin/ls`: the program by path.
    let cmd = cmd.rsplit('/').next().unwrap_or(cmd);
    if !is_command(cmd) {
        return false;
    }
    let mut n = 0;
    for a in words {
        n += 1;
        if n > 4 || !arg_shaped(a) {
            return false;
        }
    }
    n > 0 || STRONG.contains(&cmd) || ALONE.contains(&cmd)
}

/// Programs that start the command lines of scripts and build jobs: a value that starts
/// with one is shell already (`cd build && ls -la`, `npm ci && npm test`).
const SCRIPT_WORDS: &[&str] = &[
    "cd",
    "npm",
    "npx",
    "yarn",
    "pnpm",
    "make",
    "git",
    "docker",
    "kubectl",
    "cargo",
    "go",
    "pip",
    "pip3",
    "node",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "chmod",
    "chown",
    "tar",
    "export",
    "source",
    "sudo",
    "apt-get",
    "apt",
    "yum",
    "apk",
    "test",
    "grep",
    "sed",
    "awk",
    "mvn",
    "gradle",
    "bundle",
    "rake",
    "composer",
    "php",
    "ruby",
    "pytest",
    "tox",
    "helm",
    "terraform",
    "set",
];

/// Whether a word makes the text around it a command line: a program, an option
/// (`-la`), a relative program path (`./deploy.sh`) or an environment assignment
/// (`NODE_ENV=production`).
fn shell_word(w: &str) -> bool {
    let prog = w.rsplit('/').next().unwrap_or(w);
    is_command(prog)
        || SCRIPT_WORDS.contains(&prog)
        || (w.starts_with('-') && w.len() > 1)
        || w.starts_with("./")
        || w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|c| c.is_ascii_uppercase() || c == b'_')
        })
}

/// Whether the text before the separator is value-shaped (step 2).
fn value_shaped(prefix: &str) -> bool {
    !prefix.contains(['|', '`', '\n'])
        && prefix
            .split_ascii_whitespace()
            .enumerate()
            .all(|(i, w)| i < 3 && !shell_word(w))
}

/// The reason if `decoded` (decoded, not folded: line breaks kept) ends in a short command
/// after a separator (see the module documentation).
pub fn detect(decoded: &str) -> Option<&'static str> {
    let mut cut = decoded.len().min(MAX_BYTES);
    while !decoded.is_char_boundary(cut) {
        cut -= 1;
    }
    // A `\n` or `\r` escape written out (`;id\n`, `\nid`) is the line break it names
    // to the many programs that unescape their input.
    let unescaped;
    let s = if decoded[..cut].contains("\\n") || decoded[..cut].contains("\\r") {
        unescaped = decoded[..cut].replace("\\n", "\n").replace("\\r", "\r");
        unescaped.as_str()
    } else {
        &decoded[..cut]
    };
    let b = s.as_bytes();
    // A markdown table row (`| id | name |`) uses `|` as a cell border, not a pipe.
    let table = || {
        s.lines().any(|l| {
            let t = l.trim();
            t.len() > 1 && t.starts_with('|') && t.ends_with('|')
        })
    };
    let mut i = 0;
    while i < b.len() {
        let (sep_len, reason) = match b[i] {
            b';' => (1, "command after `;`"),
            b'|' if table() => return None,
            b'|' | b'&' => {
                let two = b.get(i + 1) == Some(&b[i]);
                (1 + usize::from(two), "command after a pipe or `&`")
            }
            b'\n' | b'\r' => (1, "command on a new line"),
            b'`' => (1, "command in backticks"),
            b'$' if b.get(i + 1) == Some(&b'(') && b.get(i + 2) != Some(&b'(') => {
                (2, "command substitution")
            }
            _ => {
                i += 1;
                continue;
            }
        };
        // Only the first separator splits the expected value from what follows.
        let prefix = s[..i].trim_end_matches(['\r', '\n']);
        if !value_shaped(prefix) {
            return None;
        }
        let rest = s[i + sep_len..].trim_start_matches(['\r', '\n', ' ', '\t']);
        return short_command(rest).then_some(reason);
    }
    None
}

/// Whether a decoded input is a markdown table (GFM): a line that starts with `|` and a
/// delimiter row of dashes (`|---|:--:|`) under it.
pub(crate) fn markdown_table(decoded: &str) -> bool {
    if !decoded.contains('|') || !decoded.contains("--") {
        return false;
    }
    let mut prev_row = false;
    for line in decoded.lines() {
        let l = line.trim();
        let delimiter = l.starts_with('|')
            && l.contains("--")
            && l.bytes().all(|c| matches!(c, b'|' | b'-' | b':' | b' '));
        if delimiter && prev_row {
            return true;
        }
        prev_row = l.starts_with('|') && l.len() > 1;
    }
    false
}

/// Whether an input can hold a command separator: `;`, `|`, `&`, `` ` ``, `$(` or a line
/// break, literal or encoded. Cheap, so that [`detect`] runs on these only. `quiet` says
/// that the normalized input has no punctuation but `-_.,/` (the caller knows it): then
/// only a line break, folded away by normalization, can separate, and the raw bytes are
/// searched for one with `memchr`-backed searches.
pub(crate) fn may_chain(raw: &str, norm: &str, quiet: bool) -> bool {
    let b = raw.as_bytes();
    let line = b.contains(&b'\n')
        || b.contains(&b'\r')
        || raw.contains("%0")
        || raw.contains("%25")
        || raw.contains("\\n")
        || raw.contains("\\r")
        || raw.contains("&#");
    line || (!quiet
        && (norm.bytes().any(|c| matches!(c, b';' | b'|' | b'&' | b'`')) || norm.contains("$(")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::decode;

    #[test]
    fn short_commands() {
        for s in [
            "; hostname",
            "127.0.0.1; hostname",
            "report.pdf | ls -la",
            "x && id",
            "x || whoami",
            "alice\nwhoami",
            "alice%0Awhoami",
            "%0aid",
            "\\nid\\n",
            ";id\\n",
            "a;id\\n",
            "\r\nuname -a\r\n",
            "$(id)",
            "x$(whoami)",
            "`id`",
            "`uname -a`",
            "8.8.8.8 & ping -c 3 10.0.0.1",
            "1;sleep 5",
            "a|cat /etc/passwd",
            "john; /usr/bin/id",
            "1 | type c:\\windows\\win.ini",
            "foo;ls",
            "q=1&& whoami #",
        ] {
            assert!(detect(&decode(s)).is_some(), "missed {s:?}");
        }
    }

    #[test]
    fn not_short_commands() {
        for s in [
            "Hi team; the order arrived late (again).",
            "Options are A | B | C, pick one.",
            "a | b",
            "| Option | Default |\n|---|---|\n| `--port` | 8080 |",
            "| id | name |\n|---|---|\n| 1 | Ada |",
            "npm ci && npm test; chmod +x ./deploy.sh",
            "cd build && ls -la",
            "Thanks; id like to know more",
            "Done; who knows why",
            "Can you check why `id` shows twice?",
            "Tom & Jerry",
            "R&D",
            "salt & pepper; ping me later",
            "Regards\nW",
            "Name\nID\nEmail",
            "Hello\nPing",
            "line one\nls is the command I used",
            "make -j$(nproc) all",
            "price: $(5 + 3)",
            "AT&T",
            "x;y",
            "Meeting moved to 3pm; agenda: budget | hiring",
        ] {
            assert!(detect(&decode(s)).is_none(), "false positive on {s:?}");
        }
    }
}
