//! Key-encryption keys (KEK): the one trait every master key provider implements, the
//! local provider (a 32-byte key from a file or an environment variable) and the spec that
//! names a provider (`file:PATH`, `env:VAR`, `command:PROG ARG…`, or a TOML table).
//!
//! A KEK wraps data keys: `wrap(label, aad, key)` with AAD = purpose ‖ tenant ‖ key id (the
//! key ring builds it), so a wrapped key cannot be unwrapped as another tenant's or another
//! id's. Every KEK has a stable, non-secret id that is recorded next to every key it wrapped,
//! so a data directory says which master key it needs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::command::CommandKek;
use crate::StoreError;
use crate::crypto::{AeadKey, KEY_LEN, Secret32, hkdf32, put_field};

/// Which key a wrap or unwrap is about, for error messages and for a command provider's
/// request (`tenant`, `key_id`).
#[derive(Debug, Clone, Copy)]
pub struct KeyLabel<'a> {
    /// The tenant (empty for node-wide secrets such as the log key).
    pub tenant: &'a str,
    /// The key's id: `dek/<n>`, `pseudonym`, or a node secret's purpose.
    pub key_id: &'a str,
}

impl std::fmt::Display for KeyLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tenant.is_empty() {
            write!(f, "key {}", self.key_id)
        } else {
            write!(f, "key {} of tenant {}", self.key_id, self.tenant)
        }
    }
}

/// A master key provider. Implementations must be authenticated encryption: a wrong KEK,
/// a wrong AAD or a changed byte is an error, never other bytes.
pub trait Kek: Send + Sync + std::fmt::Debug {
    /// A stable, non-secret identifier of this master key (recorded next to wrapped keys).
    fn id(&self) -> &str;

    /// Wraps `key` (a data key or another secret) bound to `aad`.
    fn wrap(&self, label: &KeyLabel<'_>, aad: &[u8], key: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Unwraps what [`Kek::wrap`] made for the same `aad`.
    fn unwrap(
        &self,
        label: &KeyLabel<'_>,
        aad: &[u8],
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError>;

    /// Wraps a node secret for `purpose` (the log signing key). The default binds the
    /// purpose as AAD; the local provider keeps its historical format.
    fn wrap_secret(&self, purpose: &str, secret: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.wrap(&secret_label(purpose), &secret_aad(purpose), secret)
    }

    /// Unwraps what [`Kek::wrap_secret`] made for the same `purpose`.
    fn unwrap_secret(
        &self,
        purpose: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.unwrap(&secret_label(purpose), &secret_aad(purpose), wrapped)
    }
}

fn secret_label(purpose: &str) -> KeyLabel<'_> {
    KeyLabel {
        tenant: "",
        key_id: purpose,
    }
}

fn secret_aad(purpose: &str) -> Vec<u8> {
    let mut aad = Vec::new();
    put_field(&mut aad, b"sentrace secret v1");
    put_field(&mut aad, purpose.as_bytes());
    aad
}

/// The local provider: AES-256-GCM (NIST SP 800-38D) directly under a 32-byte master key
/// read from a 0600 file or an environment variable.
pub struct LocalKek {
    id: String,
    key: Secret32,
    aead: AeadKey,
}

impl std::fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKek").field("id", &self.id).finish()
    }
}

impl LocalKek {
    /// A local KEK over `key`. Its id is `local-` and 16 hex digits of
    /// SHA-256("sentrace kek id v1" ‖ key): stable, and reveals nothing about the key.
    pub fn new(key: Secret32) -> Result<Self, StoreError> {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"sentrace kek id v1");
        ctx.update(key.expose());
        let digest = ctx.finish();
        let id = format!("local-{}", hex::encode(&digest.as_ref()[..8]));
        let aead = AeadKey::new(&key)?;
        Ok(Self { id, key, aead })
    }

    fn purpose_key(&self, purpose: &str) -> Result<AeadKey, StoreError> {
        AeadKey::new(&hkdf32(
            self.key.expose(),
            &[b"sentrace wrap v1", purpose.as_bytes()],
        )?)
    }
}

impl Kek for LocalKek {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, _label: &KeyLabel<'_>, aad: &[u8], key: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.aead.seal_append(aad, key, &mut out)?;
        Ok(out)
    }

    fn unwrap(
        &self,
        label: &KeyLabel<'_>,
        aad: &[u8],
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.aead
            .open(
                aad,
                wrapped,
                &format!(
                    "unwrapping {label} with master key {}: wrong master key or tampered key file",
                    self.id
                ),
            )
            .map(Zeroizing::new)
    }

    /// HKDF(master, "sentrace wrap v1" ‖ purpose) as the key, the purpose as AAD: the
    /// format `log-key.wrapped` has always had.
    fn wrap_secret(&self, purpose: &str, secret: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.purpose_key(purpose)?
            .seal_append(purpose.as_bytes(), secret, &mut out)?;
        Ok(out)
    }

    fn unwrap_secret(
        &self,
        purpose: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.purpose_key(purpose)?
            .open(purpose.as_bytes(), wrapped, purpose)
            .map(Zeroizing::new)
    }
}

/// Longest accepted spec string.
const MAX_SPEC_LEN: usize = 4096;
/// Default time a command provider gets per call.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Which master key provider to use (`[keys] kek` in the config, `--kek`, `keys rewrap
/// --to`, or `SENTRACE_KEK`). As text: `file:PATH`, `env:VAR`, or `command:PROG [ARG…]`
/// (arguments separated by spaces; use the table form for arguments with spaces).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum KekSpec {
    /// The text form.
    Text(String),
    /// A 64-hex-character key file (mode 0600; created if missing only for the default).
    File {
        /// The key file.
        file: PathBuf,
    },
    /// A 64-hex-character key in an environment variable.
    Env {
        /// The variable's name.
        env: String,
    },
    /// An external program speaking the JSON protocol of docs/keys.md.
    Command {
        /// Program and arguments (no shell).
        command: Vec<String>,
        /// Time allowed per call (`"5s"`, `"500ms"`); default 5s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<String>,
        /// The KEK id to record (default: `cmd-` and a digest of the command line).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
}

/// A parsed, validated provider choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KekSource {
    /// A key file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A program.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
        /// Time allowed per call.
        timeout: Duration,
        /// Explicit KEK id.
        id: Option<String>,
    },
}

fn spec_err(reason: impl Into<String>) -> StoreError {
    StoreError::Config {
        field: "keys.kek",
        reason: reason.into(),
    }
}

impl KekSpec {
    /// Checks the spec and resolves the text form.
    pub fn source(&self) -> Result<KekSource, StoreError> {
        match self {
            Self::Text(t) => KekSource::parse(t),
            Self::File { file } => Ok(KekSource::File(file.clone())),
            Self::Env { env } => KekSource::parse(&format!("env:{env}")),
            Self::Command {
                command,
                timeout,
                id,
            } => {
                let timeout = match timeout {
                    Some(t) => crate::duration::parse(t).map_err(spec_err)?,
                    None => DEFAULT_COMMAND_TIMEOUT,
                };
                KekSource::command(command.clone(), timeout, id.clone())
            }
        }
    }
}

impl KekSource {
    /// Parses the text form (`file:PATH`, `env:VAR`, `command:PROG ARG…`).
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        if text.len() > MAX_SPEC_LEN {
            return Err(spec_err(format!(
                "{} bytes is longer than {MAX_SPEC_LEN}",
                text.len()
            )));
        }
        let (kind, rest) = text.split_once(':').ok_or_else(|| {
            spec_err(format!(
                "{text:?} is not `file:PATH`, `env:VAR` or `command:PROG ARG…`"
            ))
        })?;
        match kind {
            "file" if !rest.is_empty() => Ok(Self::File(PathBuf::from(rest))),
            "env" => {
                if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(spec_err(format!(
                        "env:{rest:?}: a variable name is letters, digits and _"
                    )));
                }
                Ok(Self::Env(rest.to_string()))
            }
            "command" => Self::command(
                rest.split_whitespace().map(str::to_string).collect(),
                DEFAULT_COMMAND_TIMEOUT,
                None,
            ),
            _ => Err(spec_err(format!(
                "{text:?} is not `file:PATH`, `env:VAR` or `command:PROG ARG…`"
            ))),
        }
    }

    fn command(
        argv: Vec<String>,
        timeout: Duration,
        id: Option<String>,
    ) -> Result<Self, StoreError> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(spec_err("command: the program is missing"));
        }
        if argv.len() > 64 {
            return Err(spec_err("command: more than 64 arguments"));
        }
        if timeout < Duration::from_millis(10) || timeout > Duration::from_secs(600) {
            return Err(spec_err("command timeout must be between 10ms and 10m"));
        }
        if let Some(i) = &id
            && (i.is_empty()
                || i.len() > 128
                || !i
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b)))
        {
            return Err(spec_err(format!(
                "command id {i:?}: 1 to 128 of letters, digits and -_.:/"
            )));
        }
        Ok(Self::Command { argv, timeout, id })
    }

    /// Builds the provider. A `file:` key that does not exist is an error (only the data
    /// directory's default key file is created on first start).
    pub fn build(&self) -> Result<Arc<dyn Kek>, StoreError> {
        Ok(match self {
            Self::File(p) => Arc::new(LocalKek::new(super::master::load_key_file(p)?)?),
            Self::Env(v) => Arc::new(LocalKek::new(super::master::key_from_env(v)?)?),
            Self::Command { argv, timeout, id } => {
                Arc::new(CommandKek::new(argv.clone(), *timeout, id.clone()))
            }
        })
    }
}

/// A local KEK from raw bytes (tests, tools).
pub fn local_kek(bytes: [u8; KEY_LEN]) -> Result<Arc<dyn Kek>, StoreError> {
    Ok(Arc::new(LocalKek::new(Secret32(bytes))?))
}

/// A KEK that refuses everything (what [`super::MasterKey::from_bytes`] falls back to if
/// AES key setup were ever to fail, instead of panicking).
#[derive(Debug)]
pub(crate) struct UnusableKek;

impl Kek for UnusableKek {
    fn id(&self) -> &str {
        "unusable"
    }

    fn wrap(&self, label: &KeyLabel<'_>, _: &[u8], _: &[u8]) -> Result<Vec<u8>, StoreError> {
        Err(StoreError::crypto(format!(
            "wrapping {label}: master key unusable"
        )))
    }

    fn unwrap(
        &self,
        label: &KeyLabel<'_>,
        _: &[u8],
        _: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        Err(StoreError::crypto(format!(
            "unwrapping {label}: master key unusable"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_refuse_typos() {
        assert_eq!(
            KekSource::parse("file:/k").unwrap(),
            KekSource::File("/k".into())
        );
        assert_eq!(
            KekSource::parse("env:MY_KEY").unwrap(),
            KekSource::Env("MY_KEY".into())
        );
        assert!(matches!(
            KekSource::parse("command:/bin/kms wrap --x").unwrap(),
            KekSource::Command { argv, .. } if argv.len() == 3
        ));
        for bad in ["files:/k", "env:", "env:A-B", "command:", "nothing"] {
            assert!(KekSource::parse(bad).is_err(), "{bad}");
        }
        let t: KekSpec =
            toml::from_str::<toml::Table>("kek = { command = [\"/p\", \"a\"], timeout = \"2s\" }")
                .unwrap()["kek"]
                .clone()
                .try_into()
                .unwrap();
        assert!(matches!(
            t.source().unwrap(),
            KekSource::Command { timeout, .. } if timeout == Duration::from_secs(2)
        ));
    }

    #[test]
    fn local_ids_are_stable_and_distinct() {
        let a = local_kek([1; 32]).unwrap();
        let b = local_kek([1; 32]).unwrap();
        let c = local_kek([2; 32]).unwrap();
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        let l = KeyLabel {
            tenant: "t",
            key_id: "dek/1",
        };
        let w = a.wrap(&l, b"aad", b"k").unwrap();
        assert_eq!(&*b.unwrap(&l, b"aad", &w).unwrap(), b"k");
        let err = c.unwrap(&l, b"aad", &w).unwrap_err().to_string();
        assert!(err.contains("dek/1") && err.contains("tenant t"), "{err}");
    }
}
