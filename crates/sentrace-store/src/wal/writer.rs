//! The single WAL writer thread: group commit with one fsync per batch of requests.
//!
//! Appends arrive on a channel whose total size is bounded by a byte semaphore held by the
//! caller (see `Store::append`). The thread takes whatever is queued, encrypts each request
//! into one record, writes them with one `write`, calls `fdatasync` once, makes the spans
//! visible in the memtable and only then answers every waiter.
//!
//! After a failed write or fsync the file's state is unknown (see the 2018 "fsyncgate"
//! discussion of PostgreSQL): the writer stops accepting appends rather than retrying.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use sentrace_core::TenantId;
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc, oneshot};

use super::format::{self, HEADER_LEN};
use crate::entry::encode_entries;
use crate::memtable::State;
use crate::{KeyRing, SpanEntry, StoreError};

/// Where an append landed in the WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendReceipt {
    /// Segment id.
    pub segment: u64,
    /// Record offset in the segment.
    pub offset: u64,
    /// Spans in the record.
    pub spans: usize,
    /// Data key id that encrypted the record.
    pub key_id: u32,
}

pub(crate) struct AppendReq {
    pub tenant: TenantId,
    pub spans: Vec<SpanEntry>,
    pub permit: OwnedSemaphorePermit,
    pub reply: oneshot::Sender<Result<AppendReceipt, StoreError>>,
}

pub(crate) enum WalMsg {
    Append(AppendReq),
    /// Start a new segment and freeze the memtable; answers the new segment id (every
    /// older segment is covered by frozen generations).
    Roll(oneshot::Sender<Result<u64, StoreError>>),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// Figures the writer publishes for back-pressure hints and for `/metrics`.
pub(crate) struct WalStats {
    pub last_commit_micros: AtomicU64,
    pub commits: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// Spans made durable by commits.
    pub spans: AtomicU64,
    /// Bytes of the WAL segments on disk (replayed ones included, deleted ones not).
    pub disk_bytes: AtomicU64,
    /// Seconds each group commit's `fdatasync` took.
    pub fsync_seconds: Histogram,
}

/// Buckets of [`WalStats::fsync_seconds`]: 50 µs to about 3.3 s, doubling.
pub const FSYNC_BUCKETS: (f64, f64, u16) = (0.000_05, 2.0, 17);

impl Default for WalStats {
    fn default() -> Self {
        let (start, factor, n) = FSYNC_BUCKETS;
        Self {
            last_commit_micros: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            spans: AtomicU64::new(0),
            disk_bytes: AtomicU64::new(0),
            fsync_seconds: Histogram::new(exponential_buckets(start, factor, n)),
        }
    }
}

/// Counters of the WAL writer since open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalCounters {
    /// Group commits (each one `write` plus one `fdatasync`).
    pub commits: u64,
    /// Records (requests) committed.
    pub records: u64,
    /// Bytes written to segments by commits.
    pub bytes: u64,
    /// Spans made durable by commits.
    pub spans: u64,
    /// Bytes of the WAL segments now on disk.
    pub disk_bytes: u64,
}

impl WalStats {
    pub(crate) fn counters(&self) -> WalCounters {
        WalCounters {
            commits: self.commits.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            spans: self.spans.load(Ordering::Relaxed),
            disk_bytes: self.disk_bytes.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct Writer {
    pub dir: PathBuf,
    pub keys: Arc<KeyRing>,
    pub state: Arc<RwLock<State>>,
    pub segment_bytes: u64,
    pub flush_max_spans: usize,
    pub flush_notify: Arc<Notify>,
    pub stats: Arc<WalStats>,
    seg_id: u64,
    file: File,
    len: u64,
    failed: Option<String>,
    buf: Vec<u8>,
    plain: Vec<u8>,
    pending: Vec<(AppendReq, AppendReceipt)>,
}

/// Most requests committed by one fsync.
const MAX_GROUP: usize = 4096;

fn open_segment(dir: &std::path::Path, id: u64) -> Result<File, StoreError> {
    let path = format::segment_path(dir, id);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    f.write_all(&format::header(id))
        .and_then(|()| f.sync_all())
        .map_err(|e| StoreError::io(&path, e))?;
    crate::fsutil::sync_dir(dir)?;
    Ok(f)
}

impl Writer {
    /// Creates segment `first_segment` and returns a writer ready to run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dir: PathBuf,
        first_segment: u64,
        keys: Arc<KeyRing>,
        state: Arc<RwLock<State>>,
        segment_bytes: u64,
        flush_max_spans: usize,
        flush_notify: Arc<Notify>,
        stats: Arc<WalStats>,
    ) -> Result<Self, StoreError> {
        let file = open_segment(&dir, first_segment)?;
        stats.disk_bytes.fetch_add(HEADER_LEN, Ordering::Relaxed);
        Ok(Self {
            dir,
            keys,
            state,
            segment_bytes,
            flush_max_spans,
            flush_notify,
            stats,
            seg_id: first_segment,
            file,
            len: HEADER_LEN,
            failed: None,
            buf: Vec::with_capacity(1 << 20),
            plain: Vec::with_capacity(1 << 20),
            pending: Vec::new(),
        })
    }

    /// Runs until `Close` or until every sender is gone.
    pub fn run(mut self, mut rx: mpsc::UnboundedReceiver<WalMsg>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            for msg in batch {
                match msg {
                    WalMsg::Append(req) => self.stage(req),
                    WalMsg::Roll(reply) => {
                        self.commit();
                        let _ = reply.send(self.roll(true));
                    }
                    WalMsg::Close(reply) => {
                        self.commit();
                        let res = match &self.failed {
                            Some(e) => Err(self.failure(e)),
                            None => self
                                .file
                                .sync_all()
                                .map_err(|e| StoreError::io(self.path(), e)),
                        };
                        let _ = reply.send(res);
                        return;
                    }
                }
            }
            self.commit();
        }
    }

    fn path(&self) -> PathBuf {
        format::segment_path(&self.dir, self.seg_id)
    }

    fn failure(&self, msg: &str) -> StoreError {
        StoreError::io(
            self.path(),
            std::io::Error::other(format!("WAL writer stopped after an earlier error: {msg}")),
        )
    }

    /// Encrypts one request into the group buffer.
    fn stage(&mut self, req: AppendReq) {
        if let Some(e) = &self.failed {
            let err = self.failure(e);
            let _ = req.reply.send(Err(err));
            return;
        }
        if self.len >= self.segment_bytes {
            self.commit();
            if let Err(e) = self.roll(false) {
                let _ = req.reply.send(Err(e));
                return;
            }
        }
        let dek = match self.keys.current_dek(&req.tenant) {
            Ok(d) => d,
            Err(e) => {
                let _ = req.reply.send(Err(e));
                return;
            }
        };
        self.plain.clear();
        encode_entries(&req.spans, &mut self.plain);
        let offset = self.len.saturating_add(self.buf.len() as u64);
        let before = self.buf.len();
        if let Err(e) = format::encode_record(
            &mut self.buf,
            dek.wal_key(),
            &req.tenant,
            dek.id,
            self.seg_id,
            offset,
            &self.plain,
        ) {
            self.buf.truncate(before);
            let _ = req.reply.send(Err(e));
            return;
        }
        let receipt = AppendReceipt {
            segment: self.seg_id,
            offset,
            spans: req.spans.len(),
            key_id: dek.id,
        };
        self.pending.push((req, receipt));
    }

    /// Writes and fsyncs the group, publishes the spans, answers the waiters.
    fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let started = Instant::now();
        let res = self.file.write_all(&self.buf).and_then(|()| {
            let synced = Instant::now();
            let r = self.file.sync_data();
            self.stats
                .fsync_seconds
                .observe(synced.elapsed().as_secs_f64());
            r
        });
        let pending = std::mem::take(&mut self.pending);
        if let Err(e) = res {
            let msg = e.to_string();
            tracing::error!(segment = self.seg_id, error = %msg, "WAL write failed; writer stops");
            self.failed = Some(msg.clone());
            self.buf.clear();
            for (req, _) in pending {
                let _ = req.reply.send(Err(StoreError::io(
                    self.path(),
                    std::io::Error::new(e.kind(), msg.clone()),
                )));
            }
            return;
        }
        self.len = self.len.saturating_add(self.buf.len() as u64);
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.stats
            .records
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.stats
            .disk_bytes
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        let spans: usize = pending.iter().map(|(_, r)| r.spans).sum();
        self.stats.spans.fetch_add(spans as u64, Ordering::Relaxed);
        self.buf.clear();
        let mut replies = Vec::with_capacity(pending.len());
        let buffered = match self.state.write() {
            Ok(mut st) => {
                for (req, receipt) in pending {
                    st.insert(&req.tenant, req.spans);
                    replies.push((req.permit, req.reply, receipt));
                }
                st.active.spans
            }
            Err(_) => {
                for (req, _) in pending {
                    let _ = req
                        .reply
                        .send(Err(StoreError::Task("state lock poisoned".into())));
                }
                0
            }
        };
        if buffered >= self.flush_max_spans {
            self.flush_notify.notify_one();
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats
            .last_commit_micros
            .store(micros, Ordering::Relaxed);
        for (permit, reply, receipt) in replies {
            drop(permit);
            let _ = reply.send(Ok(receipt));
        }
    }

    /// Closes the current segment and starts the next; with `freeze`, also moves the active
    /// memtable to the frozen list (every span in older segments is then frozen).
    fn roll(&mut self, freeze: bool) -> Result<u64, StoreError> {
        if let Some(e) = &self.failed {
            return Err(self.failure(e));
        }
        let next = self
            .seg_id
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt {
                path: self.dir.clone(),
                offset: 0,
                reason: "segment ids exhausted".into(),
            })?;
        self.file
            .sync_all()
            .map_err(|e| StoreError::io(self.path(), e))?;
        let file = open_segment(&self.dir, next)?;
        self.stats
            .disk_bytes
            .fetch_add(HEADER_LEN, Ordering::Relaxed);
        self.file = file;
        self.seg_id = next;
        self.len = HEADER_LEN;
        if freeze {
            self.state
                .write()
                .map_err(|_| StoreError::Task("state lock poisoned".into()))?
                .freeze();
        }
        Ok(next)
    }
}
