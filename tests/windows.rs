//! Window operators against brute-force oracles on randomized, out-of-order input, at
//! parallelism 1 and 4: every assigner, function kind, trigger and evictor.
//!
//! Inputs are out of order by at most `D` and watermarks use bounded out-of-orderness `D`, so
//! no element is ever late and each window's result is exact whatever the watermark timing.

use eddy::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Ev {
    key: u32,
    ts: i64,
    value: i64,
}

/// Small deterministic PRNG (xorshift*), so failures replay.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Events whose timestamps are out of order by at most `disorder` ms.
fn events(seed: u64, n: usize, keys: u32, disorder: i64) -> Vec<Ev> {
    let mut r = Rng(seed | 1);
    let mut base = 1_000i64;
    (0..n)
        .map(|_| {
            base += r.below(15) as i64;
            Ev {
                key: r.below(keys as u64) as u32,
                ts: base - r.below(disorder as u64 + 1) as i64,
                value: r.below(100) as i64 - 20,
            }
        })
        .collect()
}

const D: i64 = 40;

fn source(env: &StreamExecutionEnvironment, evs: Vec<Ev>) -> SingleOutputStreamOperator<Ev> {
    env.from_collection(evs).assign_timestamps_and_watermarks(
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(D as u64))
            .with_timestamp_assigner(|e: &Ev, _| e.ts)
            .with_auto_watermark_interval(Duration::from_millis(1)),
    )
}

fn env(p: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(p);
    env
}

/// `(count, sum)` of a window.
#[derive(Clone)]
struct CountSum;
impl AggregateFunction<Ev, (u64, i64), (u64, i64)> for CountSum {
    fn create_accumulator(&self) -> (u64, i64) {
        (0, 0)
    }
    fn add(&self, e: Ev, acc: &mut (u64, i64)) {
        acc.0 += 1;
        acc.1 += e.value;
    }
    fn get_result(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
    fn merge(&self, a: (u64, i64), b: (u64, i64)) -> (u64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

type Row = (u32, i64, i64, u64, i64);

/// Adds key and window to an aggregate.
#[derive(Clone)]
struct WithWindow;
impl ProcessWindowFunction<(u64, i64), Row, u32, TimeWindow> for WithWindow {
    fn process(
        &mut self,
        key: &u32,
        ctx: &mut WindowContext<'_, u32, TimeWindow>,
        elements: Vec<(u64, i64)>,
        out: &mut Collector<'_, Row>,
    ) -> FunctionResult {
        for (c, s) in elements {
            out.collect((*key, ctx.window().start, ctx.window().end, c, s));
        }
        Ok(())
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Oracle for fixed windows: every window `[start, start + size)` with `start` a multiple of
/// `slide` that contains the element.
fn oracle_fixed(evs: &[Ev], size: i64, slide: i64) -> Vec<Row> {
    let mut m: BTreeMap<(u32, i64), (u64, i64)> = BTreeMap::new();
    for e in evs {
        let mut start = e.ts.div_euclid(slide) * slide;
        while start > e.ts - size {
            let a = m.entry((e.key, start)).or_default();
            a.0 += 1;
            a.1 += e.value;
            start -= slide;
        }
    }
    m.into_iter()
        .map(|((k, s), (c, sum))| (k, s, s + size, c, sum))
        .collect()
}

#[test]
fn tumbling_event_time_aggregate_matches_oracle() {
    for p in [1, 4] {
        for seed in [1, 7, 42] {
            let evs = events(seed, 3000, 7, D);
            let env = env(p);
            let out = source(&env, evs.clone())
                .key_by(|e: &Ev| e.key)
                .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
                .aggregate_with(CountSum, WithWindow)
                .execute_and_collect("tumbling")
                .unwrap();
            assert_eq!(
                sorted(out),
                oracle_fixed(&evs, 100, 100),
                "p={p} seed={seed}"
            );
        }
    }
}

#[test]
fn sliding_event_time_reduce_matches_oracle() {
    for p in [1, 4] {
        let evs = events(3, 2000, 5, D);
        let env = env(p);
        let out = source(&env, evs.clone())
            .map(|e: Ev| (e.key, 1u64, e.value))
            .key_by(|t: &(u32, u64, i64)| t.0)
            .window(SlidingEventTimeWindows::of(
                Duration::from_millis(90),
                Duration::from_millis(30),
            ))
            .reduce_with(
                |a: (u32, u64, i64), b: (u32, u64, i64)| (a.0, a.1 + b.1, a.2 + b.2),
                eddy::runtime::windowing::FnWindow(
                    |k: &u32,
                     w: &TimeWindow,
                     v: Vec<(u32, u64, i64)>,
                     out: &mut Collector<'_, Row>| {
                        for (_, c, s) in v {
                            out.collect((*k, w.start, w.end, c, s));
                        }
                        Ok(())
                    },
                ),
            )
            .execute_and_collect("sliding")
            .unwrap();
        assert_eq!(sorted(out), oracle_fixed(&evs, 90, 30), "p={p}");
    }
}
