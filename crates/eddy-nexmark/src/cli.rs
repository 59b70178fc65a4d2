//! The benchmark's command line, shared by the `nexmark` binary and `eddy bench nexmark`: the
//! process edge of this crate (hence `anyhow` here and nowhere else in it).
//!
//! - `nexmark --query q5 --events N [-p P] [--rate R] [--checkpoint-interval-ms I]` runs one
//!   query and checks its output checksum against the reference implementation.
//! - `nexmark bench [--queries q0,q1,…] [--events N] [-p P] [--rate R]
//!   [--checkpoint-interval-ms I] [--json FILE]` runs each query in a child process of its
//!   own (so CPU time and peak RSS are the query's) and prints, per query, events/s, events/s
//!   per core used, CPU seconds, peak RSS and the checked checksum; `--json` writes the same.
//! - `nexmark cost [--queries q0,q5] [--events N] [--rate R]`: the COST baseline (McSherry
//!   et al.): each query's single-threaded reference loop, and a word count over N/10 lines,
//!   timed against the engine at p=1 and p=2 (the engine should be within 2x of the loop at
//!   p=1 and faster at p=2); the word count runs twice, with `reduce` (row `words`) and with
//!   `reduce_two_phase` (row `words2`).

use crate::checksum::{Checksum, SharedChecksum};
use crate::{add_query, reference_checksum, wordcount, Query, Sink};
use anyhow::{bail, Context, Result};
use eddy::connectors::nexmark::GeneratorConfig;
use eddy::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const USAGE: &str = "usage: nexmark [bench] --query q5 | --queries q0,q1,.. [--events N] [-p P] [--rate EVENTS_PER_S] [--checkpoint-interval-ms I] [--json FILE]";

struct Args {
    /// The arguments that make this same binary run the benchmark again (for child runs).
    reinvoke: Vec<String>,
    bench: bool,
    cost: bool,
    queries: Vec<Query>,
    config: GeneratorConfig,
    parallelism: usize,
    checkpoint_ms: Option<u64>,
    json: Option<std::path::PathBuf>,
    child: bool,
}

fn parse(args: Vec<String>, reinvoke: &[&str]) -> Result<Args> {
    let mut a = Args {
        reinvoke: reinvoke.iter().map(|s| s.to_string()).collect(),
        bench: false,
        cost: false,
        queries: vec![Query::Q0],
        config: GeneratorConfig::default(),
        parallelism: 2,
        checkpoint_ms: None,
        json: None,
        child: false,
    };
    let mut it = args.into_iter().peekable();
    match it.peek().map(String::as_str) {
        Some("bench") => {
            it.next();
            a.bench = true;
            a.queries = Query::ALL.to_vec();
        }
        Some("cost") => {
            it.next();
            a.cost = true;
            a.queries = vec![Query::Q0, Query::Q5];
        }
        _ => {}
    }
    while let Some(arg) = it.next() {
        // The one flag without a value.
        if arg == "--child" {
            a.child = true;
            continue;
        }
        let value = it
            .next()
            .with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--query" | "--queries" => {
                a.queries = value?
                    .split(',')
                    .map(|q| q.parse().map_err(anyhow::Error::msg))
                    .collect::<Result<_>>()?
            }
            "--events" => a.config.events = number(&arg, value?)?,
            "--rate" => a.config.events_per_second = number(&arg, value?)?,
            "-p" | "--parallelism" => a.parallelism = number(&arg, value?)?,
            "--checkpoint-interval-ms" => a.checkpoint_ms = Some(number(&arg, value?)?),
            "--json" => a.json = Some(value?.into()),
            other => bail!("unknown argument '{other}'\n{USAGE}"),
        }
    }
    if a.parallelism == 0 {
        bail!("-p must be at least 1");
    }
    a.config.validate()?;
    Ok(a)
}

/// Parses the number given to `arg` (`_` separators allowed), naming both when it is none.
fn number<T: std::str::FromStr>(arg: &str, value: String) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .replace('_', "")
        .parse()
        .map_err(|e| anyhow::anyhow!("{arg} {value}: {e}\n{USAGE}"))
}

/// What one query run measured.
#[derive(Debug, Serialize, Deserialize)]
struct Measurement {
    query: String,
    events: u64,
    parallelism: usize,
    checkpoint_interval_ms: Option<u64>,
    seconds: f64,
    events_per_second: f64,
    cpu_seconds: f64,
    events_per_cpu_second: f64,
    peak_rss_mb: f64,
    checksum: String,
    checked: Option<bool>,
}

/// User + system CPU seconds of this process so far (`/proc/self/stat`, clock ticks of
/// 1/100 s on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size of this process in MB (`VmHWM`).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run_one(a: &Args, query: Query) -> Result<(Measurement, Checksum)> {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(a.parallelism);
    let chk_dir = std::env::temp_dir().join(format!("eddy-nexmark-{}", std::process::id()));
    if let Some(ms) = a.checkpoint_ms {
        env.enable_checkpointing(Duration::from_millis(ms));
        let d = chk_dir.display().to_string();
        env.configure_checkpointing(move |c| c.storage = Some(d));
    }
    let sum = SharedChecksum::default();
    add_query(&env, query, &a.config, &Sink::Checksum(sum.clone()))?;
    let cpu0 = cpu_seconds();
    let result = env.execute(&format!("Nexmark {}", query.name()))?;
    let cpu = cpu_seconds() - cpu0;
    let _ = std::fs::remove_dir_all(&chk_dir);
    let got: Checksum = *sum.lock().map_err(|_| anyhow::anyhow!("checksum lock"))?;
    let seconds = result.net_runtime.as_secs_f64();
    let events = a.config.events;
    Ok((
        Measurement {
            query: query.name().to_string(),
            events,
            parallelism: a.parallelism,
            checkpoint_interval_ms: a.checkpoint_ms,
            seconds,
            events_per_second: events as f64 / seconds,
            cpu_seconds: cpu,
            events_per_cpu_second: events as f64 / cpu.max(0.01),
            peak_rss_mb: peak_rss_mb(),
            checksum: got.to_hex(),
            checked: None,
        },
        got,
    ))
}

/// Runs `query` in a child process at parallelism `p` and returns its measurement.
fn measure_in_child(a: &Args, query: Query, p: usize) -> Result<Measurement> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(&a.reinvoke)
        .args(["--query", query.name(), "--child", "-p", &p.to_string()])
        .args(["--events", &a.config.events.to_string()])
        .args(["--rate", &a.config.events_per_second.to_string()]);
    if let Some(ms) = a.checkpoint_ms {
        cmd.args(["--checkpoint-interval-ms", &ms.to_string()]);
    }
    let out = cmd.output().context("starting a query process")?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            query.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim())
        .with_context(|| format!("reading {}'s measurement: {line}", query.name()))
}

/// The COST comparison: the reference loop against the engine at p=1 and p=2.
fn cost(a: &Args) -> Result<()> {
    println!(
        "{:<6} {:>14} {:>14} {:>14}  (events/s; engine p=1 should be within 2x of the loop, p=2 faster)",
        "query", "1-thread loop", "engine p=1", "engine p=2"
    );
    for &q in &a.queries {
        let start = std::time::Instant::now();
        let expected = reference_checksum(q, &a.config);
        let loop_rate = a.config.events as f64 / start.elapsed().as_secs_f64();
        let p1 = measure_in_child(a, q, 1)?;
        let p2 = measure_in_child(a, q, 2)?;
        for m in [&p1, &p2] {
            if m.checksum != expected.to_hex() {
                bail!(
                    "{}: engine output {} differs from the loop's {}",
                    q.name(),
                    m.checksum,
                    expected.to_hex()
                );
            }
        }
        print_cost(
            q.name(),
            loop_rate,
            p1.events_per_second,
            p2.events_per_second,
        );
    }
    // Word count over as many lines as events were asked for / 10 (10 words per line), in
    // words per second.
    let lines = (a.config.events / 10).max(1);
    let words = lines as f64 * 10.0;
    let start = std::time::Instant::now();
    let expected = wordcount::word_count_loop(lines);
    let loop_rate = words / start.elapsed().as_secs_f64();
    for two_phase in [false, true] {
        let mut rates = Vec::new();
        for p in [1, 2] {
            let env = StreamExecutionEnvironment::get_execution_environment();
            env.set_parallelism(p);
            let sum = SharedChecksum::default();
            wordcount::add_word_count(&env, lines, &sum, two_phase);
            let r = env.execute("word count")?;
            let got = *sum.lock().map_err(|_| anyhow::anyhow!("checksum lock"))?;
            if got != expected {
                bail!(
                    "word count p={p} (two-phase: {two_phase}): output {} differs from the \
                     loop's {}",
                    got.to_hex(),
                    expected.to_hex()
                );
            }
            rates.push(words / r.net_runtime.as_secs_f64());
        }
        let name = if two_phase { "words2" } else { "words" };
        print_cost(name, loop_rate, rates[0], rates[1]);
    }
    Ok(())
}

fn print_cost(name: &str, loop_rate: f64, p1: f64, p2: f64) {
    println!(
        "{name:<6} {:>12.2} M {:>12.2} M {:>12.2} M  p=1 at {:.2}x of the loop, p=2 at {:.2}x",
        loop_rate / 1e6,
        p1 / 1e6,
        p2 / 1e6,
        p1 / loop_rate,
        p2 / loop_rate
    );
}

/// Runs the benchmark command `args` (`[bench|cost] --query …`); `reinvoke` are the arguments
/// that select the benchmark in this binary (`[]` for `nexmark`, `["bench", "nexmark"]` for
/// `eddy`), used to start the per-query child processes.
pub fn main(args: Vec<String>, reinvoke: &[&str]) -> Result<()> {
    let a = parse(args, reinvoke)?;
    if a.cost {
        return cost(&a);
    }
    if a.child {
        // One query, measured, as a JSON line for the parent (which checks it).
        let (m, _) = run_one(&a, a.queries[0])?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    let mut all = Vec::new();
    let mut wrong = Vec::new();
    if a.bench {
        println!(
            "{:<5} {:>12} {:>14} {:>9} {:>10}  checksum",
            "query", "events/s", "events/cpu-s", "cpu s", "peak RSS"
        );
    }
    for &q in &a.queries {
        let mut m = if a.bench {
            measure_in_child(&a, q, a.parallelism)?
        } else {
            run_one(&a, q)?.0
        };
        let expected = reference_checksum(q, &a.config).to_hex();
        m.checked = Some(m.checksum == expected);
        if m.checksum != expected {
            wrong.push(format!(
                "{}: {} (reference {expected})",
                q.name(),
                m.checksum
            ));
        }
        let verdict = if m.checked == Some(true) {
            "checked"
        } else {
            "WRONG"
        };
        if a.bench {
            println!(
                "{:<5} {:>10.2} M {:>12.2} M {:>9.2} {:>7.0} MB  {} {verdict}",
                m.query,
                m.events_per_second / 1e6,
                m.events_per_cpu_second / 1e6,
                m.cpu_seconds,
                m.peak_rss_mb,
                m.checksum
            );
        } else {
            println!(
                "{} p={}: {} events in {:.2} s = {:.2} M events/s, output {} ({verdict})",
                m.query,
                m.parallelism,
                m.events,
                m.seconds,
                m.events_per_second / 1e6,
                m.checksum
            );
        }
        all.push(m);
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&all)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !wrong.is_empty() {
        bail!("output differs from the reference: {}", wrong.join("; "));
    }
    Ok(())
}
