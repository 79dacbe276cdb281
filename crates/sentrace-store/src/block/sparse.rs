//! A block file of which only some byte ranges were fetched: the footer, and the column
//! chunks of the row groups a read needs. Parquet reads through it as through the whole
//! file; a read outside the fetched ranges is an error, never a silent zero.

use std::io::Cursor;

use bytes::Bytes;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};

/// Fetched ranges of one file.
#[derive(Clone, Debug)]
pub(crate) struct Sparse {
    len: u64,
    /// `(offset, bytes)`, sorted by offset, not overlapping.
    ranges: Vec<(u64, Bytes)>,
}

impl Sparse {
    /// The whole file.
    pub fn whole(bytes: Bytes) -> Self {
        Self {
            len: bytes.len() as u64,
            ranges: vec![(0, bytes)],
        }
    }

    /// A file of `len` bytes of which `ranges` were fetched.
    pub fn new(len: u64, mut ranges: Vec<(u64, Bytes)>) -> Self {
        ranges.sort_by_key(|r| r.0);
        Self { len, ranges }
    }

    fn slice(&self, start: u64, len: Option<usize>) -> Result<Bytes, ParquetError> {
        let i = self.ranges.partition_point(|r| r.0 <= start);
        let missing = || {
            ParquetError::General(format!(
                "block read at offset {start} outside the fetched ranges"
            ))
        };
        let (off, bytes) = i
            .checked_sub(1)
            .and_then(|i| self.ranges.get(i))
            .ok_or_else(missing)?;
        let from = usize::try_from(start - off).map_err(|_| missing())?;
        let to = match len {
            Some(l) => from.checked_add(l).ok_or_else(missing)?,
            None => bytes.len(),
        };
        if from > bytes.len() || to > bytes.len() {
            return Err(missing());
        }
        Ok(bytes.slice(from..to))
    }
}

impl Length for Sparse {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Sparse {
    type T = Cursor<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T, ParquetError> {
        Ok(Cursor::new(self.slice(start, None)?))
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        self.slice(start, Some(length))
    }
}

/// Merges byte ranges that touch or lie within `gap` bytes of each other.
pub(crate) fn coalesce(
    mut ranges: Vec<std::ops::Range<u64>>,
    gap: u64,
) -> Vec<std::ops::Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<std::ops::Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(gap) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_ranges_and_refuses_outside() {
        let s = Sparse::new(
            100,
            vec![
                (50, Bytes::from_static(b"0123456789")),
                (0, Bytes::from_static(b"ab")),
            ],
        );
        assert_eq!(s.get_bytes(52, 3).unwrap(), Bytes::from_static(b"234"));
        assert_eq!(s.get_bytes(0, 2).unwrap(), Bytes::from_static(b"ab"));
        assert!(s.get_bytes(58, 3).is_err());
        assert!(s.get_bytes(2, 1).is_err());
        assert!(s.get_bytes(70, 1).is_err());
        assert_eq!(
            coalesce(vec![10..20, 0..5, 22..30, 100..110], 2),
            vec![0..5, 10..30, 100..110]
        );
    }
}
