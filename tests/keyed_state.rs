//! Integration tests of keyed state (value, list, map, reducing, aggregating, TTL) and of
//! event- and processing-time timers in `KeyedProcessFunction`s.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

mod common;

fn env(p: usize) -> StreamExecutionEnvironment {
    let env = common::environment();
    env.set_parallelism(p);
    env
}

/// The last output per key (outputs of one key arrive in order).
fn last_per_key<K: Ord + Clone, V: Clone>(out: &[(K, V)]) -> BTreeMap<K, V> {
    out.iter().cloned().collect()
}

fn kv(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn input() -> Vec<(String, i64)> {
    kv(&[
        ("a", 3),
        ("b", 10),
        ("a", 1),
        ("c", 7),
        ("b", 20),
        ("a", 4),
        ("a", 1),
        ("c", -7),
    ])
}

fn keyed_job<O: Data, F: KeyedProcessFunction<String, (String, i64), O> + Clone>(f: F) -> Vec<O> {
    let env = env(3);
    env.from_collection(input())
        .key_by(|t: &(String, i64)| t.0.clone())
        .process(f)
        .execute_and_collect("keyed state")
        .unwrap()
}

#[derive(Clone, Default)]
struct ValueJob {
    last: Option<ValueState<i64>>,
    seen: Option<ValueState<i64>>,
}

impl KeyedProcessFunction<String, (String, i64), (String, (Option<i64>, i64))> for ValueJob {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, String>) -> FunctionResult {
        self.last = Some(ctx.get_state(&ValueStateDescriptor::new("last"))?);
        self.seen = Some(ctx.get_state(&ValueStateDescriptor::new("seen").with_default(100))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, (Option<i64>, i64))>,
    ) -> FunctionResult {
        let (last, seen) = (self.last.unwrap(), self.seen.unwrap());
        let prev = last.value(ctx)?;
        last.update(ctx, v.1)?;
        let n = seen.value(ctx)?.expect("default value") + 1;
        seen.update(ctx, n)?;
        out.collect((v.0, (prev, n)));
        Ok(())
    }
}

#[test]
fn value_state_per_key_with_default() {
    let out = keyed_job(ValueJob::default());
    assert_eq!(out.len(), 8);
    let a: Vec<_> = out.iter().filter(|o| o.0 == "a").map(|o| o.1).collect();
    assert_eq!(
        a,
        vec![(None, 101), (Some(3), 102), (Some(1), 103), (Some(4), 104)]
    );
    let m = last_per_key(&out);
    assert_eq!(m["b"], (Some(10), 102));
    assert_eq!(m["c"], (Some(7), 102));
}

#[derive(Clone, Default)]
struct ListJob {
    list: Option<ListState<i64>>,
}

impl KeyedProcessFunction<String, (String, i64), (String, Vec<i64>)> for ListJob {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, String>) -> FunctionResult {
        self.list = Some(ctx.get_list_state(&ListStateDescriptor::new("list"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, Vec<i64>)>,
    ) -> FunctionResult {
        let list = self.list.unwrap();
        if v.1 < 0 {
            // A negative value replaces the list with its absolute value.
            list.update(ctx, vec![-v.1])?;
        } else {
            list.add(ctx, v.1)?;
        }
        out.collect((v.0, list.get(ctx)?));
        Ok(())
    }
}

#[test]
fn list_state_appends_in_order() {
    let m = last_per_key(&keyed_job(ListJob::default()));
    assert_eq!(m["a"], vec![3, 1, 4, 1]);
    assert_eq!(m["b"], vec![10, 20]);
    assert_eq!(m["c"], vec![7]);
}

#[derive(Clone, Default)]
struct MapJob {
    counts: Option<MapState<i64, u32>>,
}

impl KeyedProcessFunction<String, (String, i64), (String, Vec<(i64, u32)>)> for MapJob {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, String>) -> FunctionResult {
        self.counts = Some(ctx.get_map_state(&MapStateDescriptor::new("counts"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, Vec<(i64, u32)>)>,
    ) -> FunctionResult {
        let counts = self.counts.unwrap();
        if v.1 < 0 {
            // A negative value removes its absolute value.
            assert!(counts.contains(ctx, &-v.1)?);
            counts.remove(ctx, &-v.1)?;
            assert!(!counts.contains(ctx, &-v.1)?);
        } else {
            let n = counts.get(ctx, &v.1)?.unwrap_or(0) + 1;
            counts.put(ctx, v.1, n)?;
        }
        let mut e = counts.entries(ctx)?;
        e.sort();
        out.collect((v.0, e));
        Ok(())
    }
}

#[test]
fn map_state_put_get_remove() {
    let m = last_per_key(&keyed_job(MapJob::default()));
    assert_eq!(m["a"], vec![(1, 2), (3, 1), (4, 1)]);
    assert_eq!(m["b"], vec![(10, 1), (20, 1)]);
    assert_eq!(m["c"], vec![]);
}

#[derive(Clone, Default)]
struct ReducingJob {
    sum: Option<ReducingState<i64>>,
}

impl KeyedProcessFunction<String, (String, i64), (String, i64)> for ReducingJob {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, String>) -> FunctionResult {
        self.sum = Some(
            ctx.get_reducing_state(&ReducingStateDescriptor::new("sum", |a: i64, b: i64| a + b))?,
        );
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        let sum = self.sum.unwrap();
        sum.add(ctx, v.1)?;
        out.collect((v.0, sum.get(ctx)?.expect("a sum after add")));
        Ok(())
    }
}

#[test]
fn reducing_state_sums() {
    let m = last_per_key(&keyed_job(ReducingJob::default()));
    assert_eq!(
        m,
        kv(&[("a", 9), ("b", 30), ("c", 0)]).into_iter().collect()
    );
}

/// Average as `(sum, count)` accumulator; the result is `sum / count` as f64.
struct Average;

impl AggregateFunction<i64, (i64, i64), f64> for Average {
    fn create_accumulator(&self) -> (i64, i64) {
        (0, 0)
    }
    fn add(&self, v: i64, acc: &mut (i64, i64)) {
        acc.0 += v;
        acc.1 += 1;
    }
    fn get_result(&self, acc: &(i64, i64)) -> f64 {
        acc.0 as f64 / acc.1 as f64
    }
    fn merge(&self, a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

#[derive(Clone, Default)]
struct AggregatingJob {
    avg: Option<AggregatingState<i64, (i64, i64), f64>>,
}

impl KeyedProcessFunction<String, (String, i64), (String, f64)> for AggregatingJob {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, String>) -> FunctionResult {
        self.avg =
            Some(ctx.get_aggregating_state(&AggregatingStateDescriptor::new("avg", Average))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, f64)>,
    ) -> FunctionResult {
        let avg = self.avg.unwrap();
        avg.add(ctx, v.1)?;
        out.collect((v.0, avg.get(ctx)?.expect("an average after add")));
        Ok(())
    }
}

#[test]
fn aggregating_state_averages() {
    let out = keyed_job(AggregatingJob::default());
    let a: Vec<f64> = out.iter().filter(|o| o.0 == "a").map(|o| o.1).collect();
    assert_eq!(a, vec![3.0, 2.0, 8.0 / 3.0, 2.25]);
    let m = last_per_key(&out);
    assert_eq!(m["b"], 15.0);
    assert_eq!(m["c"], 0.0);
}

#[derive(Clone, Default)]
struct NotKeyed;

impl ProcessFunction<i64, i64> for NotKeyed {
    fn open(&mut self, ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        ctx.get_state(&ValueStateDescriptor::<i64>::new("nope"))?;
        Ok(())
    }
    fn process_element(
        &mut self,
        v: i64,
        _: &mut ProcessContext<'_>,
        out: &mut Collector<'_, i64>,
    ) -> FunctionResult {
        out.collect(v);
        Ok(())
    }
}

#[test]
fn keyed_state_on_a_non_keyed_stream_is_an_error() {
    let env = env(1);
    env.from_collection(vec![1i64])
        .process(NotKeyed)
        .name("Unkeyed")
        .sink_to_discard();
    let err = env.execute("not keyed").unwrap_err().to_string();
    assert!(err.contains("Unkeyed") && err.contains("nope"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Event-time timers.

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Op {
    Register(i64),
    Delete(i64),
}

type Ev = (String, i64, Op);

/// Registers/deletes event-time timers as the input says; every firing timer `t < 1000`
/// registers a follow-up at `t + 1000`. Emits `(key, timer timestamp)` per firing.
#[derive(Clone)]
struct EventTimers;

impl KeyedProcessFunction<String, Ev, (String, i64)> for EventTimers {
    fn process_element(
        &mut self,
        v: Ev,
        ctx: &mut KeyedContext<'_, String>,
        _out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        assert_eq!(ctx.timestamp(), Some(v.1));
        assert!(ctx.timer_service().current_watermark() < v.1);
        match v.2 {
            Op::Register(t) => ctx.timer_service().register_event_time_timer(t),
            Op::Delete(t) => ctx.timer_service().delete_event_time_timer(t),
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        t: i64,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        assert_eq!(ctx.time_domain(), Some(TimeDomain::EventTime));
        assert_eq!(ctx.timestamp(), Some(t));
        assert!(ctx.timer_service().current_watermark() >= t);
        if t < 1000 {
            ctx.timer_service().register_event_time_timer(t + 1000);
        }
        out.collect((ctx.current_key().clone(), t));
        Ok(())
    }
}

#[test]
fn event_time_timers_fire_once_in_order_and_respect_deletes() {
    let ev = |k: &str, ts: i64, op: Op| (k.to_string(), ts, op);
    let input = vec![
        ev("a", 1, Op::Register(100)),
        ev("b", 1, Op::Register(60)),
        ev("a", 2, Op::Register(50)),
        ev("a", 3, Op::Register(100)), // duplicate
        ev("a", 4, Op::Register(70)),
        ev("a", 5, Op::Delete(70)),
        ev("a", 6, Op::Register(200)),
        ev("a", 7, Op::Register(200)), // duplicate
        ev("b", 8, Op::Register(60)),  // duplicate
        ev("b", 9, Op::Register(300)),
        ev("b", 10, Op::Delete(300)),
        ev("b", 11, Op::Register(300)), // registered again after the delete
        ev("c", 12, Op::Register(400)),
        ev("c", 13, Op::Delete(400)),
        ev("d", 14, Op::Delete(999)), // deleting what was never registered
    ];
    for p in [1, 2] {
        let env = env(p);
        let out = env
            .from_collection(input.clone())
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_monotonous_timestamps()
                    .with_timestamp_assigner(|e: &Ev, _| e.1),
            )
            // Chained to the source: one path per key keeps registers and deletes in order.
            .set_parallelism(1)
            .key_by(|e: &Ev| e.0.clone())
            .process(EventTimers)
            .execute_and_collect("event timers")
            .unwrap();
        let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (k, t) in out {
            per_key.entry(k).or_default().push(t);
        }
        let expected: BTreeMap<String, Vec<i64>> = [
            ("a".to_string(), vec![50, 100, 200, 1050, 1100, 1200]),
            ("b".to_string(), vec![60, 300, 1060, 1300]),
        ]
        .into_iter()
        .collect();
        assert_eq!(per_key, expected, "parallelism {p}");
    }
}

/// Emits, per record, the timestamp the function saw, to check timers' output timestamps too.
#[derive(Clone)]
struct TimerOutputTimestamp;

impl KeyedProcessFunction<i64, i64, (i64, Option<i64>)> for TimerOutputTimestamp {
    fn process_element(
        &mut self,
        v: i64,
        ctx: &mut KeyedContext<'_, i64>,
        _out: &mut Collector<'_, (i64, Option<i64>)>,
    ) -> FunctionResult {
        ctx.timer_service().register_event_time_timer(v * 10);
        Ok(())
    }
    fn on_timer(
        &mut self,
        t: i64,
        _ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (i64, Option<i64>)>,
    ) -> FunctionResult {
        out.collect((t, None));
        Ok(())
    }
}

#[test]
fn timer_output_carries_the_timer_timestamp() {
    let env = env(2);
    let out = env
        .from_collection((1..=20i64).collect())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|v: &i64, _| *v),
        )
        .key_by(|v: &i64| *v % 3)
        .process(TimerOutputTimestamp)
        .process_fn(
            |v: (i64, Option<i64>),
             ctx: &mut ProcessContext<'_>,
             out: &mut Collector<'_, (i64, Option<i64>)>| {
                out.collect((v.0, ctx.timestamp()));
                Ok(())
            },
        )
        .execute_and_collect("timer timestamps")
        .unwrap();
    let mut out = out;
    out.sort();
    let expected: Vec<(i64, Option<i64>)> = (1..=20).map(|v| (v * 10, Some(v * 10))).collect();
    assert_eq!(out, expected);
}

// ---------------------------------------------------------------------------------------------
// Processing-time timers and TTL need a job that runs for a while: a source of `n` records
// whose map sleeps 1 ms per record, with small batches that are sent right away.

fn slow_keyed_input(env: &StreamExecutionEnvironment, n: i64) -> KeyedStream<i64, u8> {
    env.set_config("taskmanager.memory.segment-size", "1kb")
        .unwrap();
    env.set_buffer_timeout(Some(Duration::ZERO));
    env.from_sequence(1, n)
        .set_parallelism(1)
        .map(|v: i64| {
            std::thread::sleep(Duration::from_millis(1));
            v
        })
        .set_parallelism(1)
        .key_by(|_: &i64| 0u8)
}

/// On the first record registers a processing-time timer 50 ms ahead (three times, plus one it
/// deletes); emits `("fired", records seen so far)` when it fires and `("records", n)` per record.
#[derive(Clone, Default)]
struct ProcessingTimer {
    seen: Option<ValueState<i64>>,
    registered: Option<ValueState<i64>>,
}

impl KeyedProcessFunction<u8, i64, (String, i64)> for ProcessingTimer {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, u8>) -> FunctionResult {
        self.seen = Some(ctx.get_state(&ValueStateDescriptor::new("seen"))?);
        self.registered = Some(ctx.get_state(&ValueStateDescriptor::new("registered"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        _v: i64,
        ctx: &mut KeyedContext<'_, u8>,
        out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        let seen = self.seen.unwrap();
        let n = seen.value(ctx)?.unwrap_or(0) + 1;
        seen.update(ctx, n)?;
        if n == 1 {
            let mut ts = ctx.timer_service();
            let t = ts.current_processing_time() + 50;
            ts.register_processing_time_timer(t);
            ts.register_processing_time_timer(t);
            ts.register_processing_time_timer(t + 1);
            ts.delete_processing_time_timer(t + 1);
            self.registered.unwrap().update(ctx, t)?;
        }
        out.collect(("records".into(), n));
        Ok(())
    }
    fn on_timer(
        &mut self,
        t: i64,
        ctx: &mut KeyedContext<'_, u8>,
        out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        assert_eq!(ctx.time_domain(), Some(TimeDomain::ProcessingTime));
        assert_eq!(Some(t), self.registered.unwrap().value(ctx)?);
        assert!(ctx.timer_service().current_processing_time() >= t);
        out.collect(("fired".into(), self.seen.unwrap().value(ctx)?.unwrap_or(0)));
        Ok(())
    }
}

#[test]
fn processing_time_timer_fires_once() {
    let env = env(1);
    let out = slow_keyed_input(&env, 600)
        .process(ProcessingTimer::default())
        .execute_and_collect("processing timer")
        .unwrap();
    let fired: Vec<i64> = out.iter().filter(|o| o.0 == "fired").map(|o| o.1).collect();
    assert_eq!(fired.len(), 1, "exactly one firing: {fired:?}");
    assert!(
        fired[0] >= 1 && fired[0] < 600,
        "fired while input was running: {fired:?}"
    );
    assert_eq!(out.iter().filter(|o| o.0 == "records").count(), 600);
}

/// Writes a TTL'd and a plain value on the first record; a processing-time timer 100 ms later
/// reads both: the TTL'd one (20 ms) has expired, the plain one has not.
#[derive(Clone, Default)]
struct TtlCheck {
    ttl: Option<ValueState<i64>>,
    plain: Option<ValueState<i64>>,
}

impl KeyedProcessFunction<u8, i64, (Option<i64>, Option<i64>)> for TtlCheck {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, u8>) -> FunctionResult {
        let cfg = StateTtlConfig::new_builder(Duration::from_millis(20)).build();
        self.ttl = Some(ctx.get_state(&ValueStateDescriptor::new("ttl").with_time_to_live(cfg))?);
        self.plain = Some(ctx.get_state(&ValueStateDescriptor::new("plain"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: i64,
        ctx: &mut KeyedContext<'_, u8>,
        _out: &mut Collector<'_, (Option<i64>, Option<i64>)>,
    ) -> FunctionResult {
        if v == 1 {
            let (ttl, plain) = (self.ttl.unwrap(), self.plain.unwrap());
            ttl.update(ctx, 42)?;
            plain.update(ctx, 42)?;
            assert_eq!(ttl.value(ctx)?, Some(42), "fresh TTL state is visible");
            let t = ctx.timer_service().current_processing_time() + 100;
            ctx.timer_service().register_processing_time_timer(t);
        }
        Ok(())
    }
    fn on_timer(
        &mut self,
        _t: i64,
        ctx: &mut KeyedContext<'_, u8>,
        out: &mut Collector<'_, (Option<i64>, Option<i64>)>,
    ) -> FunctionResult {
        out.collect((
            self.ttl.unwrap().value(ctx)?,
            self.plain.unwrap().value(ctx)?,
        ));
        Ok(())
    }
}

#[test]
fn ttl_state_expires() {
    let env = env(1);
    let out = slow_keyed_input(&env, 600)
        .process(TtlCheck::default())
        .execute_and_collect("ttl")
        .unwrap();
    assert_eq!(out, vec![(None, Some(42))]);
}

// ---------------------------------------------------------------------------------------------
// Watermarks from parallel producers: the operator's watermark is the minimum over its input
// channels, so no record is late and no timer fires early.

#[derive(Clone, Default)]
struct NoLateData {
    fired_up_to: Option<ValueState<i64>>,
}

impl KeyedProcessFunction<i64, i64, (i64, i64)> for NoLateData {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, i64>) -> FunctionResult {
        self.fired_up_to = Some(ctx.get_state(&ValueStateDescriptor::new("fired"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: i64,
        ctx: &mut KeyedContext<'_, i64>,
        _out: &mut Collector<'_, (i64, i64)>,
    ) -> FunctionResult {
        let ts = ctx.timestamp().ok_or("record without timestamp")?;
        let wm = ctx.timer_service().current_watermark();
        if ts <= wm {
            return Err(
                format!("record {v} with timestamp {ts} is behind the watermark {wm}").into(),
            );
        }
        if let Some(f) = self.fired_up_to.unwrap().value(ctx)? {
            if ts <= f {
                return Err(format!("record {v} arrived after its key's timer {f} fired").into());
            }
        }
        ctx.timer_service().register_event_time_timer(ts + 3);
        Ok(())
    }
    fn on_timer(
        &mut self,
        t: i64,
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (i64, i64)>,
    ) -> FunctionResult {
        let f = self.fired_up_to.unwrap();
        if let Some(prev) = f.value(ctx)? {
            if t <= prev {
                return Err(format!("timer {t} fired after timer {prev}").into());
            }
        }
        f.update(ctx, t)?;
        out.collect((*ctx.current_key(), t));
        Ok(())
    }
}

#[test]
fn watermark_is_the_minimum_over_parallel_inputs() {
    const N: i64 = 20_000;
    let env = env(3);
    env.set_config("taskmanager.memory.segment-size", "1kb")
        .unwrap();
    let mut out = env
        .from_sequence(1, N)
        .set_parallelism(2)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|v: &i64, _| *v)
                .with_auto_watermark_interval(Duration::from_millis(1)),
        )
        .set_parallelism(2)
        .key_by(|v: &i64| *v % 7)
        .process(NoLateData::default())
        .execute_and_collect("watermark valve")
        .unwrap();
    out.sort();
    let mut expected: Vec<(i64, i64)> = (1..=N).map(|v| (v % 7, v + 3)).collect();
    expected.sort();
    assert_eq!(out, expected);
}

// ---------------------------------------------------------------------------------------------
// Timers of a KeyedCoProcessFunction are shared by both inputs.

#[derive(Clone)]
struct CoTimers;

impl KeyedCoProcessFunction<String, (String, i64), (String, i64), (String, i64)> for CoTimers {
    fn process_element1(
        &mut self,
        v: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        _out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        ctx.timer_service().register_event_time_timer(v.1 * 10);
        Ok(())
    }
    fn process_element2(
        &mut self,
        v: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        _out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        // The same (key, time) as the first input registers, plus one to delete.
        ctx.timer_service().register_event_time_timer(v.1 * 10);
        ctx.timer_service().register_event_time_timer(v.1 * 10 + 5);
        ctx.timer_service().delete_event_time_timer(v.1 * 10 + 5);
        Ok(())
    }
    fn on_timer(
        &mut self,
        t: i64,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        assert_eq!(ctx.time_domain(), Some(TimeDomain::EventTime));
        out.collect((ctx.current_key().clone(), t));
        Ok(())
    }
}

#[test]
fn keyed_co_process_timers_are_shared_per_key() {
    let env = env(2);
    let records: Vec<(String, i64)> = (1..=30).map(|i| (format!("k{}", i % 3), i)).collect();
    let strategy = || {
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|t: &(String, i64), _| t.1)
    };
    let a = env
        .from_collection(records.clone())
        .assign_timestamps_and_watermarks(strategy());
    let b = env
        .from_collection(records.clone())
        .assign_timestamps_and_watermarks(strategy());
    let out = a
        .connect(&b)
        .key_by(
            |t: &(String, i64)| t.0.clone(),
            |t: &(String, i64)| t.0.clone(),
        )
        .process(CoTimers)
        .execute_and_collect("co timers")
        .unwrap();
    let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (k, t) in out {
        per_key.entry(k).or_default().push(t);
    }
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (k, i) in records {
        expected.entry(k).or_default().push(i * 10);
    }
    assert_eq!(per_key, expected);
}

/// `key_by_ref` (borrowed key, cloned into the previous current key's buffer) gives the same
/// results as `key_by` for keys of changing lengths, in a rolling reduce and in a keyed
/// process function's state, at p=2.
#[test]
fn key_by_ref_matches_key_by() {
    let words: Vec<(String, i64)> = (0..2000)
        .map(|i: i64| {
            // Lengths 1..=40 in an irregular order, so a key is cloned into longer and shorter
            // previous keys.
            let len = ((i * 7919) % 40 + 1) as usize;
            let c = char::from(b'a' + (i % 13) as u8);
            (c.to_string().repeat(len), i)
        })
        .collect();
    let keyed = |by_ref: bool| {
        let s = env(2).from_collection(words.clone());
        if by_ref {
            s.key_by_ref(|t: &(String, i64)| &t.0)
        } else {
            s.key_by(|t: &(String, i64)| t.0.clone())
        }
    };
    let run = |by_ref: bool| {
        let mut sums = keyed(by_ref)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .execute_and_collect("reduce")
            .unwrap();
        sums.sort();
        let mut values = keyed(by_ref)
            .process(ValueJob::default())
            .execute_and_collect("value state")
            .unwrap();
        values.sort();
        (sums, values)
    };
    let (by_ref, by_value) = (run(true), run(false));
    assert_eq!(by_ref, by_value);
    // 13 letters x 40 lengths = up to 520 keys, each with its own running sum.
    let keys: std::collections::BTreeSet<_> = by_ref.0.iter().map(|t| t.0.clone()).collect();
    assert!(keys.len() > 400, "{} keys", keys.len());
    let totals = last_per_key(&by_ref.0);
    let expected: i64 = (0..2000).sum();
    assert_eq!(totals.values().sum::<i64>(), expected);
}
