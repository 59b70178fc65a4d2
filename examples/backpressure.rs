//! Backpressure: a fast source feeding a deliberately slow operator.
//!
//! ```text
//! cargo run --release --example backpressure -- [--records N] [--sink-delay-us D]
//! eddy run -m host:port backpressure --records 100000000 --sink-delay-us 100
//! ```
//! A sequence source emits `N` numbers as fast as it can; after a rebalance, a map that sleeps
//! `D` µs per record (slot sharing group `slow`) passes them to a discarding sink; everything
//! runs with parallelism 1. The two slot sharing groups need two slots, so on a cluster of
//! one-slot taskmanagers source and slow operator run on different taskmanagers and every
//! record crosses the network. Credit-based flow control then holds the source to the slow
//! operator's pace: the consumer grants one credit per buffer its input can hold, the producer
//! sends only against credit and blocks without it, and the records in flight stay bounded
//! instead of piling up in memory (see the taskmanagers' network buffers in `/taskmanagers`).
//! Prints the number of records that reached the end.

use eddy::prelude::*;
use eddy_cli::JobDefinition;
use std::process::ExitCode;
use std::time::Duration;

/// The job, as the `eddy` binary and application mode know it.
pub const JOB: JobDefinition = JobDefinition {
    name: "backpressure",
    about: "a fast source and a slow operator on different slots: credit-based backpressure",
    usage: "[--records N] [--sink-delay-us D]",
    build,
};

/// Builds the job's pipeline on `env`; returns the job's name.
pub fn build(env: &StreamExecutionEnvironment, argv: &[String]) -> Result<String, String> {
    let (mut records, mut delay_us) = (1_000_000i64, 100u64);
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--records" => {
                records = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--records must be a positive integer, got '{v}'"))?
            }
            "--sink-delay-us" => {
                delay_us = v
                    .parse()
                    .map_err(|_| format!("--sink-delay-us must be an integer >= 0, got '{v}'"))?
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let delay = Duration::from_micros(delay_us);
    env.set_parallelism(1);
    env.from_sequence(1, records)
        .set_parallelism(1)
        .name("Fast Source")
        .rebalance()
        .map(move |x: i64| {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            x
        })
        .name("Slow Map")
        .slot_sharing_group("slow")
        .sink_to_discard();
    Ok("Backpressure".into())
}

fn main() -> ExitCode {
    eddy_cli::example_main(&JOB)
}
