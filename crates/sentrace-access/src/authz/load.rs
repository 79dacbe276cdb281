//! Loading policy files: parse, name each policy by where it came from, validate the whole
//! set against the schema. Any error names the file, the line and column, and the reason.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;

use super::{DEFAULT_POLICIES, SCHEMA};

/// Largest policy file accepted.
pub const MAX_POLICY_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Most policies in one set.
pub const MAX_POLICIES: usize = 100_000;

/// One policy file's text and the name to report it by (its path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySource {
    /// The file name used in errors and decisions.
    pub name: String,
    /// The Cedar text.
    pub text: String,
}

/// Why a policy set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {reason}")]
pub struct PolicyError {
    /// The policy file (or `schema`).
    pub file: String,
    /// Line, 1-based (0 when unknown).
    pub line: usize,
    /// Column, 1-based (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub reason: String,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// Turns a Cedar diagnostic into a [`PolicyError`] located in `text`.
fn located(file: &str, text: &str, d: &(dyn Diagnostic + Send + Sync)) -> PolicyError {
    let offset = d.labels().and_then(|mut l| l.next()).map(|l| l.offset());
    let (line, column) = offset.map_or((0, 0), |o| line_col(text, o));
    let mut reason = d.to_string();
    if let Some(help) = d.help() {
        reason.push_str(&format!(" ({help})"));
    }
    PolicyError {
        file: file.to_string(),
        line,
        column,
        reason,
    }
}

/// The default policy file's name in errors and decisions.
pub const DEFAULT_NAME: &str = "<default policies>";

/// Parses, renames and validates every source. Returns the set, the schema and each
/// policy's origin (`file:line @id`).
pub(super) fn load(
    sources: &[PolicySource],
    include_defaults: bool,
) -> Result<(PolicySet, Schema, HashMap<String, String>), PolicyError> {
    let schema = Schema::from_cedarschema_str(SCHEMA)
        .map(|(s, _warnings)| s)
        .map_err(|e| located("schema", SCHEMA, &e))?;
    let defaults = PolicySource {
        name: DEFAULT_NAME.to_string(),
        text: DEFAULT_POLICIES.to_string(),
    };
    let all = include_defaults
        .then_some(&defaults)
        .into_iter()
        .chain(sources.iter());

    let mut set = PolicySet::new();
    let mut origins = HashMap::new();
    // Where each renamed policy's text lives, to locate validation errors.
    let mut where_from: HashMap<String, (usize, usize)> = HashMap::new();
    let files: Vec<&PolicySource> = all.collect();
    for (file_index, src) in files.iter().enumerate() {
        if src.text.len() > MAX_POLICY_FILE_BYTES {
            return Err(PolicyError {
                file: src.name.clone(),
                line: 0,
                column: 0,
                reason: format!("larger than {MAX_POLICY_FILE_BYTES} bytes"),
            });
        }
        let parsed =
            PolicySet::from_str(&src.text).map_err(|e| located(&src.name, &src.text, &e))?;
        let mut search_from = 0;
        for (n, policy) in parsed.policies().enumerate() {
            let text = policy.to_string();
            let offset = src
                .text
                .get(search_from..)
                .and_then(|rest| rest.find(text.trim()))
                .map(|o| o + search_from);
            if let Some(o) = offset {
                search_from = o + text.trim().len();
            }
            let (line, _) = offset.map_or((0, 0), |o| line_col(&src.text, o));
            let id = format!("f{file_index}p{n}");
            let label = match policy.annotation("id") {
                Some(a) => format!("{}:{line} @id({a:?})", src.name),
                None => format!("{}:{line}", src.name),
            };
            origins.insert(id.clone(), label);
            where_from.insert(id.clone(), (file_index, offset.unwrap_or(0)));
            set.add(policy.new_id(PolicyId::new(&id)))
                .map_err(|e| PolicyError {
                    file: src.name.clone(),
                    line,
                    column: 0,
                    reason: e.to_string(),
                })?;
            if origins.len() > MAX_POLICIES {
                return Err(PolicyError {
                    file: src.name.clone(),
                    line,
                    column: 0,
                    reason: format!("more than {MAX_POLICIES} policies"),
                });
            }
        }
    }

    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    if let Some(err) = result.validation_errors().next() {
        let id = err.policy_id().to_string();
        let (file_index, start) = where_from.get(&id).copied().unwrap_or((0, 0));
        let src = files.get(file_index).copied().unwrap_or(&defaults);
        let mut e = located(&src.name, &src.text, err);
        // Offsets of validation errors are relative to the policy's own text.
        if let Some(o) = err.labels().and_then(|mut l| l.next()).map(|l| l.offset()) {
            let (line, column) = line_col(&src.text, start + o);
            e.line = line;
            e.column = column;
        }
        e.reason = format!(
            "{} (policy {})",
            e.reason,
            origins.get(&id).map_or(id.as_str(), |s| s)
        );
        return Err(e);
    }
    Ok((set, schema, origins))
}
