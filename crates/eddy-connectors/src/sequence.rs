//! `from_sequence(from, to)`: a parallel source of the numbers `from..=to`; subtask `i` of `p`
//! emits one contiguous share, as Flink's `NumberSequenceSource`.

use crate::{decode_position, encode_position};
use eddy_core::StreamRecord;
use eddy_runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy_runtime::OperatorError;

/// Emits this subtask's share of `from..=to`.
pub struct SequenceReader {
    from: i64,
    to: i64,
    next: i128,
    end: i128,
    restored: bool,
}

impl SequenceReader {
    /// A reader of `from..=to` (empty if `to < from`).
    pub fn new(from: i64, to: i64) -> Self {
        SequenceReader {
            from,
            to,
            next: 0,
            end: -1,
            restored: false,
        }
    }
}

impl SourceReader for SequenceReader {
    type Out = i64;

    fn open(&mut self, ctx: &SourceContext) -> Result<(), OperatorError> {
        let total = (self.to as i128 - self.from as i128 + 1).max(0);
        let p = ctx.parallelism.max(1) as i128;
        let i = ctx.subtask as i128;
        let start = self.from as i128 + total * i / p;
        self.end = self.from as i128 + total * (i + 1) / p - 1;
        if !self.restored {
            self.next = start;
        }
        Ok(())
    }

    #[inline]
    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<i64>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        let stop = (self.next + max as i128 - 1).min(self.end);
        out.extend((self.next..=stop).map(|v| StreamRecord::new(v as i64)));
        self.next = stop + 1;
        Ok(if self.next > self.end {
            InputStatus::EndOfInput
        } else {
            InputStatus::MoreAvailable
        })
    }

    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(encode_position(&[self.next as i64 as u64]))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        self.next = decode_position(position, 1)?[0] as i64 as i128;
        self.restored = true;
        Ok(())
    }
}
