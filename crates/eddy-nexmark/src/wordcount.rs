//! Word count for the COST comparison: deterministic generated text (lines of 10 words drawn
//! from a 10,000-word vocabulary with a per-line seeded `java.util.Random`, read through a
//! `DataGeneratorSource`), the streaming job Flink users know (tokenize, `key_by` word,
//! rolling count, in one or two phases) and the hand-written single-threaded loop it is
//! measured against. Both end in the checksum of the final `(word, count)` rows.

use crate::checksum::{checksum_sink, Checksum, SharedChecksum};
use eddy::connectors::datagen::{DataGeneratorSource, GeneratorFunction};
use eddy::connectors::nexmark::random::JavaRandom;
use eddy::core::keygroup::stable_hash;
use eddy::prelude::*;
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

/// The streaming word count over `lines` lines into `sum` (final count per word); with
/// `two_phase`, the rolling count is `reduce_two_phase` (words counted per batch before the
/// shuffle), otherwise `reduce` (every word crosses the shuffle and updates the count).
pub fn add_word_count(
    env: &StreamExecutionEnvironment,
    lines: u64,
    sum: &SharedChecksum,
    two_phase: bool,
) {
    let generate: GeneratorFunction<String> = std::sync::Arc::new(line);
    let words = env
        .add_source("Lines", move || {
            DataGeneratorSource::new(lines, generate.clone())
        })
        .flat_map(|l: String, out: &mut Collector<'_, (String, u64)>| {
            for w in l.split(' ') {
                out.collect((w.to_string(), 1));
            }
        })
        .key_by_ref(|t: &(String, u64)| &t.0);
    let add = |a: (String, u64), b: (String, u64)| (a.0, a.1 + b.1);
    let counts = if two_phase {
        words.reduce_two_phase(add)
    } else {
        words.reduce(add)
    };
    checksum_sink(
        &counts,
        sum,
        Some(|t: &(String, u64)| stable_hash(&t.0) as i64),
        None,
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
