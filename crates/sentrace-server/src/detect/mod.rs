//! Threat detection in the server: the stage, its runtime and configuration live in
//! [`sentrace_pipeline::detect`] (re-exported here); the server adds the alert sinks, which
//! send findings over HTTPS and syslog ([`sinks`], the runtime's
//! [`sentrace_pipeline::detect::FindingSinks`]).

pub use sentrace_pipeline::detect::*;

pub mod sinks;
