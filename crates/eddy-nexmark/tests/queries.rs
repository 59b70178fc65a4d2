//! Every Nexmark query's engine output equals its reference implementation's, at p=1 and
//! p=2, as rows and as checksums.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::connectors::nexmark::GeneratorConfig;
use eddy::prelude::*;
use eddy_nexmark::checksum::SharedChecksum;
use eddy_nexmark::{add_query, reference_checksum, reference_rows, Query, Sink};
use std::collections::BTreeMap;

fn config() -> GeneratorConfig {
    // 500 events per second of event time: 40,000 events span 80 s, so the 10 s windows,
    // 2 s slides and 10 s session gaps all have several instances.
    GeneratorConfig {
        events: 40_000,
        events_per_second: 500,
        ..Default::default()
    }
}

fn engine_rows(query: Query, p: usize) -> Vec<String> {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(p);
    let out = add_query(&env, query, &config(), &Sink::Collect)
        .expect("valid generator settings")
        .expect("collect sink");
    env.execute(query.name()).expect("job");
    let rows = out.take();
    if query != Query::Q4 {
        return rows;
    }
    // q4 is a changelog `(category, avg)`: the last row per category is the result.
    let mut last = BTreeMap::new();
    for r in rows {
        let category = r.split(',').next().unwrap_or_default().to_string();
        last.insert(category, r);
    }
    last.into_values().collect()
}

fn check(query: Query) {
    let mut want = reference_rows(query, &config());
    want.sort();
    assert!(
        !want.is_empty(),
        "{}: the reference has output",
        query.name()
    );
    for p in [1, 2] {
        let mut got = engine_rows(query, p);
        got.sort();
        assert_eq!(got.len(), want.len(), "{} p={p}: row count", query.name());
        assert!(got == want, "{} p={p}: rows differ", query.name());
        // The benchmark's checksum path agrees too.
        let env = StreamExecutionEnvironment::get_execution_environment();
        env.set_parallelism(p);
        let sum = SharedChecksum::default();
        add_query(&env, query, &config(), &Sink::Checksum(sum.clone()))
            .expect("valid generator settings");
        env.execute(query.name()).expect("job");
        assert_eq!(
            *sum.lock().unwrap(),
            reference_checksum(query, &config()),
            "{} p={p}: checksum",
            query.name()
        );
    }
}

#[test]
fn q0_pass_through() {
    check(Query::Q0)
}
#[test]
fn q1_currency_conversion() {
    check(Query::Q1)
}
#[test]
fn q2_selection() {
    check(Query::Q2)
}
#[test]
fn q3_local_item_suggestion() {
    check(Query::Q3)
}
#[test]
fn q4_average_price_per_category() {
    check(Query::Q4)
}
#[test]
fn q5_hot_items() {
    check(Query::Q5)
}
#[test]
fn q7_highest_bid() {
    check(Query::Q7)
}
#[test]
fn q8_monitor_new_users() {
    check(Query::Q8)
}
#[test]
fn q11_user_sessions() {
    check(Query::Q11)
}
