//! Integration tests of the runtime's guarantees: results independent of parallelism, per-channel
//! order, bounded memory under backpressure, failure reporting, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::core::StreamRecord;
use eddy::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

mod common;

fn env(p: usize) -> StreamExecutionEnvironment {
    let env = common::environment();
    env.set_parallelism(p);
    env
}

/// Deterministic pseudo-random text: `n` lines of 1..=8 words from a 50-word vocabulary.
fn generated_lines(n: usize) -> Vec<String> {
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|_| {
            let words = 1 + next() % 8;
            (0..words)
                .map(|_| format!("w{}", next() % 50))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn expected_counts(lines: &[String]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for l in lines {
        for w in l.split_whitespace() {
            *m.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    m
}

/// The last (= largest, counts only grow) count per word of a rolling count.
fn final_counts(out: Vec<(String, i64)>) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for (w, c) in out {
        let e = m.entry(w).or_insert(0);
        *e = c.max(*e);
    }
    m
}

fn word_count(p: usize, lines: Vec<String>) -> Vec<(String, i64)> {
    let env = env(p);
    env.from_collection(lines)
        .rebalance()
        .flat_map(|line: String, out: &mut Collector<'_, (String, i64)>| {
            for w in line.split_whitespace() {
                out.collect((w.to_string(), 1));
            }
        })
        .key_by(|t: &(String, i64)| t.0.clone())
        .reduce(|a: (String, i64), b: (String, i64)| (a.0, a.1 + b.1))
        .execute_and_collect("word count")
        .unwrap()
}

#[test]
fn word_count_is_the_same_at_every_parallelism() {
    let lines = generated_lines(3000);
    let expected = expected_counts(&lines);
    let total: i64 = expected.values().sum();
    for p in [1, 2, 4] {
        let out = word_count(p, lines.clone());
        assert_eq!(
            out.len() as i64,
            total,
            "one update per word at parallelism {p}"
        );
        assert_eq!(final_counts(out), expected, "parallelism {p}");
    }
}

/// Counts per key in a ValueState and keeps the largest value seen in a second one; emits
/// `(key, count, max)` per record.
#[derive(Clone, Default)]
struct CountAndMax {
    count: Option<ValueState<i64>>,
    max: Option<ValueState<i64>>,
}

impl KeyedProcessFunction<i64, (i64, i64), (i64, i64, i64)> for CountAndMax {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, i64>) -> FunctionResult {
        self.count = Some(ctx.get_state(&ValueStateDescriptor::new("count"))?);
        self.max = Some(ctx.get_state(&ValueStateDescriptor::new("max"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (i64, i64),
        ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, (i64, i64, i64)>,
    ) -> FunctionResult {
        let (count, max) = (self.count.unwrap(), self.max.unwrap());
        let c = count.value(ctx)?.unwrap_or(0) + 1;
        count.update(ctx, c)?;
        let m = max.value(ctx)?.map_or(v.1, |m: i64| m.max(v.1));
        max.update(ctx, m)?;
        out.collect((*ctx.current_key(), c, m));
        Ok(())
    }
}

fn keyed_process_job(p: usize) -> BTreeMap<i64, (i64, i64)> {
    let env = env(p);
    let out = env
        .from_sequence(1, 5000)
        .map(|v: i64| (v % 37, (v * 7919) % 1000))
        .key_by(|t: &(i64, i64)| t.0)
        .process(CountAndMax::default())
        .execute_and_collect("keyed process")
        .unwrap();
    assert_eq!(out.len(), 5000);
    let mut m: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (k, c, mx) in out {
        let e = m.entry(k).or_insert((0, i64::MIN));
        *e = (e.0.max(c), e.1.max(mx));
    }
    m
}

#[test]
fn keyed_process_is_the_same_at_every_parallelism() {
    let mut expected: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for v in 1..=5000i64 {
        let e = expected.entry(v % 37).or_insert((0, i64::MIN));
        *e = (e.0 + 1, e.1.max((v * 7919) % 1000));
    }
    for p in [1, 2, 4] {
        assert_eq!(keyed_process_job(p), expected, "parallelism {p}");
    }
}

/// Fails the job if a key's sequence numbers do not strictly increase.
#[derive(Clone, Default)]
struct CheckOrder {
    last: Option<ValueState<i64>>,
}

impl KeyedProcessFunction<u32, (u32, i64), (u32, i64)> for CheckOrder {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, u32>) -> FunctionResult {
        self.last = Some(ctx.get_state(&ValueStateDescriptor::new("last"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (u32, i64),
        ctx: &mut KeyedContext<'_, u32>,
        out: &mut Collector<'_, (u32, i64)>,
    ) -> FunctionResult {
        let last = self.last.unwrap();
        if let Some(prev) = last.value(ctx)? {
            if v.1 <= prev {
                return Err(format!("key {}: seq {} after {prev}", v.0, v.1).into());
            }
        }
        last.update(ctx, v.1)?;
        out.collect(v);
        Ok(())
    }
}

#[test]
fn key_by_keeps_per_key_order() {
    let env = env(4);
    env.set_buffer_timeout(Some(std::time::Duration::ZERO));
    let input: Vec<(u32, i64)> = (0..20_000i64).map(|i| ((i * 31 % 13) as u32, i)).collect();
    let out = env
        .from_collection(input)
        .key_by(|t: &(u32, i64)| t.0)
        .process(CheckOrder::default())
        .execute_and_collect("per key order")
        .unwrap();
    assert_eq!(out.len(), 20_000);
    // The chained collect sink saw each key's records in order too.
    let mut last: HashMap<u32, i64> = HashMap::new();
    for (k, s) in out {
        if let Some(p) = last.insert(k, s) {
            assert!(s > p, "key {k}: {s} after {p}");
        }
    }
    assert_eq!(last.len(), 13);
}

/// Tags every record with the subtask that saw it.
#[derive(Clone, Default)]
struct TagSubtask {
    idx: usize,
}

impl RichMapFunction<i64, (usize, i64)> for TagSubtask {
    fn open(&mut self, ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        self.idx = ctx.index_of_this_subtask();
        Ok(())
    }
    fn map(&mut self, v: i64) -> (usize, i64) {
        (self.idx, v)
    }
}

#[test]
fn rebalance_keeps_order_per_channel() {
    let env = env(3);
    env.set_config("taskmanager.memory.segment-size", "1kb")
        .unwrap();
    let out = env
        .from_collection((0..30_000i64).collect())
        .rebalance()
        .map_rich(TagSubtask::default())
        .execute_and_collect("rebalance order")
        .unwrap();
    assert_eq!(out.len(), 30_000);
    let mut last: HashMap<usize, i64> = HashMap::new();
    for (s, v) in &out {
        if let Some(p) = last.insert(*s, *v) {
            assert!(*v > p, "subtask {s}: {v} after {p}");
        }
    }
    assert_eq!(last.len(), 3);
    let mut all: Vec<i64> = out.into_iter().map(|(_, v)| v).collect();
    all.sort();
    assert_eq!(all, (0..30_000).collect::<Vec<_>>());
}

static PRODUCED: AtomicU64 = AtomicU64::new(0);
static CONSUMED: AtomicU64 = AtomicU64::new(0);
static MAX_LAG: AtomicU64 = AtomicU64::new(0);

#[test]
fn backpressure_bounds_records_in_flight() {
    const N: u64 = 300_000;
    let env = env(1);
    env.set_config("taskmanager.network.memory.buffers-per-channel", "2")
        .unwrap();
    env.set_config("taskmanager.memory.segment-size", "4kb")
        .unwrap();
    env.from_sequence(1, N as i64)
        .map(|v: i64| {
            PRODUCED.fetch_add(1, Ordering::SeqCst);
            v
        })
        .rebalance()
        .map(|v: i64| {
            // Read `produced` before counting this record as consumed: the lag can only be
            // over-estimated.
            let produced = PRODUCED.load(Ordering::SeqCst);
            let consumed = CONSUMED.fetch_add(1, Ordering::SeqCst) + 1;
            MAX_LAG.fetch_max(produced.saturating_sub(consumed), Ordering::SeqCst);
            if consumed.is_multiple_of(5000) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            v
        })
        .name("Slow Sink")
        .sink_to_discard();
    let g = env.get_job_graph("backpressure").unwrap();
    assert_eq!(
        g.vertices.len(),
        2,
        "source and sink must be separate tasks"
    );
    env.execute("backpressure").unwrap();

    assert_eq!(PRODUCED.load(Ordering::SeqCst), N);
    assert_eq!(CONSUMED.load(Ordering::SeqCst), N, "every record arrived");
    // Records in flight: the source's batch, the writer's partial buffer, the channel's credit
    // (buffers-per-channel full buffers), the buffer the consumer is working on and the one the
    // producer holds while it waits for credit; doubled for slack.
    let record = size_of::<StreamRecord<i64>>();
    let per_buffer = (4096 / record).clamp(1, 1 << 16) as u64;
    let source_batch = (4096 / record).clamp(64, 4096) as u64;
    let bound = 2 * (source_batch + (2 + 3) * per_buffer);
    let lag = MAX_LAG.load(Ordering::SeqCst);
    assert!(bound < 10_000, "bound {bound} should be small");
    assert!(
        lag <= bound,
        "max records in flight {lag} exceeds the bound {bound} from the config"
    );
}

#[test]
fn panicking_map_fails_the_job_naming_operator_and_subtask() {
    let env = env(2);
    env.from_sequence(1, 10_000)
        .map(|v: i64| v + 1)
        .rebalance()
        .map(|v: i64| {
            if v == 777 {
                panic!("boom at {v}");
            }
            v
        })
        .name("Exploder")
        .set_parallelism(1)
        .rebalance()
        .map(|v: i64| v * 2)
        .sink_to_discard();
    let err = env.execute("explode").unwrap_err().to_string();
    assert!(err.contains("Exploder"), "{err}");
    assert!(err.contains("(subtask 1/1)"), "{err}");
    assert!(err.contains("boom at 777"), "{err}");
}

#[test]
fn panicking_map_at_parallelism_two_names_its_subtask() {
    let env = env(2);
    env.from_sequence(0, 9_999)
        .map(|v: i64| {
            if v == 4321 {
                panic!("bad value {v}");
            }
            v
        })
        .name("Exploder")
        .sink_to_discard();
    let err = env.execute("explode p2").unwrap_err().to_string();
    assert!(err.contains("Exploder"), "{err}");
    assert!(
        err.contains("(subtask 1/2)") || err.contains("(subtask 2/2)"),
        "{err}"
    );
    assert!(err.contains("bad value 4321"), "{err}");
}

#[derive(Clone)]
struct FailOn(i64);

impl KeyedProcessFunction<i64, i64, i64> for FailOn {
    fn process_element(
        &mut self,
        v: i64,
        _ctx: &mut KeyedContext<'_, i64>,
        out: &mut Collector<'_, i64>,
    ) -> FunctionResult {
        if v == self.0 {
            return Err(format!("refusing {v}").into());
        }
        out.collect(v);
        Ok(())
    }
}

#[test]
fn keyed_process_error_fails_the_job() {
    let env = env(2);
    env.from_sequence(1, 50_000)
        .key_by(|v: &i64| *v % 10)
        .process(FailOn(12_345))
        .name("Validator")
        .sink_to_discard();
    let err = env.execute("keyed failure").unwrap_err().to_string();
    assert!(err.contains("Validator"), "{err}");
    assert!(
        err.contains("(subtask 1/2)") || err.contains("(subtask 2/2)"),
        "{err}"
    );
    assert!(err.contains("refusing 12345"), "{err}");
}

#[test]
fn failure_cancels_a_long_running_job() {
    // Without cancellation the source would produce all of its records; the job must end
    // right after the failure instead. The count checks the source did stop early.
    const TOTAL: u64 = 20_000_000;
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let env = env(2);
    env.from_sequence(1, TOTAL as i64)
        .map(|v: i64| {
            SEEN.fetch_add(1, Ordering::Relaxed);
            v
        })
        .rebalance()
        .map(|v: i64| {
            if v == 5000 {
                panic!("stop here");
            }
            v
        })
        .name("Stopper")
        .sink_to_discard();
    let err = env.execute("cancel").unwrap_err().to_string();
    assert!(
        err.contains("Stopper") && err.contains("stop here"),
        "{err}"
    );
    let seen = SEEN.load(Ordering::Relaxed);
    assert!(
        seen < TOTAL,
        "the source was not cancelled: it produced all {seen} records"
    );
}

#[test]
fn missing_input_path_fails_before_running() {
    static RAN: AtomicU64 = AtomicU64::new(0);
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let env = env(2);
    env.from_collection(vec![1i64])
        .map(|v: i64| {
            RAN.fetch_add(1, Ordering::SeqCst);
            v
        })
        .sink_to_discard();
    env.read_text_file(missing.clone()).sink_to_discard();
    let err = env.execute("missing").unwrap_err();
    assert!(
        matches!(err, JobExecutionError::Initialization { .. }),
        "expected an initialization error, got {err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert_eq!(RAN.load(Ordering::SeqCst), 0, "no task ran");
}

#[test]
fn invalid_utf8_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("bad.txt");
    let mut bytes = b"good line\nanother\n".to_vec();
    bytes.extend_from_slice(&[b'x', 0xff, 0xfe, b'\n']);
    bytes.extend_from_slice(b"after\n");
    std::fs::write(&f, bytes).unwrap();
    let env = env(1);
    let err = env
        .read_text_file(f.clone())
        .execute_and_collect("bad utf8")
        .unwrap_err()
        .to_string();
    let path = f.display().to_string();
    assert!(err.contains(&format!("{path}:3")), "{err}");
}

#[test]
fn invalid_program_is_rejected_before_running() {
    let env = env(2);
    env.from_collection(vec![1i64])
        .set_parallelism(2)
        .sink_to_discard();
    let err = env.execute("non-parallel").unwrap_err();
    assert!(matches!(err, JobExecutionError::InvalidJob(_)), "{err:?}");
    assert!(err.to_string().contains("Collection Source"), "{err}");
}
