//! Sentrace data minimization: getting sensitive data out of telemetry.
//!
//! A pure library (no I/O). The pieces:
//! - [`detect`]: typed detectors for personal data and credentials (each regex candidate
//!   confirmed by a check: Luhn and IIN ranges, mod-97, SSN ranges, JWT header, ...);
//! - [`keys`]: key-name rules (`password`, `authorization`, `user.email`, ...);
//! - [`sanitize`]: structure-preserving sanitizers for URLs, SQL, headers, bodies;
//! - [`Action`]s per [`Kind`]: drop, mask, keyed pseudonym, vault token, truncate,
//!   generalize;
//! - [`Policy`]: TOML with per-tenant and per-service overrides, a safe default, a digest;
//! - [`Redactor`]: the compiled policy applied in place to OTLP spans, and
//!   [`MinimizeStage`], its pipeline stage;
//! - [`exposure`]: counts of what was minimized per tenant, service, kind, attribute key
//!   and action (never values), bounded, for the console's exposure view;
//! - [`scan`]: leak findings (OCSF Data Security Finding) and a per-service summary.
#![forbid(unsafe_code)]

pub mod action;
pub mod detect;
pub mod exposure;
pub mod keys;
pub mod kind;
pub mod metrics;
pub mod policy;
mod redactor;
pub mod sanitize;
pub mod scan;
mod stage;
pub mod vault;

pub use exposure::{BatchExposure, ExposureLog, ExposureRow};
pub use kind::{Action, Kind};
pub use metrics::{Metrics, MetricsSnapshot};
pub use policy::{DEFAULT_POLICY_TOML, Policy, PolicyError};
pub use redactor::{
    Location, MAX_VALUE_DEPTH, MINIMIZED_ATTRIBUTE, MinimizeReport, POLICY_DIGEST_ATTRIBUTE,
    Redactor,
};
pub use scan::{LeakFinding, Summary, summary};
pub use stage::MinimizeStage;
pub use vault::{InMemorySecrets, TenantSecrets, VaultError};
