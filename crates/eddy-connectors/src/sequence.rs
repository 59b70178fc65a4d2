//! `from_sequence(from, to)`: a parallel source of the numbers `from..=to`; subtask `i` of `p`
//! emits one contiguous share, as Flink's `NumberSequenceSource`.
//!
//! The share is a split (the next number and the last one); a checkpoint holds the splits not
//! yet read through, so a restore at another parallelism hands them out again (a subtask may
//! read several ranges, one after the other, or none).

use crate::split::{decode_all, SplitWriter};
use eddy_core::StreamRecord;
use eddy_runtime::source::{InputStatus, Rescale, SourceContext, SourceReader};
use eddy_runtime::OperatorError;
use std::collections::VecDeque;

const KIND: &[u8; 4] = b"SEQ\0";

/// Emits this subtask's share of `from..=to`.
pub struct SequenceReader {
    from: i64,
    to: i64,
    /// `(next, last)` ranges still to read, the current one first.
    splits: VecDeque<(i128, i128)>,
    restored: bool,
}

impl SequenceReader {
    /// A reader of `from..=to` (empty if `to < from`).
    pub fn new(from: i64, to: i64) -> Self {
        SequenceReader {
            from,
            to,
            splits: VecDeque::new(),
            restored: false,
        }
    }
}

impl SourceReader for SequenceReader {
    type Out = i64;

    fn open(&mut self, ctx: &SourceContext) -> Result<(), OperatorError> {
        if self.restored {
            return Ok(());
        }
        let total = (self.to as i128 - self.from as i128 + 1).max(0);
        let p = ctx.parallelism.max(1) as i128;
        let i = ctx.subtask as i128;
        let start = self.from as i128 + total * i / p;
        let last = self.from as i128 + total * (i + 1) / p - 1;
        if start <= last {
            self.splits.push_back((start, last));
        }
        Ok(())
    }

    #[inline]
    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<i64>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        let Some((next, last)) = self.splits.front_mut() else {
            return Ok(InputStatus::EndOfInput);
        };
        let stop = (*next + max as i128 - 1).min(*last);
        out.extend((*next..=stop).map(|v| StreamRecord::new(v as i64)));
        *next = stop + 1;
        if *next > *last {
            self.splits.pop_front();
        }
        Ok(if self.splits.is_empty() {
            InputStatus::EndOfInput
        } else {
            InputStatus::MoreAvailable
        })
    }

    fn snapshot_splits(&mut self) -> Result<Vec<Vec<u8>>, OperatorError> {
        Ok(self
            .splits
            .iter()
            .map(|&(next, last)| SplitWriter::new(KIND).i128(next).i128(last).finish())
            .collect())
    }

    fn restore_splits(
        &mut self,
        splits: Vec<Vec<u8>>,
        _rescale: Option<Rescale>,
    ) -> Result<(), OperatorError> {
        let ranges = decode_all(&splits, KIND, "number sequence", |r| {
            Ok((r.i128("next")?, r.i128("last")?))
        })?;
        self.splits = ranges.into_iter().filter(|(n, l)| n <= l).collect();
        self.restored = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut SequenceReader, max: usize) -> Vec<i64> {
        let mut out = Vec::new();
        while r.poll_next(&mut out, max).unwrap() != InputStatus::EndOfInput {}
        out.into_iter().map(|r| r.value).collect()
    }

    #[test]
    fn splits_are_redistributed_on_rescale_and_read_once() {
        // Two subtasks read part of 0..=99, snapshot; three subtasks read the rest.
        let mut splits = Vec::new();
        let mut seen = Vec::new();
        for i in 0..2 {
            let mut r = SequenceReader::new(0, 99);
            r.open(&SourceContext {
                subtask: i,
                parallelism: 2,
            })
            .unwrap();
            let mut out = Vec::new();
            r.poll_next(&mut out, 7 + i).unwrap();
            seen.extend(out.into_iter().map(|r| r.value));
            splits.extend(r.snapshot_splits().unwrap());
        }
        assert_eq!(splits.len(), 2);
        let rescale = Some(Rescale {
            old_parallelism: 2,
            parallelism: 3,
        });
        for (i, share) in [vec![splits[0].clone()], vec![splits[1].clone()], vec![]]
            .into_iter()
            .enumerate()
        {
            let mut r = SequenceReader::new(0, 99);
            r.restore_splits(share, rescale).unwrap();
            r.open(&SourceContext {
                subtask: i,
                parallelism: 3,
            })
            .unwrap();
            seen.extend(drain(&mut r, 5));
        }
        seen.sort();
        assert_eq!(seen, (0..=99).collect::<Vec<_>>());
        // Both ranges on one subtask are read one after the other.
        let mut r = SequenceReader::new(0, 99);
        r.restore_splits(splits.clone(), rescale).unwrap();
        r.open(&SourceContext {
            subtask: 0,
            parallelism: 1,
        })
        .unwrap();
        assert_eq!(
            drain(&mut r, 1000),
            (7..50).chain(58..=99).collect::<Vec<_>>()
        );
        // A position from before splits is refused by name.
        let mut r = SequenceReader::new(0, 99);
        let err = r
            .restore_splits(vec![5u64.to_le_bytes().to_vec()], None)
            .unwrap_err();
        assert!(err.to_string().contains("number sequence"), "{err}");
    }
}
