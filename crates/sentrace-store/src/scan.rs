//! A read-only scan of a data directory for the verifier: every stored span with its seal
//! tag and where it lies (a WAL segment or a block), and every object that could not be
//! read. Unlike [`crate::Store::open`] it changes nothing (no tail cut, no quarantine, no
//! lock), so it can run beside a live server or on a copy.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};
use sentrace_core::TenantId;

use crate::block::{BlockInfo, Sparse, load_meta, read_rows};
use crate::wal::format;
use crate::wal::replay::{Outcome, RecoveryReport, replay_segment};
use crate::{KeyRing, SpanEntry, StoreError};

/// One stored span and its location.
#[derive(Clone, Debug)]
pub struct ScannedSpan {
    /// Its tenant.
    pub tenant: TenantId,
    /// `wal/<segment>` or `blocks/<tenant>/<name>.parquet`.
    pub location: String,
    /// The span (with its seal tag, if sealed).
    pub entry: SpanEntry,
}

/// An object that could not be read, or not entirely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The tenant, if known (blocks are filed by tenant).
    pub tenant: Option<TenantId>,
    /// The object (`wal/<segment>` or `blocks/<tenant>/<name>.parquet`).
    pub location: String,
    /// Byte offset of the damage, if known.
    pub offset: Option<u64>,
    /// Why, for people.
    pub reason: String,
    /// True if the data key is gone (shredded): the data was erased, not damaged.
    pub erased: bool,
}

/// What a scan found.
#[derive(Clone, Debug, Default)]
pub struct StoreScan {
    /// Every readable span.
    pub spans: Vec<ScannedSpan>,
    /// Objects that could not be read.
    pub damage: Vec<Damage>,
    /// WAL records whose tenant keys were shredded.
    pub erased_wal_records: u64,
    /// Bytes read from disk.
    pub bytes_read: u64,
    /// Erasure records (blocks deleted by retention and the batches they held).
    pub erasures: Vec<crate::Erasure>,
    /// Blocks whose bytes are authentic but belong to another block's name (blocks that
    /// traded places). Their spans are in [`StoreScan::spans`], at the place they lie.
    pub misplaced: Vec<Misplaced>,
}

/// A block object that holds another block's authentic content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misplaced {
    /// The tenant.
    pub tenant: TenantId,
    /// Where the content lies (`blocks/<tenant>/<name>.parquet`).
    pub location: String,
    /// The block the content was written as: its integrity tag and decryption keys bind
    /// this name (`blocks/<tenant>/<name>.parquet`).
    pub written_as: String,
}

/// The most failing blocks tested against each other's names (each test is an HMAC over
/// the whole block, so the work grows with the square of this bound).
pub const MAX_MISPLACED_CANDIDATES: usize = 64;

/// A block that failed under its own name.
struct FailedBlock {
    tenant: TenantId,
    name: String,
    bytes: Bytes,
    sidecar: Option<Bytes>,
    damage: Damage,
}

/// Checks `bytes` as block `name` of `tenant` against `sidecar` and reads its rows. The
/// outer error is a task failure; the inner one is the block's.
pub(crate) async fn read_block_as(
    keys: &Arc<KeyRing>,
    tenant: &TenantId,
    name: &str,
    bytes: &Bytes,
    sidecar: Option<Bytes>,
) -> Result<Result<Vec<SpanEntry>, StoreError>, StoreError> {
    let (keys, tenant, name, bytes) =
        (keys.clone(), tenant.clone(), name.to_owned(), bytes.clone());
    tokio::task::spawn_blocking(move || {
        // The whole file first: Parquet decryption alone skips bytes it does not need.
        let sidecar = sidecar.ok_or_else(|| StoreError::Corrupt {
            path: format!("{}/{name}.parquet", tenant.as_str()).into(),
            offset: 0,
            reason: "block integrity tag is missing".into(),
        })?;
        crate::block::mac::check(&keys, &tenant, &name, &bytes, &sidecar)?;
        let file = Sparse::whole(bytes);
        let meta = load_meta(&file, &keys, &tenant, &name)?;
        let groups = (0..meta.arrow.metadata().num_row_groups()).collect();
        read_rows(file, &meta, &name, groups, None, &|_| true)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))
}

/// A block that fails under its own name may hold another block's authentic bytes (blocks
/// that traded places: a swap, or a longer cycle): the integrity tag and the Parquet keys
/// bind the block's name, so its content is tested under the names (and with the tags) of
/// the other failing blocks of its tenant. A match is recorded as [`Misplaced`] and its
/// spans are kept; anything else stays damage (`modified`). A block copied over another
/// while its original stays intact is not among the candidates and stays `modified`.
async fn find_misplaced(
    keys: &Arc<KeyRing>,
    failed: Vec<FailedBlock>,
    scan: &mut StoreScan,
) -> Result<(), StoreError> {
    for (i, f) in failed.iter().enumerate() {
        let mut found = None;
        for (j, other) in failed.iter().enumerate() {
            if i == j || other.tenant != f.tenant || found.is_some() {
                continue;
            }
            // The other block's tag where it lies, or this block's own (moved with it).
            for sidecar in [other.sidecar.clone(), f.sidecar.clone()]
                .into_iter()
                .flatten()
            {
                if let Ok(rows) =
                    read_block_as(keys, &f.tenant, &other.name, &f.bytes, Some(sidecar)).await?
                {
                    found = Some((other, rows));
                    break;
                }
            }
        }
        match found {
            Some((other, rows)) => {
                scan.misplaced.push(Misplaced {
                    tenant: f.tenant.clone(),
                    location: f.damage.location.clone(),
                    written_as: other.damage.location.clone(),
                });
                for entry in rows {
                    scan.spans.push(ScannedSpan {
                        tenant: f.tenant.clone(),
                        location: f.damage.location.clone(),
                        entry,
                    });
                }
            }
            None => scan.damage.push(f.damage.clone()),
        }
    }
    Ok(())
}

/// Scans `data_dir` (its `wal/` and `blocks/`), decrypting with `keys`.
pub async fn scan_data_dir(data_dir: &Path, keys: Arc<KeyRing>) -> Result<StoreScan, StoreError> {
    let blocks = data_dir.join("blocks");
    if !blocks.is_dir() {
        return scan_store(data_dir, keys, None).await;
    }
    let objects =
        LocalFileSystem::new_with_prefix(&blocks).map_err(|e| StoreError::ObjectStore {
            path: blocks.display().to_string(),
            source: e,
        })?;
    scan_store(data_dir, keys, Some(&objects)).await
}

/// Scans `data_dir`'s `wal/` and the blocks in `objects` (the local `blocks/` or the
/// bucket of `[store] url`; `None`: no blocks), decrypting with `keys`.
pub async fn scan_store(
    data_dir: &Path,
    keys: Arc<KeyRing>,
    objects: Option<&dyn ObjectStore>,
) -> Result<StoreScan, StoreError> {
    let mut scan = StoreScan::default();
    let wal_dir = data_dir.join("wal");
    if wal_dir.is_dir() {
        let ids = format::list_segments(&wal_dir)?;
        for (i, &id) in ids.iter().enumerate() {
            let path = format::segment_path(&wal_dir, id);
            let buf = std::fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
            scan.bytes_read += buf.len() as u64;
            let mut out = Vec::new();
            let mut report = RecoveryReport::default();
            let location = format!("wal/{}", format::segment_name(id));
            let outcome =
                replay_segment(&buf, id, i + 1 == ids.len(), &keys, &mut out, &mut report)?;
            match outcome {
                Outcome::Clean => {}
                Outcome::Cut { offset, reason } | Outcome::Corrupt { offset, reason } => {
                    scan.damage.push(Damage {
                        tenant: None,
                        location: location.clone(),
                        offset: Some(offset),
                        reason,
                        erased: false,
                    })
                }
            }
            scan.erased_wal_records += report.unreadable_records;
            for (tenant, spans) in out {
                for entry in spans {
                    scan.spans.push(ScannedSpan {
                        tenant: tenant.clone(),
                        location: location.clone(),
                        entry,
                    });
                }
            }
        }
    }
    let (erasures, bad) = crate::erasure::read_all(data_dir, &keys)?;
    scan.erasures = erasures;
    for (location, reason) in bad {
        scan.damage.push(Damage {
            tenant: None,
            location,
            offset: None,
            reason,
            erased: false,
        });
    }
    let Some(objects) = objects else {
        return Ok(scan);
    };
    let mut names = Vec::new();
    {
        use futures::StreamExt;
        let mut listing = objects.list(None);
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| StoreError::ObjectStore {
                path: "<list>".into(),
                source: e,
            })?;
            if let Some(b) = BlockInfo::parse(&meta.location) {
                names.push(b);
            }
        }
    }
    names.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
    // Blocks that fail under their own name, kept (up to a bound) to test whether their
    // content is another block's.
    let mut failed: Vec<FailedBlock> = Vec::new();
    for b in names {
        let location = format!("blocks/{}", b.path);
        let fetched = match objects.get(&b.path).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let bytes: Bytes = match fetched {
            Ok(b) => b,
            Err(e) => {
                scan.damage.push(Damage {
                    tenant: Some(b.tenant.clone()),
                    location,
                    offset: None,
                    reason: e.to_string(),
                    erased: false,
                });
                continue;
            }
        };
        scan.bytes_read += bytes.len() as u64;
        let sidecar = match objects.get(&crate::block::mac::mac_path(&b.path)).await {
            Ok(r) => r.bytes().await.ok(),
            Err(_) => None,
        };
        let read = read_block_as(&keys, &b.tenant, &b.name, &bytes, sidecar.clone()).await?;
        match read {
            Ok(rows) => {
                for entry in rows {
                    scan.spans.push(ScannedSpan {
                        tenant: b.tenant.clone(),
                        location: location.clone(),
                        entry,
                    });
                }
            }
            Err(e) if matches!(e, StoreError::KeyUnavailable { .. }) => scan.damage.push(Damage {
                tenant: Some(b.tenant.clone()),
                erased: true,
                location,
                offset: None,
                reason: e.to_string(),
            }),
            Err(e) => {
                let damage = Damage {
                    tenant: Some(b.tenant.clone()),
                    erased: false,
                    location,
                    offset: None,
                    reason: e.to_string(),
                };
                if failed.len() < MAX_MISPLACED_CANDIDATES {
                    failed.push(FailedBlock {
                        tenant: b.tenant,
                        name: b.name,
                        bytes,
                        sidecar,
                        damage,
                    });
                } else {
                    scan.damage.push(damage);
                }
            }
        }
    }
    find_misplaced(&keys, failed, &mut scan).await?;
    Ok(scan)
}
