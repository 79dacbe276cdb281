//! Signed sources in the server: the stage, registry, wire format and replay state live in
//! [`sentrace_pipeline::sources`] (re-exported here); the server adds the admin routes
//! ([`routes`]).

pub use sentrace_pipeline::sources::*;

pub mod routes;
