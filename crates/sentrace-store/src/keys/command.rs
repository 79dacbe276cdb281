//! The command KEK provider: an external program (a KMS CLI, Vault transit, an HSM tool)
//! wraps and unwraps data keys, so no KMS needs a dependency here.
//!
//! Protocol (docs/keys.md): one process per call. The request is one JSON object on
//! standard input, then EOF:
//!
//! ```text
//! {"version":1,"op":"wrap"|"unwrap","kek_id":"…","tenant":"acme","key_id":"dek/3",
//!  "aad":"<base64>","data":"<base64>"}
//! ```
//!
//! The reply is one JSON object on standard output: `{"data":"<base64>"}`, exit status 0.
//! A non-zero exit, no reply within the timeout (the process is killed), more than
//! [`MAX_REPLY`] bytes, or anything that is not that object is an error naming the tenant
//! and key id; the program's standard error (first [`MAX_STDERR`] bytes) is quoted in it.
//! The program must be authenticated encryption that binds `aad`: Sentrace trusts an
//! unwrap's output only as far as the program checks it. Unwrapped keys are cached by the
//! key ring, so each key costs one call per process start.
//!
//! A program that exits or closes its standard input before it read the request must be an
//! error naming it, not the death of the calling process: client commands (`verify`,
//! `audit`, `proof`) restore the default SIGPIPE action, under which writing to a pipe whose
//! reader is gone kills the writer. So the request is written from a thread that blocks
//! SIGPIPE for itself (the kernel sends that signal to the writing thread; it stays pending
//! there and is discarded when the thread ends), the write fails with `EPIPE`, and the
//! error reports the program's exit status and standard error.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use super::kek::{Kek, KeyLabel};
use crate::StoreError;

/// Largest reply read from the program.
pub const MAX_REPLY: u64 = 64 * 1024;
/// Standard error bytes quoted in an error.
pub const MAX_STDERR: u64 = 2048;

/// A master key behind an external program.
pub struct CommandKek {
    argv: Vec<String>,
    timeout: Duration,
    id: String,
}

impl std::fmt::Debug for CommandKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandKek")
            .field("program", &self.argv.first())
            .field("id", &self.id)
            .finish()
    }
}

#[derive(serde::Serialize)]
struct Request<'a> {
    version: u32,
    op: &'a str,
    kek_id: &'a str,
    tenant: &'a str,
    key_id: &'a str,
    aad: String,
    data: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    data: String,
}

impl CommandKek {
    /// A provider running `argv` with `timeout` per call. Without an explicit `id`, the KEK
    /// id is `cmd-` and 16 hex digits of SHA-256 of the command line.
    pub fn new(argv: Vec<String>, timeout: Duration, id: Option<String>) -> Self {
        let id = id.unwrap_or_else(|| {
            let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            for a in &argv {
                ctx.update(a.as_bytes());
                ctx.update(&[0]);
            }
            format!("cmd-{}", hex::encode(&ctx.finish().as_ref()[..8]))
        });
        Self { argv, timeout, id }
    }

    fn call(
        &self,
        op: &'static str,
        label: &KeyLabel<'_>,
        aad: &[u8],
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let fail = |reason: String| StoreError::Kek {
            kek: self.id.clone(),
            op,
            key: label.to_string(),
            reason,
        };
        let request = Zeroizing::new(
            serde_json::to_vec(&Request {
                version: 1,
                op,
                kek_id: &self.id,
                tenant: label.tenant,
                key_id: label.key_id,
                aad: B64.encode(aad),
                data: B64.encode(data),
            })
            .map_err(|e| fail(format!("encoding the request: {e}")))?,
        );
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", self.argv[0])))?;
        // Standard input, output and error each on a thread of their own, so a program that
        // writes before it reads cannot deadlock against us; the deadline is kept here.
        let stdin = child.stdin.take();
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            block_sigpipe_in_this_thread();
            match stdin {
                Some(mut s) => s.write_all(&request),
                None => Ok(()),
            }
        });
        let stdout = child.stdout.take();
        let out_reader = std::thread::spawn(move || {
            let mut buf = Zeroizing::new(Vec::new());
            if let Some(s) = stdout {
                let _ = s.take(MAX_REPLY + 1).read_to_end(&mut buf);
            }
            buf
        });
        let stderr = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stderr {
                let mut limited = s.take(MAX_STDERR);
                let _ = limited.read_to_end(&mut buf);
                // Drain the rest so the program never blocks on a full pipe.
                let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
            }
            buf
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if start.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = writer.join();
                    return Err(fail(format!(
                        "{} gave no answer within {:?}; it was killed",
                        self.argv[0], self.timeout
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(fail(format!("waiting for {}: {e}", self.argv[0]))),
            }
        };
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the writer thread panicked")));
        let out = out_reader
            .join()
            .map_err(|_| fail("reading the reply failed".into()))?;
        let err = err_reader.join().unwrap_or_default();
        let err_text = String::from_utf8_lossy(&err).trim().to_string();
        let quoted = if err_text.is_empty() {
            String::new()
        } else {
            format!(" (stderr: {err_text})")
        };
        if !status.success() {
            return Err(fail(format!(
                "{} exited with {status}{quoted}",
                self.argv[0]
            )));
        }
        if let Err(e) = written {
            // It succeeded without reading the request (EPIPE), or the pipe failed: what it
            // answered is not an answer to this request.
            let what = if e.kind() == std::io::ErrorKind::BrokenPipe {
                "closed its standard input before reading the request".to_string()
            } else {
                format!("could not be sent the request: {e}")
            };
            return Err(fail(format!(
                "{} {what} (it exited with {status}){quoted}",
                self.argv[0]
            )));
        }
        if out.len() as u64 > MAX_REPLY {
            return Err(fail(format!(
                "the reply is longer than {MAX_REPLY} bytes{quoted}"
            )));
        }
        let reply: Reply = serde_json::from_slice(&out).map_err(|e| {
            fail(format!(
                "the reply is not {{\"data\":\"<base64>\"}} ({e}){quoted}"
            ))
        })?;
        let bytes = B64
            .decode(reply.data.trim())
            .map_err(|e| fail(format!("the reply's data is not base64: {e}")))?;
        Ok(Zeroizing::new(bytes))
    }
}

/// Blocks SIGPIPE for the calling thread only (see the module docs): a write to a pipe
/// whose reader is gone then fails with `EPIPE` instead of killing the process.
fn block_sigpipe_in_this_thread() {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGPIPE);
    if let Err(e) = set.thread_block() {
        tracing::warn!(error = %e, "could not block SIGPIPE for the KEK request writer");
    }
}

impl Kek for CommandKek {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, label: &KeyLabel<'_>, aad: &[u8], key: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.call("wrap", label, aad, key).map(|z| z.to_vec())
    }

    fn unwrap(
        &self,
        label: &KeyLabel<'_>,
        aad: &[u8],
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.call("unwrap", label, aad, wrapped)
    }
}
