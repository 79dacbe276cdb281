//! The minimize stage of the ingest pipeline.

use std::sync::Arc;

use sentrace_core::{Batch, Stage, StageError};

use crate::redactor::Redactor;
use crate::vault::TenantSecrets;

/// Minimizes every batch under its tenant's policy, in place, and records the policy
/// digest in the batch context (each span also carries it as
/// [`crate::POLICY_DIGEST_ATTRIBUTE`]).
pub struct MinimizeStage {
    redactor: Arc<Redactor>,
    secrets: Arc<dyn TenantSecrets>,
    exposure: Option<Arc<crate::exposure::ExposureLog>>,
}

impl std::fmt::Debug for MinimizeStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinimizeStage")
            .field("policy_digest", &self.redactor.policy().digest_hex())
            .finish_non_exhaustive()
    }
}

impl MinimizeStage {
    /// A stage over a shared redactor and the tenants' secrets.
    pub fn new(redactor: Arc<Redactor>, secrets: Arc<dyn TenantSecrets>) -> Self {
        Self {
            redactor,
            secrets,
            exposure: None,
        }
    }

    /// Also counts each batch's exposure (service, kind, key, action) into `log`.
    pub fn with_exposure(mut self, log: Arc<crate::exposure::ExposureLog>) -> Self {
        self.exposure = Some(log);
        self
    }

    /// The redactor (for its metrics).
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }
}

impl Stage for MinimizeStage {
    fn name(&self) -> &'static str {
        "minimize"
    }

    fn process(&self, batch: &mut Batch) -> Result<(), StageError> {
        let tenant = batch.context.identity.tenant.clone();
        match &self.exposure {
            None => {
                self.redactor
                    .minimize(&tenant, &mut batch.resource_spans, self.secrets.as_ref());
            }
            Some(log) => {
                let mut exposure = crate::exposure::BatchExposure::default();
                self.redactor.minimize_recording(
                    &tenant,
                    &mut batch.resource_spans,
                    self.secrets.as_ref(),
                    &mut exposure,
                );
                log.record(&tenant, batch.context.received_at_unix_nanos, &exposure);
            }
        }
        batch.context.policy_digest = Some(self.redactor.policy_digest());
        Ok(())
    }
}
