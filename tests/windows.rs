//! Window operators against brute-force oracles on randomized, out-of-order input, at
//! parallelism 1 and 4: every assigner, function kind, trigger and evictor.
//!
//! Inputs are out of order by at most `D` and watermarks use bounded out-of-orderness `D`, so
//! no element is ever late and each window's result is exact whatever the watermark timing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

mod common;

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
    env.from_collection(evs)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(D as u64))
                .with_timestamp_assigner(|e: &Ev, _| e.ts)
                .with_auto_watermark_interval(Duration::from_millis(1)),
        )
        // Chained to the source: every window subtask sees its keys' elements in input order.
        .set_parallelism(1)
}

fn env(p: usize) -> StreamExecutionEnvironment {
    let env = common::environment();
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

/// Oracle for session windows: per key, elements sorted by time, a new session whenever the
/// next element is more than `gap(prev)` after the previous one; session = `[first, last+gap)`.
fn oracle_sessions(evs: &[Ev], gap: impl Fn(&Ev) -> i64) -> Vec<Row> {
    let mut by_key: BTreeMap<u32, Vec<&Ev>> = BTreeMap::new();
    for e in evs {
        by_key.entry(e.key).or_default().push(e);
    }
    let mut out = Vec::new();
    for (k, mut v) in by_key {
        v.sort_by_key(|e| e.ts);
        let mut cur: Option<(i64, i64, u64, i64)> = None;
        for e in v {
            let (s, end) = (e.ts, e.ts + gap(e));
            cur = match cur {
                Some((cs, ce, c, sum)) if s <= ce => Some((cs, ce.max(end), c + 1, sum + e.value)),
                Some((cs, ce, c, sum)) => {
                    out.push((k, cs, ce, c, sum));
                    Some((s, end, 1, e.value))
                }
                None => Some((s, end, 1, e.value)),
            };
        }
        if let Some((cs, ce, c, sum)) = cur {
            out.push((k, cs, ce, c, sum));
        }
    }
    out.sort();
    out
}

/// Even timestamps and odd gaps: a window never merely touches one that already fired, so the
/// result does not depend on when watermarks arrive.
fn even(mut evs: Vec<Ev>) -> Vec<Ev> {
    for e in &mut evs {
        e.ts *= 2;
    }
    evs
}

#[test]
fn event_time_sessions_merge_out_of_order_elements() {
    for p in [1, 4] {
        for seed in [5, 11] {
            let evs = even(events(seed, 2000, 6, D / 2));
            let env = env(p);
            let out = source(&env, evs.clone())
                .key_by(|e: &Ev| e.key)
                .window(EventTimeSessionWindows::with_gap(Duration::from_millis(61)))
                .aggregate_with(CountSum, WithWindow)
                .execute_and_collect("sessions")
                .unwrap();
            assert_eq!(
                sorted(out),
                oracle_sessions(&evs, |_| 61),
                "p={p} seed={seed}"
            );
        }
    }
}

#[test]
fn dynamic_gap_sessions_with_process_function() {
    let gap = |e: &Ev| if e.key.is_multiple_of(2) { 41 } else { 121 };
    for p in [1, 4] {
        let evs = even(events(9, 1500, 6, D / 2));
        let env = env(p);
        let out = source(&env, evs.clone())
            .key_by(|e: &Ev| e.key)
            .window(EventTimeSessionWindows::with_dynamic_gap(gap))
            .process_fn(
                |k: &u32,
                 ctx: &mut WindowContext<'_, u32, TimeWindow>,
                 v: Vec<Ev>,
                 out: &mut Collector<'_, Row>| {
                    let w = *ctx.window();
                    out.collect((
                        *k,
                        w.start,
                        w.end,
                        v.len() as u64,
                        v.iter().map(|e| e.value).sum(),
                    ));
                    Ok(())
                },
            )
            .execute_and_collect("dynamic sessions")
            .unwrap();
        assert_eq!(sorted(out), oracle_sessions(&evs, gap), "p={p}");
    }
}

/// Per key, in arrival order.
fn per_key(evs: &[Ev]) -> BTreeMap<u32, Vec<i64>> {
    let mut m: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for e in evs {
        m.entry(e.key).or_default().push(e.value);
    }
    m
}

#[test]
fn count_windows_tumbling_and_sliding() {
    for p in [1, 4] {
        let evs = events(21, 1000, 5, D);
        let env = env(p);
        let keyed = env.from_collection(evs.clone()).key_by(|e: &Ev| e.key);
        let tumbling = keyed
            .count_window(4)
            .process_fn(
                |k: &u32,
                 _ctx: &mut WindowContext<'_, u32, GlobalWindow>,
                 v: Vec<Ev>,
                 out: &mut Collector<'_, (u32, Vec<i64>)>| {
                    out.collect((*k, v.into_iter().map(|e| e.value).collect()));
                    Ok(())
                },
            )
            .collect();
        let sliding = keyed
            .count_window_slide(5, 2)
            .process_fn(
                |k: &u32,
                 _ctx: &mut WindowContext<'_, u32, GlobalWindow>,
                 v: Vec<Ev>,
                 out: &mut Collector<'_, (u32, Vec<i64>)>| {
                    out.collect((*k, v.into_iter().map(|e| e.value).collect()));
                    Ok(())
                },
            )
            .collect();
        env.execute("count windows").unwrap();
        let (mut want_t, mut want_s) = (Vec::new(), Vec::new());
        for (k, vals) in per_key(&evs) {
            // Tumbling: full chunks only; the rest never fires (GlobalWindows, as in Flink).
            for c in vals.chunks_exact(4) {
                want_t.push((k, c.to_vec()));
            }
            // Sliding: every 2nd element, the last (up to) 5.
            for i in (2..=vals.len()).step_by(2) {
                want_s.push((k, vals[i.saturating_sub(5)..i].to_vec()));
            }
        }
        assert_eq!(sorted(tumbling.take()), sorted(want_t), "p={p}");
        assert_eq!(sorted(sliding.take()), sorted(want_s), "p={p}");
    }
}

#[test]
fn evictors_trim_window_contents() {
    for p in [1, 4] {
        let evs = events(33, 1500, 4, D);
        let env = env(p);
        let keyed = source(&env, evs.clone()).key_by(|e: &Ev| e.key);
        // Keep only the 3 elements that arrived last in each window.
        let by_count = keyed
            .window(TumblingEventTimeWindows::of(Duration::from_millis(200)))
            .evictor(CountEvictor::of(3))
            .apply(
                |k: &u32,
                 w: &TimeWindow,
                 v: Vec<Ev>,
                 out: &mut Collector<'_, (u32, i64, Vec<i64>)>| {
                    out.collect((*k, w.start, v.into_iter().map(|e| e.value).collect()));
                    Ok(())
                },
            )
            .collect();
        // Keep only elements within 50 ms of the newest one; reduce what is left.
        let by_time = keyed
            .window(TumblingEventTimeWindows::of(Duration::from_millis(200)))
            .evictor(TimeEvictor::of(Duration::from_millis(50)))
            .reduce_with(
                |mut a: Ev, b: Ev| {
                    a.value += b.value;
                    a
                },
                eddy::runtime::windowing::FnWindow(
                    |k: &u32,
                     w: &TimeWindow,
                     v: Vec<Ev>,
                     out: &mut Collector<'_, (u32, i64, i64)>| {
                        for e in v {
                            out.collect((*k, w.start, e.value));
                        }
                        Ok(())
                    },
                ),
            )
            .collect();
        env.execute("evictors").unwrap();
        let mut windows: BTreeMap<(u32, i64), Vec<&Ev>> = BTreeMap::new();
        for e in &evs {
            windows
                .entry((e.key, e.ts.div_euclid(200) * 200))
                .or_default()
                .push(e);
        }
        let mut want_c = Vec::new();
        let mut want_t = Vec::new();
        for ((k, s), v) in &windows {
            let last3 = v[v.len().saturating_sub(3)..]
                .iter()
                .map(|e| e.value)
                .collect();
            want_c.push((*k, *s, last3));
            let max = v.iter().map(|e| e.ts).max().unwrap();
            let sum = v.iter().filter(|e| e.ts > max - 50).map(|e| e.value).sum();
            want_t.push((*k, *s, sum));
        }
        assert_eq!(sorted(by_count.take()), sorted(want_c), "p={p}");
        assert_eq!(sorted(by_time.take()), sorted(want_t), "p={p}");
    }
}

#[test]
fn window_all_runs_on_one_subtask() {
    let evs = events(2, 2000, 9, D);
    let env = env(4);
    let h = source(&env, evs.clone())
        .window_all(TumblingEventTimeWindows::of(Duration::from_millis(250)))
        .aggregate(CountSum)
        .collect();
    let plan = env.get_execution_plan().unwrap();
    assert!(
        plan.contains("AllWindow(TumblingEventTimeWindows"),
        "{plan}"
    );
    env.execute("window all").unwrap();
    let out = h.take();
    let mut want: BTreeMap<i64, (u64, i64)> = BTreeMap::new();
    for e in &evs {
        let a = want.entry(e.ts.div_euclid(250)).or_default();
        a.0 += 1;
        a.1 += e.value;
    }
    assert_eq!(sorted(out), sorted(want.into_values().collect()));
}

#[test]
fn continuous_event_time_trigger_fires_early_and_at_the_end() {
    // Monotonous timestamps, one key: early firings every 100 ms of event time inside 1 s
    // windows, each with the running count; the last firing of a window is its full count.
    let evs: Vec<Ev> = (0..1000)
        .map(|i| Ev {
            key: 0,
            ts: i * 3,
            value: 1,
        })
        .collect();
    let env = env(1);
    let out = env
        .from_collection(evs.clone())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &Ev, _| e.ts),
        )
        .key_by(|e: &Ev| e.key)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(1000)))
        .trigger(ContinuousEventTimeTrigger::of(Duration::from_millis(100)))
        .aggregate_with(CountSum, WithWindow)
        .execute_and_collect("continuous")
        .unwrap();
    let mut last: BTreeMap<i64, u64> = BTreeMap::new();
    for (_, s, _, c, _) in &out {
        let prev = last.insert(*s, *c).unwrap_or(0);
        assert!(*c >= prev, "counts only grow within a window: {out:?}");
    }
    let mut want: BTreeMap<i64, u64> = BTreeMap::new();
    for e in &evs {
        *want.entry(e.ts.div_euclid(1000) * 1000).or_default() += 1;
    }
    assert_eq!(last, want);
    assert!(
        out.len() > want.len(),
        "early firings happened: {}",
        out.len()
    );
}

#[test]
fn window_join_and_co_group_match_oracle() {
    for p in [1, 4] {
        let left = events(71, 800, 6, D);
        let right = events(72, 600, 6, D);
        let env = env(p);
        let (a, b) = (source(&env, left.clone()), source(&env, right.clone()));
        let joined = a
            .join(&b)
            .where_(|e: &Ev| e.key)
            .equal_to(|e: &Ev| e.key)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
            .apply(|x: Ev, y: Ev| (x.key, x.ts, x.value, y.ts, y.value))
            .collect();
        let grouped = a
            .co_group(&b)
            .where_(|e: &Ev| e.key)
            .equal_to(|e: &Ev| e.key)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
            .apply(
                |xs: Vec<Ev>, ys: Vec<Ev>, out: &mut Collector<'_, (u32, usize, usize)>| {
                    let k = xs.first().or(ys.first()).map(|e| e.key).unwrap_or(u32::MAX);
                    out.collect((k, xs.len(), ys.len()));
                },
            )
            .collect();
        env.execute("window join").unwrap();
        let w = |e: &Ev| e.ts.div_euclid(100);
        let mut want_join = Vec::new();
        let mut want_group: BTreeMap<(u32, i64), (usize, usize)> = BTreeMap::new();
        for x in &left {
            want_group.entry((x.key, w(x))).or_default().0 += 1;
            for y in right.iter().filter(|y| y.key == x.key && w(y) == w(x)) {
                want_join.push((x.key, x.ts, x.value, y.ts, y.value));
            }
        }
        for y in &right {
            want_group.entry((y.key, w(y))).or_default().1 += 1;
        }
        assert_eq!(sorted(joined.take()), sorted(want_join), "p={p}");
        let want_group: Vec<_> = want_group
            .into_iter()
            .map(|((k, _), (a, b))| (k, a, b))
            .collect();
        assert_eq!(sorted(grouped.take()), sorted(want_group), "p={p}");
    }
}

/// A trigger that fires on every element and cannot merge.
#[derive(Clone)]
struct EveryElement;
impl Trigger<u32, Ev, TimeWindow> for EveryElement {
    fn on_element(
        &mut self,
        _: &Ev,
        _: i64,
        _: &TimeWindow,
        _: &mut TriggerContext<'_, u32, TimeWindow>,
    ) -> FunctionResult<TriggerResult> {
        Ok(TriggerResult::Fire)
    }
    fn clear(
        &mut self,
        _: &TimeWindow,
        _: &mut TriggerContext<'_, u32, TimeWindow>,
    ) -> FunctionResult {
        Ok(())
    }
}

#[test]
fn custom_trigger_and_program_errors() {
    // A custom trigger firing per element: each firing sees the running count.
    let evs: Vec<Ev> = (0..5)
        .map(|i| Ev {
            key: 1,
            ts: i,
            value: 1,
        })
        .collect();
    let env = env(2);
    let out = source(&env, evs)
        .key_by(|e: &Ev| e.key)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .trigger(EveryElement)
        .aggregate(CountSum)
        .execute_and_collect("custom trigger")
        .unwrap();
    assert_eq!(sorted(out), vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);

    // A non-merging trigger on session windows, and a zero window size, are program errors.
    let env = env_p1();
    source(&env, vec![])
        .key_by(|e: &Ev| e.key)
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(10)))
        .trigger(EveryElement)
        .aggregate(CountSum)
        .sink_to_discard();
    let e = env.execute("bad trigger").unwrap_err().to_string();
    assert!(
        e.contains("cannot be used with a trigger that does not support merging"),
        "{e}"
    );
    let env = env_p1();
    source(&env, vec![])
        .key_by(|e: &Ev| e.key)
        .window(TumblingEventTimeWindows::of(Duration::ZERO))
        .aggregate(CountSum)
        .sink_to_discard();
    let e = env.execute("zero size").unwrap_err().to_string();
    assert!(e.contains("size must be positive"), "{e}");
}

fn env_p1() -> StreamExecutionEnvironment {
    env(1)
}

#[test]
fn elements_without_timestamps_fail_event_time_windows_clearly() {
    let env = env(1);
    env.from_collection(vec![Ev {
        key: 1,
        ts: 0,
        value: 1,
    }])
    .key_by(|e: &Ev| e.key)
    .window(TumblingEventTimeWindows::of(Duration::from_millis(10)))
    .aggregate(CountSum)
    .sink_to_discard();
    let e = env.execute("no timestamps").unwrap_err().to_string();
    assert!(e.contains("assign_timestamps_and_watermarks"), "{e}");
}

/// Emits `n` numbers over `spread`, then stays open for `linger` so processing-time windows
/// still open at the end fire (pending processing-time timers do not fire at end of input, as
/// in Flink).
#[derive(Clone)]
struct Paced {
    n: u64,
    spread: Duration,
    linger: Duration,
    sent: u64,
    start: Option<std::time::Instant>,
}

impl SourceReader for Paced {
    type Out = u64;
    fn open(&mut self, _: &SourceContext) -> Result<(), eddy::runtime::OperatorError> {
        self.start = Some(std::time::Instant::now());
        Ok(())
    }
    fn poll_next(
        &mut self,
        out: &mut Vec<eddy::core::StreamRecord<u64>>,
        _max: usize,
    ) -> Result<InputStatus, eddy::runtime::OperatorError> {
        use eddy::runtime::source::InputStatus;
        let t = self
            .start
            .get_or_insert_with(std::time::Instant::now)
            .elapsed();
        if self.sent >= self.n {
            return Ok(if t >= self.spread + self.linger {
                InputStatus::EndOfInput
            } else {
                InputStatus::NothingAvailable
            });
        }
        let due = ((t.as_secs_f64() / self.spread.as_secs_f64()) * self.n as f64) as u64 + 1;
        while self.sent < due.min(self.n) {
            out.push(eddy::core::StreamRecord::new(self.sent));
            self.sent += 1;
        }
        Ok(InputStatus::NothingAvailable)
    }
    fn snapshot_position(&mut self) -> Result<Vec<u8>, eddy::runtime::OperatorError> {
        Ok(self.sent.to_le_bytes().to_vec())
    }
    fn restore_position(&mut self, _: &[u8]) -> Result<(), eddy::runtime::OperatorError> {
        Ok(())
    }
}

#[test]
fn processing_time_sliding_and_session_windows() {
    for p in [1, 4] {
        let env = env(p);
        let src = Paced {
            n: 300,
            spread: Duration::from_millis(300),
            linger: Duration::from_millis(400),
            sent: 0,
            start: None,
        };
        let keyed = env
            .add_source("paced", move || src.clone())
            .set_parallelism(1)
            .key_by(|x: &u64| x % 3);
        let sliding = keyed
            .window(SlidingProcessingTimeWindows::of(
                Duration::from_millis(100),
                Duration::from_millis(50),
            ))
            .apply(
                |k: &u64,
                 w: &TimeWindow,
                 v: Vec<u64>,
                 out: &mut Collector<'_, (u64, i64, i64, usize)>| {
                    out.collect((*k, w.start, w.end, v.len()));
                    Ok(())
                },
            )
            .collect();
        let sessions = keyed
            .window(ProcessingTimeSessionWindows::with_gap(
                Duration::from_millis(150),
            ))
            .apply(
                |k: &u64,
                 w: &TimeWindow,
                 v: Vec<u64>,
                 out: &mut Collector<'_, (u64, i64, i64, usize)>| {
                    out.collect((*k, w.start, w.end, v.len()));
                    Ok(())
                },
            )
            .collect();
        env.execute("processing time").unwrap();
        let sliding = sliding.take();
        // Every element is in exactly size/slide = 2 windows, each aligned to the slide.
        assert_eq!(sliding.iter().map(|r| r.3).sum::<usize>(), 600, "p={p}");
        assert!(sliding.iter().all(|r| r.1 % 50 == 0 && r.2 - r.1 == 100));
        // Elements arrive ~1 ms apart, so each key has one session (more only if the machine
        // stalls for longer than the gap); sessions of a key never overlap.
        let mut sessions = sessions.take();
        sessions.sort();
        assert_eq!(sessions.iter().map(|r| r.3).sum::<usize>(), 300, "p={p}");
        assert!(sessions.len() >= 3, "{sessions:?}");
        assert!(sessions.iter().all(|r| r.2 - r.1 >= 150));
        for w in sessions.windows(2) {
            assert!(w[0].0 != w[1].0 || w[0].2 < w[1].1, "{sessions:?}");
        }
    }
}

/// Two-phase aggregation (a local phase before the shuffle) gives the one-phase results:
/// tumbling and sliding windows, a slide that divides the size and one that does not, at
/// parallelism 1 and 4.
#[test]
fn two_phase_aggregation_matches_the_oracle() {
    let ms = Duration::from_millis;
    for p in [1, 4] {
        for (size, slide) in [(100, 100), (90, 30), (90, 40)] {
            let evs = events(11, 3000, 7, D);
            let env = env(p);
            let out = source(&env, evs.clone())
                .key_by(|e: &Ev| e.key)
                .window(SlidingEventTimeWindows::of(ms(size), ms(slide)))
                .aggregate_two_phase_with(CountSum, WithWindow)
                .execute_and_collect("two-phase")
                .unwrap();
            assert_eq!(
                sorted(out),
                oracle_fixed(&evs, size as i64, slide as i64),
                "p={p} size={size} slide={slide}"
            );
        }
        let evs = events(5, 2000, 3, D);
        let env = env(p);
        let out = source(&env, evs.clone())
            .key_by(|e: &Ev| e.key)
            .window(TumblingEventTimeWindows::of(ms(70)))
            .aggregate_two_phase(CountSum)
            .execute_and_collect("two-phase tumbling")
            .unwrap();
        let expected: Vec<(u64, i64)> = oracle_fixed(&evs, 70, 70)
            .into_iter()
            .map(|r| (r.3, r.4))
            .collect();
        assert_eq!(sorted(out), sorted(expected), "p={p}");
    }
}

/// With elements later than the watermark and allowed lateness, two phases fire exactly what
/// one phase fires (late elements bypass the local buffer), and drop the same elements.
#[test]
fn two_phase_aggregation_handles_late_elements_like_one_phase() {
    let ms = Duration::from_millis;
    // Disorder up to 300 ms against watermarks that allow 20: many elements are late, some
    // within the allowed lateness (re-firing their windows), some beyond it (dropped).
    let evs = events(21, 3000, 5, 300);
    let run = |two_phase: bool| {
        let env = env(2);
        let windowed = env
            .from_collection(evs.clone())
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_generator(|| Punctuated {
                    max: i64::MIN,
                    bound: 20,
                })
                .with_timestamp_assigner(|e: &Ev, _| e.ts),
            )
            .set_parallelism(1)
            .key_by(|e: &Ev| e.key)
            .window(SlidingEventTimeWindows::of(ms(100), ms(50)))
            .allowed_lateness(ms(120));
        let out = if two_phase {
            windowed.aggregate_two_phase_with(CountSum, WithWindow)
        } else {
            windowed.aggregate_with(CountSum, WithWindow)
        };
        sorted(out.execute_and_collect("late").unwrap())
    };
    let one = run(false);
    let two = run(true);
    let on_time = oracle_fixed(&evs, 100, 50).len();
    assert!(
        one.len() > on_time,
        "late firings: {} rows, {on_time} windows",
        one.len()
    );
    assert_eq!(one, two);
}

/// A watermark after every event: the greatest timestamp seen minus `bound`, so with more
/// disorder than `bound` elements arrive late, at the same places in every run.
struct Punctuated {
    max: i64,
    bound: i64,
}

impl WatermarkGenerator<Ev> for Punctuated {
    fn on_event(&mut self, _: &Ev, ts: i64, output: &mut WatermarkOutput<'_>) {
        self.max = self.max.max(ts);
        output.emit_watermark(Watermark::new(self.max - self.bound - 1));
    }
    fn on_periodic_emit(&mut self, _: &mut WatermarkOutput<'_>) {}
}

/// What two-phase aggregation cannot do is a program error naming it.
#[test]
fn two_phase_aggregation_rejects_what_it_cannot_do() {
    let ms = Duration::from_millis;
    let env = env_p1();
    source(&env, vec![])
        .key_by(|e: &Ev| e.key)
        .window(TumblingProcessingTimeWindows::of(ms(10)))
        .aggregate_two_phase(CountSum)
        .sink_to_discard();
    let e = env.execute("processing time").unwrap_err().to_string();
    assert!(
        e.contains("needs tumbling or sliding event-time windows"),
        "{e}"
    );

    let env = env_p1();
    source(&env, vec![])
        .key_by(|e: &Ev| e.key)
        .window(TumblingEventTimeWindows::of(ms(10)))
        .side_output_late_data(&OutputTag::<Ev>::new("late"))
        .aggregate_two_phase(CountSum)
        .sink_to_discard();
    let e = env.execute("late side output").unwrap_err().to_string();
    assert!(
        e.contains("two-phase aggregation does not support a late-data side output"),
        "{e}"
    );

    let env = env_p1();
    source(&env, vec![])
        .key_by(|e: &Ev| e.key)
        .window(TumblingEventTimeWindows::of(ms(10)))
        .trigger(EveryElement)
        .aggregate_two_phase(CountSum)
        .sink_to_discard();
    let e = env.execute("custom trigger").unwrap_err().to_string();
    assert!(e.contains("does not support a custom trigger"), "{e}");
}
