//! C2SP `tlog-witness` (c2sp.org/tlog-witness): the `add-checkpoint` request and response
//! bodies, a pure witness state machine that the server exposes over HTTP, and the client
//! side that builds requests and checks the cosignatures (C2SP `tlog-cosignature`).
//!
//! Atomicity (spec: check and persist as one step): the HTTP layer holds a lock, calls
//! [`Witness::evaluate`], persists the state with the returned record (write a temporary
//! file, then rename), calls [`Witness::apply`], and only then responds.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointPolicy, LogVerifier, Origin, Require, open_checkpoint,
};
use crate::keys::{KeyError, NoteSigner, VerifierKey};
use crate::merkle::{Hash, verify_consistency};
use crate::note::{MAX_NOTE_SIZE, Note, NoteError, NoteSignature};

/// The most consistency proof lines a request may carry (spec: clients MUST NOT send more
/// than 63).
pub const MAX_PROOF_LINES: usize = 63;
/// Content type of a 409 response body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// A malformed request or response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The body breaks the format.
    #[error("add-checkpoint body: {0}")]
    Syntax(&'static str),
    /// The checkpoint note is malformed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// No cosignature from a trusted witness verified.
    #[error("no valid cosignature from a trusted witness in the response")]
    NoCosignature,
    /// A cosignature from a trusted witness did not verify.
    #[error("cosignature from witness {0} does not verify")]
    BadCosignature(String),
}

/// The body of `POST <prefix>/add-checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness last cosigned.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

impl AddCheckpoint {
    /// The request body.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("old {}\n", self.old_size);
        for h in &self.proof {
            s.push_str(&STANDARD.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s.into_bytes()
    }

    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Self, WitnessError> {
        if body.len() > MAX_NOTE_SIZE + 64 * (MAX_PROOF_LINES + 1) {
            return Err(WitnessError::Syntax("body too large"));
        }
        let text = std::str::from_utf8(body).map_err(|_| WitnessError::Syntax("not UTF-8"))?;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or(WitnessError::Syntax("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or(WitnessError::Syntax("first line is not `old <size>`"))?;
        if old.is_empty()
            || !old.bytes().all(|b| b.is_ascii_digit())
            || (old.len() > 1 && old.starts_with('0'))
        {
            return Err(WitnessError::Syntax(
                "old size is not a decimal without leading zeros",
            ));
        }
        let old_size = old
            .parse()
            .map_err(|_| WitnessError::Syntax("old size does not fit 64 bits"))?;
        let mut proof = Vec::new();
        for l in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(WitnessError::Syntax("more than 63 consistency proof lines"));
            }
            let h: Hash = STANDARD
                .decode(l)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(WitnessError::Syntax("proof line is not a base64 hash"))?;
            proof.push(h);
        }
        Ok(Self {
            old_size,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

/// What the witness answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessResponse {
    /// 200: cosignature lines.
    Cosigned(String),
    /// 409: the witness's latest cosigned size for the origin (or equal sizes, different
    /// roots, with the recorded size).
    Conflict(u64),
    /// 404: the origin is unknown.
    UnknownOrigin,
    /// 403: no signature from a trusted log key verifies.
    Forbidden(String),
    /// 400: malformed request, or old size above the checkpoint size.
    BadRequest(String),
    /// 422: the consistency proof does not verify.
    InvalidProof,
    /// 500: the witness could not sign.
    Internal(String),
}

impl WitnessResponse {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            WitnessResponse::Cosigned(_) => 200,
            WitnessResponse::Conflict(_) => 409,
            WitnessResponse::UnknownOrigin => 404,
            WitnessResponse::Forbidden(_) => 403,
            WitnessResponse::BadRequest(_) => 400,
            WitnessResponse::InvalidProof => 422,
            WitnessResponse::Internal(_) => 500,
        }
    }

    /// The content type and body.
    pub fn body(&self) -> (&'static str, String) {
        match self {
            WitnessResponse::Cosigned(lines) => ("text/plain; charset=utf-8", lines.clone()),
            WitnessResponse::Conflict(size) => (SIZE_CONTENT_TYPE, format!("{size}\n")),
            WitnessResponse::UnknownOrigin => {
                ("text/plain; charset=utf-8", "unknown log origin\n".into())
            }
            WitnessResponse::Forbidden(m)
            | WitnessResponse::BadRequest(m)
            | WitnessResponse::Internal(m) => ("text/plain; charset=utf-8", format!("{m}\n")),
            WitnessResponse::InvalidProof => (
                "text/plain; charset=utf-8",
                "consistency proof does not verify\n".into(),
            ),
        }
    }
}

/// The latest checkpoint a witness cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRecord {
    /// Tree size.
    pub size: u64,
    /// Root hash, hex.
    pub root: String,
}

/// The witness's persistent state: one record per origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessState {
    /// Latest cosigned checkpoint per origin.
    pub logs: BTreeMap<String, LogRecord>,
}

/// A log the witness follows.
#[derive(Debug, Clone)]
pub struct KnownLog {
    /// The log's public keys.
    pub key: LogVerifier,
    /// Which of the log's signatures must verify.
    pub require: Require,
}

/// A witness: its cosigning keys, the logs it follows and its state.
#[derive(Debug)]
pub struct Witness {
    signers: Vec<NoteSigner>,
    logs: BTreeMap<Origin, KnownLog>,
    state: WitnessState,
}

/// The decision on a request: the response, and the record to persist before responding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// What to answer (after persisting `record`).
    pub response: WitnessResponse,
    /// The new record for the origin, if the checkpoint was cosigned.
    pub record: Option<(String, LogRecord)>,
}

impl Witness {
    /// A witness with cosigning keys (type `0x04` and/or `0x06`), the logs it follows and
    /// its saved state.
    pub fn new(
        signers: Vec<NoteSigner>,
        logs: BTreeMap<Origin, KnownLog>,
        state: WitnessState,
    ) -> Result<Self, KeyError> {
        if signers.is_empty() {
            return Err(KeyError::Malformed(
                "a witness needs at least one cosigning key",
            ));
        }
        Ok(Self {
            signers,
            logs,
            state,
        })
    }

    /// The witness's public keys, for the logs' and verifiers' configuration.
    pub fn verifiers(&self) -> Vec<VerifierKey> {
        self.signers.iter().map(|s| s.verifier().clone()).collect()
    }

    /// The state to persist.
    pub fn state(&self) -> &WitnessState {
        &self.state
    }

    /// Applies a record returned by [`Witness::evaluate`] (after persisting it).
    pub fn apply(&mut self, record: (String, LogRecord)) {
        self.state.logs.insert(record.0, record.1);
    }

    /// Evaluates and, if cosigned, applies in one step (for callers that persist after).
    pub fn add_checkpoint(&mut self, body: &[u8], now_unix_secs: u64) -> WitnessResponse {
        let e = self.evaluate(body, now_unix_secs);
        if let Some(r) = e.record {
            self.apply(r);
        }
        e.response
    }

    /// Decides on an `add-checkpoint` request, in the order of the spec.
    pub fn evaluate(&self, body: &[u8], now_unix_secs: u64) -> Evaluation {
        let reject = |response| Evaluation {
            response,
            record: None,
        };
        let req = match AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return reject(WitnessResponse::BadRequest(e.to_string())),
        };
        let note = match Note::parse(req.checkpoint.as_bytes()) {
            Ok(n) => n,
            Err(e) => return reject(WitnessResponse::BadRequest(e.to_string())),
        };
        let cp = match Checkpoint::parse(note.text()) {
            Ok(c) => c,
            Err(e) => return reject(WitnessResponse::BadRequest(e.to_string())),
        };
        // Unknown origin: 404.
        let Some(log) = self.logs.get(&cp.origin) else {
            return reject(WitnessResponse::UnknownOrigin);
        };
        // The log's signature: 403 unless a trusted one verifies.
        let policy = CheckpointPolicy {
            log: log.key.clone(),
            require: log.require,
            origin: Some(cp.origin.clone()),
            witnesses: Vec::new(),
            quorum: 0,
        };
        if let Err(e) = open_checkpoint(req.checkpoint.as_bytes(), &policy) {
            return reject(match e {
                CheckpointError::Note(_) | CheckpointError::Body { .. } => {
                    WitnessResponse::BadRequest(e.to_string())
                }
                other => WitnessResponse::Forbidden(other.to_string()),
            });
        }
        // Old size above the checkpoint size: 400.
        if req.old_size > cp.size {
            return reject(WitnessResponse::BadRequest(format!(
                "old size {} is above the checkpoint size {}",
                req.old_size, cp.size
            )));
        }
        // Old size must be the latest cosigned size (or 0): 409 with that size.
        let record = self.state.logs.get(cp.origin.as_str());
        let (known_size, known_root) = match record {
            Some(r) => match hex::decode(&r.root)
                .ok()
                .and_then(|b| <Hash>::try_from(b).ok())
            {
                Some(root) => (r.size, root),
                None => return reject(WitnessResponse::Internal("corrupt witness state".into())),
            },
            None => (0, crate::merkle::empty_root()),
        };
        if req.old_size != known_size {
            return reject(WitnessResponse::Conflict(known_size));
        }
        // Same size: the roots must be identical (409); otherwise the proof must verify (422).
        if req.old_size == cp.size && req.old_size != 0 {
            if known_root != cp.root {
                return reject(WitnessResponse::Conflict(known_size));
            }
            if !req.proof.is_empty() {
                return reject(WitnessResponse::InvalidProof);
            }
        } else if verify_consistency(req.old_size, cp.size, &known_root, &cp.root, &req.proof)
            .is_err()
        {
            return reject(WitnessResponse::InvalidProof);
        }
        let mut lines = String::new();
        for s in &self.signers {
            match s.sign_note(note.text(), now_unix_secs) {
                Ok(sig) => lines.push_str(&sig.to_line()),
                Err(e) => return reject(WitnessResponse::Internal(e.to_string())),
            }
        }
        Evaluation {
            response: WitnessResponse::Cosigned(lines),
            record: Some((
                cp.origin.to_string(),
                LogRecord {
                    size: cp.size,
                    root: hex::encode(cp.root),
                },
            )),
        }
    }
}

/// Client side: checks a witness's 200 response against the witness keys the client trusts
/// and returns the valid cosignatures, to be appended to the checkpoint note. Lines from
/// unknown keys are ignored; a line from a known key that fails is an error.
pub fn check_cosignatures(
    checkpoint: &Note,
    response: &str,
    witness_keys: &[VerifierKey],
) -> Result<Vec<NoteSignature>, WitnessError> {
    let mut scratch = Note::new(checkpoint.text())?;
    scratch.add_signature_lines(response)?;
    let mut valid = Vec::new();
    for sig in scratch.signatures {
        let Some(k) = witness_keys.iter().find(|k| k.matches(&sig)) else {
            continue;
        };
        k.verify_note(checkpoint.text(), &sig.signature)
            .map_err(|_| WitnessError::BadCosignature(k.name().to_string()))?;
        valid.push(sig);
    }
    if valid.is_empty() {
        return Err(WitnessError::NoCosignature);
    }
    Ok(valid)
}

/// Parses a 409 body (`<size>\n`).
pub fn parse_conflict_size(body: &str) -> Option<u64> {
    let s = body.strip_suffix('\n')?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests;
