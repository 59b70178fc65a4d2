//! Integration tests of the interval join (`KeyedStream::interval_join`): results against a
//! brute-force oracle on seeded random out-of-order inputs, bound variants, late data, and the
//! errors a program gets for missing timestamps and inverted bounds.
//!
//! Every input's disorder stays within the watermark's out-of-orderness bound, so no element
//! is late and the result is exactly the oracle's, however the periodic watermarks interleave.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::core::StreamRecord;
use eddy::prelude::*;
use eddy::runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy::runtime::OperatorError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

/// Left elements: `(key, timestamp, id)`.
type Left = (u32, i64, u32);
/// Right elements: `(key, timestamp, id)`, another type than the left ones.
type Right = (u32, i64, u64);
/// `(left id, right id, left ts, right ts, ctx.timestamp(), record timestamp)`.
type Joined = (u32, u64, i64, i64, i64, i64);

/// The out-of-orderness of the generated inputs and of their watermarks.
const DISORDER_MS: i64 = 20;

/// SplitMix64: a tiny seeded generator, so failures reproduce exactly.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` elements in arrival order: element `i` has a timestamp in `[2i, 2i + DISORDER_MS]`, so
/// it is never more than `DISORDER_MS` behind any element before it. Half of them sit at
/// either end of that range, so many arrive just ahead of the watermark: exactly the elements
/// a too-early cleanup would miss.
fn events(rng: &mut SplitMix64, n: u32, keys: u64) -> Vec<(u32, i64, u32)> {
    (0..n)
        .map(|i| {
            let key = rng.below(keys) as u32;
            let jitter = match rng.below(4) {
                0 => 0,
                1 => DISORDER_MS,
                _ => rng.below(DISORDER_MS as u64 + 1) as i64,
            };
            let ts = 2 * i as i64 + jitter;
            (key, ts, i)
        })
        .collect()
}

fn inputs(seed: u64, n: u32, keys: u64) -> (Vec<Left>, Vec<Right>) {
    let mut rng = SplitMix64(seed);
    let left = events(&mut rng, n, keys);
    let right = events(&mut rng, n, keys)
        .into_iter()
        .map(|(k, ts, id)| (k, ts, id as u64))
        .collect();
    (left, right)
}

#[derive(Clone, Copy, Debug)]
struct Bounds {
    lower: i64,
    upper: i64,
    lower_exclusive: bool,
    upper_exclusive: bool,
}

fn inclusive(lower: i64, upper: i64) -> Bounds {
    Bounds {
        lower,
        upper,
        lower_exclusive: false,
        upper_exclusive: false,
    }
}

/// All pairs of equal key with `right.ts - left.ts` within the bounds.
fn oracle(left: &[Left], right: &[Right], b: Bounds) -> Vec<Joined> {
    let mut out = Vec::new();
    for l in left {
        for r in right {
            let d = r.1 - l.1;
            let above_lower = if b.lower_exclusive {
                d > b.lower
            } else {
                d >= b.lower
            };
            let below_upper = if b.upper_exclusive {
                d < b.upper
            } else {
                d <= b.upper
            };
            if l.0 == r.0 && above_lower && below_upper {
                let ts = l.1.max(r.1);
                out.push((l.2, r.2, l.1, r.1, ts, ts));
            }
        }
    }
    out.sort();
    out
}

fn watermarks<T: Data>(ts: fn(&T) -> i64) -> WatermarkStrategy<T> {
    WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(DISORDER_MS as u64))
        .with_timestamp_assigner(move |e: &T, _| ts(e))
        // Frequent watermarks so buffers are cleaned up while the input is still flowing.
        .with_auto_watermark_interval(Duration::from_millis(1))
}

/// A non-parallel source emitting its elements a few at a time, a millisecond apart, so
/// periodic watermarks (and so the join's cleanup) interleave with the elements.
struct PacedSource<T> {
    items: std::vec::IntoIter<T>,
    next_at: Instant,
}

impl<T: Data> SourceReader for PacedSource<T> {
    type Out = T;
    fn open(&mut self, _: &SourceContext) -> Result<(), OperatorError> {
        Ok(())
    }
    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<T>>,
        _max: usize,
    ) -> Result<InputStatus, OperatorError> {
        if Instant::now() < self.next_at {
            return Ok(InputStatus::NothingAvailable);
        }
        out.extend(self.items.by_ref().take(8).map(StreamRecord::new));
        self.next_at = Instant::now() + Duration::from_millis(1);
        Ok(if self.items.len() == 0 {
            InputStatus::EndOfInput
        } else {
            InputStatus::NothingAvailable
        })
    }
    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(Vec::new())
    }
    fn restore_position(&mut self, _: &[u8]) -> Result<(), OperatorError> {
        Ok(())
    }
}

fn source<T: Data>(
    env: &StreamExecutionEnvironment,
    items: &[T],
    paced: bool,
) -> SingleOutputStreamOperator<T> {
    if !paced {
        return env.from_collection(items.to_vec());
    }
    let items = items.to_vec();
    // The reader factory must be `Sync`; the Mutex makes it so without asking `T: Sync`.
    let items = std::sync::Mutex::new(items);
    env.add_source("paced", move || PacedSource {
        items: items
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
            .into_iter(),
        next_at: Instant::now(),
    })
    .set_parallelism(1)
}

/// Joins `left` and `right` with `b` at parallelism `p`; `paced` spreads the input over time
/// so that buffers are cleaned up while elements still arrive.
fn run_join(left: &[Left], right: &[Right], b: Bounds, p: usize, paced: bool) -> Vec<Joined> {
    let env = common::environment();
    env.set_parallelism(p);
    let l = source(&env, left, paced)
        .assign_timestamps_and_watermarks(watermarks(|e: &Left| e.1))
        .key_by(|e: &Left| e.0);
    let r = source(&env, right, paced)
        .assign_timestamps_and_watermarks(watermarks(|e: &Right| e.1))
        .key_by(|e: &Right| e.0);
    let mut joined = l.interval_join(&r).between(b.lower, b.upper);
    if b.lower_exclusive {
        joined = joined.lower_bound_exclusive();
    }
    if b.upper_exclusive {
        joined = joined.upper_bound_exclusive();
    }
    let mut out = joined
        .process_fn(|l: Left, r: Right, ctx, out: &mut Collector<'_, _>| {
            out.collect((
                l.2,
                r.2,
                ctx.left_timestamp(),
                ctx.right_timestamp(),
                ctx.timestamp(),
            ));
            Ok(())
        })
        // The record timestamp the join gave each result.
        .process_fn(
            |(l, r, lt, rt, t): (u32, u64, i64, i64, i64), ctx, out: &mut Collector<'_, Joined>| {
                out.collect((l, r, lt, rt, t, ctx.timestamp().unwrap_or(i64::MIN)));
                Ok(())
            },
        )
        .execute_and_collect("interval join")
        .expect("job runs");
    out.sort();
    out
}

fn check(seed: u64, b: Bounds, p: usize, paced: bool) {
    let (left, right) = inputs(seed, 400, 5);
    let expected = oracle(&left, &right, b);
    assert!(
        expected.len() > 100,
        "the inputs should join often enough to test something: {}",
        expected.len()
    );
    let got = run_join(&left, &right, b, p, paced);
    assert_eq!(got.len(), expected.len(), "seed {seed}, {b:?}, p {p}");
    assert_eq!(got, expected, "seed {seed}, {b:?}, p {p}");
}

#[test]
fn matches_the_oracle_at_parallelism_1() {
    check(1, inclusive(-15, 25), 1, false);
}

#[test]
fn matches_the_oracle_at_parallelism_1_with_cleanup_while_running() {
    check(11, inclusive(-15, 25), 1, true);
    check(12, inclusive(-30, -10), 1, true);
}

#[test]
fn matches_the_oracle_at_parallelism_4_with_cleanup_while_running() {
    check(2, inclusive(-15, 25), 4, true);
}

#[test]
fn negative_bounds_join_only_earlier_right_elements() {
    check(3, inclusive(-40, -5), 4, false);
}

#[test]
fn positive_bounds_join_only_later_right_elements() {
    check(4, inclusive(5, 40), 2, false);
}

#[test]
fn exclusive_bounds() {
    let both = Bounds {
        lower_exclusive: true,
        upper_exclusive: true,
        ..inclusive(-10, 10)
    };
    check(5, both, 4, false);
    check(
        6,
        Bounds {
            lower_exclusive: true,
            ..inclusive(-10, 10)
        },
        1,
        false,
    );
    check(
        7,
        Bounds {
            upper_exclusive: true,
            ..inclusive(0, 20)
        },
        2,
        false,
    );
}

#[test]
fn point_interval_joins_equal_timestamps() {
    // With few distinct timestamps, [0, 0] still joins often.
    let (left, right) = inputs(8, 400, 2);
    let b = inclusive(0, 0);
    let expected = oracle(&left, &right, b);
    assert!(!expected.is_empty());
    assert_eq!(run_join(&left, &right, b, 2, false), expected);
}

#[derive(Clone)]
struct StringJoin;

impl ProcessJoinFunction<(String, i64), (String, char), String> for StringJoin {
    fn open(&mut self, ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        assert_eq!(ctx.operator_name(), "Interval Join");
        Ok(())
    }
    fn process_element(
        &mut self,
        left: (String, i64),
        right: (String, char),
        ctx: &mut ProcessJoinContext<'_>,
        out: &mut Collector<'_, String>,
    ) -> FunctionResult {
        out.collect(format!("{}:{}@{}", left.0, right.1, ctx.timestamp()));
        Ok(())
    }
}

#[test]
fn process_with_a_join_function_struct_and_string_keys() {
    let env = common::environment();
    env.set_parallelism(2);
    let left = env
        .from_collection(vec![("a".to_string(), 10), ("b".to_string(), 10)])
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &(String, i64), _| e.1),
        )
        .key_by(|e: &(String, i64)| e.0.clone());
    let right = env
        .from_collection(vec![
            ("a".to_string(), 'x'),
            ("b".to_string(), 'y'),
            ("c".to_string(), 'z'),
        ])
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|_: &(String, char), _| 12),
        )
        .key_by(|e: &(String, char)| e.0.clone());
    let mut out = left
        .interval_join(&right)
        .in_event_time()
        .between(0, 2)
        .process(StringJoin)
        .execute_and_collect("string keys")
        .expect("job runs");
    out.sort();
    assert_eq!(out, vec!["a:x@12", "b:y@12"]);
}

#[test]
fn elements_without_timestamps_fail_the_job_with_a_clear_error() {
    let env = common::environment();
    env.set_parallelism(1);
    let left = env.from_collection(vec![(1u32, 1i64)]).key_by(|e| e.0);
    let right = env.from_collection(vec![(1u32, 1i64)]).key_by(|e| e.0);
    left.interval_join(&right)
        .between(-1, 1)
        .process_fn(
            |l: (u32, i64), r: (u32, i64), _, out: &mut Collector<'_, i64>| {
                out.collect(l.1 + r.1);
                Ok(())
            },
        )
        .sink_to_discard();
    let err = env.execute("no timestamps").unwrap_err().to_string();
    assert!(
        err.contains("interval join needs event timestamps: call assign_timestamps_and_watermarks"),
        "{err}"
    );
    assert!(err.contains("Interval Join"), "names the operator: {err}");
}

#[test]
fn lower_bound_above_upper_bound_is_reported_by_execute() {
    let env = common::environment();
    let s = env.from_collection(vec![(1u32, 1i64)]).key_by(|e| e.0);
    s.interval_join(&s)
        .between(5, 2)
        .process_fn(|l, _, _, out: &mut Collector<'_, (u32, i64)>| {
            out.collect(l);
            Ok(())
        })
        .sink_to_discard();
    let err = env.execute("inverted bounds").unwrap_err();
    assert!(matches!(err, JobExecutionError::InvalidJob(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("lower bound (5 ms) must not be greater than the upper bound (2 ms)"),
        "{msg}"
    );
}

/// A left source that emits `on_time` first, then waits until `go` is set (polling, so the
/// task stays responsive), then emits `after`.
struct GatedSource {
    on_time: Vec<Left>,
    after: Vec<Left>,
    go: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl SourceReader for GatedSource {
    type Out = Left;
    fn open(&mut self, _: &SourceContext) -> Result<(), OperatorError> {
        Ok(())
    }
    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<Left>>,
        _max: usize,
    ) -> Result<InputStatus, OperatorError> {
        if !self.on_time.is_empty() {
            out.extend(self.on_time.drain(..).map(StreamRecord::new));
            self.deadline = Some(Instant::now() + Duration::from_secs(30));
            return Ok(InputStatus::NothingAvailable);
        }
        // The deadline only keeps a broken run from hanging; the assertions then fail.
        let timed_out = self.deadline.is_some_and(|d| Instant::now() > d);
        if !self.go.load(Ordering::SeqCst) && !timed_out {
            return Ok(InputStatus::NothingAvailable);
        }
        if self.after.is_empty() {
            return Ok(InputStatus::EndOfInput);
        }
        out.extend(self.after.drain(..).map(StreamRecord::new));
        Ok(InputStatus::MoreAvailable)
    }
    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(Vec::new())
    }
    fn restore_position(&mut self, _: &[u8]) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// Sets `go` once the join's output watermark passes `at`: the join has then seen that
/// watermark too, so anything emitted afterwards with a smaller timestamp reaches it late.
#[derive(Clone)]
struct OpenGateAt {
    at: i64,
    go: Arc<AtomicBool>,
}

impl KeyedProcessFunction<u8, Joined, Joined> for OpenGateAt {
    fn process_element(
        &mut self,
        v: Joined,
        ctx: &mut KeyedContext<'_, u8>,
        out: &mut Collector<'_, Joined>,
    ) -> FunctionResult {
        ctx.timer_service().register_event_time_timer(self.at);
        out.collect(v);
        Ok(())
    }
    fn on_timer(
        &mut self,
        _: i64,
        _: &mut KeyedContext<'_, u8>,
        _: &mut Collector<'_, Joined>,
    ) -> FunctionResult {
        self.go.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn late_left_elements_go_to_the_side_output() {
    let env = common::environment();
    env.set_parallelism(1);
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    // (key, ts, id): #1 joins the right element; once the watermark is 1999, #2 (ts 5) is late
    // and #3 (ts 2000) is not, and still finds the right element buffered.
    let left = env
        .add_source("gated", move || GatedSource {
            on_time: vec![(1, 2000, 1)],
            after: vec![(1, 5, 2), (1, 2000, 3)],
            go: g.clone(),
            deadline: None,
        })
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &Left, _| e.1)
                .with_auto_watermark_interval(Duration::from_millis(5)),
        )
        .key_by(|e: &Left| e.0);
    let right = env
        .from_collection(vec![(1u32, 2000i64, 10u64)])
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &Right, _| e.1),
        )
        .key_by(|e: &Right| e.0);
    let late_left = OutputTag::<Left>::new("late-left");
    let late_right = OutputTag::<Right>::new("late-right");
    let joined = left
        .interval_join(&right)
        .between(0, 0)
        .side_output_left_late_data(&late_left)
        .side_output_right_late_data(&late_right)
        .process_fn(|l: Left, r: Right, ctx, out: &mut Collector<'_, Joined>| {
            let t = ctx.timestamp();
            out.collect((l.2, r.2, l.1, r.1, t, t));
            Ok(())
        });
    let late_l = joined.get_side_output(&late_left).collect();
    let late_r = joined.get_side_output(&late_right).collect();
    let pairs = joined
        .key_by(|_: &Joined| 0u8)
        .process(OpenGateAt { at: 1000, go })
        .collect();
    env.execute("late data").expect("job runs");
    let mut pairs = pairs.take();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            (1, 10, 2000, 2000, 2000, 2000),
            (3, 10, 2000, 2000, 2000, 2000)
        ]
    );
    assert_eq!(late_l.take(), vec![(1, 5, 2)]);
    assert!(late_r.take().is_empty());
}
