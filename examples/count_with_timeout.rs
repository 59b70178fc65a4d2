//! Flink's `ProcessFunction` documentation example: count events per key and emit
//! `(key, count)` once a key has seen no new event for one minute of event time.
//!
//! ```text
//! cargo run --release --example count_with_timeout
//! ```
//! State per key (`ValueState<CountWithTimestamp>`) and an event-time timer per event; a timer
//! only emits if it is the one registered by the key's latest event.

use eddy::prelude::*;
use eddy_cli::JobDefinition;
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT_MS: i64 = 60_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CountWithTimestamp {
    count: i64,
    last_modified: i64,
}

#[derive(Clone, Default)]
struct CountWithTimeoutFunction {
    state: Option<ValueState<CountWithTimestamp>>,
}

impl KeyedProcessFunction<String, (String, i64), (String, i64)> for CountWithTimeoutFunction {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, String>) -> FunctionResult {
        self.state = Some(ctx.get_state(&ValueStateDescriptor::new("myState"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        _value: (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        _out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        let state = self.state.ok_or("state not opened")?;
        let ts = ctx.timestamp().ok_or("events need timestamps")?;
        let current = match state.value(ctx)? {
            Some(c) => CountWithTimestamp {
                count: c.count + 1,
                last_modified: ts,
            },
            None => CountWithTimestamp {
                count: 1,
                last_modified: ts,
            },
        };
        state.update(ctx, current)?;
        ctx.timer_service()
            .register_event_time_timer(ts + TIMEOUT_MS);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, (String, i64)>,
    ) -> FunctionResult {
        let state = self.state.ok_or("state not opened")?;
        if let Some(c) = state.value(ctx)? {
            if timestamp == c.last_modified + TIMEOUT_MS {
                out.collect((ctx.current_key().clone(), c.count));
            }
        }
        Ok(())
    }
}

/// Events `(key, timestamp_ms)`: one burst of activity per user; each user's count is emitted
/// once, a minute of event time after their last event.
fn events() -> Vec<(String, i64)> {
    let mut v = Vec::new();
    for (user, bursts) in [
        ("alice", vec![(0, 3)]),
        ("bob", vec![(10_000, 5)]),
        ("carol", vec![(5_000, 1), (50_000, 1), (100_000, 1)]),
    ] {
        for (start, n) in bursts {
            for i in 0..n {
                v.push((user.to_string(), start + i * 1_000));
            }
        }
    }
    v.sort_by_key(|e| e.1);
    v
}

/// The job, as the `eddy` binary and application mode know it.
pub const JOB: JobDefinition = JobDefinition {
    name: "count_with_timeout",
    about:
        "Flink's CountWithTimeout: per-key counts emitted after a minute without updates (timers)",
    usage: "",
    build,
};

/// Builds the job's pipeline on `env`; returns the job's name.
pub fn build(env: &StreamExecutionEnvironment, argv: &[String]) -> Result<String, String> {
    if let Some(a) = argv.first() {
        return Err(format!("unknown argument '{a}'"));
    }
    env.set_parallelism(2);
    env.from_collection(events())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(1))
                .with_timestamp_assigner(|e: &(String, i64), _| e.1),
        )
        .set_parallelism(1)
        .key_by_ref(|e: &(String, i64)| &e.0)
        .process(CountWithTimeoutFunction::default())
        .name("CountWithTimeout")
        .map(|(k, c): (String, i64)| format!("{k} {c}"))
        .print()
        .set_parallelism(1);
    Ok("Count with timeout".into())
}

fn main() -> ExitCode {
    eddy_cli::example_main(&JOB)
}
