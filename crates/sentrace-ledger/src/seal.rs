//! The seal stage's state, without I/O: a [`Log`], the log's signing key and the checkpoint
//! cadence. The caller appends manifests on the ingest path and, off that path, asks for a
//! [`Publication`] to write (tiles and bundles first, then the checkpoint).

use crate::checkpoint::LogSigner;
use crate::keys::KeyError;
use crate::log::{CheckpointCadence, Log, Write};
use crate::manifest::BatchManifest;
use crate::note::Note;
use crate::tiles::{CHECKPOINT_PATH, TileError};

/// Why sealing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The entry could not be added to the tiles.
    #[error(transparent)]
    Tile(#[from] TileError),
    /// The checkpoint could not be signed.
    #[error(transparent)]
    Sign(#[from] KeyError),
}

/// Objects to write for a new checkpoint, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Hash tiles and entry bundles: write these first.
    pub tiles: Vec<Write>,
    /// The signed checkpoint note: write it to [`CHECKPOINT_PATH`] last (and serve it at
    /// the well-known path).
    pub checkpoint: String,
    /// The tree size it covers.
    pub size: u64,
}

impl Publication {
    /// All writes, in the order to perform them.
    pub fn writes(&self) -> Vec<Write> {
        let mut w = self.tiles.clone();
        w.push((
            CHECKPOINT_PATH.to_owned(),
            self.checkpoint.clone().into_bytes(),
        ));
        w
    }
}

/// A log being sealed.
#[derive(Debug)]
pub struct Sealer {
    log: Log,
    signer: LogSigner,
    cadence: CheckpointCadence,
    last_size: u64,
    last_unix_secs: u64,
    latest: Option<String>,
}

impl Sealer {
    /// Seals into `log` (new or reopened), signing with `signer`. `latest` is the log's
    /// current signed checkpoint note, if it has one.
    pub fn new(
        log: Log,
        signer: LogSigner,
        cadence: CheckpointCadence,
        latest: Option<String>,
        now_unix_secs: u64,
    ) -> Self {
        Self {
            last_size: log.size(),
            log,
            signer,
            cadence,
            last_unix_secs: now_unix_secs,
            latest,
        }
    }

    /// Appends a batch manifest; returns its log index (the receipt's index).
    pub fn append(&mut self, manifest: &BatchManifest) -> Result<u64, SealError> {
        Ok(self.log.append_manifest(manifest)?)
    }

    /// The log's public keys.
    pub fn verifier(&self) -> crate::checkpoint::LogVerifier {
        self.signer.verifier()
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The latest signed checkpoint note (the receipt's checkpoint).
    pub fn latest_checkpoint(&self) -> Option<&str> {
        self.latest.as_deref()
    }

    /// A publication if the cadence says one is due.
    pub fn publish_if_due(&mut self, now_unix_secs: u64) -> Result<Option<Publication>, SealError> {
        if !self.cadence.due(
            self.last_size,
            self.last_unix_secs,
            self.log.size(),
            now_unix_secs,
        ) {
            return Ok(None);
        }
        self.publish(now_unix_secs).map(Some)
    }

    /// A publication at the current size, due or not.
    pub fn publish(&mut self, now_unix_secs: u64) -> Result<Publication, SealError> {
        let tiles = self.log.flush()?;
        let note: Note = self.signer.sign(&self.log.checkpoint(), now_unix_secs)?;
        let checkpoint = note.to_text();
        self.last_size = self.log.size();
        self.last_unix_secs = now_unix_secs;
        self.latest = Some(checkpoint.clone());
        Ok(Publication {
            tiles,
            checkpoint,
            size: self.last_size,
        })
    }
}
