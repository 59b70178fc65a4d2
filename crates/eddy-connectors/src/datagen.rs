//! `DataGeneratorSource` (Flink's): a parallel source of `count` values made by a function of
//! their index. Subtask `k` of `p` generates indices `k, k + p, k + 2p, …`, so every subtask
//! covers the whole index range at `1/p` of the density (event times derived from the index
//! advance together on all subtasks, keeping watermarks aligned) and the union over subtasks
//! is the same at any parallelism.
//!
//! A subtask's share is a split (next index, stride). A restore at another parallelism hands
//! the old subtasks' splits out again; a subtask with several generates from the one whose
//! next index is smallest, so its event times still advance in index order.

use crate::split::{decode_all, SplitWriter};
use eddy_core::{Data, StreamRecord};
use eddy_runtime::source::{InputStatus, Rescale, SourceContext, SourceReader};
use eddy_runtime::OperatorError;
use std::sync::Arc;

const KIND: &[u8; 4] = b"GEN\0";

/// The function turning an index into a value.
pub type GeneratorFunction<T> = Arc<dyn Fn(u64) -> T + Send + Sync>;

/// Indices `next, next + step, …` below the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Split {
    next: u64,
    step: u64,
}

/// Generates this subtask's share of `generate(0..count)`.
pub struct DataGeneratorSource<T> {
    generate: GeneratorFunction<T>,
    count: u64,
    /// Unfinished splits; usually exactly one.
    splits: Vec<Split>,
    restored: bool,
}

impl<T> DataGeneratorSource<T> {
    /// A source of `generate(i)` for `i` in `0..count`.
    pub fn new(count: u64, generate: GeneratorFunction<T>) -> Self {
        DataGeneratorSource {
            generate,
            count,
            splits: Vec::new(),
            restored: false,
        }
    }
}

impl<T: Data> SourceReader for DataGeneratorSource<T> {
    type Out = T;

    fn open(&mut self, ctx: &SourceContext) -> Result<(), OperatorError> {
        if !self.restored {
            self.splits = vec![Split {
                next: ctx.subtask as u64,
                step: ctx.parallelism.max(1) as u64,
            }];
        }
        self.splits.retain(|s| s.next < self.count);
        Ok(())
    }

    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<T>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        if let [s] = self.splits.as_mut_slice() {
            for _ in 0..max {
                if s.next >= self.count {
                    break;
                }
                out.push(StreamRecord::new((self.generate)(s.next)));
                s.next = s.next.saturating_add(s.step);
            }
        } else {
            for _ in 0..max {
                let Some(s) = self
                    .splits
                    .iter_mut()
                    .filter(|s| s.next < self.count)
                    .min_by_key(|s| s.next)
                else {
                    break;
                };
                out.push(StreamRecord::new((self.generate)(s.next)));
                s.next = s.next.saturating_add(s.step);
            }
        }
        self.splits.retain(|s| s.next < self.count);
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
            .map(|s| SplitWriter::new(KIND).u64(s.next).u64(s.step).finish())
            .collect())
    }

    fn restore_splits(
        &mut self,
        splits: Vec<Vec<u8>>,
        _rescale: Option<Rescale>,
    ) -> Result<(), OperatorError> {
        self.splits = decode_all(&splits, KIND, "data generator", |r| {
            let next = r.u64("next index")?;
            let step = r.u64("stride")?;
            if step == 0 {
                return Err(OperatorError::BadInput(
                    "the data generator source's checkpointed split has stride 0".into(),
                ));
            }
            Ok(Split { next, step })
        })?;
        self.restored = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> DataGeneratorSource<u64> {
        DataGeneratorSource::new(10, Arc::new(|i| i * 10))
    }

    fn run(s: &mut DataGeneratorSource<u64>, p: usize, subtask: usize, max: usize) -> Vec<u64> {
        s.open(&SourceContext {
            subtask,
            parallelism: p,
        })
        .unwrap();
        let mut out = Vec::new();
        while s.poll_next(&mut out, max).unwrap() != InputStatus::EndOfInput {}
        out.into_iter().map(|r| r.value).collect()
    }

    #[test]
    fn subtasks_interleave_and_resume_from_their_splits() {
        assert_eq!(
            run(&mut source(), 1, 0, 3),
            (0..10).map(|i| i * 10).collect::<Vec<_>>()
        );
        assert_eq!(run(&mut source(), 3, 1, 3), vec![10, 40, 70]);
        // p=2 snapshotted after one value each, restored at p=3: subtask 0 and 1 take one split
        // each, subtask 2 none; a single subtask with both generates in index order.
        let mut splits = Vec::new();
        for k in 0..2 {
            let mut s = source();
            s.open(&SourceContext {
                subtask: k,
                parallelism: 2,
            })
            .unwrap();
            let mut out = Vec::new();
            s.poll_next(&mut out, 1).unwrap();
            splits.extend(s.snapshot_splits().unwrap());
        }
        let rescale = Some(Rescale {
            old_parallelism: 2,
            parallelism: 3,
        });
        let mut s = source();
        s.restore_splits(vec![splits[1].clone()], rescale).unwrap();
        assert_eq!(run(&mut s, 3, 1, 3), vec![30, 50, 70, 90]);
        let mut s = source();
        s.restore_splits(vec![], rescale).unwrap();
        assert_eq!(run(&mut s, 3, 2, 3), Vec::<u64>::new());
        let mut s = source();
        s.restore_splits(splits, rescale).unwrap();
        assert_eq!(
            run(&mut s, 1, 0, 3),
            (2..10).map(|i| i * 10).collect::<Vec<_>>()
        );
    }
}
