//! The checkpointed form of a built-in source's split: a 4-byte kind tag, a format version,
//! then fixed-width fields and length-prefixed byte strings.
//!
//! The tag lets a restore name what it found when a checkpoint holds another source's state
//! (or a position from before sources kept splits) instead of misreading its bytes; lengths are
//! checked against what is there before anything is allocated.

use eddy_runtime::OperatorError;

/// The version of every built-in split encoding.
const VERSION: u8 = 1;

/// Builds one encoded split.
pub(crate) struct SplitWriter(Vec<u8>);

impl SplitWriter {
    /// A split of kind `kind`.
    pub(crate) fn new(kind: &[u8; 4]) -> Self {
        let mut v = Vec::with_capacity(40);
        v.extend_from_slice(kind);
        v.push(VERSION);
        SplitWriter(v)
    }

    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn i128(mut self, v: i128) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(&(b.len() as u64).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads one encoded split, failing with a message naming the source on anything unexpected.
pub(crate) struct SplitReader<'a> {
    rest: &'a [u8],
    source: &'static str,
}

impl<'a> SplitReader<'a> {
    /// Checks the tag and version of a split the `source` source wrote with kind `kind`.
    pub(crate) fn new(
        bytes: &'a [u8],
        kind: &[u8; 4],
        source: &'static str,
    ) -> Result<Self, OperatorError> {
        match bytes {
            [k0, k1, k2, k3, version, rest @ ..] if [*k0, *k1, *k2, *k3] == *kind => {
                if *version != VERSION {
                    return Err(OperatorError::BadInput(format!(
                        "the {source} source's checkpointed split has format version {version}; \
                         this Eddy reads version {VERSION}"
                    )));
                }
                Ok(SplitReader { rest, source })
            }
            _ => Err(OperatorError::BadInput(format!(
                "the checkpointed state of the {source} source is not one of its splits ({} \
                 bytes, starting {:02x?}): it was written by another source, or by an Eddy from \
                 before sources kept splits; restore it with the version that wrote it",
                bytes.len(),
                &bytes[..bytes.len().min(8)]
            ))),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], OperatorError> {
        if self.rest.len() < n {
            return Err(OperatorError::BadInput(format!(
                "the {} source's checkpointed split is truncated: {what} needs {n} bytes, {} left",
                self.source,
                self.rest.len()
            )));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, OperatorError> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(w))
    }

    pub(crate) fn i128(&mut self, what: &str) -> Result<i128, OperatorError> {
        let mut w = [0u8; 16];
        w.copy_from_slice(self.take(16, what)?);
        Ok(i128::from_le_bytes(w))
    }

    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], OperatorError> {
        let n = self.u64(what)?;
        // Checked against the bytes present, so a corrupt length allocates nothing.
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.take(n, what)
    }

    /// Fails if bytes are left over (the split was not what its tag says).
    pub(crate) fn end(self) -> Result<(), OperatorError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(OperatorError::BadInput(format!(
                "the {} source's checkpointed split has {} unexpected trailing bytes",
                self.source,
                self.rest.len()
            )))
        }
    }
}

/// Decodes every split of `splits` (of kind `kind`, written by the `source` source) with
/// `field`, which reads one split's fields; trailing bytes are an error.
pub(crate) fn decode_all<T>(
    splits: &[Vec<u8>],
    kind: &[u8; 4],
    source: &'static str,
    mut fields: impl FnMut(&mut SplitReader<'_>) -> Result<T, OperatorError>,
) -> Result<Vec<T>, OperatorError> {
    splits
        .iter()
        .map(|b| {
            let mut r = SplitReader::new(b, kind, source)?;
            let t = fields(&mut r)?;
            r.end()?;
            Ok(t)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_round_trip_and_foreign_bytes_are_named() {
        let b = SplitWriter::new(b"TEST")
            .u64(7)
            .i128(-3)
            .bytes(b"path")
            .finish();
        let mut r = SplitReader::new(&b, b"TEST", "test").unwrap();
        assert_eq!(r.u64("a").unwrap(), 7);
        assert_eq!(r.i128("b").unwrap(), -3);
        assert_eq!(r.bytes("c").unwrap(), b"path");
        r.end().unwrap();
        // An old 8-byte position, another source's split, a truncated one, a huge length.
        let err = SplitReader::new(&7u64.to_le_bytes(), b"TEST", "test")
            .err()
            .unwrap();
        assert!(err.to_string().contains("not one of its splits"), "{err}");
        assert!(SplitReader::new(&b, b"OTHR", "other").is_err());
        let mut r = SplitReader::new(&b[..10], b"TEST", "test").unwrap();
        assert!(r.u64("a").unwrap_err().to_string().contains("truncated"));
        let huge = SplitWriter::new(b"TEST").u64(u64::MAX).finish();
        let mut r = SplitReader::new(&huge, b"TEST", "test").unwrap();
        assert!(r
            .bytes("path")
            .unwrap_err()
            .to_string()
            .contains("truncated"));
    }
}
