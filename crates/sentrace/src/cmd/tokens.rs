//! `sentrace tokens`: create, list and revoke API tokens in the data directory. The server
//! re-reads the token file on change, so these work while it runs.

use std::process::ExitCode;

use anyhow::Context;
use sentrace_access::parse_duration;
use sentrace_core::{Role, TenantId};
use sentrace_server::auth::{load_tokens, now_unix, save_tokens, tokens_path};

use crate::DataDir;

/// Token subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a token and print it, alone, on stdout.
    Create {
        #[command(flatten)]
        data: DataDir,
        /// The tenant the token acts for.
        #[arg(long)]
        tenant: String,
        /// ingest, read, admin, security-analyst, developer, viewer or auditor.
        #[arg(long)]
        role: String,
        /// The team of a developer token: it reads only the services of this team
        /// (`[access.teams]` in the server configuration). Required with `--role developer`.
        #[arg(long)]
        team: Option<String>,
        /// Lifetime, like 30d, 12h or 15m. Without it the token does not expire.
        #[arg(long)]
        expires: Option<String>,
        /// A note shown by `tokens list`.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        data: DataDir,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke {
        #[command(flatten)]
        data: DataDir,
        /// The token id (from `tokens list`).
        id: String,
    },
}

fn fmt_time(unix: u64) -> String {
    sentrace_core::time::rfc3339_secs(unix)
}

/// Runs a tokens subcommand.
pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Create {
            data,
            tenant,
            role,
            team,
            expires,
            description,
        } => {
            let tenant = TenantId::new(tenant).context("--tenant")?;
            let role = Role::parse(&role).with_context(|| {
                format!(
                    "--role {role:?}: expected one of {}",
                    Role::ALL.map(|r| r.as_str()).join(", ")
                )
            })?;
            match (&team, role) {
                (None, Role::Developer) => {
                    anyhow::bail!(
                        "--role developer needs --team (the team whose services it reads)"
                    )
                }
                (Some(t), r) if r != Role::Developer => {
                    anyhow::bail!("--team {t:?} applies to --role developer only, not {r}")
                }
                (Some(t), _) if t.is_empty() || t.len() > 128 => {
                    anyhow::bail!("--team must be 1 to 128 characters")
                }
                _ => {}
            }
            let ttl = expires
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
            let path = tokens_path(&data.data_dir);
            std::fs::create_dir_all(&data.data_dir)
                .with_context(|| format!("creating {}", data.data_dir.display()))?;
            let mut set = load_tokens(&path)?;
            let issued = set.issue(tenant, role, now_unix(), ttl, description);
            if let Some(rec) = set.tokens.iter_mut().find(|t| t.id == issued.record.id) {
                rec.team = team;
            }
            save_tokens(&path, &set)?;
            println!("{}", issued.token);
            eprintln!(
                "created token {} (tenant {}, role {}); it is shown only now",
                issued.record.id, issued.record.tenant, issued.record.role
            );
        }
        Command::List { data, json } => {
            let set = load_tokens(&tokens_path(data.existing()?))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&set.tokens)?);
            } else {
                let now = now_unix();
                let rows: Vec<Vec<String>> = set
                    .tokens
                    .iter()
                    .map(|t| {
                        let state = if t.revoked_unix.is_some() {
                            "revoked"
                        } else if !t.is_active(now) {
                            "expired"
                        } else {
                            "active"
                        };
                        vec![
                            t.id.clone(),
                            t.tenant.to_string(),
                            t.role.to_string(),
                            state.to_string(),
                            fmt_time(t.created_unix),
                            t.expires_unix.map_or("never".into(), fmt_time),
                            t.description.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(
                        &[
                            "ID",
                            "TENANT",
                            "ROLE",
                            "STATE",
                            "CREATED",
                            "EXPIRES",
                            "DESCRIPTION"
                        ],
                        &rows
                    )
                );
                if rows.is_empty() {
                    eprintln!("no tokens in {}", data.data_dir.display());
                }
            }
        }
        Command::Revoke { data, id } => {
            let path = tokens_path(data.existing()?);
            let mut set = load_tokens(&path)?;
            set.revoke(&id, now_unix())?;
            save_tokens(&path, &set)?;
            eprintln!("revoked token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Left-aligned columns as wide as their widest cell, two spaces apart; the last column
/// is not padded.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(c);
            l.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(c.chars().count()),
            ));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align_whatever_the_widths() {
        let t = super::table(
            &["ID", "ROLE", "NOTE"],
            &[
                vec!["a".into(), "security-analyst".into(), "x".into()],
                vec!["bbbb".into(), "viewer".into(), "".into()],
            ],
        );
        assert_eq!(
            t,
            "ID    ROLE              NOTE\na     security-analyst  x\nbbbb  viewer\n"
        );
    }

    #[test]
    fn formats_utc() {
        assert_eq!(super::fmt_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::fmt_time(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
