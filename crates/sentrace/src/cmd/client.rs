//! Where the client commands find the server: the flag, else its environment variable,
//! else the server's own configuration file (`--config` or `SENTRACE_CONFIG`, the same
//! file and variable `serve` reads), else the default port on localhost.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sentrace_server::Config;

/// One of the server's listeners, as named in `[listen]`.
#[derive(Clone, Copy, Debug)]
pub enum Listener {
    /// `[listen] query`: the query API.
    Query,
    /// `[listen] otlp_http`: OTLP/HTTP.
    OtlpHttp,
}

/// The server's configuration file, shared by the client commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerConfig {
    /// The server's configuration file: its `[listen]` addresses give the URL when none is
    /// given otherwise.
    #[arg(long = "config", env = "SENTRACE_CONFIG")]
    pub path: Option<PathBuf>,
}

impl ServerConfig {
    /// `given` when set, else the listener's URL from the configuration file, else
    /// `default`.
    pub fn url(
        &self,
        given: Option<&str>,
        which: Listener,
        default: &str,
    ) -> anyhow::Result<String> {
        if let Some(url) = given {
            return Ok(url.to_string());
        }
        match &self.path {
            Some(path) => listener_url(path, which),
            None => Ok(default.to_string()),
        }
    }
}

/// `https://host:port` of a listener in the configuration file at `path`.
fn listener_url(path: &Path, which: Listener) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let cfg = Config::from_toml(&text, &path.display().to_string())?;
    let addr = match which {
        Listener::Query => cfg.listen.query,
        Listener::OtlpHttp => cfg.listen.otlp_http,
    };
    Ok(url_of(addr))
}

/// The URL a local client uses for a listen address: a wildcard or loopback address is
/// reached as `localhost` (a name the generated certificate carries).
fn url_of(addr: SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_unspecified() || ip.is_loopback() {
        format!("https://localhost:{}", addr.port())
    } else if ip.is_ipv6() {
        format!("https://[{ip}]:{}", addr.port())
    } else {
        format!("https://{ip}:{}", addr.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_become_urls() {
        let url = |s: &str| url_of(s.parse().unwrap());
        assert_eq!(url("0.0.0.0:16686"), "https://localhost:16686");
        assert_eq!(url("127.0.0.1:9"), "https://localhost:9");
        assert_eq!(url("[::]:9"), "https://localhost:9");
        assert_eq!(url("10.0.0.5:9"), "https://10.0.0.5:9");
        assert_eq!(url("[fd00::1]:9"), "https://[fd00::1]:9");
    }

    #[test]
    fn flag_then_config_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "[listen]\nquery = \"127.0.0.1:26686\"\n").unwrap();
        let with = ServerConfig { path: Some(path) };
        let none = ServerConfig { path: None };
        let q = Listener::Query;
        assert_eq!(
            with.url(Some("https://x:1"), q, "d").unwrap(),
            "https://x:1"
        );
        assert_eq!(with.url(None, q, "d").unwrap(), "https://localhost:26686");
        assert_eq!(none.url(None, q, "d").unwrap(), "d");
        let missing = ServerConfig {
            path: Some(dir.path().join("nope.toml")),
        };
        let e = missing.url(None, q, "d").unwrap_err().to_string();
        assert!(e.contains("nope.toml"), "{e}");
    }
}
