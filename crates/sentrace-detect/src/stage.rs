//! The pipeline stage: detection on the raw batch, before minimization.

use std::sync::Arc;

use sentrace_core::{Batch, Stage, StageError};

use crate::detector::Detector;
use crate::finding::Finding;

/// Where findings go (the server stores them, forwards them to sinks, applies responses).
/// `emit` must not block: queue and return.
pub trait FindingSink: Send + Sync + 'static {
    /// Takes one finding.
    fn emit(&self, finding: Finding);
}

/// A sink that collects findings in memory (tests and the offline CLI).
#[derive(Debug, Default)]
pub struct MemorySink {
    findings: std::sync::Mutex<Vec<Finding>>,
}

impl MemorySink {
    /// Takes the collected findings out.
    pub fn take(&self) -> Vec<Finding> {
        self.findings
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }
}

impl FindingSink for MemorySink {
    fn emit(&self, finding: Finding) {
        if let Ok(mut g) = self.findings.lock() {
            g.push(finding);
        }
    }
}

/// Runs a [`Detector`] on each batch and hands findings to a [`FindingSink`]. It never
/// refuses or modifies a batch: responses are decided from findings, elsewhere.
pub struct DetectStage {
    detector: Arc<Detector>,
    sink: Arc<dyn FindingSink>,
}

impl std::fmt::Debug for DetectStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectStage").finish_non_exhaustive()
    }
}

impl DetectStage {
    /// A stage over a shared detector and sink.
    pub fn new(detector: Arc<Detector>, sink: Arc<dyn FindingSink>) -> Self {
        Self { detector, sink }
    }
}

impl Stage for DetectStage {
    fn name(&self) -> &'static str {
        "detect"
    }

    fn process(&self, batch: &mut Batch) -> Result<(), StageError> {
        let identity = &batch.context.identity;
        let findings = self.detector.inspect(
            &identity.tenant,
            &batch.resource_spans,
            batch.context.received_at_unix_nanos,
        );
        for mut f in findings {
            f.subject.principal = Some(identity.principal.clone());
            self.sink.emit(f);
        }
        Ok(())
    }
}
