//! Word count for the COST comparison: deterministic generated text (lines of 10 words drawn
//! from a 10,000-word vocabulary with a per-line seeded `java.util.Random`, splittable like the
//! Nexmark source), the streaming job Flink users know (tokenize, `key_by` word, rolling count)
//! and the hand-written single-threaded loop it is measured against. Both end in the checksum of
//! the final `(word, count)` rows.

use crate::checksum::{checksum_sink, Checksum, SharedChecksum};
use eddy::connectors::nexmark::random::JavaRandom;
use eddy::core::keygroup::stable_hash;
use eddy::core::StreamRecord;
use eddy::prelude::*;
use eddy::runtime::OperatorError;
use std::collections::HashMap;

const VOCABULARY: i32 = 10_000;
const WORDS_PER_LINE: usize = 10;

/// Line `n` of the text.
pub fn line(n: u64) -> String {
    let mut r = JavaRandom::new(n as i64);
    let mut s = String::with_capacity(WORDS_PER_LINE * 8);
    for i in 0..WORDS_PER_LINE {
        if i > 0 {
            s.push(' ');
        }
        // Skewed like text: small ids (frequent words) more often.
        let bound = r.next_int(VOCABULARY) + 1;
        let w = r.next_int(bound);
        s.push('w');
        s.push_str(&w.to_string());
    }
    s
}

/// Subtask `k` of `p` reads lines `k, k + p, …` of `lines`.
struct Lines {
    lines: u64,
    next: u64,
    step: u64,
}

impl SourceReader for Lines {
    type Out = String;
    fn open(&mut self, ctx: &SourceContext) -> Result<(), OperatorError> {
        self.next = ctx.subtask as u64;
        self.step = ctx.parallelism.max(1) as u64;
        Ok(())
    }
    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<String>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        for _ in 0..max {
            if self.next >= self.lines {
                break;
            }
            out.push(StreamRecord::new(line(self.next)));
            self.next += self.step;
        }
        Ok(if self.next >= self.lines {
            InputStatus::EndOfInput
        } else {
            InputStatus::MoreAvailable
        })
    }
    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(self.next.to_le_bytes().to_vec())
    }
    fn restore_position(&mut self, p: &[u8]) -> Result<(), OperatorError> {
        let b: [u8; 8] = p
            .try_into()
            .map_err(|_| OperatorError::BadInput("word count position is not 8 bytes".into()))?;
        self.next = u64::from_le_bytes(b);
        Ok(())
    }
}

/// The streaming word count over `lines` lines into `sum` (final count per word).
pub fn add_word_count(env: &StreamExecutionEnvironment, lines: u64, sum: &SharedChecksum) {
    let counts = env
        .add_source("Lines", move || Lines {
            lines,
            next: 0,
            step: 1,
        })
        .flat_map(|l: String, out: &mut Collector<'_, (String, u64)>| {
            for w in l.split(' ') {
                out.collect((w.to_string(), 1));
            }
        })
        .key_by(|t: &(String, u64)| t.0.clone())
        .reduce(|a, b| (a.0, a.1 + b.1));
    checksum_sink(
        &counts,
        sum,
        Some(|t: &(String, u64)| stable_hash(&t.0) as i64),
    );
}

/// The hand-written loop: the same text, one `HashMap`.
pub fn word_count_loop(lines: u64) -> Checksum {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for n in 0..lines {
        for w in line(n).split(' ') {
            match counts.get_mut(w) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(w.to_string(), 1);
                }
            }
        }
    }
    let mut sum = Checksum::default();
    for (w, c) in counts {
        sum.add(&(w, c));
    }
    sum
}
