//! Operator state of user functions (list and union list state, Flink's `CheckpointedFunction`)
//! and broadcast state, through failures, savepoints and rescaling on the MiniCluster.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::{fail_once, pick, seed, SlowSequence};

/// Counts the records its subtask saw, in operator list state `count` (split on rescale) and
/// union list state `total` (everyone gets all); emits `(subtask, running count)`. On open it
/// reports the restored union total.
#[derive(Clone)]
struct SubtaskCounter {
    subtask: usize,
    count: u64,
    restored_totals: Arc<Mutex<Vec<u64>>>,
}

impl SubtaskCounter {
    fn new(restored_totals: Arc<Mutex<Vec<u64>>>) -> Self {
        SubtaskCounter {
            subtask: 0,
            count: 0,
            restored_totals,
        }
    }
}

impl ProcessFunction<u64, (usize, u64)> for SubtaskCounter {
    fn open(&mut self, ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        self.subtask = ctx.index_of_this_subtask();
        self.count = ctx.get_operator_list_state::<u64>("count")?.iter().sum();
        if ctx.is_restored() {
            let total = ctx.get_union_list_state::<u64>("total")?.iter().sum();
            self.restored_totals.lock().unwrap().push(total);
        }
        Ok(())
    }

    fn process_element(
        &mut self,
        _value: u64,
        _ctx: &mut ProcessContext<'_>,
        out: &mut Collector<'_, (usize, u64)>,
    ) -> FunctionResult {
        self.count += 1;
        out.collect((self.subtask, self.count));
        Ok(())
    }

    fn snapshot_state(&mut self, ctx: &mut FunctionSnapshotContext<'_>) -> FunctionResult {
        ctx.update_list_state("count", [&self.count])?;
        ctx.update_union_list_state("total", [&self.count])?;
        Ok(())
    }
}

/// The highest count each subtask emitted.
fn final_per_subtask(out: &[(usize, u64)]) -> BTreeMap<usize, u64> {
    let mut m = BTreeMap::new();
    for (s, c) in out {
        let e = m.entry(*s).or_insert(0);
        *e = (*e).max(*c);
    }
    m
}

#[test]
fn operator_list_state_is_exactly_once_across_injected_failures() {
    let mut s = seed();
    let n = 3000;
    for round in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let env = common::environment();
        env.enable_checkpointing(Duration::from_millis(15));
        env.configure_checkpointing(|c| c.storage = Some(dir.path().display().to_string()));
        env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
            attempts: 3,
            delay_ms: 0,
        });
        let at = pick(&mut s, n / 4, n - 100);
        let flag = Arc::new(AtomicBool::new(false));
        // Two source subtasks each emit 0..n, chained to their counter: every counter subtask
        // must end at exactly n — less is loss, more is a duplicate.
        let out = env
            .add_source("Slow Sequence", move || SlowSequence::new(n, 40, 1))
            .set_parallelism(2)
            .uid("source")
            .map(fail_once(at, flag.clone()))
            .uid("fail")
            .process(SubtaskCounter::new(Arc::default()))
            .uid("counter")
            .collect();
        env.execute("operator state").expect("the job recovers");
        assert!(
            flag.load(Ordering::SeqCst),
            "round {round}: failure injected"
        );
        assert_eq!(
            final_per_subtask(&out.take()),
            BTreeMap::from([(0, n), (1, n)]),
            "round {round}: failure at record {at}"
        );
    }
}

/// Counts per subtask what a source emitting `per_ms` records a millisecond sends round-robin.
fn rebalanced_counter(
    env: &StreamExecutionEnvironment,
    n: u64,
    p: usize,
    restored_totals: Arc<Mutex<Vec<u64>>>,
    per_ms: u64,
) -> CollectHandle<(usize, u64)> {
    env.add_source("Slow Sequence", move || SlowSequence::new(n, per_ms, 1))
        .set_parallelism(1)
        .uid("source")
        .rebalance()
        .process(SubtaskCounter::new(restored_totals))
        .uid("counter")
        .set_parallelism(p)
        .collect()
}

#[test]
fn list_state_is_split_and_union_state_given_to_all_on_rescale() {
    let n = 3000;
    for new_p in [3usize, 1] {
        let dir = tempfile::tempdir().unwrap();
        let env = common::environment();
        // Slow enough (600 ms for all) that the stop 60 ms in lands in the middle even on a
        // loaded machine: at 20 a millisecond the input could end before the savepoint did.
        let first = rebalanced_counter(&env, n, 2, Arc::default(), 5);
        let mut client = env.execute_async("rescale operator state").unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let sp = client
            .stop_with_savepoint(Some(dir.path()), false)
            .expect("savepoint");
        client.wait().unwrap();
        let before: u64 = final_per_subtask(&first.take()).values().sum();
        assert!(0 < before && before < n, "stopped in the middle: {before}");

        let env = common::environment();
        env.restore_from(sp, false);
        let totals = Arc::new(Mutex::new(Vec::new()));
        let second = rebalanced_counter(&env, n, new_p, totals.clone(), 20);
        env.execute("rescale operator state").unwrap();
        // Split list state: the counts of the old subtasks were divided among the new ones,
        // so the new subtasks' final counts add up to every record exactly once.
        let after = final_per_subtask(&second.take());
        assert_eq!(
            after.values().sum::<u64>(),
            n,
            "p=2 -> p={new_p}: {after:?}"
        );
        // Union list state: every new subtask got the totals of all old ones.
        assert_eq!(
            *totals.lock().unwrap(),
            vec![before; new_p],
            "p=2 -> p={new_p}"
        );
    }
}

fn rules() -> MapStateDescriptor<u64, u64> {
    MapStateDescriptor::new("rules")
}

/// Broadcast side: rule `v` sets the multiplier of bucket `v % 10` to `v`, mirrored into
/// `seen` so the test knows the state. Keyed side: emits `(value, multiplier of its bucket)`
/// and a per-key running count from keyed state.
#[derive(Clone)]
struct Enrich {
    seen: Arc<Mutex<BTreeMap<u64, u64>>>,
    count: Option<ValueState<u64>>,
}

impl KeyedBroadcastProcessFunction<u64, u64, u64, (u64, Option<u64>, u64)> for Enrich {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, u64>) -> FunctionResult {
        self.count = Some(ctx.get_state(&ValueStateDescriptor::new("count"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        value: u64,
        ctx: &mut KeyedReadOnlyBroadcastContext<'_, '_, u64>,
        out: &mut Collector<'_, (u64, Option<u64>, u64)>,
    ) -> FunctionResult {
        let rule = ctx
            .get_broadcast_state(&rules())?
            .get(&(value % 10))
            .copied();
        let count = self.count.as_ref().ok_or("not open")?;
        let c = count.value(ctx)?.unwrap_or(0) + 1;
        count.update(ctx, c)?;
        out.collect((value, rule, c));
        Ok(())
    }

    fn process_broadcast_element(
        &mut self,
        rule: u64,
        ctx: &mut BroadcastContext<'_>,
        _out: &mut Collector<'_, (u64, Option<u64>, u64)>,
    ) -> FunctionResult {
        ctx.get_broadcast_state(&rules())?.put(rule % 10, rule);
        self.seen.lock().unwrap().insert(rule % 10, rule);
        Ok(())
    }
}

#[test]
fn broadcast_state_survives_a_savepoint_and_a_rescale() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let env = common::environment();
    let rule_stream = env
        .add_source("Rules", || SlowSequence::new(1_000_000, 3, 1))
        .set_parallelism(1)
        .uid("rules")
        .broadcast_with(&rules());
    env.add_source("Data", || SlowSequence::new(1_000_000, 3, 1))
        .set_parallelism(1)
        .uid("data")
        .key_by(|v: &u64| v % 7)
        .connect_broadcast(&rule_stream)
        .process(Enrich {
            seen: seen.clone(),
            count: None,
        })
        .uid("enrich")
        .set_parallelism(2)
        .sink_to_discard();
    let mut client = env.execute_async("broadcast state").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let sp = client
        .stop_with_savepoint(Some(dir.path()), false)
        .expect("savepoint");
    client.wait().unwrap();
    let expected_rules = seen.lock().unwrap().clone();
    assert!(!expected_rules.is_empty(), "rules were processed");

    for new_p in [3usize, 1] {
        // New sources (their old state is not restored), the same enrich operator: every
        // subtask must start with the broadcast state of the savepoint.
        let env = common::environment();
        env.restore_from(sp.clone(), true);
        let rule_stream = env
            .add_source("No Rules", || SlowSequence::new(0, 1, 0))
            .set_parallelism(1)
            .uid("no-rules")
            .broadcast_with(&rules());
        let out = env
            .add_source("Values", || SlowSequence::new(40, 5, 0))
            .set_parallelism(1)
            .uid("values")
            .key_by(|v: &u64| v % 7)
            .connect_broadcast(&rule_stream)
            .process(Enrich {
                seen: Arc::default(),
                count: None,
            })
            .uid("enrich")
            .set_parallelism(new_p)
            .collect();
        env.execute("broadcast state").unwrap();
        let mut got: Vec<(u64, Option<u64>)> =
            out.take().into_iter().map(|(v, r, _)| (v, r)).collect();
        got.sort();
        let want: Vec<(u64, Option<u64>)> = (0..40)
            .map(|v| (v, expected_rules.get(&(v % 10)).copied()))
            .collect();
        assert_eq!(got, want, "p=2 -> p={new_p}");
    }
}

#[test]
fn undeclared_broadcast_state_is_a_clear_error() {
    let env = common::environment();
    let rule_stream = env
        .from_elements(&[1u64])
        .broadcast_with(&MapStateDescriptor::<u64, u64>::new("other"));
    env.from_elements(&[1u64, 2])
        .key_by(|v: &u64| *v)
        .connect_broadcast(&rule_stream)
        .process(Enrich {
            seen: Arc::default(),
            count: None,
        })
        .sink_to_discard();
    let err = env.execute("undeclared").unwrap_err().to_string();
    assert!(
        err.contains("'rules'") && err.contains("not declared"),
        "{err}"
    );
}
