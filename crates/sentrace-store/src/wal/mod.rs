//! The encrypted write-ahead log: format, group-commit writer and replay.

pub mod format;
pub mod replay;
pub(crate) mod writer;

/// Bytes of the WAL segments in `dir` (0 for a segment whose size cannot be read: the figure
/// is a gauge for `/metrics`, never a decision).
pub(crate) fn segments_bytes(dir: &std::path::Path) -> u64 {
    format::list_segments(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|id| std::fs::metadata(format::segment_path(dir, id)).map_or(0, |m| m.len()))
        .fold(0u64, u64::saturating_add)
}
