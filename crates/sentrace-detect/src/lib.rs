//! Sentrace threat detection.
//!
//! A pure library (no I/O, no clock reads): the server hands it decoded batches and the
//! receive time, and gets [`Finding`]s back.
//!
//! - [`Ruleset`]: rules as data (TOML, see [`rules`]), with an embedded default and
//!   per-tenant [`RulesetOverride`]s.
//! - [`Detector::inspect`]: payload detectors on request inputs ([`payload`]),
//!   trace-correlated detectors ([`correlate`]) and behavioral baselines ([`behavior`]).
//! - [`DetectStage`]: the [`sentrace_core::Stage`] that runs the detector before
//!   minimization and hands findings to a [`FindingSink`].
//! - [`Finding::to_ocsf`] (OCSF 1.3 Detection Finding, class 2004) and [`Finding::to_cef`].
//! - [`response::ResponsePolicy`]: findings to response actions, as data;
//!   [`enforce::ActiveResponses`] applies them to incoming batches (quarantine aside).
#![forbid(unsafe_code)]

pub mod behavior;
pub mod context;
pub mod correlate;
pub mod detector;
pub mod enforce;
pub mod finding;
pub mod memory;
pub mod normalize;
pub mod payload;
pub mod response;
pub mod rules;
pub mod snippet;
pub mod span;
pub mod stage;

pub use detector::Detector;
pub use finding::{Evidence, Finding, Subject};
pub use rules::{Family, Rule, RuleKind, RulesError, Ruleset, RulesetOverride, Severity};
pub use stage::{DetectStage, FindingSink, MemorySink};
