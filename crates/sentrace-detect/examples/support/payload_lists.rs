//! Public payload lists (one payload a line, as fuzzers and intruder tools read them) as
//! labelled attack spans for the evaluation example.
//!
//! `--payloads DIR` names a folder with one sub-folder per family (`ldap`,
//! `path_traversal`, `abs_path`, `cmdi`, `ssti`, `sqli`, ... any [`Family`] name, and
//! `abs_path` for absolute paths, counted as `path_traversal`), each holding `*.txt` or
//! other text files. Blank lines and lines starting with `#` are skipped. Each payload is
//! sent as the value of a query parameter (`/search?q=...`): characters that would split
//! the query (`&`, `#`, `+`, `=`, space, controls, non-ASCII) are percent-encoded and
//! every other byte, `%` included, is sent as written, so a list's own encodings (`%c0%ae`)
//! reach the detector as the list meant them.
#![allow(dead_code)]

use std::path::Path;

use sentrace_detect::Family;

/// One payload from a list.
pub struct ListCase {
    /// Sub-folder (family label) and file name.
    pub source: String,
    /// The family the payload belongs to.
    pub family: Family,
    /// Span attributes.
    pub attrs: Vec<(String, String)>,
}

fn family_of(dir: &str) -> Option<Family> {
    Some(match dir {
        "ldap" => Family::Ldap,
        "path_traversal" | "abs_path" | "overlong" => Family::PathTraversal,
        "cmdi" => Family::Cmdi,
        "ssti" => Family::Ssti,
        "sqli" => Family::Sqli,
        "xss" => Family::Xss,
        "ssrf" => Family::Ssrf,
        "nosql" => Family::Nosql,
        "code_injection" => Family::CodeInjection,
        _ => return None,
    })
}

/// Percent-encodes what would split a query string.
pub fn encode_query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'&' | b'#' | b'+' | b'=' | b' ' | 0..=0x1f | 0x7f..=0xff => {
                out.push_str(&format!("%{b:02X}"))
            }
            _ => out.push(char::from(b)),
        }
    }
    out
}

/// Loads every list under `dir` (see the module documentation), at most `max_per_file`
/// payloads from each file (evenly spaced, so a 20,000-line list is sampled across).
pub fn load(dir: &Path, max_per_file: usize) -> Vec<ListCase> {
    let mut out = Vec::new();
    let mut subdirs: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    for sub in subdirs {
        let Some(label) = sub.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let Some(family) = family_of(&label) else {
            continue;
        };
        let mut files: Vec<_> = std::fs::read_dir(&sub)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .collect();
            let step = lines.len().div_ceil(max_per_file.max(1)).max(1);
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("?");
            for l in lines.iter().step_by(step) {
                out.push(ListCase {
                    source: format!("{label}/{name}"),
                    family,
                    attrs: vec![
                        ("http.request.method".into(), "GET".into()),
                        ("url.path".into(), "/search".into()),
                        ("url.query".into(), format!("q={}", encode_query_value(l))),
                    ],
                });
            }
        }
    }
    out
}
