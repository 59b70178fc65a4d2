//! Durability of checkpoints and savepoints on files, checked on the system calls that reach
//! the kernel: a job is run under `strace`, and for every `_metadata` renamed into place the
//! trace must show each state file of that checkpoint fsynced before the rename, the
//! checkpoint directory fsynced before and after it, and the directory's own entry made
//! durable in its parent. Without that order a power loss can leave a valid `_metadata` over
//! truncated state. (`.ci/run` installs strace.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::SlowSequence;

const HELPER_ENV: &str = "EDDY_DURABILITY_HELPER_DIR";

/// Not a test on its own: the job the durability test traces (it runs only when the test
/// starts it under strace with `EDDY_DURABILITY_HELPER_DIR` set). Checkpoints every 20 ms,
/// then a savepoint, then a stop-with-savepoint.
#[test]
fn durability_helper_job() {
    let Ok(dir) = std::env::var(HELPER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(20));
    let chk = dir.join("chk");
    env.configure_checkpointing(|c| c.storage = Some(chk.display().to_string()));
    env.add_source("Slow Sequence", || SlowSequence::new(1_000_000, 20, 1))
        .set_parallelism(1)
        .uid("source")
        .map(|v: u64| (v % 7, 1u64))
        .key_by(|t: &(u64, u64)| t.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("count")
        .sink_to_discard();
    let mut client = env.execute_async("durability").unwrap();
    while client.checkpoint_stats().counts.completed < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    client
        .trigger_savepoint(Some(&dir.join("savepoints")))
        .expect("savepoint");
    client
        .stop_with_savepoint(Some(&dir.join("savepoints")), false)
        .expect("stop with savepoint");
    client.wait().unwrap();
}

/// One traced system call: its kind and the paths it names.
#[derive(Debug)]
enum Call {
    Create(String),
    Fsync(String),
    Rename(String, String),
}

fn quoted(s: &str) -> Vec<String> {
    s.split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, q)| q.to_string())
        .collect()
}

fn parse_trace(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    for line in text.lines() {
        // `PID call(args...` (possibly `<unfinished ...>`); resumed halves add nothing needed.
        let Some(rest) = line.split_once(' ').map(|(_, r)| r.trim_start()) else {
            continue;
        };
        if rest.starts_with("openat(") && rest.contains("O_CREAT") {
            if let Some(p) = quoted(rest).into_iter().next() {
                calls.push(Call::Create(p));
            }
        } else if let Some(args) = rest
            .strip_prefix("fsync(")
            .or_else(|| rest.strip_prefix("fdatasync("))
        {
            // `fsync(7</path>)`: -y prints the path of the descriptor.
            if let Some(p) = args.split_once('<').and_then(|(_, p)| p.split_once('>')) {
                calls.push(Call::Fsync(p.0.to_string()));
            }
        } else if rest.starts_with("rename(")
            || rest.starts_with("renameat(")
            || rest.starts_with("renameat2(")
        {
            let q = quoted(rest);
            if q.len() >= 2 {
                calls.push(Call::Rename(q[0].clone(), q[1].clone()));
            }
        }
    }
    calls
}

fn parent(p: &str) -> String {
    Path::new(p)
        .parent()
        .map(|x| x.display().to_string())
        .unwrap_or_default()
}

#[test]
fn checkpoint_and_savepoint_files_are_fsynced_before_metadata_names_them() {
    if Command::new("strace").arg("-V").output().is_err() {
        panic!("strace is needed for this test (apt-get install strace; .ci/run installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let out = Command::new("strace")
        .args(["-f", "-y", "-qq", "-s", "4096", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=openat,fsync,fdatasync,rename,renameat,renameat2",
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "durability_helper_job", "--nocapture"])
        .env(HELPER_ENV, dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the traced job failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = parse_trace(&std::fs::read_to_string(&trace).unwrap());
    let root = dir.path().display().to_string();
    let mut checked: BTreeMap<&str, usize> = BTreeMap::new();
    for (at, c) in calls.iter().enumerate() {
        let Call::Rename(from, to) = c else { continue };
        if !to.starts_with(&root) || !to.ends_with("/_metadata") {
            continue;
        }
        assert!(from.ends_with("/_metadata.inprogress"), "{from} -> {to}");
        let d = parent(to);
        let kind = if d.contains("/savepoints/") {
            "savepoint"
        } else {
            "checkpoint"
        };
        let fsynced_before = |path: &str| {
            calls[..at]
                .iter()
                .any(|c| matches!(c, Call::Fsync(p) if p == path))
        };
        let state_files: Vec<&String> = calls[..at]
            .iter()
            .filter_map(|c| match c {
                Call::Create(p) if parent(p) == d && !p.ends_with("_metadata.inprogress") => {
                    Some(p)
                }
                _ => None,
            })
            .collect();
        assert!(!state_files.is_empty(), "{d}: no state files traced");
        for f in state_files {
            assert!(fsynced_before(f), "{f} not fsynced before {to} was renamed");
        }
        assert!(fsynced_before(from), "{from} not fsynced before its rename");
        assert!(fsynced_before(&d), "{d} not fsynced before the rename");
        assert!(
            fsynced_before(&parent(&d)),
            "{d}'s entry in {} not made durable",
            parent(&d)
        );
        assert!(
            calls[at..]
                .iter()
                .any(|c| matches!(c, Call::Fsync(p) if *p == d)),
            "{d} not fsynced after the rename"
        );
        *checked.entry(kind).or_default() += 1;
    }
    assert!(
        checked.get("checkpoint").copied().unwrap_or(0) >= 3,
        "{checked:?}"
    );
    assert_eq!(checked.get("savepoint").copied(), Some(2), "{checked:?}");
}
