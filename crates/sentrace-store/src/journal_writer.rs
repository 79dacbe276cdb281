//! A [`Journal`] behind a writer thread with group commit ([`crate::group_commit`]): what
//! the server's journals (findings, quarantine) use, so that no request waits on `fsync` on
//! an async worker.
//!
//! Appends and rewrites are queued in order. The thread writes each tenant's share of the
//! appends queued together with one write and one `fdatasync` ([`Journal::append_many`]);
//! a rewrite first commits the appends queued before it. Async callers take a
//! [`Mark`] before queueing and await [`JournalWriter::wait_since`] before they acknowledge
//! anything that depends on the records.

use std::sync::Arc;

use sentrace_core::TenantId;

use crate::StoreError;
use crate::group_commit::{Done, GroupOutcome, GroupStats, GroupWriter, Mark, WaitError};
use crate::journal::Journal;

/// A queued journal write.
#[derive(Debug)]
pub enum JournalJob {
    /// Append records to the tenant's journal.
    Append {
        /// Whose journal.
        tenant: TenantId,
        /// The records' payloads.
        payloads: Vec<Vec<u8>>,
    },
    /// Replace the tenant's records (compaction).
    Rewrite {
        /// Whose journal.
        tenant: TenantId,
        /// The records' payloads.
        payloads: Vec<Vec<u8>>,
    },
    /// Nothing: done once everything queued before it was processed.
    Flush,
}

/// A journal and its writer thread.
#[derive(Debug)]
pub struct JournalWriter {
    journal: Arc<Journal>,
    writer: GroupWriter<JournalJob>,
}

/// Commits a run of appends as one group; pushes one result per job.
fn commit_appends(journal: &Journal, run: &[&JournalJob], out: &mut GroupOutcome) {
    let group: Vec<(&TenantId, &[Vec<u8>])> = run
        .iter()
        .filter_map(|j| match j {
            JournalJob::Append { tenant, payloads } => Some((tenant, payloads.as_slice())),
            JournalJob::Rewrite { .. } | JournalJob::Flush => None,
        })
        .collect();
    if group.is_empty() {
        return;
    }
    let (results, fsyncs) = journal.append_many(&group);
    out.fsyncs += fsyncs;
    out.results
        .extend(results.into_iter().map(|r| r.map(|_| ())));
}

fn commit(journal: &Journal, jobs: &[JournalJob]) -> GroupOutcome {
    let mut out = GroupOutcome {
        results: Vec::with_capacity(jobs.len()),
        fsyncs: 0,
    };
    let mut run: Vec<&JournalJob> = Vec::new();
    for job in jobs {
        match job {
            JournalJob::Append { .. } => run.push(job),
            JournalJob::Rewrite { tenant, payloads } => {
                commit_appends(journal, &run, &mut out);
                run.clear();
                out.results.push(journal.rewrite(tenant, payloads));
                // The temporary file and the directory.
                out.fsyncs += 2;
            }
            JournalJob::Flush => {
                commit_appends(journal, &run, &mut out);
                run.clear();
                out.results.push(Ok(()));
            }
        }
    }
    commit_appends(journal, &run, &mut out);
    out
}

impl JournalWriter {
    /// Starts the writer thread of `journal`.
    pub fn start(journal: Journal) -> Result<Self, StoreError> {
        let journal = Arc::new(journal);
        let j = journal.clone();
        let what: &'static str = match journal.name() {
            "findings" => "findings-journal",
            "quarantine" => "quarantine-journal",
            "responses" => "response-audit",
            _ => "journal",
        };
        let writer = GroupWriter::start(what, move |jobs: &mut Vec<JournalJob>| commit(&j, jobs))?;
        Ok(Self { journal, writer })
    }

    /// The journal, for reads (loading on start, listing tenants).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Queues records for the tenant's journal; `done` runs once they are durable or failed.
    pub fn append(
        &self,
        tenant: &TenantId,
        payloads: Vec<Vec<u8>>,
        done: Option<Done>,
    ) -> Result<(), StoreError> {
        self.writer.submit(
            JournalJob::Append {
                tenant: tenant.clone(),
                payloads,
            },
            done,
        )
    }

    /// Queues a rewrite of the tenant's journal (compaction), ordered after every append
    /// queued before it.
    pub fn rewrite(
        &self,
        tenant: &TenantId,
        payloads: Vec<Vec<u8>>,
        done: Option<Done>,
    ) -> Result<(), StoreError> {
        self.writer.submit(
            JournalJob::Rewrite {
                tenant: tenant.clone(),
                payloads,
            },
            done,
        )
    }

    /// Appends and blocks until durable (sync code off the async runtime: tools, tests).
    pub fn append_wait(&self, tenant: &TenantId, payloads: Vec<Vec<u8>>) -> Result<(), StoreError> {
        self.writer.submit_wait(JournalJob::Append {
            tenant: tenant.clone(),
            payloads,
        })
    }

    /// Blocks until everything queued before was processed (sync code: tools, tests).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.writer.submit_wait(JournalJob::Flush)
    }

    /// See [`GroupWriter::mark`].
    pub fn mark(&self) -> Mark {
        self.writer.mark()
    }

    /// See [`GroupWriter::wait_since`].
    pub async fn wait_since(&self, mark: Mark) -> Result<(), WaitError> {
        self.writer.wait_since(mark).await
    }

    /// The writer's counters (appends, groups, fsyncs, failures).
    pub fn stats(&self) -> &Arc<GroupStats> {
        self.writer.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyRing, MasterKey};
    use std::sync::atomic::Ordering::Relaxed;

    /// Concurrent appends from many tasks to two tenants' journals: all durable when their
    /// waits return, readable after a restart, in fewer fsyncs than appends; a rewrite
    /// queued after them keeps its order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_group_commit_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(
            KeyRing::open(&dir.path().join("keys"), &MasterKey::from_bytes([5; 32])).unwrap(),
        );
        let jdir = dir.path().join("findings");
        let w = Arc::new(
            JournalWriter::start(Journal::open(&jdir, "findings", keys.clone()).unwrap()).unwrap(),
        );
        let tenants = [TenantId::new("a").unwrap(), TenantId::new("b").unwrap()];
        const N: usize = 300;
        let mut tasks = Vec::new();
        for i in 0..N {
            let (w, t) = (w.clone(), tenants[i % 2].clone());
            tasks.push(tokio::spawn(async move {
                let mark = w.mark();
                w.append(&t, vec![format!("record {i}").into_bytes()], None)
                    .unwrap();
                w.wait_since(mark).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let s = w.stats();
        let (jobs, fsyncs) = (s.jobs.load(Relaxed), s.fsyncs.load(Relaxed));
        eprintln!(
            "journal group commit: {jobs} appends, {fsyncs} fsyncs, {} groups",
            s.groups.load(Relaxed)
        );
        assert_eq!(jobs, N as u64);
        assert_eq!(s.failures.load(Relaxed), 0);
        // A restart (a fresh journal over the same files) reads every record once.
        let again = Journal::open(&jdir, "findings", keys).unwrap();
        let mut all: Vec<String> = tenants
            .iter()
            .flat_map(|t| again.load(t).unwrap().records)
            .map(|r| String::from_utf8(r).unwrap())
            .collect();
        all.sort();
        let mut want: Vec<String> = (0..N).map(|i| format!("record {i}")).collect();
        want.sort();
        assert_eq!(all, want);
        // A rewrite is ordered after the appends queued before it.
        let mark = w.mark();
        w.append(&tenants[0], vec![b"x".to_vec()], None).unwrap();
        w.rewrite(&tenants[0], vec![b"kept".to_vec()], None)
            .unwrap();
        w.append(&tenants[0], vec![b"after".to_vec()], None)
            .unwrap();
        w.wait_since(mark).await.unwrap();
        assert_eq!(
            w.journal().load(&tenants[0]).unwrap().records,
            vec![b"kept".to_vec(), b"after".to_vec()]
        );
    }
}
