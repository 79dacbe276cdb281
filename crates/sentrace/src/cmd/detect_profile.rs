//! `sentrace detect profile list|show|reset`: the learned field context of a data directory
//! (what each field of each route normally carries; see `sentrace_detect::context`), read
//! from the tenants' encrypted baseline files `<data-dir>/baselines/`.
//!
//! `list` and `show` read a copy that the server saved (every `[detect.baselines]
//! persist_interval_secs` and at shutdown), so they work while it runs. `reset` rewrites
//! the files and so takes the data directory's lock: it refuses while a server runs (the
//! server would save its own profiles over the change).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sentrace_core::TenantId;
use sentrace_detect::behavior::{BASELINE_FORMAT, BASELINE_FORMAT_MIN, BaselineSnapshot};
use sentrace_detect::context::{FieldProfile, shape};
use sentrace_server::detect::baselines::BaselineStore;
use sentrace_server::detect::config::{BaselinesConfig, MAX_BASELINE_SNAPSHOT_BYTES};
use sentrace_store::KeyRing;

use crate::DataDir;

/// Which profiles a command is about.
#[derive(clap::Args, Debug, Clone)]
pub struct Select {
    /// Only this tenant (`list`: default every tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    /// Only this route template (as `list` shows it, e.g. `/orders/{id}`).
    #[arg(long)]
    route: Option<String>,
    /// Only this field (`body.script`, `query.q`, `header.referer`).
    #[arg(long)]
    field: Option<String>,
}

impl Select {
    fn matches(&self, p: &FieldProfile) -> bool {
        self.service.as_ref().is_none_or(|s| *s == p.service)
            && self.route.as_ref().is_none_or(|r| *r == p.route)
            && self.field.as_ref().is_none_or(|f| *f == p.field)
    }
}

/// Profile subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// One line per field profile: tenant, service, route, field, values, learned structures.
    List {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        select: Select,
        /// JSON lines output.
        #[arg(long)]
        json: bool,
    },
    /// Everything about the selected profiles: lengths, classes, structures, and for each
    /// bit not yet learned how far its evidence is (sources, time, share).
    Show {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        select: Select,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Forget the selected profiles (they learn again from traffic). Needs `--tenant` and
    /// a `--service`, `--route` or `--field`, or `--all`. Refused while a server runs.
    Reset {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        select: Select,
        /// Every profile of the tenant.
        #[arg(long)]
        all: bool,
    },
}

fn store(data: &DataDir) -> anyhow::Result<BaselineStore> {
    let dir = data.existing()?;
    let master = super::verify::master_key(dir)?;
    let keys = Arc::new(KeyRing::open(&dir.join("keys"), &master)?);
    let cfg = BaselinesConfig {
        max_snapshot_bytes: MAX_BASELINE_SNAPSHOT_BYTES,
        ..BaselinesConfig::default()
    };
    BaselineStore::open(&cfg, dir, keys)
}

fn load(store: &BaselineStore, tenant: &TenantId) -> anyhow::Result<Option<BaselineSnapshot>> {
    let snap = store
        .load(tenant)
        .map_err(|why| anyhow::anyhow!("baselines of tenant {tenant}: {why}"))?;
    if let Some(s) = &snap {
        if !(BASELINE_FORMAT_MIN..=BASELINE_FORMAT).contains(&s.format) {
            anyhow::bail!(
                "baselines of tenant {tenant}: format {} (this build reads {BASELINE_FORMAT_MIN} to {BASELINE_FORMAT})",
                s.format
            );
        }
        if s.tenant != tenant.as_str() {
            anyhow::bail!(
                "baselines filed under tenant {tenant} name tenant {:?}",
                s.tenant
            );
        }
    }
    Ok(snap)
}

fn tenants(store: &BaselineStore, select: &Select) -> anyhow::Result<Vec<TenantId>> {
    match &select.tenant {
        Some(t) => Ok(vec![
            TenantId::new(t).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?,
        ]),
        None => store.tenants(),
    }
}

fn time(ns: u64) -> String {
    if ns == 0 {
        return "-".into();
    }
    sentrace_core::time::rfc3339_secs(ns / 1_000_000_000)
}

fn summary(tenant: &TenantId, p: &FieldProfile) -> serde_json::Value {
    serde_json::json!({
        "tenant": tenant.as_str(),
        "service": p.service,
        "route": p.route,
        "field": p.field,
        "values": p.values,
        "learned_from": p.learnable,
        "max_len": p.max_len,
        "mean_len": p.total_len.checked_div(p.learnable).unwrap_or(0),
        "structures": p.structures(),
        "classes": p.classes(),
        "first_seen": time(p.first_unix_nanos),
        "last_seen": time(p.last_unix_nanos),
    })
}

/// Runs a profile subcommand.
pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::List { data, select, json } => {
            let store = store(&data)?;
            let mut n = 0;
            for t in tenants(&store, &select)? {
                let Some(snap) = load(&store, &t)? else {
                    continue;
                };
                for p in snap.profiles.iter().filter(|p| select.matches(p)) {
                    n += 1;
                    if json {
                        println!("{}", summary(&t, p));
                    } else {
                        let s = p.structures();
                        println!(
                            "{t}  {}  {}  {}  values={}  carries={}",
                            p.service,
                            p.route,
                            p.field,
                            p.values,
                            if s.is_empty() {
                                "-".into()
                            } else {
                                s.join(",")
                            }
                        );
                    }
                }
            }
            if !json {
                eprintln!("sentrace detect profile: {n} field profile(s)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { data, select, json } => {
            let store = store(&data)?;
            let mut n = 0;
            for t in tenants(&store, &select)? {
                let Some(snap) = load(&store, &t)? else {
                    continue;
                };
                for p in snap.profiles.iter().filter(|p| select.matches(p)) {
                    n += 1;
                    let bits: Vec<serde_json::Value> = p
                        .bits
                        .iter()
                        .map(|e| {
                            serde_json::json!({
                                "bit": shape::names(e.bit).first().copied().unwrap_or("?"),
                                "learned": p.learned & e.bit != 0,
                                "values": e.values,
                                "sources": e.sources,
                                "first_seen": time(e.first_unix_nanos),
                                "last_seen": time(e.last_unix_nanos),
                            })
                        })
                        .collect();
                    let mut v = summary(&t, p);
                    v["bits"] = bits.into();
                    if json {
                        println!("{v}");
                    } else {
                        println!(
                            "{t} {} {} {}\n  values {} (learned from {}), length max {} mean {}\n  seen {} .. {}\n  carries: {}\n  classes: {}",
                            p.service,
                            p.route,
                            p.field,
                            p.values,
                            p.learnable,
                            p.max_len,
                            v["mean_len"],
                            time(p.first_unix_nanos),
                            time(p.last_unix_nanos),
                            p.structures().join(", "),
                            p.classes().join(", "),
                        );
                        for e in &p.bits {
                            println!(
                                "    {:<12} {:<8} values {:>8}  sources {:>5}  {} .. {}",
                                shape::names(e.bit).first().copied().unwrap_or("?"),
                                if p.learned & e.bit != 0 {
                                    "learned"
                                } else {
                                    "learning"
                                },
                                e.values,
                                e.sources,
                                time(e.first_unix_nanos),
                                time(e.last_unix_nanos),
                            );
                        }
                    }
                }
            }
            if n == 0 {
                anyhow::bail!("no field profile matches");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reset { data, select, all } => {
            let Some(tenant) = &select.tenant else {
                anyhow::bail!("reset: --tenant is required");
            };
            let tenant = TenantId::new(tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            let narrowed =
                select.service.is_some() || select.route.is_some() || select.field.is_some();
            if !all && !narrowed {
                anyhow::bail!(
                    "reset: give --service, --route or --field to choose profiles, or --all for every profile of the tenant"
                );
            }
            let dir = data.existing()?;
            let _lock = super::keys::lock_data_dir(dir)
                .context("reset rewrites the baselines, which a running server would overwrite")?;
            let store = store(&data)?;
            let Some(mut snap) = load(&store, &tenant)? else {
                anyhow::bail!("tenant {tenant} has no saved baselines");
            };
            let before = snap.profiles.len();
            snap.profiles.retain(|p| !select.matches(p));
            let removed = before - snap.profiles.len();
            if removed > 0 {
                snap.format = BASELINE_FORMAT;
                store.write(&snap)?;
            }
            println!("removed {removed} field profile(s) of tenant {tenant}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
