//! Records in segments: each record is its length (u32, little endian) and its bytes. A record
//! may span segments; [`RecordReassembler`] puts it back together on the consumer side.

/// Collects the records of one channel from the segments that arrive, in order.
#[derive(Debug, Default)]
pub struct RecordReassembler {
    /// Bytes of a record (or of its length) that began in an earlier segment.
    partial: Vec<u8>,
}

/// The reassembler found bytes that cannot be a record stream.
#[derive(Debug, thiserror::Error)]
#[error("corrupt record stream: {0}")]
pub struct CorruptStream(pub String);

const LEN: usize = 4;

impl RecordReassembler {
    /// A reassembler with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a record is incomplete (its rest has not arrived).
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Feeds one segment; calls `record` with the bytes of every record it completes.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut record: impl FnMut(&[u8]) -> Result<(), CorruptStream>,
    ) -> Result<(), CorruptStream> {
        // First finish a record begun in an earlier segment.
        if !self.partial.is_empty() {
            if self.partial.len() < LEN {
                let need = LEN - self.partial.len();
                let n = need.min(data.len());
                self.partial.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.partial.len() < LEN {
                    return Ok(());
                }
            }
            let len = read_len(&self.partial)?;
            let need = LEN + len - self.partial.len();
            let n = need.min(data.len());
            self.partial.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.partial.len() < LEN + len {
                return Ok(());
            }
            record(&self.partial[LEN..])?;
            self.partial.clear();
        }
        // Whole records straight from the segment, no copy.
        while data.len() >= LEN {
            let len = read_len(data)?;
            if data.len() < LEN + len {
                break;
            }
            record(&data[LEN..LEN + len])?;
            data = &data[LEN + len..];
        }
        self.partial.extend_from_slice(data);
        Ok(())
    }
}

/// Records larger than this are refused as corruption (a record must fit in memory).
pub const MAX_RECORD_BYTES: usize = 1 << 30;

fn read_len(b: &[u8]) -> Result<usize, CorruptStream> {
    let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if len > MAX_RECORD_BYTES {
        return Err(CorruptStream(format!(
            "record length {len} exceeds {MAX_RECORD_BYTES} bytes"
        )));
    }
    Ok(len)
}

/// Writes the length prefix of a record of `len` bytes.
pub fn length_prefix(len: usize) -> [u8; LEN] {
    (len as u32).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            out.extend_from_slice(&length_prefix(r.len()));
            out.extend_from_slice(r);
        }
        out
    }

    #[test]
    fn records_survive_any_segmentation() {
        let records: Vec<Vec<u8>> = (0..50u8)
            .map(|i| (0..(i as usize * 7) % 23).map(|j| i ^ j as u8).collect())
            .collect();
        let bytes = frame(&records);
        for seg in [1usize, 2, 3, 5, 8, 64, 1000] {
            let mut r = RecordReassembler::new();
            let mut got = Vec::new();
            for chunk in bytes.chunks(seg) {
                r.feed(chunk, |b| {
                    got.push(b.to_vec());
                    Ok(())
                })
                .unwrap();
            }
            assert!(!r.has_partial());
            assert_eq!(got, records, "segment size {seg}");
        }
    }

    #[test]
    fn absurd_lengths_are_corruption() {
        let mut r = RecordReassembler::new();
        let err = r
            .feed(&[0xff, 0xff, 0xff, 0xff, 1], |_| Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
    }
}
