//! Sentrace vocabulary.
//!
//! This crate is the small, stable centre of the workspace: identifiers with validating
//! constructors, the authenticated [`Identity`] of a caller, the [`Batch`] that flows through
//! the ingest pipeline, request [`Limits`] and their validation, the canonical span encoding
//! that is hashed, encrypted and stored, the sensitivity classes of attribute values
//! ([`AttributeClass`]), and the [`Stage`] trait that every pipeline stage implements. It
//! does no I/O.
#![forbid(unsafe_code)]

pub mod batch;
pub mod canonical;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod otlp;
pub mod sensitivity;
pub mod stage;
pub mod time;

pub use batch::{Batch, BatchContext, SourceInfo};
pub use identity::{AuthMethod, Identity, PrincipalKind, Role};
pub use ids::{IdError, SpanId, TenantId, TraceId};
pub use limits::{Limits, ValidationError};
pub use sensitivity::{AttributeClass, ClassSet, MINIMIZED_ATTRIBUTE};
pub use stage::{Stage, StageError};

/// Re-export of the OTLP protobuf types this crate speaks in.
pub use opentelemetry_proto::tonic as proto;
