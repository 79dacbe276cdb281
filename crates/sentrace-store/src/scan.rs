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

use crate::block::{BlockInfo, load_meta_checked, read_rows};
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
}

/// Scans `data_dir` (its `wal/` and `blocks/`), decrypting with `keys`.
pub async fn scan_data_dir(data_dir: &Path, keys: Arc<KeyRing>) -> Result<StoreScan, StoreError> {
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
    let blocks = data_dir.join("blocks");
    if !blocks.is_dir() {
        return Ok(scan);
    }
    let objects =
        LocalFileSystem::new_with_prefix(&blocks).map_err(|e| StoreError::ObjectStore {
            path: blocks.display().to_string(),
            source: e,
        })?;
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
        let mac_path = crate::block::mac_path(&b.tenant, &b.name);
        let tag = match objects.get(&mac_path).await {
            Ok(r) => r.bytes().await.ok(),
            Err(_) => None,
        };
        let (keys2, tenant, name) = (keys.clone(), b.tenant.clone(), b.name.clone());
        let read = tokio::task::spawn_blocking(move || {
            let Some(tag) = tag else {
                return Err(StoreError::Corrupt {
                    path: format!("{name}.mac").into(),
                    offset: 0,
                    reason: "the block's integrity tag is missing".into(),
                });
            };
            crate::block::check_block_mac(&keys2, &tenant, &name, &bytes, &tag)?;
            let meta = load_meta_checked(&bytes, &keys2, &tenant, &name)?;
            let groups = (0..meta.arrow.metadata().num_row_groups()).collect();
            read_rows(bytes, &meta, &name, groups, &|_| true)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
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
            Err(e) => scan.damage.push(Damage {
                tenant: Some(b.tenant.clone()),
                erased: matches!(e, StoreError::KeyUnavailable { .. }),
                location,
                offset: None,
                reason: e.to_string(),
            }),
        }
    }
    Ok(scan)
}
