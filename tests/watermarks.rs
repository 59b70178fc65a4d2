//! Integration tests of event time: custom watermark generators (punctuated and periodic),
//! watermarks that never go backwards, the auto-watermark interval, idleness through the
//! network, and the watermarks a running job reports through its `JobClient`.
//!
//! Nothing here asserts on timing: jobs that must stay open wait on a gate the test raises,
//! and every wait has a generous deadline that only guards against hanging.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::core::StreamRecord;
use eddy::prelude::*;
use eddy::runtime::chain::OneInputOperator;
use eddy::runtime::factory::OneInputFactory;
use eddy::runtime::output::Output;
use eddy::runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy::runtime::OperatorError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

fn env(p: usize) -> StreamExecutionEnvironment {
    let env = common::environment();
    env.set_parallelism(p);
    env
}

/// Only a guard against a hanging test; the conditions waited for are reached in milliseconds.
const GUARD: Duration = Duration::from_secs(60);

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Emits every record with its value as event timestamp (set by the strategy's assigner) and
/// registers an event-time timer at that timestamp: `('r', v)` per record, `('t', t)` per
/// timer, in the order the operator saw them.
#[derive(Clone)]
struct TimerEcho;

impl KeyedProcessFunction<i64, i64, (char, i64)> for TimerEcho {
    fn process_element(
        &mut self,
        v: i64,
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (char, i64)>,
    ) -> FunctionResult {
        let ts = ctx.timestamp().ok_or("record without timestamp")?;
        ctx.timer_service().register_event_time_timer(ts);
        out.collect(('r', v));
        Ok(())
    }

    fn on_timer(
        &mut self,
        t: i64,
        _ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (char, i64)>,
    ) -> FunctionResult {
        out.collect(('t', t));
        Ok(())
    }
}

fn timers(out: &[(char, i64)]) -> Vec<i64> {
    let mut t: Vec<i64> = out
        .iter()
        .filter(|(k, _)| *k == 't')
        .map(|(_, t)| *t)
        .collect();
    t.sort();
    t
}

// ---------------------------------------------------------------------------------------------
// Punctuated generators: the watermark follows the record that caused it.

/// Emits a watermark at the timestamp of every even value.
struct EvenPunctuated;

impl WatermarkGenerator<i64> for EvenPunctuated {
    fn on_event(&mut self, v: &i64, ts: i64, output: &mut WatermarkOutput<'_>) {
        if v % 2 == 0 {
            output.emit_watermark(Watermark::new(ts));
        }
    }

    fn on_periodic_emit(&mut self, _output: &mut WatermarkOutput<'_>) {}
}

#[test]
fn punctuated_watermark_goes_out_right_after_its_record() {
    let env = env(1);
    // One source batch holds all ten records: the watermarks must split it.
    let out = env
        .from_collection((1..=10i64).collect())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_generator(|| EvenPunctuated)
                .with_timestamp_assigner(|v: &i64, _| *v),
        )
        .key_by(|_: &i64| 0i64)
        .process(TimerEcho)
        .execute_and_collect("punctuated")
        .unwrap();
    let mut expected = Vec::new();
    for pair in (1..=10i64).collect::<Vec<_>>().chunks(2) {
        expected.extend(pair.iter().map(|v| ('r', *v)));
        expected.extend(pair.iter().map(|v| ('t', *v)));
    }
    assert_eq!(out, expected);
}

/// Records every record and watermark it sees, in order, and forwards both.
struct RecordAll {
    seen: Arc<Mutex<Vec<(char, i64)>>>,
}

impl OneInputOperator for RecordAll {
    type In = i64;
    type Out = i64;

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<i64>>,
        out: &mut Output<i64>,
    ) -> Result<(), OperatorError> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| OperatorError::Internal("poisoned".into()))?;
        for r in batch.drain(..) {
            seen.push(('r', r.value));
            out.push(r);
        }
        Ok(())
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        _out: &mut Output<i64>,
    ) -> Result<Option<Watermark>, OperatorError> {
        self.seen
            .lock()
            .map_err(|_| OperatorError::Internal("poisoned".into()))?
            .push(('w', wm.timestamp));
        Ok(Some(wm))
    }
}

/// What an operator chained right after the timestamps operator sees (no valve in between).
fn seen_after(
    env: &StreamExecutionEnvironment,
    strategy: WatermarkStrategy<i64>,
    n: i64,
) -> Vec<(char, i64)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    env.from_collection((0..n).collect())
        .assign_timestamps_and_watermarks(strategy)
        .transform::<i64>(
            "Record All",
            Arc::new(OneInputFactory::new(move || RecordAll { seen: s2.clone() })),
            false,
        )
        .sink_to_discard();
    env.execute("record all").unwrap();
    let v = seen.lock().unwrap().clone();
    v
}

/// Emits a watermark per event from a table that jumps back and forth.
struct Zigzag;

const ZIGZAG: [i64; 7] = [5, 3, 8, 2, 10, 7, 12];

impl WatermarkGenerator<i64> for Zigzag {
    fn on_event(&mut self, v: &i64, _ts: i64, output: &mut WatermarkOutput<'_>) {
        output.emit_watermark(Watermark::new(ZIGZAG[*v as usize]));
    }

    fn on_periodic_emit(&mut self, _output: &mut WatermarkOutput<'_>) {}
}

#[test]
fn watermarks_never_go_backwards() {
    let seen = seen_after(
        &env(1),
        WatermarkStrategy::for_generator(|| Zigzag)
            .with_timestamp_assigner(|v: &i64, _| *v)
            .with_auto_watermark_interval(Duration::ZERO),
        ZIGZAG.len() as i64,
    );
    let w = |t| ('w', t);
    let r = |v| ('r', v);
    assert_eq!(
        seen,
        vec![
            r(0),
            w(5),
            r(1),
            r(2),
            w(8),
            r(3),
            r(4),
            w(10),
            r(5),
            r(6),
            w(12),
            w(i64::MAX)
        ]
    );
}

#[test]
fn auto_watermark_interval_zero_turns_periodic_watermarks_off() {
    let env = env(1);
    env.set_config("pipeline.auto-watermark-interval", "0")
        .unwrap();
    let seen = seen_after(
        &env,
        WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|v: &i64, _| *v),
        50,
    );
    let watermarks: Vec<i64> = seen
        .iter()
        .filter(|(k, _)| *k == 'w')
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(watermarks, vec![i64::MAX]);
    assert_eq!(seen.len(), 51);
}

// ---------------------------------------------------------------------------------------------
// Sources that stay open until the test raises a gate.

/// Subtask `i` emits the values `0..counts[i]` at once, then nothing until the gate is raised,
/// then ends.
struct GatedSource {
    counts: Vec<i64>,
    gate: Arc<AtomicBool>,
    pending: Vec<i64>,
}

impl GatedSource {
    fn new(counts: Vec<i64>, gate: Arc<AtomicBool>) -> Self {
        GatedSource {
            counts,
            gate,
            pending: Vec::new(),
        }
    }
}

impl SourceReader for GatedSource {
    type Out = i64;

    fn open(&mut self, ctx: &SourceContext) -> Result<(), OperatorError> {
        let n = self.counts.get(ctx.subtask).copied().unwrap_or(0);
        self.pending = (0..n).collect();
        Ok(())
    }

    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<i64>>,
        _max: usize,
    ) -> Result<InputStatus, OperatorError> {
        if !self.pending.is_empty() {
            out.extend(self.pending.drain(..).map(StreamRecord::new));
            return Ok(InputStatus::MoreAvailable);
        }
        if self.gate.load(Ordering::Acquire) {
            Ok(InputStatus::EndOfInput)
        } else {
            Ok(InputStatus::NothingAvailable)
        }
    }

    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(Vec::new())
    }

    fn restore_position(&mut self, _position: &[u8]) -> Result<(), OperatorError> {
        Ok(())
    }
}

fn gated_source(
    env: &StreamExecutionEnvironment,
    counts: Vec<i64>,
    gate: &Arc<AtomicBool>,
) -> SingleOutputStreamOperator<i64> {
    let gate = gate.clone();
    let p = counts.len();
    env.add_source("Gated", move || {
        GatedSource::new(counts.clone(), gate.clone())
    })
    .set_parallelism(p)
}

fn subtask(client: &JobClient, task_prefix: &str, index: usize) -> SubtaskWatermarks {
    let all = client.watermarks();
    all.iter()
        .find(|w| w.task.starts_with(task_prefix) && w.subtask == index)
        .cloned()
        .unwrap_or_else(|| panic!("no subtask {index} of a task '{task_prefix}…' in {all:?}"))
}

/// The downstream task (after the key_by edge): the one that is not a source.
fn downstream(client: &JobClient) -> SubtaskWatermarks {
    let all = client.watermarks();
    all.iter()
        .find(|w| !w.task.starts_with("Source"))
        .cloned()
        .unwrap_or_else(|| panic!("no downstream task in {all:?}"))
}

/// Periodically emits `max timestamp - 10`.
struct FixedLag {
    max: i64,
}

impl WatermarkGenerator<i64> for FixedLag {
    fn on_event(&mut self, _v: &i64, ts: i64, _output: &mut WatermarkOutput<'_>) {
        self.max = self.max.max(ts);
    }

    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput<'_>) {
        if self.max != i64::MIN {
            output.emit_watermark(Watermark::new(self.max - 10));
        }
    }
}

#[test]
fn custom_periodic_generator_and_queryable_watermarks() {
    let env = env(1);
    let gate = Arc::new(AtomicBool::new(false));
    let out = gated_source(&env, vec![101], &gate)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_generator(|| FixedLag { max: i64::MIN })
                .with_timestamp_assigner(|v: &i64, _| *v)
                .with_auto_watermark_interval(Duration::from_millis(5)),
        )
        .key_by(|_: &i64| 0i64)
        .process(TimerEcho)
        .collect();
    let mut client = env.execute_async("periodic").unwrap();
    let mut observed = Vec::new();
    wait_until("the downstream input watermark is 90", || {
        let w = downstream(&client).input_watermark;
        observed.push(w);
        w == 90
    });
    assert!(
        observed.windows(2).all(|p| p[0] <= p[1]),
        "input watermark went backwards: {observed:?}"
    );
    let source = subtask(&client, "Source", 0);
    assert_eq!(source.output_watermark, 90);
    assert_eq!(source.input_watermark, i64::MIN, "a source has no input");
    // The gauge moves only after the chain processed the watermark: its timers have fired.
    let early = out.take();
    assert_eq!(timers(&early), (0..=90).collect::<Vec<_>>());
    gate.store(true, Ordering::Release);
    client.wait().unwrap();
    let mut all = early;
    all.extend(out.take());
    assert_eq!(timers(&all), (0..=100).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------------
// Idleness: a source subtask without data must not hold back event time downstream.

fn idle_job(
    strategy: WatermarkStrategy<i64>,
    gate: &Arc<AtomicBool>,
) -> (JobClient, CollectHandle<(char, i64)>) {
    let env = env(1);
    let out = gated_source(&env, vec![100, 0], gate)
        .assign_timestamps_and_watermarks(
            strategy
                .with_timestamp_assigner(|v: &i64, _| *v)
                .with_auto_watermark_interval(Duration::from_millis(10)),
        )
        .set_parallelism(2)
        .key_by(|_: &i64| 0i64)
        .process(TimerEcho)
        .collect();
    (env.execute_async("idleness").unwrap(), out)
}

#[test]
fn idle_subtask_does_not_hold_back_timers_with_idleness() {
    let gate = Arc::new(AtomicBool::new(false));
    let (mut client, out) = idle_job(
        WatermarkStrategy::for_monotonous_timestamps().with_idleness(Duration::from_millis(100)),
        &gate,
    );
    // Subtask 1 never emits a record and is still open; only idleness lets this happen.
    wait_until("the downstream input watermark is 98", || {
        downstream(&client).input_watermark == 98
    });
    let early = out.take();
    assert_eq!(timers(&early), (0..=98).collect::<Vec<_>>());
    gate.store(true, Ordering::Release);
    client.wait().unwrap();
    let mut all = early;
    all.extend(out.take());
    assert_eq!(timers(&all), (0..100).collect::<Vec<_>>());
}

#[test]
fn open_subtask_without_data_holds_back_timers_without_idleness() {
    let gate = Arc::new(AtomicBool::new(false));
    let (mut client, out) = idle_job(WatermarkStrategy::for_monotonous_timestamps(), &gate);
    wait_until("source subtask 0 emitted watermark 98", || {
        subtask(&client, "Source", 0).output_watermark == 98
    });
    // Subtask 1 is open and has sent no watermark: the minimum stays at its MIN.
    assert_eq!(subtask(&client, "Source", 1).output_watermark, i64::MIN);
    assert_eq!(downstream(&client).input_watermark, i64::MIN);
    assert_eq!(timers(&out.take()), Vec::<i64>::new());
    gate.store(true, Ordering::Release);
    client.wait().unwrap();
    assert_eq!(timers(&out.take()), (0..100).collect::<Vec<_>>());
}

#[test]
fn cancelled_job_client_reports_cancellation() {
    let env = env(1);
    let gate = Arc::new(AtomicBool::new(false));
    gated_source(&env, vec![3], &gate).sink_to_discard();
    let mut client = env.execute_async("cancel me").unwrap();
    client.cancel();
    let err = client.wait().unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
}

/// Registers an event-time timer per record of the first input; the second input only moves
/// event time.
#[derive(Clone)]
struct CoTimerEcho;

impl KeyedCoProcessFunction<i64, i64, i64, (char, i64)> for CoTimerEcho {
    fn process_element1(
        &mut self,
        v: i64,
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (char, i64)>,
    ) -> FunctionResult {
        let ts = ctx.timestamp().ok_or("record without timestamp")?;
        ctx.timer_service().register_event_time_timer(ts);
        out.collect(('r', v));
        Ok(())
    }

    fn process_element2(
        &mut self,
        _v: i64,
        _ctx: &mut KeyedContext<'_, i64>,
        _out: &mut Collector<'_, (char, i64)>,
    ) -> FunctionResult {
        Ok(())
    }

    fn on_timer(
        &mut self,
        t: i64,
        _ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (char, i64)>,
    ) -> FunctionResult {
        out.collect(('t', t));
        Ok(())
    }
}

#[test]
fn idle_input_of_a_two_input_operator_does_not_hold_back_the_other() {
    let env = env(1);
    let gate = Arc::new(AtomicBool::new(false));
    let strategy = || {
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|v: &i64, _| *v)
            .with_auto_watermark_interval(Duration::from_millis(10))
    };
    // Only the empty input may go idle, so the combined watermark is the data input's.
    let data = gated_source(&env, vec![50], &gate).assign_timestamps_and_watermarks(strategy());
    let empty = gated_source(&env, vec![0], &gate)
        .assign_timestamps_and_watermarks(strategy().with_idleness(Duration::from_millis(100)));
    let out = data
        .connect(&empty)
        .key_by(|_: &i64| 0i64, |_: &i64| 0i64)
        .process(CoTimerEcho)
        .collect();
    let mut client = env.execute_async("two-input idleness").unwrap();
    wait_until("the co-process input watermark is 48", || {
        downstream(&client).input_watermark == 48
    });
    let early = out.take();
    assert_eq!(timers(&early), (0..=48).collect::<Vec<_>>());
    gate.store(true, Ordering::Release);
    client.wait().unwrap();
    let mut all = early;
    all.extend(out.take());
    assert_eq!(timers(&all), (0..50).collect::<Vec<_>>());
}
