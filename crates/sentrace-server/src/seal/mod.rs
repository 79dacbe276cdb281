//! The transparency logs in the server: sealing, tiles, checkpoints and keys live in
//! [`sentrace_pipeline::seal`] (re-exported here); the server adds the HTTP edges: the
//! public log routes ([`routes`]) and the remote-verification API ([`remote`]).

pub use sentrace_pipeline::seal::*;

pub mod remote;
pub mod routes;
