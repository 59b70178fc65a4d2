//! `DataGeneratorSource` (Flink's): a parallel source of `count` values made by a function of
//! their index. Subtask `k` of `p` generates indices `k, k + p, k + 2p, …`, so every subtask
//! covers the whole index range at `1/p` of the density (event times derived from the index
//! advance together on all subtasks, keeping watermarks aligned) and the union over subtasks
//! is the same at any parallelism. The position is the next index.

use crate::{decode_position, encode_position};
use eddy_core::{Data, StreamRecord};
use eddy_runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy_runtime::OperatorError;
use std::sync::Arc;

/// The function turning an index into a value.
pub type GeneratorFunction<T> = Arc<dyn Fn(u64) -> T + Send + Sync>;

/// Generates this subtask's share of `generate(0..count)`.
pub struct DataGeneratorSource<T> {
    generate: GeneratorFunction<T>,
    count: u64,
    next: u64,
    step: u64,
    restored: bool,
}

impl<T> DataGeneratorSource<T> {
    /// A source of `generate(i)` for `i` in `0..count`.
    pub fn new(count: u64, generate: GeneratorFunction<T>) -> Self {
        DataGeneratorSource {
            generate,
            count,
            next: 0,
            step: 1,
            restored: false,
        }
    }
}

impl<T: Data> SourceReader for DataGeneratorSource<T> {
    type Out = T;

    fn open(&mut self, ctx: &SourceContext) -> Result<(), OperatorError> {
        self.step = ctx.parallelism.max(1) as u64;
        if !self.restored {
            self.next = ctx.subtask as u64;
        }
        Ok(())
    }

    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<T>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        for _ in 0..max {
            if self.next >= self.count {
                break;
            }
            out.push(StreamRecord::new((self.generate)(self.next)));
            self.next += self.step;
        }
        Ok(if self.next >= self.count {
            InputStatus::EndOfInput
        } else {
            InputStatus::MoreAvailable
        })
    }

    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(encode_position(&[self.next]))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        self.next = decode_position(position, 1)?[0];
        self.restored = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: usize, subtask: usize, restore: Option<&[u8]>) -> Vec<u64> {
        let mut s = DataGeneratorSource::new(10, Arc::new(|i| i * 10));
        if let Some(pos) = restore {
            s.restore_position(pos).unwrap();
        }
        s.open(&SourceContext {
            subtask,
            parallelism: p,
        })
        .unwrap();
        let mut out = Vec::new();
        while s.poll_next(&mut out, 3).unwrap() != InputStatus::EndOfInput {}
        out.into_iter().map(|r| r.value).collect()
    }

    #[test]
    fn subtasks_interleave_and_resume_from_their_position() {
        assert_eq!(run(1, 0, None), (0..10).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(run(3, 1, None), vec![10, 40, 70]);
        assert_eq!(run(3, 1, Some(&encode_position(&[4]))), vec![40, 70]);
    }
}
