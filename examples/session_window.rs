//! User sessions in event time: a generated click stream, out of order by up to a minute, is
//! cut per user into session windows that close after 30 minutes without a click (Flink's
//! `EventTimeSessionWindows.withGap`). Each session is emitted once, when the watermark passes
//! its end, as `user,session_start,session_end,clicks,distinct_pages`.
//!
//! ```text
//! cargo run --release --example session_window -- [--users 20] [--clicks 5000] [--seed 7] [--parallelism 2] [--output DIR]
//! ```

use eddy::prelude::*;
use eddy_cli::JobDefinition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const MINUTE: i64 = 60_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Click {
    user: String,
    page: u32,
    ts: i64,
}

/// A deterministic click stream: each user alternates bursts of activity (clicks a few
/// seconds to minutes apart) with pauses of 10 minutes to 2 hours, so some pauses end a
/// session and some do not. Clicks are shuffled by up to a minute.
fn clicks(users: u32, n: usize, seed: u64) -> Vec<Click> {
    let mut s = seed | 1;
    let mut rnd = move |m: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % m.max(1)
    };
    let mut clock: Vec<i64> = (0..users)
        .map(|u| 1_700_000_000_000 + u as i64 * 1000)
        .collect();
    let mut out: Vec<Click> = (0..n)
        .map(|_| {
            let u = rnd(users as u64) as usize;
            clock[u] += if rnd(10) == 0 {
                10 * MINUTE + rnd(110 * MINUTE as u64) as i64
            } else {
                1000 + rnd(5 * MINUTE as u64) as i64
            };
            Click {
                user: format!("user-{u:02}"),
                page: rnd(40) as u32,
                ts: clock[u],
            }
        })
        .collect();
    out.sort_by_key(|c| c.ts);
    // Out of order by at most a minute: swap neighbours that are close enough.
    for i in 1..out.len() {
        if out[i].ts - out[i - 1].ts < MINUTE && rnd(3) == 0 {
            out.swap(i, i - 1);
        }
    }
    out
}

/// Counts the clicks and distinct pages of a session.
#[derive(Clone)]
struct SessionStats;

impl AggregateFunction<Click, (u64, BTreeSet<u32>), (u64, usize)> for SessionStats {
    fn create_accumulator(&self) -> (u64, BTreeSet<u32>) {
        (0, BTreeSet::new())
    }
    fn add(&self, c: Click, acc: &mut (u64, BTreeSet<u32>)) {
        acc.0 += 1;
        acc.1.insert(c.page);
    }
    fn get_result(&self, acc: &(u64, BTreeSet<u32>)) -> (u64, usize) {
        (acc.0, acc.1.len())
    }
    fn merge(&self, mut a: (u64, BTreeSet<u32>), b: (u64, BTreeSet<u32>)) -> (u64, BTreeSet<u32>) {
        a.0 += b.0;
        a.1.extend(b.1);
        a
    }
}

/// Adds user and session bounds to the statistics.
#[derive(Clone)]
struct Describe;

impl ProcessWindowFunction<(u64, usize), String, String, TimeWindow> for Describe {
    fn process(
        &mut self,
        user: &String,
        ctx: &mut WindowContext<'_, String, TimeWindow>,
        stats: Vec<(u64, usize)>,
        out: &mut Collector<'_, String>,
    ) -> FunctionResult {
        let w = ctx.window();
        for (clicks, pages) in stats {
            out.collect(format!("{user},{},{},{clicks},{pages}", w.start, w.end));
        }
        Ok(())
    }
}

/// The job, as the `eddy` binary and application mode know it.
pub const JOB: JobDefinition = JobDefinition {
    name: "session_window",
    about: "user sessions (30-minute gap) over a generated out-of-order click stream",
    usage: "[--users U] [--clicks N] [--seed S] [--parallelism N] [--output DIR]",
    build,
};

/// Builds the job's pipeline on `env`; returns the job's name.
pub fn build(env: &StreamExecutionEnvironment, argv: &[String]) -> Result<String, String> {
    let (mut users, mut n, mut seed, mut p, mut output) = (20u32, 5000usize, 7u64, 2usize, None);
    let mut it = argv.iter().cloned();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{what} must be a positive integer, got '{v}'");
        match flag.as_str() {
            "--users" => {
                users = v
                    .parse()
                    .ok()
                    .filter(|x| *x > 0)
                    .ok_or_else(|| bad("--users"))?
            }
            "--clicks" => n = v.parse().map_err(|_| bad("--clicks"))?,
            "--seed" => seed = v.parse().map_err(|_| bad("--seed"))?,
            "--parallelism" => {
                p = v
                    .parse()
                    .ok()
                    .filter(|x| *x > 0)
                    .ok_or_else(|| bad("--parallelism"))?
            }
            "--output" => output = Some(PathBuf::from(v)),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    env.set_parallelism(p);
    let sessions = env
        .from_collection(clicks(users, n, seed))
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(60))
                .with_timestamp_assigner(|c: &Click, _| c.ts),
        )
        .key_by_ref(|c: &Click| &c.user)
        .window(EventTimeSessionWindows::with_gap(Duration::from_secs(
            30 * 60,
        )))
        .aggregate_with(SessionStats, Describe)
        .name("User Sessions");
    match output {
        Some(dir) => {
            sessions.write_as_text_with_mode(dir, WriteMode::Overwrite);
        }
        None => {
            sessions.print();
        }
    }
    Ok("User Sessions".into())
}

fn main() -> ExitCode {
    eddy_cli::example_main(&JOB)
}
