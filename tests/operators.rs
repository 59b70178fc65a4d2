//! Integration tests of every DataStream operator, partitioner and the file/print sinks, run on
//! the embedded MiniCluster.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

mod common;

fn env(p: usize) -> StreamExecutionEnvironment {
    let env = common::environment();
    env.set_parallelism(p);
    env
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Tags every record with the index of the subtask that saw it (set in `open`).
#[derive(Clone)]
struct TagSubtask {
    idx: usize,
    parallelism: usize,
}

impl TagSubtask {
    fn new() -> Self {
        TagSubtask {
            idx: usize::MAX,
            parallelism: 0,
        }
    }
}

impl<T: Send + 'static> RichMapFunction<T, (usize, T)> for TagSubtask {
    fn open(&mut self, ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        self.idx = ctx.index_of_this_subtask();
        self.parallelism = ctx.number_of_parallel_subtasks();
        assert!(self.idx < self.parallelism);
        Ok(())
    }
    fn map(&mut self, v: T) -> (usize, T) {
        assert_ne!(self.idx, usize::MAX, "open was not called before map");
        (self.idx, v)
    }
}

/// Groups `(subtask, value)` pairs by subtask.
fn by_subtask<T: Ord>(v: Vec<(usize, T)>) -> BTreeMap<usize, Vec<T>> {
    let mut m: BTreeMap<usize, Vec<T>> = BTreeMap::new();
    for (s, x) in v {
        m.entry(s).or_default().push(x);
    }
    m
}

#[test]
fn map_filter_flat_map() {
    let env = env(2);
    let out = env
        .from_collection((1..=10i64).collect())
        .map(|x: i64| x * 10)
        .filter(|x: &i64| *x % 20 == 0)
        .flat_map(|x: i64, out: &mut Collector<'_, i64>| {
            out.collect(x);
            out.collect(-x);
        })
        .execute_and_collect("map filter flat_map")
        .unwrap();
    let expected: Vec<i64> = [20, 40, 60, 80, 100]
        .iter()
        .flat_map(|x| [*x, -*x])
        .collect();
    assert_eq!(sorted(out), sorted(expected));
}

#[test]
fn map_keeps_order_at_parallelism_one() {
    let env = env(1);
    let out = env
        .from_collection(vec!["b".to_string(), "a".to_string(), "c".to_string()])
        .map(|s: String| s.to_uppercase())
        .execute_and_collect("order")
        .unwrap();
    assert_eq!(out, vec!["B", "A", "C"]);
}

#[derive(Clone)]
struct SplitEvenOdd {
    odd: OutputTag<String>,
}

impl ProcessFunction<i64, i64> for SplitEvenOdd {
    fn process_element(
        &mut self,
        v: i64,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<'_, i64>,
    ) -> FunctionResult {
        if v % 2 == 0 {
            out.collect(v);
        } else {
            ctx.output(&self.odd, format!("odd {v}"));
        }
        Ok(())
    }
}

#[test]
fn process_with_side_output() {
    let env = env(2);
    let odd = OutputTag::<String>::new("odd");
    let main = env
        .from_sequence(1, 20)
        .process(SplitEvenOdd { odd: odd.clone() });
    let side = main.get_side_output(&odd).collect();
    let evens = main.collect();
    env.execute("side output").unwrap();
    assert_eq!(
        sorted(evens.take()),
        (1..=20).filter(|x| x % 2 == 0).collect::<Vec<i64>>()
    );
    assert_eq!(
        sorted(side.take()),
        sorted(
            (1..=20)
                .filter(|x| x % 2 == 1)
                .map(|x| format!("odd {x}"))
                .collect::<Vec<_>>()
        )
    );
}

#[test]
fn side_output_read_with_another_type_fails_the_job() {
    let env = env(1);
    let main = env
        .from_sequence(1, 4)
        .process(SplitEvenOdd {
            odd: OutputTag::<String>::new("odd"),
        })
        .name("Splitter");
    // Same tag id, different record type: records must not vanish silently.
    let _side = main
        .get_side_output(&OutputTag::<i64>::new("odd"))
        .collect();
    main.sink_to_discard();
    let err = env
        .execute("side output type mismatch")
        .unwrap_err()
        .to_string();
    assert!(err.contains("Splitter"), "{err}");
    assert!(err.contains("side output 'odd'"), "{err}");
}

#[test]
fn process_fn_closure_sees_no_timestamp_without_assigner() {
    let env = env(1);
    let out = env
        .from_collection(vec![1i64, 2, 3])
        .process_fn(
            |v: i64, ctx: &mut ProcessContext<'_>, out: &mut Collector<'_, (i64, bool)>| {
                out.collect((v, ctx.timestamp().is_some()));
                Ok(())
            },
        )
        .execute_and_collect("process_fn")
        .unwrap();
    assert_eq!(out, vec![(1, false), (2, false), (3, false)]);
}

/// The per-key output sequences (order within a key is defined; between keys it is not).
fn per_key<T: Clone>(out: &[T], key: impl Fn(&T) -> String) -> BTreeMap<String, Vec<T>> {
    let mut m: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for r in out {
        m.entry(key(r)).or_default().push(r.clone());
    }
    m
}

type Rec = (String, i64, i64);

fn agg_input() -> Vec<Rec> {
    vec![
        ("a".into(), 1, 10),
        ("b".into(), 1, 7),
        ("a".into(), 2, 20),
        ("b".into(), 2, 7),
        ("a".into(), 3, 5),
        ("b".into(), 3, 9),
        ("b".into(), 4, 9),
        ("b".into(), 5, 3),
    ]
}

fn run_agg(
    name: &str,
    f: impl FnOnce(KeyedStream<Rec, String>) -> SingleOutputStreamOperator<Rec>,
) -> BTreeMap<String, Vec<Rec>> {
    let env = env(2);
    let keyed = env
        .from_collection(agg_input())
        .key_by(|t: &Rec| t.0.clone());
    let out = f(keyed).execute_and_collect(name).unwrap();
    assert_eq!(out.len(), agg_input().len(), "one output per input record");
    per_key(&out, |t| t.0.clone())
}

fn recs(key: &str, v: &[(i64, i64)]) -> Vec<Rec> {
    v.iter().map(|(a, b)| (key.to_string(), *a, *b)).collect()
}

#[test]
fn keyed_reduce_is_rolling() {
    let m = run_agg("reduce", |k| {
        k.reduce(|a: Rec, b: Rec| (a.0, a.1 * 10 + b.1, a.2 + b.2))
    });
    assert_eq!(m["a"], recs("a", &[(1, 10), (12, 30), (123, 35)]));
    assert_eq!(
        m["b"],
        recs("b", &[(1, 7), (12, 14), (123, 23), (1234, 32), (12345, 35)])
    );
}

#[test]
fn sum_keeps_first_record_fields() {
    let m = run_agg("sum", |k| k.sum(|t: &mut Rec| &mut t.2));
    assert_eq!(m["a"], recs("a", &[(1, 10), (1, 30), (1, 35)]));
    assert_eq!(
        m["b"],
        recs("b", &[(1, 7), (1, 14), (1, 23), (1, 32), (1, 35)])
    );
}

#[test]
fn min_and_max_keep_first_record_fields() {
    let m = run_agg("min", |k| k.min(|t: &mut Rec| &mut t.2));
    assert_eq!(m["a"], recs("a", &[(1, 10), (1, 10), (1, 5)]));
    assert_eq!(m["b"], recs("b", &[(1, 7), (1, 7), (1, 7), (1, 7), (1, 3)]));
    let m = run_agg("max", |k| k.max(|t: &mut Rec| &mut t.2));
    assert_eq!(m["a"], recs("a", &[(1, 10), (1, 20), (1, 20)]));
    assert_eq!(m["b"], recs("b", &[(1, 7), (1, 7), (1, 9), (1, 9), (1, 9)]));
}

#[test]
fn min_by_and_max_by_return_whole_first_record_on_ties() {
    let m = run_agg("min_by", |k| k.min_by(|t: &mut Rec| &mut t.2));
    assert_eq!(m["a"], recs("a", &[(1, 10), (1, 10), (3, 5)]));
    // (b,2,7) ties (b,1,7): the first one stays.
    assert_eq!(m["b"], recs("b", &[(1, 7), (1, 7), (1, 7), (1, 7), (5, 3)]));
    let m = run_agg("max_by", |k| k.max_by(|t: &mut Rec| &mut t.2));
    assert_eq!(m["a"], recs("a", &[(1, 10), (2, 20), (2, 20)]));
    // (b,4,9) ties (b,3,9): the first one stays.
    assert_eq!(m["b"], recs("b", &[(1, 7), (1, 7), (3, 9), (3, 9), (3, 9)]));
}

#[test]
fn union_merges_streams() {
    let env = env(2);
    let a = env.from_collection(vec![1i64, 2, 3]);
    let b = env.from_sequence(10, 12);
    let c = env.from_collection(vec![100i64]).map(|x: i64| x + 1);
    let out = a
        .union(&[&b, &c])
        .map(|x: i64| x * 2)
        .execute_and_collect("union")
        .unwrap();
    assert_eq!(sorted(out), vec![2, 4, 6, 20, 22, 24, 202]);
}

#[test]
fn connect_map_and_flat_map() {
    let env = env(2);
    let nums = env.from_collection(vec![1i64, 2, 3]);
    let words = env.from_collection(vec!["x y".to_string(), "z".to_string()]);
    let mapped = nums
        .connect(&words)
        .map(|n: i64| format!("n{n}"), |w: String| format!("w{w}"))
        .collect();
    let flat = nums
        .connect(&words)
        .flat_map(
            |n: i64, out: &mut Collector<'_, String>| {
                for _ in 0..n {
                    out.collect(format!("n{n}"));
                }
            },
            |w: String, out: &mut Collector<'_, String>| {
                for p in w.split(' ') {
                    out.collect(p.to_string());
                }
            },
        )
        .collect();
    env.execute("connect").unwrap();
    assert_eq!(sorted(mapped.take()), vec!["n1", "n2", "n3", "wx y", "wz"]);
    assert_eq!(
        sorted(flat.take()),
        vec!["n1", "n2", "n2", "n3", "n3", "n3", "x", "y", "z"]
    );
}

#[derive(Clone)]
struct Tagger;

impl CoProcessFunction<i64, String, String> for Tagger {
    fn process_element1(
        &mut self,
        v: i64,
        _: &mut ProcessContext<'_>,
        out: &mut Collector<'_, String>,
    ) -> FunctionResult {
        out.collect(format!("1:{v}"));
        Ok(())
    }
    fn process_element2(
        &mut self,
        v: String,
        _: &mut ProcessContext<'_>,
        out: &mut Collector<'_, String>,
    ) -> FunctionResult {
        out.collect(format!("2:{v}"));
        Ok(())
    }
}

#[test]
fn connect_process() {
    let env = env(3);
    let out = env
        .from_sequence(1, 4)
        .connect(&env.from_collection(vec!["a".to_string(), "b".to_string()]))
        .process(Tagger)
        .execute_and_collect("co-process")
        .unwrap();
    assert_eq!(sorted(out), vec!["1:1", "1:2", "1:3", "1:4", "2:a", "2:b"]);
}

/// Sums both inputs per key in one shared ValueState and emits the running sum.
#[derive(Clone, Default)]
struct SharedSum {
    sum: Option<ValueState<i64>>,
}

impl KeyedCoProcessFunction<String, (String, i64), (String, i64), (String, i64)> for SharedSum {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, String>) -> FunctionResult {
        self.sum = Some(ctx.get_state(&ValueStateDescriptor::new("sum"))?);
        Ok(())
    }
    fn process_element1(
        &mut self,
        v: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        assert_eq!(ctx.current_key(), &v.0);
        let s = self.sum.unwrap();
        let n = s.value(ctx)?.unwrap_or(0) + v.1;
        s.update(ctx, n)?;
        out.collect((v.0, n));
        Ok(())
    }
    fn process_element2(
        &mut self,
        v: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        assert_eq!(ctx.current_key(), &v.0);
        let s = self.sum.unwrap();
        let n = s.value(ctx)?.unwrap_or(0) + v.1 * 1000;
        s.update(ctx, n)?;
        out.collect((v.0, n));
        Ok(())
    }
}

#[test]
fn keyed_connect_shares_state_between_inputs() {
    let env = env(3);
    let keys = ["k0", "k1", "k2", "k3", "k4", "k5", "k6"];
    let first: Vec<(String, i64)> = (0..70).map(|i| (keys[i % 7].to_string(), 1)).collect();
    let second: Vec<(String, i64)> = (0..35).map(|i| (keys[i % 7].to_string(), 2)).collect();
    let a = env.from_collection(first);
    let b = env.from_collection(second);
    let out = a
        .connect(&b)
        .key_by(
            |t: &(String, i64)| t.0.clone(),
            |t: &(String, i64)| t.0.clone(),
        )
        .process(SharedSum::default())
        .execute_and_collect("keyed connect")
        .unwrap();
    assert_eq!(out.len(), 105);
    let mut finals: BTreeMap<String, i64> = BTreeMap::new();
    for (k, n) in out {
        let e = finals.entry(k).or_insert(0);
        *e = (*e).max(n);
    }
    // Each key: 10 records of 1 on the first input, 5 records of 2*1000 on the second.
    let expected: BTreeMap<String, i64> =
        keys.iter().map(|k| (k.to_string(), 10 + 10_000)).collect();
    assert_eq!(finals, expected);
}

#[test]
fn forward_connects_equal_subtasks() {
    let env = env(3);
    let out = env
        .from_sequence(1, 300)
        .map_rich(TagSubtask::new())
        .forward()
        .map_rich(TagSubtask::new())
        .disable_chaining()
        .execute_and_collect("forward")
        .unwrap();
    assert_eq!(out.len(), 300);
    for (down, (up, _)) in &out {
        assert_eq!(down, up, "forward must connect subtask i to subtask i");
    }
    let values = sorted(out.into_iter().map(|(_, (_, v))| v).collect());
    assert_eq!(values, (1..=300).collect::<Vec<i64>>());
}

#[test]
fn rebalance_is_round_robin() {
    let env = env(4);
    let out = env
        .from_collection((0..100i64).collect())
        .rebalance()
        .map_rich(TagSubtask::new())
        .execute_and_collect("rebalance")
        .unwrap();
    let m = by_subtask(out);
    assert_eq!(m.len(), 4);
    for (s, vs) in &m {
        assert_eq!(vs.len(), 25, "subtask {s} got {vs:?}");
    }
    let all = sorted(m.into_values().flatten().collect());
    assert_eq!(all, (0..100).collect::<Vec<i64>>());
}

#[test]
fn rescale_feeds_a_local_subset() {
    let env = env(4);
    let out = env
        .from_sequence(1, 400)
        .set_parallelism(2)
        .map_rich(TagSubtask::new())
        .set_parallelism(2)
        .rescale()
        .map_rich(TagSubtask::new())
        .execute_and_collect("rescale")
        .unwrap();
    assert_eq!(out.len(), 400);
    let mut seen = BTreeMap::<usize, usize>::new();
    for (down, (up, _)) in &out {
        assert_eq!(
            down / 2,
            *up,
            "producer {up} must only feed consumers {{2*{up}, 2*{up}+1}}"
        );
        *seen.entry(*down).or_default() += 1;
    }
    assert_eq!(seen.len(), 4, "every consumer gets records: {seen:?}");
}

#[test]
fn shuffle_delivers_everything_once() {
    let env = env(3);
    let out = env
        .from_collection((0..3000i64).collect())
        .shuffle()
        .map_rich(TagSubtask::new())
        .execute_and_collect("shuffle")
        .unwrap();
    let m = by_subtask(out);
    assert_eq!(m.len(), 3, "every subtask gets records");
    let all = sorted(m.into_values().flatten().collect());
    assert_eq!(all, (0..3000).collect::<Vec<i64>>());
}

#[test]
fn broadcast_sends_every_record_to_every_subtask() {
    let env = env(3);
    let out = env
        .from_collection((1..=10i64).collect())
        .broadcast()
        .map_rich(TagSubtask::new())
        .execute_and_collect("broadcast")
        .unwrap();
    let m = by_subtask(out);
    assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    for (s, vs) in m {
        assert_eq!(sorted(vs), (1..=10).collect::<Vec<i64>>(), "subtask {s}");
    }
}

#[test]
fn partition_custom_routes_by_user_function() {
    let env = env(3);
    let out = env
        .from_collection((0..90i64).collect())
        .partition_custom(|k: &i64, n: usize| (*k as usize) % n, |v: &i64| *v % 3)
        .map_rich(TagSubtask::new())
        .execute_and_collect("custom")
        .unwrap();
    assert_eq!(out.len(), 90);
    for (s, v) in &out {
        assert_eq!(*s as i64, v % 3, "record {v} went to subtask {s}");
    }
}

#[test]
fn partition_custom_out_of_range_fails_the_job() {
    let env = env(2);
    env.from_collection(vec![1i64, 2, 3])
        .partition_custom(|_k: &i64, n: usize| n, |v: &i64| *v)
        .map(|v: i64| v)
        .sink_to_discard();
    let err = env.execute("bad custom").unwrap_err().to_string();
    assert!(
        err.contains("custom partitioner returned channel 2"),
        "{err}"
    );
}

#[test]
fn print_runs() {
    let env = env(2);
    env.from_collection(vec![("print".to_string(), 1i64)])
        .print();
    env.from_sequence(1, 3).print_with_identifier("seq");
    env.from_sequence(1, 2).print_to_err();
    env.execute("print").unwrap();
}

fn read_dir_names(dir: &Path) -> Vec<String> {
    sorted(
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect(),
    )
}

fn all_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for name in read_dir_names(dir) {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    sorted(lines)
}

#[test]
fn write_as_text_one_file_per_subtask() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let env = env(3);
    env.from_sequence(1, 100)
        .map(|v: i64| (format!("k{v}"), v))
        .write_as_text(out.clone());
    env.execute("write").unwrap();
    assert_eq!(read_dir_names(&out), vec!["1", "2", "3"]);
    let expected = sorted(
        (1..=100)
            .map(|v| format!("(\"k{v}\", {v})"))
            .collect::<Vec<_>>(),
    );
    assert_eq!(all_lines(&out), expected);
}

#[test]
fn write_as_text_no_overwrite_fails_on_non_empty_dir_and_overwrite_replaces() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_path_buf();
    std::fs::write(out.join("1"), "stale\n").unwrap();
    std::fs::write(out.join("keep.txt"), "mine\n").unwrap();

    let env = env(2);
    env.from_collection(vec!["x".to_string()])
        .write_as_text(out.clone());
    let err = env.execute("no overwrite").unwrap_err().to_string();
    assert!(err.contains("not empty"), "{err}");
    assert!(err.contains(&out.display().to_string()), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("1")).unwrap(), "stale\n");

    let env2 = common::environment();
    env2.set_parallelism(2);
    env2.from_collection(vec!["a".to_string(), "b".to_string(), "c".to_string()])
        .rebalance()
        .write_as_text_with_mode(out.clone(), WriteMode::Overwrite);
    env2.execute("overwrite").unwrap();
    assert_eq!(read_dir_names(&out), vec!["1", "2", "keep.txt"]);
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "mine\n"
    );
    let mut lines = Vec::new();
    for f in ["1", "2"] {
        lines.extend(
            std::fs::read_to_string(out.join(f))
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    assert_eq!(sorted(lines), vec!["a", "b", "c"]);
}

#[test]
fn read_text_file_reads_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for f in 0..3 {
        let lines: Vec<String> = (0..50).map(|i| format!("file{f} line{i}")).collect();
        // Windows line endings lose their `\r`, as in Flink's TextInputFormat.
        let sep = if f == 1 { "\r\n" } else { "\n" };
        std::fs::write(tmp.path().join(format!("part-{f}")), lines.join(sep) + sep).unwrap();
        expected.extend(lines);
    }
    std::fs::write(tmp.path().join(".hidden"), "ignored\n").unwrap();
    std::fs::write(tmp.path().join("_SUCCESS"), "ignored\n").unwrap();
    for p in [1, 2, 4] {
        let env = env(p);
        let out = env
            .read_text_file(tmp.path())
            .execute_and_collect("read dir")
            .unwrap();
        assert_eq!(sorted(out), sorted(expected.clone()), "parallelism {p}");
    }
}

#[test]
fn read_text_file_reads_one_file_without_trailing_newline() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("in.txt");
    std::fs::write(&f, "one\n\nthree").unwrap();
    let env = env(2);
    let out = env
        .read_text_file(f)
        .execute_and_collect("read file")
        .unwrap();
    assert_eq!(sorted(out), vec!["", "one", "three"]);
}

#[test]
fn rescale_down_merges_local_producers() {
    let env = env(2);
    let out = env
        .from_sequence(1, 400)
        .set_parallelism(4)
        .map_rich(TagSubtask::new())
        .set_parallelism(4)
        .rescale()
        .map_rich(TagSubtask::new())
        .execute_and_collect("rescale down")
        .unwrap();
    assert_eq!(out.len(), 400);
    for (down, (up, _)) in &out {
        assert_eq!(
            up / 2,
            *down,
            "producer {up} must feed only consumer {}",
            up / 2
        );
    }
}

#[test]
fn broadcast_from_parallel_producers() {
    let env = env(3);
    let out = env
        .from_sequence(1, 50)
        .set_parallelism(2)
        .broadcast()
        .map_rich(TagSubtask::new())
        .execute_and_collect("broadcast p2")
        .unwrap();
    let m = by_subtask(out);
    assert_eq!(m.len(), 3);
    for (s, vs) in m {
        assert_eq!(sorted(vs), (1..=50).collect::<Vec<i64>>(), "subtask {s}");
    }
}

#[test]
fn timestamps_travel_with_records() {
    let env = env(2);
    let out = env
        .from_collection((1..=100i64).collect())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|v: &i64, _| v * 1000),
        )
        .map(|v: i64| v + 1)
        .rebalance()
        .process_fn(
            |v: i64, ctx: &mut ProcessContext<'_>, out: &mut Collector<'_, (i64, Option<i64>)>| {
                // The watermark never passes a record that is not late.
                assert!(ctx.current_watermark() < ctx.timestamp().unwrap());
                out.collect((v, ctx.timestamp()));
                Ok(())
            },
        )
        .execute_and_collect("timestamps")
        .unwrap();
    let expected: Vec<(i64, Option<i64>)> = (1..=100).map(|v| (v + 1, Some(v * 1000))).collect();
    assert_eq!(sorted(out), expected);
}

#[test]
fn from_elements_and_from_iter() {
    // Parallelism 1 everywhere, so the collected order is the source order.
    let env = env(1);
    let a = env
        .from_elements(&["x".to_string(), "y".to_string()])
        .collect();
    let b = env.from_iter((0..5).map(|i| i * i)).collect();
    env.execute("elements").unwrap();
    assert_eq!(a.take(), vec!["x", "y"]);
    assert_eq!(b.take(), vec![0, 1, 4, 9, 16]);
}

#[test]
fn execute_consumes_the_declared_program() {
    let env = env(2);
    let first = env.from_collection(vec![1i64]).collect();
    env.execute("first").unwrap();
    assert_eq!(first.take(), vec![1]);
    let second = env.from_collection(vec![2i64]).collect();
    env.execute("second").unwrap();
    assert_eq!(second.take(), vec![2]);
    assert!(first.take().is_empty(), "the first job must not run again");
}

#[derive(Clone)]
struct KeyedSplitter {
    big: OutputTag<(u8, i64)>,
}

impl KeyedProcessFunction<u8, i64, i64> for KeyedSplitter {
    fn process_element(
        &mut self,
        v: i64,
        ctx: &mut KeyedContext<'_, u8>,
        out: &mut Collector<'_, i64>,
    ) -> FunctionResult {
        if v >= 90 {
            let k = *ctx.current_key();
            ctx.output(&self.big, (k, v));
        } else {
            out.collect(v);
        }
        Ok(())
    }
}

#[test]
fn keyed_process_side_output() {
    let env = env(2);
    let big = OutputTag::<(u8, i64)>::new("big");
    let main = env
        .from_sequence(1, 100)
        .key_by(|v: &i64| (*v % 4) as u8)
        .process(KeyedSplitter { big: big.clone() });
    let side = main.get_side_output(&big).collect();
    let small = main.collect();
    env.execute("keyed side output").unwrap();
    assert_eq!(sorted(small.take()), (1..90).collect::<Vec<i64>>());
    assert_eq!(
        sorted(side.take()),
        sorted((90..=100).map(|v| ((v % 4) as u8, v)).collect::<Vec<_>>())
    );
}

/// Words drawn from a small vocabulary, skewed towards the first ones.
fn words(n: usize, vocabulary: u64) -> Vec<(String, u64)> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bound = x % vocabulary + 1;
            (format!("w{}", (x >> 20) % bound), 1)
        })
        .collect()
}

/// The greatest running count per word.
fn final_counts(out: Vec<(String, u64)>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (w, c) in out {
        let e = m.entry(w).or_insert(0);
        *e = c.max(*e);
    }
    m
}

#[test]
fn two_phase_reduce_ends_with_the_values_of_reduce() {
    let input = words(20_000, 300);
    let mut expected = BTreeMap::new();
    for (w, _) in &input {
        *expected.entry(w.clone()).or_insert(0u64) += 1;
    }
    for p in [1, 2, 4] {
        for borrowed in [false, true] {
            let env = env(p);
            let src = env.from_collection(input.clone());
            let keyed = if borrowed {
                src.key_by_ref(|t: &(String, u64)| &t.0)
            } else {
                src.key_by(|t: &(String, u64)| t.0.clone())
            };
            let out = keyed
                .reduce_two_phase(|a, b| (a.0, a.1 + b.1))
                .execute_and_collect("two-phase reduce")
                .unwrap();
            // The local phase combined records: fewer running values than input records.
            assert!(out.len() < input.len() / 2, "p={p}: {} values", out.len());
            assert_eq!(final_counts(out), expected, "p={p} borrowed={borrowed}");
        }
    }
}

/// Emits `words`, then nothing until released: the local phase must hand them on after its
/// latency bound, not hold them until the end of input.
#[derive(Clone)]
struct HoldOpen {
    words: Vec<(String, u64)>,
    sent: bool,
    release: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SourceReader for HoldOpen {
    type Out = (String, u64);
    fn open(&mut self, _: &SourceContext) -> Result<(), eddy::runtime::OperatorError> {
        Ok(())
    }
    fn poll_next(
        &mut self,
        out: &mut Vec<eddy::core::StreamRecord<(String, u64)>>,
        _max: usize,
    ) -> Result<InputStatus, eddy::runtime::OperatorError> {
        use eddy::runtime::source::InputStatus;
        if !self.sent {
            self.sent = true;
            out.extend(
                self.words
                    .iter()
                    .cloned()
                    .map(eddy::core::StreamRecord::new),
            );
            return Ok(InputStatus::NothingAvailable);
        }
        if self.release.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(InputStatus::EndOfInput);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        Ok(InputStatus::NothingAvailable)
    }
    fn snapshot_position(&mut self) -> Result<Vec<u8>, eddy::runtime::OperatorError> {
        Ok(Vec::new())
    }
    fn restore_position(&mut self, _: &[u8]) -> Result<(), eddy::runtime::OperatorError> {
        Ok(())
    }
}

#[test]
fn two_phase_reduce_hands_values_on_within_its_latency_bound() {
    let env = env(2);
    let release = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let src = HoldOpen {
        words: words(50, 5),
        sent: false,
        release: release.clone(),
    };
    let out = env
        .add_source("hold open", move || src.clone())
        .set_parallelism(1)
        .key_by_ref(|t: &(String, u64)| &t.0)
        .reduce_two_phase(|a, b| (a.0, a.1 + b.1))
        .collect();
    let mut client = env.execute_async("latency").unwrap();
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while seen.is_empty() && started.elapsed() < std::time::Duration::from_secs(10) {
        seen.extend(out.take());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let waited = started.elapsed();
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    client.wait().unwrap();
    seen.extend(out.take());
    assert!(
        waited < std::time::Duration::from_secs(10),
        "nothing came out while the source was open"
    );
    assert_eq!(final_counts(seen).values().sum::<u64>(), 50);
}

/// A watermark after every record.
struct EveryRecord;
impl WatermarkGenerator<(String, u64)> for EveryRecord {
    fn on_event(&mut self, _: &(String, u64), ts: i64, output: &mut WatermarkOutput<'_>) {
        output.emit_watermark(Watermark::new(ts - 1));
    }
    fn on_periodic_emit(&mut self, _: &mut WatermarkOutput<'_>) {}
}

/// The local phase hands its values on before every watermark, so nothing it held arrives
/// late for an event-time window after it.
#[test]
fn two_phase_reduce_output_is_never_behind_the_watermark() {
    let input = words(5_000, 20);
    let env = env(2);
    let late = OutputTag::<(String, u64)>::new("late");
    let counts = env
        .from_collection(input.clone())
        .set_parallelism(1)
        .map(|w: (String, u64)| w)
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_generator(|| EveryRecord).with_timestamp_assigner({
                let n = std::sync::atomic::AtomicI64::new(0);
                move |_: &(String, u64), _| n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            }),
        )
        .set_parallelism(1)
        .key_by_ref(|t: &(String, u64)| &t.0)
        .reduce_two_phase(|a, b| (a.0, a.1 + b.1))
        .key_by_ref(|t: &(String, u64)| &t.0)
        .window(TumblingEventTimeWindows::of(
            std::time::Duration::from_millis(100),
        ))
        .side_output_late_data(&late)
        .reduce(|a, b| if a.1 >= b.1 { a } else { b });
    let late_out = counts.get_side_output(&late).collect();
    let out = counts.collect();
    env.execute("watermarks").unwrap();
    assert_eq!(late_out.take(), Vec::new());
    let mut expected = BTreeMap::new();
    for (w, _) in &input {
        *expected.entry(w.clone()).or_insert(0u64) += 1;
    }
    assert_eq!(final_counts(out.take()), expected);
}

#[test]
fn sink_to_file_writes_every_record_once_into_finished_parts(
) -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("out");
    let env = common::environment();
    env.set_parallelism(2);
    env.from_sequence(1, 100)
        .map(|v: i64| format!("line {v}"))
        .sink_to_file(&out);
    assert!(env.get_execution_plan()?.contains("Sink: File Sink"));
    env.execute("file sink")?;
    let mut names: Vec<String> = std::fs::read_dir(&out)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    // Without checkpointing each subtask commits one part at the end of input.
    assert_eq!(names, ["part-0-0", "part-1-0"]);
    let mut lines = Vec::new();
    for n in &names {
        lines.extend(
            std::fs::read_to_string(out.join(n))?
                .lines()
                .map(str::to_string),
        );
    }
    lines.sort();
    let mut expected: Vec<String> = (1..=100).map(|v| format!("line {v}")).collect();
    expected.sort();
    assert_eq!(lines, expected);
    Ok(())
}
