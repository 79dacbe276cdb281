//! A writer thread with group commit, for the small durable files next to the WAL (the
//! journals, the vault, the response audit): callers on the async runtime never wait on
//! `fsync`.
//!
//! [`GroupWriter::submit`] queues a job and returns at once (it never blocks: the queue is
//! unbounded, and is bounded in practice by the requests in flight, each of which waits for
//! its jobs). The thread takes everything queued (up to [`MAX_GROUP`] jobs) and hands the
//! group to its commit function, which writes each file's share with one write and one
//! `fdatasync`: while one group is being synced the next one queues, so many appends share
//! one fsync. Then each job's `done` callback runs (on the writer thread), and only then does
//! the writer publish the group as processed.
//!
//! Waiting, from async code: take a [`Mark`] before enqueueing work, then
//! [`GroupWriter::wait_since`] waits until everything queued so far was processed, and
//! fails if any group failed since the mark. That is conservative on purpose: a failure of
//! a concurrent request's write fails this wait too (fail closed; the client retries),
//! which also covers work this request relied on without queueing it itself (a vault token
//! queued by another request and not yet durable). From sync code (tools, tests),
//! [`GroupWriter::submit_wait`] blocks until the job is done.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use tokio::sync::watch;

use crate::StoreError;

/// The most jobs committed by one group.
pub const MAX_GROUP: usize = 1024;

/// Runs on the writer thread once the job's group was committed (or failed).
pub type Done = Box<dyn FnOnce(&Result<(), StoreError>) + Send>;

/// What the commit function of a group reports.
#[derive(Debug)]
pub struct GroupOutcome {
    /// One result per job, in order.
    pub results: Vec<Result<(), StoreError>>,
    /// `fsync`/`fdatasync` calls made for the group.
    pub fsyncs: u64,
}

/// Counters of a writer.
#[derive(Debug, Default)]
pub struct GroupStats {
    /// Jobs processed (committed or failed).
    pub jobs: AtomicU64,
    /// Groups processed.
    pub groups: AtomicU64,
    /// `fsync`/`fdatasync` calls made.
    pub fsyncs: AtomicU64,
    /// Jobs that failed.
    pub failures: AtomicU64,
}

/// Where the writer has got to: every job with a sequence number up to `processed` is done,
/// and `failed_groups` groups failed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    processed: u64,
    failed_groups: u64,
}

/// A point in a writer's history, taken before a request queues its jobs.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    failed_groups: u64,
}

struct Queued<J> {
    seq: u64,
    job: J,
    done: Option<Done>,
}

struct Queue<J> {
    tx: mpsc::Sender<Queued<J>>,
    next_seq: u64,
}

/// The writer failed a group since the caller's mark, or its thread is gone.
#[derive(Debug, thiserror::Error)]
#[error("{what}: a durable write failed; nothing was acknowledged, retry")]
pub struct WaitError {
    /// Which writer.
    pub what: &'static str,
}

/// A writer thread that commits jobs of type `J` in groups.
pub struct GroupWriter<J: Send + 'static> {
    what: &'static str,
    queue: Mutex<Option<Queue<J>>>,
    progress: watch::Receiver<Progress>,
    stats: Arc<GroupStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<J: Send + 'static> std::fmt::Debug for GroupWriter<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupWriter")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl<J: Send + 'static> GroupWriter<J> {
    /// Starts the thread `sentrace-<what>`; `commit` writes one group durably.
    pub fn start(
        what: &'static str,
        mut commit: impl FnMut(&mut Vec<J>) -> GroupOutcome + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Queued<J>>();
        let (ptx, prx) = watch::channel(Progress::default());
        let stats = Arc::new(GroupStats::default());
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sentrace-{what}"))
            .spawn(move || {
                let mut progress = Progress::default();
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(q) => group.push(q),
                            Err(_) => break,
                        }
                    }
                    let last = group.last().map_or(progress.processed, |q| q.seq);
                    let mut dones = Vec::with_capacity(group.len());
                    let mut jobs = Vec::with_capacity(group.len());
                    for q in group {
                        dones.push(q.done);
                        jobs.push(q.job);
                    }
                    let n = jobs.len();
                    let mut out = commit(&mut jobs);
                    drop(jobs);
                    // A commit function that lost count fails the whole group.
                    if out.results.len() != n {
                        out.results = (0..n)
                            .map(|_| Err(StoreError::Task(format!("{what}: group result lost"))))
                            .collect();
                    }
                    let failed = out.results.iter().filter(|r| r.is_err()).count();
                    for (done, r) in dones.into_iter().zip(&out.results) {
                        if let Some(d) = done {
                            d(r);
                        }
                    }
                    st.jobs.fetch_add(n as u64, Relaxed);
                    st.groups.fetch_add(1, Relaxed);
                    st.fsyncs.fetch_add(out.fsyncs, Relaxed);
                    st.failures.fetch_add(failed as u64, Relaxed);
                    progress.processed = last;
                    if failed > 0 {
                        progress.failed_groups += 1;
                    }
                    ptx.send_replace(progress);
                }
            })
            .map_err(|e| StoreError::Task(format!("starting the {what} writer thread: {e}")))?;
        Ok(Self {
            what,
            queue: Mutex::new(Some(Queue { tx, next_seq: 0 })),
            progress: prx,
            stats,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Arc<GroupStats> {
        &self.stats
    }

    /// Where the writer is now; take it before queueing a request's jobs.
    pub fn mark(&self) -> Mark {
        Mark {
            failed_groups: self.progress.borrow().failed_groups,
        }
    }

    /// Queues a job; `done` runs on the writer thread once it is durable (or failed).
    /// Never blocks on I/O.
    pub fn submit(&self, job: J, done: Option<Done>) -> Result<(), StoreError> {
        let mut g = self
            .queue
            .lock()
            .map_err(|_| StoreError::Task(format!("{} queue lock poisoned", self.what)))?;
        let q = g
            .as_mut()
            .ok_or_else(|| StoreError::Task(format!("the {} writer is stopped", self.what)))?;
        // Sequence numbers follow the channel's order because both happen under the lock.
        q.next_seq += 1;
        let seq = q.next_seq;
        q.tx.send(Queued { seq, job, done })
            .map_err(|_| StoreError::Task(format!("the {} writer thread is gone", self.what)))
    }

    /// Queues a job and blocks until it is durable. For sync code off the async runtime
    /// (tools, tests, rare administrative writes inside `spawn_blocking`).
    pub fn submit_wait(&self, job: J) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel::<Result<(), String>>(1);
        self.submit(
            job,
            Some(Box::new(move |r| {
                let _ = tx.send(r.as_ref().map(|_| ()).map_err(ToString::to_string));
            })),
        )?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Task(format!("{}: {reason}", self.what))),
            Err(_) => Err(StoreError::Task(format!(
                "the {} writer thread is gone",
                self.what
            ))),
        }
    }

    /// Waits until every job queued before this call was processed; fails when a group
    /// failed since `mark` (see the module docs).
    pub async fn wait_since(&self, mark: Mark) -> Result<(), WaitError> {
        let target = match self.queue.lock() {
            Ok(g) => g.as_ref().map_or(0, |q| q.next_seq),
            Err(_) => return Err(WaitError { what: self.what }),
        };
        let mut rx = self.progress.clone();
        let p = *rx
            .wait_for(|p| p.processed >= target)
            .await
            .map_err(|_| WaitError { what: self.what })?;
        if p.failed_groups > mark.failed_groups {
            return Err(WaitError { what: self.what });
        }
        Ok(())
    }

    /// Stops the thread after it has processed everything queued.
    pub fn shutdown(&self) {
        if let Ok(mut g) = self.queue.lock() {
            g.take();
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl<J: Send + 'static> Drop for GroupWriter<J> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Many concurrent appends, each acknowledged only once durable: every one is in the
    /// file when its wait returns, and the writer made fewer fsyncs than appends. The first
    /// group is held until every append was queued, so the sharing does not depend on timing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_concurrent_appends_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let mut held = Some(gate_rx);
        let w = Arc::new(
            GroupWriter::start("test", move |jobs: &mut Vec<u32>| {
                if let Some(g) = held.take() {
                    let _ = g.recv();
                }
                let mut buf = Vec::new();
                for j in jobs.iter() {
                    buf.extend_from_slice(format!("{j}\n").as_bytes());
                }
                let r = file.write_all(&buf).and_then(|_| file.sync_data());
                GroupOutcome {
                    results: jobs
                        .iter()
                        .map(|_| {
                            r.as_ref()
                                .map(|_| ())
                                .map_err(|e| StoreError::Task(e.to_string()))
                        })
                        .collect(),
                    fsyncs: 1,
                }
            })
            .unwrap(),
        );
        const N: u32 = 400;
        let (queued_tx, mut queued_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for i in 0..N {
            let (w, path, queued) = (w.clone(), path.clone(), queued_tx.clone());
            tasks.push(tokio::spawn(async move {
                let mark = w.mark();
                w.submit(i, None).unwrap();
                queued.send(()).unwrap();
                w.wait_since(mark).await.unwrap();
                // Acknowledged: it is in the file already.
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(text.lines().any(|l| l == i.to_string()), "{i} missing");
            }));
        }
        for _ in 0..N {
            queued_rx.recv().await.unwrap();
        }
        gate_tx.send(()).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut got: Vec<u32> = text.lines().map(|l| l.parse().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..N).collect::<Vec<_>>());
        let s = w.stats();
        let (jobs, fsyncs) = (s.jobs.load(Relaxed), s.fsyncs.load(Relaxed));
        eprintln!("group commit: {jobs} appends, {fsyncs} fsyncs");
        assert_eq!(jobs, u64::from(N));
        assert!(fsyncs < jobs, "{fsyncs} fsyncs for {jobs} appends");
        assert!(fsyncs <= 3, "at most one held group and the rest: {fsyncs}");
    }

    /// A failed group fails the waits of everything marked before it, and `submit_wait`
    /// reports the failure; later groups succeed again.
    #[tokio::test]
    async fn a_failed_group_fails_its_waiters() {
        let w = GroupWriter::start("test", |jobs: &mut Vec<bool>| GroupOutcome {
            results: jobs
                .iter()
                .map(|ok| {
                    if *ok {
                        Ok(())
                    } else {
                        Err(StoreError::Task("disk full".into()))
                    }
                })
                .collect(),
            fsyncs: 1,
        })
        .unwrap();
        let mark = w.mark();
        assert!(w.submit_wait(false).is_err());
        assert!(w.wait_since(mark).await.is_err());
        let mark = w.mark();
        w.submit(true, None).unwrap();
        w.wait_since(mark).await.unwrap();
        assert_eq!(w.stats().failures.load(Relaxed), 1);
    }
}
