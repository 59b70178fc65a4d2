//! `env.execute_with(LocalExecutor::with_rest(..))`: a job run from a program on the embedded
//! MiniCluster is watched and steered over the same REST API a jobmanager serves (Flink's
//! `createLocalEnvironmentWithWebUI`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use eddy_testing::{get_json, patch};
use std::time::{Duration, Instant};

/// A job that runs until it is cancelled: a record a millisecond on each of 2 subtasks.
fn endless(taskmanagers: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(2);
    env.set_config(
        eddy::core::config::MINICLUSTER_TASKMANAGERS,
        &taskmanagers.to_string(),
    )
    .unwrap();
    env.from_sequence(0, i64::MAX)
        .map(|v: i64| {
            std::thread::sleep(Duration::from_millis(1));
            v
        })
        .rebalance()
        .map(|v: i64| v + 1)
        .sink_to_discard();
    env
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_program_on_the_minicluster_is_watched_and_cancelled_over_rest() {
    let executor = LocalExecutor::default().with_rest("127.0.0.1:0").unwrap();
    let base = format!("http://{}", executor.rest_address().unwrap());
    for (run, taskmanagers) in [(1, 2), (2, 1)] {
        let env = endless(taskmanagers);
        let mut client = env.execute_with(&executor, "watched").unwrap();
        let id = client.job_id().to_string();
        wait_for(&format!("run {run}: job {id} RUNNING over REST"), || {
            get_json(&format!("{base}/jobs/{id}"))["state"] == "RUNNING"
        });
        let jobs = get_json(&format!("{base}/jobs"));
        assert!(jobs.to_string().contains(&id), "run {run}: {jobs}");
        let tms = get_json(&format!("{base}/taskmanagers"));
        assert_eq!(
            tms["taskmanagers"].as_array().map(Vec::len),
            Some(taskmanagers),
            "run {run}: {tms}"
        );
        let overview = get_json(&format!("{base}/overview"));
        assert_eq!(overview["jobs-running"], 1, "run {run}: {overview}");
        assert_eq!(patch(&format!("{base}/jobs/{id}?mode=cancel")), 202);
        let err = client.wait().unwrap_err();
        assert!(err.to_string().contains("cancelled"), "run {run}: {err}");
        wait_for(&format!("run {run}: job {id} CANCELED over REST"), || {
            get_json(&format!("{base}/jobs/{id}"))["state"] == "CANCELED"
        });
    }
}

#[test]
fn a_rest_port_in_use_fails_before_any_job_runs() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let err = LocalExecutor::default().with_rest(&bind).err().unwrap();
    let text = err.to_string();
    assert!(text.contains(&bind) && text.contains("rest.port"), "{text}");
}
