//! Sentrace authentication and authorization.
//!
//! This crate is pure: it parses and checks credentials and decides, but reads no files and
//! opens no sockets. The server feeds it the token file's bytes and the presented secret.
#![forbid(unsafe_code)]

pub mod audit;
pub mod authz;
pub mod cert;
pub mod jwt;
pub mod token;

pub use token::{
    AuthError, IssuedToken, TOKEN_PREFIX, TokenError, TokenRecord, TokenSet, parse_duration,
};
