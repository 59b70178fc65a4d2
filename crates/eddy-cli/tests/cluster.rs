//! The distributed cluster with real processes: a jobmanager and taskmanagers started from the
//! built `eddy` binary on 127.0.0.1 with ephemeral ports, driven through the CLI. Every process
//! is killed when its handle drops, so a failing test leaves nothing running.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The final count of every word in word_count's output files.
fn final_counts(dir: &Path) -> std::collections::BTreeMap<String, i64> {
    let mut m = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        for l in std::fs::read_to_string(e.path()).unwrap().lines() {
            let (w, c) = l.rsplit_once(' ').unwrap();
            let c: i64 = c.parse().unwrap();
            let e = m.entry(w.to_string()).or_insert(0);
            *e = (*e).max(c);
        }
    }
    m
}

/// Every built-in job whose output is defined (event-time windows with late data and
/// checkpoints into the exactly-once file sink, session windows, a rolling word count) writes
/// the same output on the three shapes of a cluster: the MiniCluster of one taskmanager (every
/// channel in memory), of two (keyed channels cross the in-process network stacks), and a
/// jobmanager with two taskmanager processes (over TCP).
#[test]
fn built_in_jobs_write_the_same_output_on_every_shape() {
    let c = Cluster::start(EDDY, 2, 2);
    let dir = c.dir.path();
    let csv = dir.join("events.csv");
    window_csv(&csv, 40, 6000);
    let text_in = dir.join("text");
    std::fs::create_dir(&text_in).unwrap();
    for f in 0..3 {
        let t: String = (0..2000)
            .map(|i| format!("to be or not {} to be {}\n", i % 17, (i + f) % 7))
            .collect();
        std::fs::write(text_in.join(format!("part-{f}.txt")), t).unwrap();
    }
    type Args = fn(&Path, &Path, &Path, &Path) -> Vec<String>;
    let jobs: [(&str, Args); 3] = [
        ("window_count", |csv, _, out, chk| {
            window_args(csv, out, chk, "20000")
        }),
        ("session_window", |_, _, out, _| {
            [
                "--users",
                "5",
                "--clicks",
                "2000",
                "--parallelism",
                "2",
                "--output",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([out.to_str().unwrap().to_string()])
            .collect()
        }),
        ("word_count", |_, text, out, _| {
            vec![
                "--input".into(),
                text.to_str().unwrap().into(),
                "--output".into(),
                out.to_str().unwrap().into(),
                "-p".into(),
                "3".into(),
            ]
        }),
    ];
    for (job, args) in jobs {
        let mut outputs = Vec::new();
        for shape in ["minicluster-1", "minicluster-2", "processes"] {
            let out = dir.join(format!("{job}-{shape}"));
            let chk = dir.join(format!("{job}-{shape}-chk"));
            let a = args(&csv, &text_in, &out, &chk);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let o = match shape {
                "minicluster-1" => c.eddy_raw(&[&["run", job][..], &a].concat()),
                "minicluster-2" => c.eddy_raw(
                    &[
                        &["run", "-D", "minicluster.number-of-taskmanagers=2", job][..],
                        &a,
                    ]
                    .concat(),
                ),
                _ => c.eddy("run", &[&[job][..], &a].concat()),
            };
            assert!(o.status.success(), "{job} on {shape}: {}", text(&o));
            let mut lines = finished_lines(&out);
            lines.sort();
            assert!(lines.len() > 10, "{job} on {shape}: {} lines", lines.len());
            outputs.push((shape, lines));
        }
        for (shape, lines) in &outputs[1..] {
            assert!(
                lines == &outputs[0].1,
                "{job}: {shape} differs from {} ({} vs {} lines)",
                outputs[0].0,
                lines.len(),
                outputs[0].1.len()
            );
        }
    }
}

#[test]
fn word_count_on_two_taskmanagers_equals_the_minicluster_of_one_and_of_two() {
    let c = Cluster::start(EDDY, 2, 2);
    let input = c.dir.path().join("input");
    std::fs::create_dir(&input).unwrap();
    for f in 0..4 {
        let mut t = String::new();
        for i in 0..3000 {
            t.push_str(&format!(
                "Alpha beta, gamma{} delta! #{} epsilon\n",
                i % 13,
                (i + f) % 101
            ));
        }
        std::fs::write(input.join(format!("part-{f}.txt")), t).unwrap();
    }
    let out = c.dir.path().join("out");
    let o = c.eddy(
        "run",
        &[
            "word_count",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "-p",
            "4",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("switched from state RUNNING to FINISHED"),
        "{}",
        text(&o)
    );
    // The same job on the embedded MiniCluster.
    let local = c.dir.path().join("local");
    let o = c.eddy_raw(&[
        "run",
        "word_count",
        "--input",
        input.to_str().unwrap(),
        "--output",
        local.to_str().unwrap(),
        "-p",
        "4",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // And on a MiniCluster of two in-process taskmanagers.
    let local2 = c.dir.path().join("local2");
    let o = c.eddy_raw(&[
        "run",
        "-D",
        "minicluster.number-of-taskmanagers=2",
        "word_count",
        "--input",
        input.to_str().unwrap(),
        "--output",
        local2.to_str().unwrap(),
        "-p",
        "4",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let (remote, local) = (final_counts(&out), final_counts(&local));
    assert!(remote.len() > 100);
    assert_eq!(remote, local);
    assert_eq!(final_counts(&local2), local);
    // Records crossed between the taskmanagers over TCP, both ways.
    let tms = c.get("/taskmanagers")["taskmanagers"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(tms.len(), 2);
    for tm in &tms {
        assert!(
            tm["network"]["bytesSent"].as_u64().unwrap() > 10_000,
            "{tm}"
        );
        assert_eq!(tm["slotsNumber"], 2);
        assert!(tm["memory"]["networkBuffersTotal"].as_u64().unwrap() > 0);
        assert!(tm["memory"]["rss"].as_u64().unwrap() > 0);
    }
}

#[test]
fn not_enough_slots_and_no_checkpoint_directory_are_clear_errors() {
    let c = Cluster::start_with(EDDY, 1, 1, &["-D", "slot.request.timeout=1s"]);
    let o = c.eddy("run", &["word_count", "-p", "3"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("not enough slots: needed 3, available 1"),
        "{}",
        text(&o)
    );
    // Checkpointing without a shared directory would keep each taskmanager's state in its own
    // memory, lost at the first failover: refused at submission.
    let o = c.eddy(
        "run",
        &["-D", "execution.checkpointing.interval=100ms", "word_count"],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("state.checkpoints.dir"), "{}", text(&o));
    let o = c.eddy(
        "run",
        &[
            "-D",
            "execution.checkpointing.interval=100ms",
            "-D",
            "state.checkpoints.dir=relative/chk",
            "word_count",
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("relative path"), "{}", text(&o));
    assert_eq!(
        c.get("/jobs/overview")["jobs"].as_array().map(Vec::len),
        Some(1)
    );
}

fn window_args(input: &Path, out: &Path, chk: &Path, rps: &str) -> Vec<String> {
    [
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--checkpoint-dir",
        chk.to_str().unwrap(),
        "--checkpoint-interval-ms",
        "100",
        "--records-per-second",
        rps,
        "--size-ms",
        "500",
        "--lateness-ms",
        "100",
        "--out-of-orderness-ms",
        "100",
        "--parallelism",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The uninterrupted output of window_count on the MiniCluster.
fn reference(c: &Cluster, input: &Path) -> Vec<String> {
    let out = c.dir.path().join("ref");
    let a = window_args(input, &out, &c.dir.path().join("ref-chk"), "1000000");
    let mut args = vec!["run", "window_count"];
    args.extend(a.iter().map(String::as_str));
    let o = c.eddy_raw(&args);
    assert!(o.status.success(), "{}", text(&o));
    let lines = finished_lines(&out);
    assert!(lines.len() > 100, "reference too small: {}", lines.len());
    lines
}

#[test]
fn a_killed_taskmanager_fails_over_to_a_replacement_exactly_once() {
    // Opt-in chaos: EDDY_CLUSTER_CHAOS_ROUNDS=N runs N jobs, each losing a random
    // taskmanager at a random moment after its first checkpoints.
    let rounds: u64 = std::env::var("EDDY_CLUSTER_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut c = Cluster::start(EDDY, 2, 2);
    let input = c.dir.path().join("events.csv");
    window_csv(&input, 40, 6000);
    let expected = reference(&c, &input);
    let mut seed = 0x5eed_u64 ^ std::process::id() as u64;
    let mut alive: Vec<usize> = vec![0, 1];
    for round in 0..rounds {
        let out = c.dir.path().join(format!("out-{round}"));
        let chk = c.dir.path().join(format!("chk-{round}"));
        let a = window_args(&input, &out, &chk, "2000");
        let mut run = vec!["-d", "window_count"];
        run.extend(a.iter().map(String::as_str));
        let o = c.eddy("run", &run);
        assert!(o.status.success(), "{}", text(&o));
        let id = job_id_of(&o);
        // Tasks run on both taskmanagers; wait for completed checkpoints, then kill -9 one.
        c.wait_for("a completed checkpoint", |c| {
            c.job(&id)["checkpoints"]["completed"].as_u64().unwrap_or(0) >= 2
        });
        let tms: std::collections::BTreeSet<String> = c.job(&id)["vertices"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|v| v["subtasks"].as_array().unwrap().clone())
            .filter_map(|s| s["taskmanager-id"].as_str().map(str::to_string))
            .collect();
        assert_eq!(tms.len(), 2, "{tms:?}");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 400));
        let victim = alive.remove((seed % 2) as usize);
        c.tms[victim].kill9();
        c.add_taskmanager(2);
        alive.push(c.tms.len() - 1);
        c.wait_for("the job to end", |c| {
            matches!(
                c.job(&id)["state"].as_str(),
                Some("FINISHED" | "FAILED" | "CANCELED")
            )
        });
        let j = c.job(&id);
        eprintln!("round {round}: failures {}", j["failures"]);
        assert_eq!(j["state"], "FINISHED", "{j}");
        assert!(
            j["attempt"].as_u64().unwrap() >= 2,
            "no restart happened: {j}"
        );
        assert!(!j["failures"].as_array().unwrap().is_empty(), "{j}");
        assert_same_lines(&finished_lines(&out), &expected);
    }
}

/// With the default heartbeats (10 s interval, 50 s timeout) a `kill -9`ed taskmanager is
/// noticed within a fraction of a second: its connection to the jobmanager breaks, the
/// jobmanager probes at once and loses it after `heartbeat.rpc-failure-threshold` (2) failed
/// heartbeats, and its job — here entirely on it, so no data connection breaks — is
/// RESTARTING within 5 s, then finishes exactly once on a replacement.
/// `EDDY_DETECTION_KILLS=N` kills N times (one job each) and prints the distribution.
#[test]
fn a_killed_taskmanager_is_detected_within_seconds_with_default_heartbeats() {
    let kills: usize = std::env::var("EDDY_DETECTION_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut c = Cluster::start_heartbeats(EDDY, 1, 2, &[], &[]);
    let input = c.dir.path().join("events.csv");
    window_csv(&input, 40, 3000);
    let expected = reference(&c, &input);
    let mut detect_ms = Vec::new();
    let mut recover_ms = Vec::new();
    for round in 0..kills {
        let out = c.dir.path().join(format!("out-{round}"));
        let chk = c.dir.path().join(format!("chk-{round}"));
        let a = window_args(&input, &out, &chk, "3000");
        let mut run = vec!["-d", "window_count"];
        run.extend(a.iter().map(String::as_str));
        let o = c.eddy("run", &run);
        assert!(o.status.success(), "{}", text(&o));
        let id = job_id_of(&o);
        c.wait_for("a completed checkpoint", |c| {
            c.job(&id)["checkpoints"]["completed"].as_u64().unwrap_or(0) >= 1
        });
        // Every task on the newest taskmanager; a replacement registers, then it dies.
        let victim = c.tms.len() - 1;
        c.add_taskmanager(2);
        c.wait_taskmanagers(2);
        let started = Instant::now();
        c.tms[victim].kill9();
        let deadline = started + Duration::from_secs(20);
        loop {
            if c.job(&id)["state"] == "RESTARTING" || c.job(&id)["attempt"].as_u64() > Some(1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not restarting 20 s after the kill"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let detected = started.elapsed();
        c.wait_for("the job to end", |c| {
            matches!(
                c.job(&id)["state"].as_str(),
                Some("FINISHED" | "FAILED" | "CANCELED")
            )
        });
        let j = c.job(&id);
        assert_eq!(j["state"], "FINISHED", "{j}");
        assert_same_lines(&finished_lines(&out), &expected);
        let recovered = j["failures"][0]["recovered_after_ms"].as_u64().unwrap_or(0);
        eprintln!(
            "kill {round}: RESTARTING after {} ms, running again {recovered} ms after the \
             failure reached the jobmanager ({})",
            detected.as_millis(),
            j["failures"][0]["cause"]
        );
        detect_ms.push(detected.as_millis() as u64);
        recover_ms.push(recovered);
        assert!(
            detected < Duration::from_secs(5),
            "detected after {detected:?}"
        );
    }
    detect_ms.sort_unstable();
    recover_ms.sort_unstable();
    let pct = |v: &[u64], p: usize| v[(v.len() - 1) * p / 100];
    eprintln!(
        "{kills} kills: detection min {} / median {} / p90 {} / max {} ms; recovery median {} / \
         max {} ms",
        detect_ms[0],
        pct(&detect_ms, 50),
        pct(&detect_ms, 90),
        pct(&detect_ms, 100),
        pct(&recover_ms, 50),
        pct(&recover_ms, 100)
    );
}

/// Truncates every state file of every completed checkpoint under `root`; returns the
/// checkpoint directories.
fn truncate_checkpoints(root: &Path) -> Vec<String> {
    let mut chks = Vec::new();
    for job in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for chk in std::fs::read_dir(job.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if !chk.path().join("_metadata").is_file() {
                continue;
            }
            for f in std::fs::read_dir(chk.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if f.file_name() != "_metadata" {
                    let _ = std::fs::write(f.path(), b"");
                }
            }
            chks.push(chk.file_name().to_string_lossy().to_string());
        }
    }
    chks
}

/// The reproduction: state files truncated under every retained checkpoint, then a
/// taskmanager killed. The job must fail naming the checkpoints it could not use — not finish
/// after starting over from empty state with part of its output written twice.
#[test]
fn unreadable_checkpoints_fail_a_cluster_job_instead_of_replaying_it() {
    let mut c = Cluster::start(EDDY, 2, 2);
    let input = c.dir.path().join("events.csv");
    window_csv(&input, 40, 6000);
    let expected = reference(&c, &input);
    let out = c.dir.path().join("out");
    let chk = c.dir.path().join("chk");
    let a = window_args(&input, &out, &chk, "2000");
    let mut run = vec!["-d", "window_count"];
    run.extend(a.iter().map(String::as_str));
    let o = c.eddy("run", &run);
    assert!(o.status.success(), "{}", text(&o));
    let id = job_id_of(&o);
    c.wait_for("completed checkpoints", |c| {
        c.job(&id)["checkpoints"]["completed"].as_u64().unwrap_or(0) >= 3
    });
    truncate_checkpoints(&chk);
    c.tms[0].kill9();
    // A checkpoint that completed in between is truncated too.
    let mut chks = Vec::new();
    for _ in 0..30 {
        chks = truncate_checkpoints(&chk);
        std::thread::sleep(Duration::from_millis(10));
    }
    c.add_taskmanager(2);
    c.wait_for("the job to end", |c| {
        matches!(
            c.job(&id)["state"].as_str(),
            Some("FINISHED" | "FAILED" | "CANCELED")
        )
    });
    let j = c.job(&id);
    assert_eq!(j["state"], "FAILED", "{j}");
    let err = j["error"].as_str().unwrap_or_default();
    assert!(err.contains("never starts over from empty state"), "{err}");
    assert!(!chks.is_empty());
    for name in &chks {
        assert!(err.contains(name.as_str()), "{name} not named: {err}");
    }
    // Nothing committed twice.
    let mut want: std::collections::BTreeMap<&str, usize> = Default::default();
    for l in &expected {
        *want.entry(l.as_str()).or_default() += 1;
    }
    for l in finished_lines(&out) {
        let n = want
            .get_mut(l.as_str())
            .unwrap_or_else(|| panic!("unexpected line {l}"));
        assert!(*n > 0, "line written twice: {l}");
        *n -= 1;
    }
}

#[test]
fn two_jobs_side_by_side_cancel_and_list() {
    let c = Cluster::start(EDDY, 1, 4);
    let input = c.dir.path().join("events.csv");
    window_csv(&input, 10, 100_000);
    let out = c.dir.path().join("out");
    let a = window_args(&input, &out, &c.dir.path().join("chk"), "1000");
    let mut run = vec!["-d", "window_count"];
    run.extend(a.iter().map(String::as_str));
    let o = c.eddy("run", &run);
    assert!(o.status.success(), "{}", text(&o));
    let id = job_id_of(&o);
    // A second job shares the session cluster.
    let out2 = c.dir.path().join("out2");
    let a2 = window_args(&input, &out2, &c.dir.path().join("chk2"), "1000");
    let mut run2 = vec!["-d", "window_count"];
    run2.extend(a2.iter().map(String::as_str));
    let id2 = job_id_of(&c.eddy("run", &run2));
    c.wait_state(&id, "RUNNING");
    c.wait_state(&id2, "RUNNING");
    assert_eq!(c.get("/overview")["slots-available"], 0);
    let l = c.eddy("list", &[]);
    assert!(
        text(&l).contains(&id) && text(&l).contains(&id2),
        "{}",
        text(&l)
    );
    for j in [&id, &id2] {
        let o = c.eddy("cancel", &[j]);
        assert!(o.status.success(), "{}", text(&o));
        c.wait_state(j, "CANCELED");
    }
    let l = c.eddy("list", &["--all"]);
    assert!(text(&l).contains("No running jobs."), "{}", text(&l));
    assert!(text(&l).contains("CANCELED"), "{}", text(&l));
    // The slots are free again.
    c.wait_for("free slots", |c| c.get("/overview")["slots-available"] == 4);
    // An attached run ends with the cancellation's exit code.
    let rest = c.rest.clone();
    let dir = c.dir.path().to_path_buf();
    let mut attached = Command::new(EDDY)
        .args(["run", "-m", &rest, "window_count"])
        .args(&a)
        .env("EDDY_CONF_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(attached.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let id3 = field(&first, "JobID ").to_string();
    c.wait_state(&id3, "RUNNING");
    assert!(c.eddy("cancel", &[&id3]).status.success());
    let st = attached.wait().unwrap();
    assert_eq!(st.code(), Some(3));
}

#[test]
fn stop_with_savepoint_then_run_from_it_resumes_exactly_once() {
    let c = Cluster::start(EDDY, 2, 1);
    let input = c.dir.path().join("events.csv");
    window_csv(&input, 30, 5000);
    let expected = reference(&c, &input);
    let out = c.dir.path().join("out");
    let chk = c.dir.path().join("chk");
    let a = window_args(&input, &out, &chk, "2500");
    let mut run = vec!["-d", "window_count"];
    run.extend(a.iter().map(String::as_str));
    let o = c.eddy("run", &run);
    let id = job_id_of(&o);
    c.wait_for("a completed checkpoint", |c| {
        c.job(&id)["checkpoints"]["completed"].as_u64().unwrap_or(0) >= 1
    });
    let sp = c.dir.path().join("savepoints");
    let o = c.eddy("stop", &["--savepointPath", sp.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    let path = field(&t, "Path: ").to_string();
    c.wait_state(&id, "FINISHED");
    // Not everything was read yet: the rest comes from the resumed job.
    assert!(finished_lines(&out).len() < expected.len());
    let a2 = window_args(&input, &out, &chk, "1000000");
    let mut run = vec!["-s", &path, "window_count"];
    run.extend(a2.iter().map(String::as_str));
    let o = c.eddy("run", &run);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_lines(&finished_lines(&out), &expected);
}

#[test]
fn bad_configuration_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "taskmanager:\n  numberOfTaskSlot: 2\n",
    )
    .unwrap();
    let o = Command::new(EDDY)
        .args(["taskmanager"])
        .env("EDDY_CONF_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(t.contains("'taskmanager.numberOfTaskSlot'"), "{t}");
    assert!(
        t.contains("did you mean 'taskmanager.numberOfTaskSlots'"),
        "{t}"
    );
    let o = Command::new(EDDY)
        .args(["jobmanager", "-D", "rest.port=eighty"])
        .env("EDDY_CONF_DIR", dir.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("'rest.port'") && text(&o).contains("'eighty'"),
        "{}",
        text(&o)
    );
}

#[test]
fn cluster_start_runs_a_job_and_cluster_stop_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("log");
    let eddy = |args: &[&str]| {
        Command::new(EDDY)
            .args(args)
            .env("EDDY_CONF_DIR", dir.path())
            .env("EDDY_LOG_DIR", &logs)
            .output()
            .unwrap()
    };
    let ports = ["-D", "jobmanager.rpc.port=0", "-D", "rest.port=0"];
    let mut start = vec!["cluster", "start", "--taskmanagers", "2"];
    start.extend_from_slice(&ports);
    let o = eddy(&start);
    // Whatever happens next, the background processes are stopped.
    struct Stop<'a>(&'a dyn Fn(&[&str]) -> Output);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            (self.0)(&["cluster", "stop"]);
        }
    }
    let _stop = Stop(&eddy);
    assert!(o.status.success(), "{}", text(&o));
    let rest = field(&text(&o), "http://")
        .trim_end_matches(',')
        .to_string();
    // A second start refuses while the first cluster runs.
    let again = eddy(&start);
    assert!(!again.status.success());
    assert!(text(&again).contains("already running"), "{}", text(&again));
    let o = eddy(&["run", "-m", &rest, "word_count", "-p", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let pids: Vec<u32> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(pids.len(), 3);
    assert!(logs.join("eddy-taskmanager-1.log").exists());
    let o = eddy(&["cluster", "stop"]);
    assert!(o.status.success(), "{}", text(&o));
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids
        .iter()
        .any(|p| Path::new(&format!("/proc/{p}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "processes still alive after stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_slow_operator_on_one_taskmanager_back_pressures_the_source_on_another() {
    let c = Cluster::start(EDDY, 2, 1);
    let o = c.eddy(
        "run",
        &[
            "-d",
            "backpressure",
            "--records",
            "100000000",
            "--sink-delay-us",
            "200",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let id = job_id_of(&o);
    c.wait_for("both tasks running", |c| {
        c.job(&id)["vertices"]
            .as_array()
            .is_some_and(|vs| vs.iter().all(|v| v["tasks"]["RUNNING"] == 1))
    });
    let j = c.job(&id);
    let tm_of = |name: &str| -> String {
        j["vertices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"].as_str().unwrap().contains(name))
            .and_then(|v| v["subtasks"][0]["taskmanager-id"].as_str())
            .unwrap()
            .to_string()
    };
    let (source_tm, slow_tm) = (tm_of("Fast Source"), tm_of("Slow Map"));
    assert_ne!(
        source_tm, slow_tm,
        "source and slow operator share a taskmanager"
    );
    let sent = |c: &Cluster| -> (u64, u64, u64) {
        let tms = c.get("/taskmanagers")["taskmanagers"]
            .as_array()
            .cloned()
            .unwrap();
        let t = tms.iter().find(|t| t["id"] == source_tm.as_str()).unwrap();
        (
            t["network"]["bytesSent"].as_u64().unwrap(),
            t["memory"]["networkBuffersTotal"].as_u64().unwrap(),
            t["memory"]["networkBuffersAvailable"].as_u64().unwrap(),
        )
    };
    // The slow map takes at most ~5,000 records/s (200 µs each). Unthrottled, the source would
    // push millions of records (tens of MB) per second; with credits it sends what the slow side
    // consumed plus at most the credited buffers (4 × 32 KiB) and the one being filled.
    let started = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        let (bytes, total, available) = sent(&c);
        let secs = started.elapsed().as_secs_f64() + 1.0;
        let consumed_bound = (secs * 5_000.0 * 12.0) as u64;
        assert!(
            bytes <= consumed_bound + 6 * 32 * 1024 + 64 * 1024,
            "source sent {bytes} bytes in {secs:.1} s: not held back"
        );
        // Buffers in use on the sending side stay at the bound: one being filled, one in the
        // connection's queue.
        assert!(
            total - available <= 2,
            "{} buffers in use",
            total - available
        );
        samples.push(bytes);
    }
    // And it is not stalled: data keeps flowing at the slow side's pace.
    assert!(samples.last() > samples.first(), "{samples:?}");
    assert!(c.eddy("cancel", &[&id]).status.success());
    c.wait_state(&id, "CANCELED");
}

#[test]
fn nexmark_on_two_taskmanagers_and_on_a_minicluster_of_two_matches_the_reference() {
    use eddy::connectors::nexmark::GeneratorConfig;
    use eddy_nexmark::checksum::Checksum;
    use eddy_nexmark::{reference_checksum, Query};
    let c = Cluster::start(EDDY, 2, 1);
    for (q, query) in [("q3", Query::Q3), ("q5", Query::Q5)] {
        let o = c.eddy(
            "run",
            &["nexmark", "--query", q, "--events", "60000", "-p", "2"],
        );
        assert!(o.status.success(), "{}", text(&o));
        // Each taskmanager prints the checksum of what its sink subtasks saw; merged, they are
        // the job's output. (The lines may reach this process a moment after the job ends.)
        let config = GeneratorConfig {
            events: 60_000,
            ..GeneratorConfig::default()
        };
        let expected = reference_checksum(query, &config);
        let mut last: Vec<Option<Checksum>> = vec![None; c.tms.len()];
        let deadline = Instant::now() + Duration::from_secs(10);
        let total = loop {
            for (i, tm) in c.tms.iter().enumerate() {
                for l in tm.drain() {
                    if let Some(v) = l.strip_prefix(&format!(
                        "nexmark {q}: output checksum so far in this process "
                    )) {
                        let (rows, sum) = v.split_once(':').unwrap();
                        last[i] = Some(Checksum {
                            rows: rows.parse().unwrap(),
                            sum: u64::from_str_radix(sum, 16).unwrap(),
                        });
                    }
                }
            }
            let mut total = Checksum::default();
            for c in last.iter().flatten() {
                total.merge(*c);
            }
            if total == expected || Instant::now() > deadline {
                break total;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            last.iter().all(Option::is_some),
            "a taskmanager printed no checksum"
        );
        assert_eq!(total, expected, "{q}");
        // The same query on a MiniCluster of two in-process taskmanagers: one process, so its
        // last checksum line is the job's output.
        let o = c.eddy_raw(&[
            "run",
            "-D",
            "minicluster.number-of-taskmanagers=2",
            "nexmark",
            "--query",
            q,
            "--events",
            "60000",
            "-p",
            "2",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let prefix = format!("nexmark {q}: output checksum so far in this process ");
        let stdout = String::from_utf8_lossy(&o.stdout);
        let last = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no checksum printed: {}", text(&o)));
        let (rows, sum) = last.split_once(':').unwrap();
        let local = Checksum {
            rows: rows.parse().unwrap(),
            sum: u64::from_str_radix(sum, 16).unwrap(),
        };
        assert_eq!(local, expected, "{q} on 2 in-process taskmanagers");
        assert!(
            !text(&o).contains("data connection to"),
            "stopping the MiniCluster is not a lost connection: {}",
            text(&o)
        );
    }
}

/// `eddy run` without a jobmanager, with `rest.enabled`: the MiniCluster's Dispatcher serves
/// the same REST API a jobmanager does while the job runs — the job RUNNING, its in-process
/// taskmanagers, and a cancel through `PATCH /jobs/{id}` that ends the local run.
#[test]
fn a_local_run_with_rest_enabled_is_watched_and_cancelled_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    window_csv(&input, 40, 100_000);
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    // 500 records/s: far longer than the test takes.
    let a = window_args(&input, &out, &chk, "500");
    let mut args = vec![
        "run",
        "-D",
        "rest.enabled=true",
        "-D",
        "rest.port=0",
        "-D",
        "minicluster.number-of-taskmanagers=2",
        "window_count",
    ];
    args.extend(a.iter().map(String::as_str));
    let mut p = Proc::start(EDDY, "local-rest", dir.path(), &args);
    let base = field(&p.wait_line("MiniCluster REST endpoint:"), "endpoint:").to_string();
    let id = field(&p.wait_line("Job has been submitted with JobID"), "JobID").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_json(&format!("{base}/jobs/{id}"))["state"] != "RUNNING" {
        assert!(
            Instant::now() < deadline,
            "job {id} never RUNNING over REST"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let jobs = get_json(&format!("{base}/jobs"));
    assert!(jobs.to_string().contains(&id), "{jobs}");
    let tms = get_json(&format!("{base}/taskmanagers"))["taskmanagers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(tms.len(), 2, "{tms:?}");
    // The taskmanagers' reports stay current (records cross between them).
    while get_json(&format!("{base}/taskmanagers"))["taskmanagers"]
        .as_array()
        .is_none_or(|t| t.iter().all(|tm| tm["network"]["bytesSent"] == 0))
    {
        assert!(
            Instant::now() < deadline,
            "no traffic ever reported over REST"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = ureq::patch(&format!("{base}/jobs/{id}")).send_empty();
    assert!(r.is_ok(), "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the cancelled local run did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "a cancelled run does not exit 0");
    let log = std::fs::read_to_string(&p.log).unwrap();
    assert!(log.contains("cancel"), "{log}");
}

/// `taskmanager.numberOfTaskSlots` shapes the MiniCluster of `eddy run` as it shapes a
/// taskmanager process: too few slots fail the job before it runs, naming them; enough
/// TaskManagers of that many slots run it.
#[test]
fn a_local_run_takes_its_slots_per_taskmanager_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let run = |defines: &[&str]| {
        let mut args = vec!["run"];
        for d in defines {
            args.extend(["-D", d]);
        }
        args.extend(["word_count", "-p", "4"]);
        Command::new(EDDY)
            .args(&args)
            .env("EDDY_CONF_DIR", dir.path())
            .output()
            .unwrap()
    };
    let o = run(&["taskmanager.numberOfTaskSlots=1"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("not enough slots: needed 4, available 1"),
        "{}",
        text(&o)
    );
    let o = run(&[
        "taskmanager.numberOfTaskSlots=1",
        "minicluster.number-of-taskmanagers=4",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Without the key, the MiniCluster has the slots the job needs.
    assert!(run(&[]).status.success());
}
