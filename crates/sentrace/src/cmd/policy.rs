//! `sentrace policy`: test, show and check the Cedar authorization policies.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use sentrace_access::authz::{
    Action, DEFAULT_POLICIES, PolicyStore, RequestContext, Resource, SCHEMA,
};
use sentrace_core::{Identity, PrincipalKind, Role, TenantId};
use sentrace_server::Config;

/// Policy subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Decide one request against the policies of a configuration (or the defaults) and
    /// print the decision and the policies that made it. Exit 0 when allowed, 1 when denied.
    Test(TestArgs),
    /// Validate the policies a configuration names (the same check `serve` makes).
    Check {
        /// The server configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the built-in policies.
    Show,
    /// Print the Cedar schema policies are validated against.
    Schema,
}

/// `sentrace policy test`.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The server configuration file whose `[access]` policies and teams apply (default:
    /// the built-in policies, no teams).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The principal: `User::"alice"`, `ServiceAccount::"token:0123"` or `Agent::"edge-1"`.
    #[arg(long)]
    principal: String,
    /// The principal's role.
    #[arg(long)]
    role: String,
    /// The principal's tenant.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// The principal's team (developer role).
    #[arg(long)]
    team: Option<String>,
    /// The action: ingest, search, read_trace, view_sensitive, detokenize, read_findings,
    /// read_audit, read_metrics, manage_tokens, manage_keys, manage_policy, verify.
    #[arg(long)]
    action: String,
    /// The resource: `Tenant::"acme"`, `Service::"checkout"`, `Trace::"<hex id>"` or
    /// `AttributeClass::"pii"` (of the principal's tenant unless a Tenant is named).
    #[arg(long)]
    resource: String,
    /// Decide as if a break-glass grant were active.
    #[arg(long)]
    break_glass: bool,
}

fn load(config: Option<&PathBuf>) -> anyhow::Result<PolicyStore> {
    match config {
        None => Ok(PolicyStore::defaults()?),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let cfg = Config::from_toml(&text, &path.display().to_string())?;
            cfg.access.load()
        }
    }
}

fn principal(text: &str) -> anyhow::Result<(PrincipalKind, String)> {
    let (ty, rest) = text.split_once("::").with_context(|| {
        format!("--principal {text:?}: expected Type::\"name\", like User::\"alice\"")
    })?;
    let kind = match ty {
        "User" => PrincipalKind::User,
        "ServiceAccount" => PrincipalKind::ServiceAccount,
        "Agent" => PrincipalKind::Agent,
        other => bail!("--principal type {other:?} is not User, ServiceAccount or Agent"),
    };
    let name = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .with_context(|| format!("--principal {text:?}: the name must be in double quotes"))?;
    if name.is_empty() {
        bail!("--principal: the name is empty");
    }
    Ok((kind, name.to_string()))
}

/// Runs a policy subcommand.
pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Show => {
            print!("{DEFAULT_POLICIES}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            print!("{SCHEMA}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => {
            let store = load(config.as_ref())?;
            println!("ok: {} policies", store.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Test(a) => {
            let store = load(a.config.as_ref())?;
            let (kind, name) = principal(&a.principal)?;
            let role = Role::parse(&a.role).with_context(|| {
                format!(
                    "--role {:?}: expected one of {}",
                    a.role,
                    Role::ALL.map(|r| r.as_str()).join(", ")
                )
            })?;
            let tenant = TenantId::new(&a.tenant).context("--tenant")?;
            let action = Action::parse(&a.action).with_context(|| {
                format!(
                    "--action {:?}: expected one of {}",
                    a.action,
                    Action::ALL.map(|x| x.as_str()).join(", ")
                )
            })?;
            let (resource, resource_tenant) =
                Resource::parse(&a.resource).map_err(|e| anyhow::anyhow!("--resource: {e}"))?;
            let mut who = Identity::new(tenant.clone(), name, role);
            who.kind = kind;
            who.team = a.team;
            let ctx = RequestContext {
                break_glass: a.break_glass,
            };
            let d = store.decide_in(
                &who,
                action,
                &resource,
                resource_tenant.as_ref().unwrap_or(&tenant),
                ctx,
            );
            println!("{}", if d.allowed { "ALLOW" } else { "DENY" });
            if d.policies.is_empty() {
                println!("  no policy matched (deny by default)");
            }
            for p in &d.policies {
                println!(
                    "  {} {p}",
                    if d.allowed {
                        "permitted by"
                    } else {
                        "forbidden by"
                    }
                );
            }
            for e in &d.errors {
                println!("  error: {e}");
            }
            Ok(if d.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
