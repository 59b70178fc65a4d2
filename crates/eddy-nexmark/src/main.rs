//! `nexmark`: runs one Nexmark query on the embedded MiniCluster and checks its output
//! against the reference implementation's checksum. (The benchmark harness that runs all
//! queries and measures CPU and memory comes next.)

use anyhow::{bail, Context, Result};
use eddy::connectors::nexmark::GeneratorConfig;
use eddy::prelude::*;
use eddy_nexmark::checksum::{Checksum, SharedChecksum};
use eddy_nexmark::{add_query, reference, reference_checksum, Query, Sink};
use std::time::Duration;

fn main() -> Result<()> {
    let mut query = Query::Q0;
    let mut config = GeneratorConfig::default();
    let mut parallelism = 2usize;
    let mut checkpoint_ms = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--query" => query = value()?.parse().map_err(anyhow::Error::msg)?,
            "--events" => config.events = value()?.replace('_', "").parse()?,
            "--rate" => config.events_per_second = value()?.parse()?,
            "-p" | "--parallelism" => parallelism = value()?.parse()?,
            "--checkpoint-interval-ms" => checkpoint_ms = Some(value()?.parse()?),
            other => bail!("unknown argument '{other}' (usage: nexmark --query q5 --events N [-p P] [--rate EVENTS_PER_S] [--checkpoint-interval-ms I])"),
        }
    }
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(parallelism);
    let chk_dir = std::env::temp_dir().join(format!("eddy-nexmark-{}", std::process::id()));
    if let Some(ms) = checkpoint_ms {
        env.enable_checkpointing(Duration::from_millis(ms));
        let d = chk_dir.display().to_string();
        env.configure_checkpointing(move |c| c.storage = Some(d));
    }
    let sum = SharedChecksum::default();
    add_query(&env, query, &config, &Sink::Checksum(sum.clone()));
    let result = env.execute(&format!("Nexmark {}", query.name()))?;
    let _ = std::fs::remove_dir_all(&chk_dir);
    let got: Checksum = *sum.lock().map_err(|_| anyhow::anyhow!("checksum lock"))?;
    let secs = result.net_runtime.as_secs_f64();
    let expected = reference_checksum(query, &reference::events(&config));
    println!(
        "{} p={parallelism}: {} events in {secs:.2} s = {:.2} M events/s, output {} ({})",
        query.name(),
        config.events,
        config.events as f64 / secs / 1e6,
        got.to_hex(),
        if got == expected { "checked" } else { "WRONG" }
    );
    if got != expected {
        bail!(
            "{}: output checksum {} differs from the reference's {}",
            query.name(),
            got.to_hex(),
            expected.to_hex()
        );
    }
    Ok(())
}
