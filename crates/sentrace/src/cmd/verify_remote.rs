//! `sentrace verify --server URL --token TOKEN`: verifies a live server's transparency log
//! for the token's tenant with a read token only.
//!
//! The client fetches the signed checkpoint, the tiles and entry bundles (C2SP
//! `tlog-tiles`, at the well-known paths) and, page by page, the canonical spans the
//! server says it stores for each batch (`/.well-known/sentrace/log/<tenant>/batches`).
//! It trusts none of it: [`Verifier`] recomputes span roots, leaves, the tree and the
//! checkpoint root itself, checks the checkpoint's signatures with a key that comes from
//! `--key` or the state file (trust on first use, announced on stderr, when neither has
//! one), and checks consistency with the checkpoints pinned in the state file (the same
//! format as offline verification).

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sentrace_core::TenantId;
use sentrace_ledger::checkpoint::{CheckpointPolicy, LogVerifier, Origin};
use sentrace_ledger::tiles::LogReader;
use sentrace_ledger::verify::{
    BatchEvidence, EvidenceContent, Finding, FindingKind, MAX_VERIFY_SIZE, ObjectKind, Verifier,
};
use sentrace_server::seal::audit::TenantAudit;
use sentrace_server::seal::remote::{BatchPage, DEFAULT_PAGE_BATCHES, LogInfo};

use super::progress::Progress;
use super::verify::{Args, load_pins, print_human, save_pins};

/// Largest log object accepted (a full entry bundle is at most 256 × 65,537 bytes).
const MAX_OBJECT_BYTES: usize = 17 << 20;
/// Largest page of batches accepted (the server cuts at 8 MiB of spans; base64 and JSON
/// add about a third, and one batch may exceed the cut alone).
const MAX_PAGE_JSON_BYTES: usize = 64 << 20;

/// A blocking HTTPS client for one server and token.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Http {
    /// GET `path`: `Ok(None)` on 404, an error naming the status otherwise.
    fn get(&self, path: &str, limit: usize) -> anyhow::Result<Option<Vec<u8>>> {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let mut resp = self
                .client
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .map_err(reqwest::Error::without_url)
                .with_context(|| format!("connecting to {}", self.base))?;
            match resp.status().as_u16() {
                200 => {}
                404 => return Ok(None),
                401 => bail!("the server refused the token (401)"),
                403 => bail!("the token lacks the read role (403)"),
                s => bail!("GET {path}: the server answered {s}"),
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .with_context(|| format!("reading {path}"))?
            {
                if body.len().saturating_add(chunk.len()) > limit {
                    bail!("GET {path}: the answer is larger than {limit} bytes");
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(body))
        })
    }

    fn json<T: serde::de::DeserializeOwned>(&self, path: &str, limit: usize) -> anyhow::Result<T> {
        let body = self.get(path, limit)?.with_context(|| {
            format!("GET {path}: not found (no log for this token's tenant, or sealing is off)")
        })?;
        serde_json::from_slice(&body).with_context(|| format!("GET {path}: not the expected JSON"))
    }
}

/// The log's objects over HTTPS; the checkpoint is fetched once and kept, so the pages of
/// batches are asked for exactly the size being verified.
struct RemoteLog<'a> {
    http: &'a Http,
    prefix: String,
    checkpoint: RefCell<Option<Vec<u8>>>,
}

impl LogReader for RemoteLog<'_> {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        if path == "checkpoint"
            && let Some(b) = self.checkpoint.borrow().as_ref()
        {
            return Ok(Some(b.clone()));
        }
        let got = self
            .http
            .get(&format!("{}/{path}", self.prefix), MAX_OBJECT_BYTES)
            .map_err(|e| format!("{e:#}"))?;
        if path == "checkpoint" {
            *self.checkpoint.borrow_mut() = got.clone();
        }
        Ok(got)
    }
}

impl RemoteLog<'_> {
    /// The size line of the fetched checkpoint (the verifier checks its signature).
    fn size(&self) -> u64 {
        self.checkpoint
            .borrow()
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| t.lines().nth(1))
            .and_then(|l| l.parse().ok())
            .unwrap_or(0)
            .min(MAX_VERIFY_SIZE)
    }
}

/// The stored batches, page by page, as evidence for the verifier.
struct Pages<'a> {
    log: &'a RemoteLog<'a>,
    path: String,
    next: u64,
    buf: VecDeque<BatchEvidence>,
    /// The first protocol or transport failure; iteration stops there.
    error: Option<anyhow::Error>,
    /// Objects the server could not read, by location.
    damage: Vec<(String, String)>,
}

impl Pages<'_> {
    fn fetch(&mut self, size: u64) -> anyhow::Result<()> {
        let start = self.next;
        let limit = (size - start).min(DEFAULT_PAGE_BATCHES);
        let page: BatchPage = self.log.http.json(
            &format!("{}?start={start}&limit={limit}", self.path),
            MAX_PAGE_JSON_BYTES,
        )?;
        if page.next <= start || page.next > start + limit {
            bail!(
                "the server's page from {start} ends at {} (expected {}..={})",
                page.next,
                start + 1,
                start + limit
            );
        }
        let mut listed = BTreeSet::new();
        for b in page.batches {
            if b.index < start || b.index >= page.next || !listed.insert(b.index) {
                bail!(
                    "the server's page {start}..{} lists batch {} out of place or twice",
                    page.next,
                    b.index
                );
            }
            let content = match b.erased {
                Some(reason) if b.spans.is_empty() => EvidenceContent::Erased { reason },
                _ => EvidenceContent::Spans {
                    spans: b
                        .spans
                        .iter()
                        .map(|s| STANDARD.decode(s))
                        .collect::<Result<_, _>>()
                        .with_context(|| format!("batch {}: a span is not base64", b.index))?,
                    recorded_hashes: None,
                },
            };
            self.buf.push_back(BatchEvidence {
                index: b.index,
                block: b.location,
                content,
            });
        }
        if page.shredded {
            for index in (start..page.next).filter(|i| !listed.contains(i)) {
                self.buf.push_back(BatchEvidence {
                    index,
                    block: "(shredded)".into(),
                    content: EvidenceContent::Erased {
                        reason: "the tenant's data keys were crypto-shredded".into(),
                    },
                });
            }
        }
        for d in page.damage {
            if !self.damage.iter().any(|(l, _)| *l == d.location) {
                self.damage.push((d.location, d.reason));
            }
        }
        self.next = page.next;
        Ok(())
    }
}

impl Iterator for Pages<'_> {
    type Item = BatchEvidence;

    fn next(&mut self) -> Option<BatchEvidence> {
        loop {
            if let Some(b) = self.buf.pop_front() {
                return Some(b);
            }
            let size = self.log.size();
            if self.error.is_some() || self.next >= size {
                return None;
            }
            if let Err(e) = self.fetch(size) {
                self.error = Some(e);
            }
        }
    }
}

/// The log keys to trust: `--key`, else the state file's pin for `origin`, else the
/// server's (announced loudly: trust on first use).
fn trusted_key(
    a: &Args,
    http: &Http,
    pinned: Option<&str>,
    origin: &str,
) -> anyhow::Result<LogVerifier> {
    if !a.key.is_empty() {
        return LogVerifier::parse(&a.key.join(" ")).map_err(|e| anyhow::anyhow!("--key: {e}"));
    }
    if let Some(k) = pinned {
        return LogVerifier::parse(k)
            .map_err(|e| anyhow::anyhow!("the key pinned for {origin} in the state file: {e}"));
    }
    let served = http
        .get("/.well-known/sentrace/log-keys", 64 << 10)?
        .context("the server publishes no log keys")?;
    let text = String::from_utf8(served).context("the server's log keys are not UTF-8")?;
    let key = LogVerifier::parse(text.trim())
        .map_err(|e| anyhow::anyhow!("the server's log keys: {e}"))?;
    eprintln!(
        "sentrace: WARNING: no --key and no key pinned for {origin}: trusting the log key the server presents, on first use:\n  {}\n  Compare it with `sentrace keys show` on the server. {}",
        key.to_vkeys(),
        match &a.state {
            Some(p) => format!("It is pinned in {} if this run verifies.", p.display()),
            None => "Pass --state FILE to pin it for later runs.".to_string(),
        }
    );
    Ok(key)
}

/// Runs `verify --server`.
pub fn run(a: &Args, server: &str) -> anyhow::Result<ExitCode> {
    let token = a
        .token
        .clone()
        .context("--server needs --token (or SENTRACE_TOKEN) with the read role")?;
    let ca = a.ca.clone().or_else(|| {
        let p = a.data.data_dir.join("tls").join("ca.pem");
        p.exists().then_some(p)
    });
    let http = Http {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        client: super::query::https_client(ca.as_deref())?,
        base: server.trim_end_matches('/').to_string(),
        token,
    };
    let info: LogInfo = http.json("/.well-known/sentrace/log", 64 << 10)?;
    let tenant = TenantId::new(&info.tenant)
        .map_err(|e| anyhow::anyhow!("the server names an invalid tenant: {e}"))?;
    if let Some(t) = &a.tenant
        && t != tenant.as_str()
    {
        bail!(
            "the token belongs to tenant {:?}, not {t:?}: a token verifies its own tenant's log only",
            tenant.as_str()
        );
    }
    let mut pins = load_pins(a.state.as_deref())?;
    // The pin is looked up under the origin the server names; the key then fixes the
    // node part, and the checkpoint must carry exactly that origin.
    let pinned = pins
        .get(&info.origin)
        .and_then(|p| p.key.clone())
        .filter(|_| info.origin.ends_with(&format!("/{}", tenant.as_str())));
    let key = trusted_key(a, &http, pinned.as_deref(), &info.origin)?;
    let origin = Origin::for_tenant(key.ed25519.name().as_str(), &tenant)
        .map_err(|e| anyhow::anyhow!("origin: {e}"))?;
    let mut policy = CheckpointPolicy::new(key.clone());
    policy.origin = Some(origin.clone());
    (policy.witnesses, policy.quorum) = a.witnesses.policy()?;
    let log = RemoteLog {
        http: &http,
        prefix: format!("/.well-known/sentrace/log/{}", tenant.as_str()),
        checkpoint: RefCell::new(None),
    };
    let mut pages = Pages {
        log: &log,
        path: format!("/.well-known/sentrace/log/{}/batches", tenant.as_str()),
        next: 0,
        buf: VecDeque::new(),
        error: None,
        damage: Vec::new(),
    };
    let bar = Progress::steps("verify", "entries");
    let name = tenant.to_string();
    // Pins move forward only if everything, the server's unreadable objects included,
    // verifies.
    let before = pins.clone();
    let mut report = {
        let mut tick = |stage: &'static str, done: u64, total: u64| {
            bar.step(&format!("{name} {stage}"), done, total)
        };
        let mut verifier = Verifier::new(&policy, &log).with_progress(&mut tick);
        verifier.verify(&mut pins, Some(&mut pages))
    };
    if let Some(e) = pages.error.take() {
        return Err(e.context("reading the stored batches from the server"));
    }
    for (location, reason) in pages.damage {
        report.findings.push(Finding {
            kind: FindingKind::Modified,
            object: ObjectKind::Batch,
            origin: origin.to_string(),
            index: None,
            other_index: None,
            span: None,
            block: Some(location.clone()),
            other_block: None,
            path: None,
            detail: format!(
                "the server cannot read {location}: {reason} (it was altered; the batches it held show as deleted)"
            ),
        });
        report.ok = false;
    }
    if report.ok {
        pins.pin_key(origin.as_str(), &key.to_vkeys());
    } else {
        pins = before;
    }
    if let Some(p) = &a.state {
        save_pins(p, &pins)?;
    }
    let ok = report.ok;
    let audits = vec![TenantAudit {
        tenant: tenant.to_string(),
        report,
        unsealed_spans: 0,
    }];
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "ok": ok, "server": http.base, "logs": audits })
            )?
        );
    } else {
        print_human(&audits);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
