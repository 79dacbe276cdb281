//! Offline verification of a data directory (`sentrace verify --data-dir`): every tenant's
//! log objects (read from `blocks/log/<tenant>/`) and every stored span (WAL and blocks,
//! decrypted with the master key) through [`sentrace_ledger::verify::Verifier`].
//!
//! The store's own damage is added to the ledger's findings: a block or WAL record that
//! fails authentication is `modified` (named by its path); the batches it held then show
//! as `deleted`. A crypto-shredded tenant's batches are `erased`, never `tampered`. A block
//! whose bytes are authentic under another block's name (blocks that traded places) is
//! `reordered`, naming both blocks; its spans still count as evidence.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sentrace_core::TenantId;
use sentrace_ledger::checkpoint::{CheckpointPolicy, LogVerifier, Origin};
use sentrace_ledger::keys::VerifierKey;
use sentrace_ledger::verify::{
    BatchEvidence, EvidenceContent, Finding, FindingKind, ObjectKind, PinState, Report, Verifier,
};
use sentrace_store::{KeyRing, MasterKey, StoreScan, scan_store};

use super::LOG_PREFIX;

/// One tenant's verification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantAudit {
    /// The tenant.
    pub tenant: String,
    /// What the verifier found.
    pub report: Report,
    /// Stored spans that carry no seal (stored with `[seal] enabled = false`).
    pub unsealed_spans: u64,
}

/// What to check.
pub struct AuditOptions<'a> {
    /// The node name (`[seal] node`), for the origins.
    pub node: String,
    /// The log keys to trust; `None` takes the node's own key (unwrapped with the master
    /// key, so it cannot be swapped without the master key).
    pub key: Option<LogVerifier>,
    /// Only this tenant.
    pub tenant: Option<TenantId>,
    /// Trusted witness cosigning keys.
    pub witnesses: Vec<VerifierKey>,
    /// How many distinct trusted witnesses must have cosigned each checkpoint.
    pub quorum: usize,
    /// Progress callback `(tenant, stage, done, total)`.
    pub progress: &'a mut dyn FnMut(&str, &'static str, u64, u64),
}

/// Reads every object of `log/<tenant>/` into memory, by tlog-tiles path.
pub(crate) async fn load_log(
    objects: &dyn ObjectStore,
    tenant: &TenantId,
) -> anyhow::Result<HashMap<String, Vec<u8>>> {
    let prefix = ObjectPath::from(format!("{LOG_PREFIX}/{}", tenant.as_str()));
    let strip = format!("{prefix}/");
    let mut listing = objects.list(Some(&prefix));
    let mut paths = Vec::new();
    while let Some(meta) = listing.next().await {
        paths.push(meta.context("listing log objects")?.location);
    }
    drop(listing);
    let mut out = HashMap::new();
    for p in paths {
        let bytes = objects
            .get(&p)
            .await
            .with_context(|| format!("reading {p}"))?
            .bytes()
            .await?;
        if let Some(rel) = p.as_ref().strip_prefix(&strip) {
            out.insert(rel.to_string(), bytes.to_vec());
        }
    }
    Ok(out)
}

/// Tenants with a log directory.
async fn log_tenants(objects: &dyn ObjectStore) -> anyhow::Result<BTreeSet<TenantId>> {
    let prefix = ObjectPath::from(LOG_PREFIX);
    let listed = objects
        .list_with_delimiter(Some(&prefix))
        .await
        .context("listing logs")?;
    Ok(listed
        .common_prefixes
        .iter()
        .filter_map(|p| {
            p.parts()
                .nth(1)
                .and_then(|t| TenantId::new(t.as_ref()).ok())
        })
        .collect())
}

/// Verifies every log (or one tenant's) of `data_dir`, moving `pins` forward where all is
/// well.
pub async fn audit(
    data_dir: &Path,
    master: &MasterKey,
    pins: &mut PinState,
    opts: AuditOptions<'_>,
) -> anyhow::Result<Vec<TenantAudit>> {
    let blocks = data_dir.join("blocks");
    let objects = LocalFileSystem::new_with_prefix(&blocks)
        .with_context(|| format!("opening {}", blocks.display()))?;
    audit_store(data_dir, &objects, master, pins, opts).await
}

/// Like [`audit`], with the blocks and log objects in `objects` (the bucket of
/// `[store] url`, see [`sentrace_store::open_objects`]); the WAL, keys and journals are
/// still read from `data_dir`.
pub async fn audit_store(
    data_dir: &Path,
    objects: &dyn ObjectStore,
    master: &MasterKey,
    pins: &mut PinState,
    opts: AuditOptions<'_>,
) -> anyhow::Result<Vec<TenantAudit>> {
    let key = match opts.key {
        Some(k) => k,
        None => super::keys::verifier(data_dir, master)?,
    };
    let keys = Arc::new(KeyRing::open(&data_dir.join("keys"), master)?);
    let scan = scan_store(data_dir, keys.clone(), Some(objects))
        .await
        .context("scanning the store")?;
    let mut tenants = log_tenants(objects).await?;
    tenants.extend(
        scan.spans
            .iter()
            .filter(|s| s.entry.seal.is_some())
            .map(|s| s.tenant.clone()),
    );
    if let Some(t) = &opts.tenant {
        tenants.retain(|x| x == t);
        tenants.insert(t.clone());
    }
    let mut out = Vec::new();
    for tenant in tenants {
        let log = load_log(objects, &tenant).await?;
        let mut policy = CheckpointPolicy::new(key.clone());
        policy.origin = Some(
            Origin::for_tenant(&opts.node, &tenant).map_err(|e| anyhow::anyhow!("origin: {e}"))?,
        );
        policy.witnesses = opts.witnesses.clone();
        policy.quorum = opts.quorum;
        let shredded = !keys.has_tenant(&tenant).unwrap_or(true);
        // Signed entries are checked against the tenant's source registry: a signature that
        // does not verify is reported `forged`.
        let source_keys = crate::sources::registry::load(data_dir, &tenant)?;
        let (mut evidence, damage, unsealed) = evidence_for(&scan, &tenant);
        // Erasure statements (`sentrace tenant erase`, `subject erase`) are the evidence of
        // their own log entries; a tenant erasure explains every earlier entry.
        let receipts = super::erasure::read_receipts(data_dir, &tenant)?;
        let erased_by = receipts
            .iter()
            .find(|r| r.statement.kind == "sentrace.tenant-erasure.v1")
            .map(|r| {
                format!(
                    "the tenant was erased at {} (keys {:?} destroyed; receipt erased/{}/receipts/{}.json)",
                    r.statement.erased_at, r.statement.key_ids, tenant, r.log.index
                )
            });
        for r in &receipts {
            evidence.retain(|e| e.index != r.log.index);
            evidence.push(BatchEvidence {
                index: r.log.index,
                block: format!("erased/{}/receipts/{}.json", tenant, r.log.index),
                content: EvidenceContent::Spans {
                    spans: vec![r.statement.bytes()?],
                    recorded_hashes: None,
                },
            });
        }
        let report = {
            let t = tenant.to_string();
            let progress = &mut *opts.progress;
            let mut tick =
                |stage: &'static str, done: u64, total: u64| progress(&t, stage, done, total);
            let mut verifier = Verifier::new(&policy, &log)
                .with_progress(&mut tick)
                .with_source_keys(&source_keys);
            if shredded {
                // Every batch of a shredded tenant is erased: its keys are gone.
                let size = checkpoint_size(&log);
                let seen: BTreeSet<u64> = evidence.iter().map(|e| e.index).collect();
                for index in (0..size).filter(|i| !seen.contains(i)) {
                    evidence.push(BatchEvidence {
                        index,
                        block: "(shredded)".into(),
                        content: EvidenceContent::Erased {
                            reason: erased_by.clone().unwrap_or_else(|| {
                                "the tenant's data keys were crypto-shredded".into()
                            }),
                        },
                    });
                }
            }
            let seen: BTreeSet<u64> = evidence.iter().map(|e| e.index).collect();
            let mut erased: BTreeMap<u64, String> = BTreeMap::new();
            for e in scan.erasures.iter().filter(|e| e.tenant == tenant.as_str()) {
                for &i in &e.indices {
                    erased.entry(i).or_insert_with(|| e.block.clone());
                }
            }
            for (index, block) in erased {
                if !seen.contains(&index) {
                    evidence.push(BatchEvidence {
                        index,
                        block: format!("{block} (deleted by retention)"),
                        content: EvidenceContent::Erased {
                            reason: "retention deleted its block".into(),
                        },
                    });
                }
            }
            let mut it = evidence.into_iter();
            verifier.verify(pins, Some(&mut it))
        };
        let mut report = report;
        for d in damage {
            report.findings.push(d);
        }
        report.ok = report.ok
            && !report
                .findings
                .iter()
                .any(|f| f.kind != FindingKind::Erased);
        out.push(TenantAudit {
            tenant: tenant.to_string(),
            report,
            unsealed_spans: unsealed,
        });
    }
    Ok(out)
}

/// Blocks holding another block's authentic content: `reordered`, naming both blocks (one
/// finding per pair when two blocks traded places). Their spans were kept as evidence, so
/// the batches themselves verify; the failure is the blocks' places.
fn misplaced_findings(scan: &StoreScan, tenant: &TenantId) -> Vec<Finding> {
    let mine: Vec<_> = scan
        .misplaced
        .iter()
        .filter(|m| &m.tenant == tenant)
        .collect();
    let mut out = Vec::new();
    for m in &mine {
        let swapped = mine
            .iter()
            .any(|o| o.location == m.written_as && o.written_as == m.location);
        if swapped && m.written_as < m.location {
            continue; // reported with the pair's first block
        }
        let detail = if swapped {
            format!(
                "{} and {} were swapped: each holds the other's authentic content",
                m.location, m.written_as
            )
        } else {
            format!(
                "{} holds the authentic content of {} (the blocks traded places)",
                m.location, m.written_as
            )
        };
        out.push(Finding {
            kind: FindingKind::Reordered,
            object: ObjectKind::Batch,
            origin: String::new(),
            index: None,
            other_index: None,
            span: None,
            block: Some(m.location.clone()),
            other_block: Some(m.written_as.clone()),
            path: None,
            detail,
        });
    }
    out
}

/// The size of the (unverified) checkpoint, to enumerate erased batches; the verifier
/// checks the checkpoint itself.
fn checkpoint_size(log: &HashMap<String, Vec<u8>>) -> u64 {
    log.get("checkpoint")
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|t| t.lines().nth(1))
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
        .min(sentrace_ledger::verify::MAX_VERIFY_SIZE)
}

/// Distinct stored copies of one span: bytes and comma-separated locations.
type Copies = Vec<(Vec<u8>, String)>;

/// Groups a tenant's sealed spans by batch, in position order, and turns the store's
/// damage into findings.
fn evidence_for(scan: &StoreScan, tenant: &TenantId) -> (Vec<BatchEvidence>, Vec<Finding>, u64) {
    // index -> position -> (bytes, locations)
    let mut batches: BTreeMap<u64, BTreeMap<u32, Copies>> = BTreeMap::new();
    let mut unsealed = 0u64;
    for s in scan.spans.iter().filter(|s| &s.tenant == tenant) {
        let Some(seal) = &s.entry.seal else {
            unsealed += 1;
            continue;
        };
        let copies = batches
            .entry(seal.index)
            .or_default()
            .entry(seal.position)
            .or_default();
        // The same span in the WAL and in a block (a flush that crashed before deleting
        // its WAL segment) is one span; a different span at the same place is kept.
        match copies
            .iter_mut()
            .find(|(b, _)| b.as_slice() == s.entry.canonical.as_ref())
        {
            None => copies.push((s.entry.canonical.to_vec(), s.location.clone())),
            Some(c) if !c.1.split(',').any(|l| l == s.location) => {
                c.1 = format!("{},{}", c.1, s.location);
            }
            Some(_) => {}
        }
    }
    let mut evidence = Vec::with_capacity(batches.len());
    for (index, positions) in batches {
        let mut spans = Vec::new();
        let mut locations: BTreeSet<String> = BTreeSet::new();
        for (_, copies) in positions {
            for (bytes, loc) in copies {
                spans.push(bytes);
                locations.extend(loc.split(',').map(str::to_owned));
            }
        }
        evidence.push(BatchEvidence {
            index,
            block: locations.into_iter().collect::<Vec<_>>().join(","),
            content: EvidenceContent::Spans {
                spans,
                recorded_hashes: None,
            },
        });
    }
    let mut findings = Vec::new();
    for d in &scan.damage {
        if d.tenant.as_ref().is_some_and(|t| t != tenant) {
            continue;
        }
        let (kind, detail) = if d.erased {
            (
                FindingKind::Erased,
                format!("{} was crypto-shredded: {}", d.location, d.reason),
            )
        } else {
            (
                FindingKind::Modified,
                format!(
                    "{} fails authentication{}: {} (it was altered; the batches it held show as deleted)",
                    d.location,
                    d.offset
                        .map(|o| format!(" at byte {o}"))
                        .unwrap_or_default(),
                    d.reason
                ),
            )
        };
        findings.push(Finding {
            kind,
            object: ObjectKind::Batch,
            origin: String::new(),
            index: None,
            other_index: None,
            span: None,
            block: Some(d.location.clone()),
            other_block: None,
            path: None,
            detail,
        });
    }
    findings.extend(misplaced_findings(scan, tenant));
    (evidence, findings, unsealed)
}
