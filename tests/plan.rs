//! Integration tests of the program → JobGraph translation: chaining rules, vertex names and
//! parallelism, slot sharing, Flink's execution-plan JSON, validation errors and the JobGraph's
//! JSON round trip.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::core::jobgraph::JobGraph;
use eddy::core::partitioner::PartitionerKind;
use eddy::prelude::*;
use serde_json::Value;

fn env(p: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(p);
    env
}

/// `(vertex name, parallelism)` in topological order.
fn vertices(g: &JobGraph) -> Vec<(String, usize)> {
    g.vertices
        .iter()
        .map(|v| (v.name.clone(), v.parallelism))
        .collect()
}

fn v(name: &str, p: usize) -> (String, usize) {
    (name.to_string(), p)
}

fn plan(env: &StreamExecutionEnvironment) -> Value {
    serde_json::from_str(&env.get_execution_plan().unwrap()).unwrap()
}

/// The plan node whose `contents` is `name`.
fn node<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["contents"] == name)
        .unwrap_or_else(|| panic!("no plan node '{name}' in {plan:#}"))
}

/// `(predecessor id, ship strategy)` of a plan node.
fn preds(n: &Value) -> Vec<(u64, String)> {
    n["predecessors"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["id"].as_u64().unwrap(),
                        p["ship_strategy"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn key_by_breaks_the_chain() {
    let env = env(2);
    env.from_sequence(1, 10)
        .map(|x: i64| (x % 2, x))
        .name("Pair")
        .filter(|t: &(i64, i64)| t.1 > 0)
        .key_by(|t: &(i64, i64)| t.0)
        .reduce(|a: (i64, i64), b: (i64, i64)| (a.0, a.1 + b.1))
        .name("Sum")
        .print();
    let g = env.get_job_graph("chain").unwrap();
    assert_eq!(
        vertices(&g),
        vec![
            v("Source: Sequence Source -> Pair -> Filter", 2),
            v("Sum -> Print to Std. Out", 2),
        ]
    );
    assert_eq!(g.vertices[0].operators, vec![0, 1, 2]);
    assert_eq!(g.vertices[1].operators, vec![3, 4]);
    assert_eq!(g.vertices[1].head, 3);
    let hash: Vec<_> = g.edges.iter().filter(|e| !e.chained).collect();
    assert_eq!(hash.len(), 1);
    assert_eq!(hash[0].partitioner, PartitionerKind::Hash);
    assert_eq!((hash[0].source, hash[0].target), (2, 3));
    // Keyed operators get Flink's default max parallelism.
    assert!(g.operator(3).unwrap().keyed);
    assert_eq!(g.vertices[1].max_parallelism, 128);
    assert_eq!(g.job_name, "chain");
}

#[test]
fn different_parallelism_breaks_the_chain() {
    let env = env(3);
    env.from_collection(vec![1i64, 2])
        .map(|x: i64| x)
        .filter(|_: &i64| true)
        .set_parallelism(2)
        .sink_to_discard();
    let g = env.get_job_graph("p").unwrap();
    assert_eq!(
        vertices(&g),
        vec![
            v("Source: Collection Source", 1),
            v("Map", 3),
            v("Filter", 2),
            // A sink gets the default parallelism, as in Flink.
            v("Discard", 3),
        ]
    );
    let p = plan(&env);
    assert_eq!(preds(node(&p, "Map")), vec![(0, "REBALANCE".to_string())]);
    assert_eq!(
        preds(node(&p, "Filter")),
        vec![(1, "REBALANCE".to_string())]
    );
    assert_eq!(
        preds(node(&p, "Discard")),
        vec![(2, "REBALANCE".to_string())]
    );
}

fn four_maps(
    env: &StreamExecutionEnvironment,
    b: impl FnOnce(SingleOutputStreamOperator<i64>) -> SingleOutputStreamOperator<i64>,
) {
    let a = env.from_sequence(1, 10).map(|x: i64| x).name("A");
    b(a.map(|x: i64| x).name("B"))
        .map(|x: i64| x)
        .name("C")
        .sink_to_discard();
}

#[test]
fn disable_chaining_isolates_the_operator() {
    let env = env(2);
    four_maps(&env, |b| b.disable_chaining());
    assert_eq!(
        vertices(&env.get_job_graph("j").unwrap()),
        vec![
            v("Source: Sequence Source -> A", 2),
            v("B", 2),
            v("C -> Discard", 2),
        ]
    );
}

#[test]
fn start_new_chain_starts_a_chain_that_continues() {
    let env = env(2);
    four_maps(&env, |b| b.start_new_chain());
    assert_eq!(
        vertices(&env.get_job_graph("j").unwrap()),
        vec![
            v("Source: Sequence Source -> A", 2),
            v("B -> C -> Discard", 2)
        ]
    );
}

#[test]
fn slot_sharing_group_breaks_the_chain_and_is_inherited() {
    let env = env(2);
    four_maps(&env, |b| b.slot_sharing_group("heavy"));
    let g = env.get_job_graph("j").unwrap();
    assert_eq!(
        vertices(&g),
        vec![
            v("Source: Sequence Source -> A", 2),
            v("B -> C -> Discard", 2)
        ]
    );
    assert_eq!(g.vertices[0].slot_sharing_group, "default");
    assert_eq!(g.vertices[1].slot_sharing_group, "heavy");
    // Per slot sharing group, as many slots as its largest parallelism: 2 + 2.
    assert_eq!(eddy::cluster::slot::shared_slots(&g).len(), 4);
}

#[test]
fn env_disable_operator_chaining_gives_one_vertex_per_operator() {
    let env = env(2);
    env.disable_operator_chaining();
    four_maps(&env, |b| b);
    let g = env.get_job_graph("j").unwrap();
    assert_eq!(
        vertices(&g),
        vec![
            v("Source: Sequence Source", 2),
            v("A", 2),
            v("B", 2),
            v("C", 2),
            v("Discard", 2),
        ]
    );
    assert!(g.edges.iter().all(|e| !e.chained));
    assert!(g
        .edges
        .iter()
        .all(|e| e.partitioner == PartitionerKind::Forward));
    // The job still runs unchained.
    env.execute("unchained").unwrap();
}

#[test]
fn union_and_connect_are_not_chained() {
    let env = env(2);
    let a = env.from_sequence(1, 10);
    let b = env.from_sequence(1, 10).map(|x: i64| x);
    a.union(&[&b])
        .map(|x: i64| x)
        .name("AfterUnion")
        .sink_to_discard();
    a.connect(&b).map(|x: i64| x, |y: i64| y).sink_to_discard();
    let g = env.get_job_graph("j").unwrap();
    let names: Vec<String> = g.vertices.iter().map(|v| v.name.clone()).collect();
    assert!(
        names.contains(&"AfterUnion -> Discard".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"Co-Map -> Discard".to_string()),
        "{names:?}"
    );
    // A source whose consumers are a union and a two-input operator chains with neither.
    assert!(
        names.contains(&"Source: Sequence Source".to_string()),
        "{names:?}"
    );
}

#[test]
fn plan_json_has_flink_shape_and_ship_strategies() {
    let env = env(4);
    let src = env.from_collection((0..10i64).collect());
    let tag = OutputTag::<i64>::new("late");
    let processed = src
        .rebalance()
        .map(|x: i64| x)
        .name("Rebalanced")
        .process_fn(
            |x: i64, ctx: &mut ProcessContext<'_>, out: &mut Collector<'_, i64>| {
                ctx.output(&OutputTag::<i64>::new("late"), x);
                out.collect(x);
                Ok(())
            },
        )
        .name("Splitter");
    processed
        .key_by(|x: &i64| *x)
        .map(|x: i64| x)
        .name("Hashed")
        .broadcast()
        .map(|x: i64| x)
        .name("Broadcasted")
        .rescale()
        .map(|x: i64| x)
        .name("Rescaled")
        .shuffle()
        .map(|x: i64| x)
        .name("Shuffled")
        .partition_custom(|k: &i64, n: usize| (*k as usize) % n, |x: &i64| *x)
        .map(|x: i64| x)
        .name("Custom")
        .forward()
        .map(|x: i64| x)
        .name("Forwarded")
        .sink_to_discard();
    processed.get_side_output(&tag).print();
    let p = plan(&env);
    let nodes = p["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 11);
    let s = node(&p, "Source: Collection Source");
    assert_eq!(s["pact"], "Data Source");
    assert_eq!(s["type"], "Source: Collection Source");
    assert_eq!(s["parallelism"], 1);
    assert!(s.get("predecessors").is_none());
    let m = node(&p, "Rebalanced");
    assert_eq!(m["pact"], "Operator");
    assert_eq!(m["parallelism"], 4);
    let id = |name: &str| node(&p, name)["id"].as_u64().unwrap();
    let expect = [
        ("Rebalanced", "Source: Collection Source", "REBALANCE"),
        ("Splitter", "Rebalanced", "FORWARD"),
        ("Hashed", "Splitter", "HASH"),
        ("Broadcasted", "Hashed", "BROADCAST"),
        ("Rescaled", "Broadcasted", "RESCALE"),
        ("Shuffled", "Rescaled", "SHUFFLE"),
        ("Custom", "Shuffled", "CUSTOM"),
        ("Forwarded", "Custom", "FORWARD"),
        ("Discard", "Forwarded", "FORWARD"),
    ];
    for (n, pred, strategy) in expect {
        assert_eq!(
            preds(node(&p, n)),
            vec![(id(pred), strategy.to_string())],
            "predecessors of {n}"
        );
    }
    let print = node(&p, "Print to Std. Out");
    assert_eq!(print["pact"], "Data Sink");
    assert_eq!(
        print["predecessors"][0]["id"].as_u64().unwrap(),
        id("Splitter")
    );
    assert_eq!(print["predecessors"][0]["side_output"], "late");

    // The JobGraph agrees: the unchained edges are exactly the non-forward ones.
    let g = env.get_job_graph("plan").unwrap();
    for e in &g.edges {
        let forward = e.partitioner == PartitionerKind::Forward;
        let same_p =
            g.operator(e.source).unwrap().parallelism == g.operator(e.target).unwrap().parallelism;
        assert_eq!(e.chained, forward && same_p, "edge {e:?}");
    }
    env.execute("all partitioners").unwrap();
}

#[test]
fn forward_between_different_parallelism_is_an_error() {
    let env = env(2);
    env.from_sequence(1, 10)
        .map(|x: i64| x)
        .name("Upstream")
        .forward()
        .map(|x: i64| x)
        .name("Downstream")
        .set_parallelism(3)
        .sink_to_discard();
    let err = env.get_job_graph("j").unwrap_err().to_string();
    assert!(
        err.contains("'Upstream'") && err.contains("'Downstream'"),
        "{err}"
    );
    assert!(env.get_execution_plan().is_err());
    let err = env.execute("j").unwrap_err();
    assert!(matches!(err, JobExecutionError::InvalidJob(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("Upstream") && msg.contains("Downstream"),
        "{msg}"
    );
}

#[test]
fn duplicate_uid_is_an_error() {
    let env = env(1);
    env.from_sequence(1, 2)
        .map(|x: i64| x)
        .name("First")
        .uid("same")
        .map(|x: i64| x)
        .name("Second")
        .uid("same")
        .sink_to_discard();
    let err = env.get_job_graph("j").unwrap_err().to_string();
    assert!(
        err.contains("same") && err.contains("First") && err.contains("Second"),
        "{err}"
    );
}

#[test]
fn zero_parallelism_is_an_error() {
    let env = env(1);
    env.from_sequence(1, 2)
        .map(|x: i64| x)
        .set_parallelism(0)
        .sink_to_discard();
    assert!(env.get_job_graph("j").is_err());
    assert!(env.execute("j").is_err());
}

#[test]
fn max_parallelism_is_applied() {
    let env = env(2);
    env.set_max_parallelism(256);
    env.from_sequence(1, 2)
        .key_by(|x: &i64| *x)
        .reduce(|a: i64, b: i64| a + b)
        .sink_to_discard();
    let g = env.get_job_graph("j").unwrap();
    assert!(g.vertices.iter().all(|v| v.max_parallelism == 256));
}

#[test]
fn job_graph_round_trips_through_json() {
    let env = env(2);
    env.set_config("taskmanager.network.memory.buffers-per-channel", "3")
        .unwrap();
    let s = env
        .from_sequence(1, 10)
        .map(|x: i64| (x % 2, x))
        .uid("pairs");
    s.key_by(|t: &(i64, i64)| t.0)
        .sum(|t: &mut (i64, i64)| &mut t.1)
        .slot_sharing_group("sums")
        .print();
    let g = env.get_job_graph("round trip").unwrap();
    let json = g.to_json().unwrap();
    let back = JobGraph::from_json(&json).unwrap();
    assert_eq!(back, g);
    assert_eq!(back.config.buffers_per_channel, 3);
    assert_eq!(back.operator(1).unwrap().uid.as_deref(), Some("pairs"));

    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["version"] = Value::from(999);
    let err = JobGraph::from_json(&v.to_string()).unwrap_err().to_string();
    assert!(err.contains("999"), "{err}");

    // The job id survives any JSON reader (no 128-bit numbers).
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["job_id"], Value::String(g.job_id.to_string()));
    assert_eq!(JobGraph::from_json(&v.to_string()).unwrap(), g);
}

#[test]
fn config_keys_are_validated() {
    let env = env(1);
    let err = env
        .set_config("taskmanager.network.memory.buffers-per-chanel", "2")
        .err()
        .expect("unknown key must be rejected")
        .to_string();
    assert!(
        err.contains("did you mean 'taskmanager.network.memory.buffers-per-channel'"),
        "{err}"
    );
    assert!(env
        .set_config("taskmanager.memory.segment-size", "12")
        .is_err());
    env.set_config("taskmanager.memory.segment-size", "4kb")
        .unwrap();
    assert_eq!(env.config().segment_size, 4096);
}
