//! Runs every program in `examples/` as a user would and checks what it prints or writes.
//! `cargo test` builds the examples first; they are found next to this test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy_testing::finished_lines;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let p = dir.join("examples").join(name);
    assert!(p.exists(), "example binary {} not built", p.display());
    p
}

fn run(name: &str, args: &[&str]) -> Output {
    let out = Command::new(example(name))
        .args(args)
        .output()
        .expect("run example");
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines(out: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn normalize(w: &str) -> Option<String> {
    let w = w.trim_matches(|c: char| c.is_ascii_punctuation());
    (!w.is_empty()).then(|| w.to_lowercase())
}

#[test]
fn word_count_follows_the_contract_at_several_parallelisms() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    std::fs::create_dir(&input).unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for f in 0..3 {
        let mut text = String::new();
        for i in 0..2000 {
            let line = format!(
                "The quick, brown fox #{} jumps over \"the\" lazy dog{}... {} !! --",
                i % 37,
                i % 5,
                ["Alpha", "beta!", "GAMMA?", "(delta)"][(i + f) % 4]
            );
            for w in line.split_whitespace().filter_map(normalize) {
                *expected.entry(w).or_default() += 1;
            }
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(input.join(format!("part-{f}.txt")), text).unwrap();
    }
    for p in ["1", "2", "4"] {
        let output = dir.path().join(format!("out-{p}"));
        run(
            "word_count",
            &[
                "--input",
                input.to_str().unwrap(),
                "--output",
                output.to_str().unwrap(),
                "--parallelism",
                p,
            ],
        );
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        let mut updates: BTreeMap<String, i64> = BTreeMap::new();
        let mut files = 0;
        for entry in std::fs::read_dir(&output).unwrap() {
            files += 1;
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for line in text.lines() {
                let (w, c) = line.rsplit_once(' ').expect("line 'word count'");
                let c: i64 = c.parse().unwrap();
                let prev = last.insert(w.to_string(), c);
                assert!(prev.is_none_or(|x| x < c), "counts of {w} must grow");
                *updates.entry(w.to_string()).or_default() += 1;
            }
        }
        assert_eq!(files.to_string(), p, "one file per sink subtask");
        assert_eq!(last, expected, "final counts at parallelism {p}");
        assert_eq!(
            updates, expected,
            "every update is written at parallelism {p}"
        );
    }
}

#[test]
fn word_count_without_input_prints_the_demo() {
    let out = run("word_count", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(\"to\", 5)"), "{text}");
}

#[test]
fn word_count_rejects_bad_arguments() {
    let out = Command::new(example("word_count"))
        .args(["--parallelism", "zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--parallelism"));
    let missing = Command::new(example("word_count"))
        .args(["--input", "/definitely/not/here", "--output", "/tmp/x"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/definitely/not/here"));
}

#[test]
fn socket_word_count_counts_lines_from_a_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let child = Command::new(example("socket_word_count"))
        .args(["--host", "127.0.0.1", "--port", &port])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.write_all(b"hello world\nhello eddy\nHELLO flink\n")
        .unwrap();
    drop(conn);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out);
    for want in ["hello 3", "world 1", "eddy 1", "flink 1"] {
        assert!(
            got.contains(&want.to_string()),
            "{want} missing from {got:?}"
        );
    }
}

#[test]
fn count_with_timeout_emits_each_key_once() {
    let out = run("count_with_timeout", &[]);
    assert_eq!(lines(&out), vec!["alice 3", "bob 5", "carol 3"]);
}

#[test]
fn fraud_detection_alerts_exactly_the_planted_patterns() {
    let out = run("fraud_detection", &[]);
    assert_eq!(lines(&out), vec!["Alert { id: 3 }", "Alert { id: 5 }"]);
}

/// Reads every `word count` line of an output directory.
fn read_counts(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                let (w, c) = l.rsplit_once(' ').unwrap();
                v.push((w.to_string(), c.parse().unwrap()));
            }
        }
    }
    v
}

#[test]
fn window_word_count_counts_every_word_once_across_processing_time_windows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(
        "window_word_count",
        &[
            "--lines",
            "400",
            "--rate",
            "500",
            "--window-ms",
            "200",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    let counts = read_counts(&out);
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for (w, c) in &counts {
        *totals.entry(w.clone()).or_default() += c;
    }
    // 400 lines cycle through 4 lines: each line 100 times.
    assert_eq!(totals["the"], 500);
    assert_eq!(totals["fox"], 200);
    assert_eq!(totals["dog"], 100);
    assert_eq!(totals.values().sum::<u64>(), 100 * (9 + 7 + 6 + 5));
    // Spread over ~0.8 s of 200 ms windows: several firings per word.
    assert!(
        counts.iter().filter(|(w, _)| w == "the").count() > 1,
        "{counts:?}"
    );
}

#[test]
fn session_window_example_closes_sessions_after_30_minutes_of_inactivity() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(
        "session_window",
        &[
            "--users",
            "7",
            "--clicks",
            "3000",
            "--parallelism",
            "3",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    let mut sessions: BTreeMap<String, Vec<(i64, i64, u64)>> = BTreeMap::new();
    for f in std::fs::read_dir(&out).unwrap() {
        for l in std::fs::read_to_string(f.unwrap().path()).unwrap().lines() {
            let v: Vec<&str> = l.split(',').collect();
            assert_eq!(v.len(), 5, "{l}");
            sessions.entry(v[0].to_string()).or_default().push((
                v[1].parse().unwrap(),
                v[2].parse().unwrap(),
                v[3].parse().unwrap(),
            ));
        }
    }
    let total: u64 = sessions.values().flatten().map(|s| s.2).sum();
    assert_eq!(total, 3000, "every click is in exactly one session");
    assert_eq!(sessions.len(), 7);
    let gap = 30 * 60_000;
    for (user, mut v) in sessions {
        v.sort();
        assert!(v.len() > 1, "{user} has several sessions");
        for s in &v {
            assert!(s.1 - s.0 >= gap, "a session lasts at least the gap: {s:?}");
        }
        for w in v.windows(2) {
            // Sessions of a user never overlap or touch: the next starts after this one's end.
            assert!(w[1].0 > w[0].1, "{user}: {:?} then {:?}", w[0], w[1]);
        }
    }
}

/// A line of the window contract output: `key,window_start,window_end,count,sum`.
type WindowLine = (String, i64, i64, u64, i64);

/// Flink's event-time window semantics, simulated record by record: the watermark after each
/// record is `max_ts - o - 1`; a window fires when the watermark reaches its end - 1, again
/// for every element that arrives within the allowed lateness `a`, and is dropped after
/// `end - 1 + a`; an element for which every window is dropped is late.
fn simulate_fixed_windows(
    records: &[(String, i64, i64)],
    size: i64,
    slide: i64,
    a: i64,
    o: i64,
) -> (Vec<WindowLine>, Vec<String>) {
    let mut acc: BTreeMap<(String, i64), (u64, i64)> = BTreeMap::new();
    let (mut out, mut late) = (Vec::new(), Vec::new());
    let mut wm = i64::MIN;
    let mut max_ts = i64::MIN;
    let fire_until = |acc: &mut BTreeMap<(String, i64), (u64, i64)>,
                      out: &mut Vec<WindowLine>,
                      old: i64,
                      new: i64| {
        for ((k, s), (c, sum)) in acc.iter() {
            let end = s + size;
            if end - 1 > old && end - 1 <= new {
                out.push((k.clone(), *s, end, *c, *sum));
            }
        }
        acc.retain(|(_, s), _| s + size - 1 + a > new);
    };
    for (k, ts, v) in records {
        let mut skipped = true;
        let mut start = ts - ts.rem_euclid(slide);
        while start > ts - size {
            let end = start + size;
            if end - 1 + a > wm {
                skipped = false;
                let e = acc.entry((k.clone(), start)).or_default();
                e.0 += 1;
                e.1 += v;
                if end - 1 <= wm {
                    out.push((k.clone(), start, end, e.0, e.1));
                }
            }
            start -= slide;
        }
        if skipped && ts + a <= wm {
            late.push(format!("{k},{ts},{v}"));
        }
        if *ts > max_ts {
            max_ts = *ts;
            let new = max_ts - o - 1;
            if new > wm {
                fire_until(&mut acc, &mut out, wm, new);
                wm = new;
            }
        }
    }
    fire_until(&mut acc, &mut out, wm, i64::MAX);
    out.sort();
    late.sort();
    (out, late)
}

fn read_window_lines(dir: &std::path::Path) -> Vec<WindowLine> {
    let mut v = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                let f: Vec<&str> = l.rsplitn(5, ',').collect();
                assert_eq!(f.len(), 5, "bad output line '{l}'");
                v.push((
                    f[4].to_string(),
                    f[3].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[0].parse().unwrap(),
                ));
            }
        }
    }
    v.sort();
    v
}

fn read_lines(dir: &std::path::Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for f in rd {
            let p = f.unwrap().path();
            v.extend(
                std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
    }
    v.sort();
    v
}

/// Out-of-order records (up to `spread` ms behind the newest), some keys with commas.
fn window_csv(seed: u64, n: usize, spread: i64) -> Vec<(String, i64, i64)> {
    let mut s = seed | 1;
    let mut rnd = move |m: i64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % m.max(1) as u64) as i64
    };
    let mut t = 10_000;
    (0..n)
        .map(|_| {
            t += rnd(40);
            let key = ["a", "b", "c,d", "e"][rnd(4) as usize].to_string();
            (key, t - rnd(spread + 1), rnd(200) - 50)
        })
        .collect()
}

#[test]
fn window_count_follows_the_contract_with_lateness_and_late_data() {
    let records = window_csv(17, 3000, 1500);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    let mut text = String::from("key,timestamp_ms,value\n");
    for (k, ts, v) in &records {
        text.push_str(&format!("{k},{ts},{v}\n"));
    }
    std::fs::write(&input, text).unwrap();
    for (size, slide, a, o, p) in [
        (500, 500, 0, 200, 1),
        (500, 500, 300, 200, 3),
        (600, 200, 150, 100, 2),
        (1000, 1000, 0, 0, 4),
    ] {
        let out = dir.path().join(format!("out-{size}-{slide}-{a}-{o}-{p}"));
        let mut args = vec![
            "--input".to_string(),
            input.display().to_string(),
            "--output".into(),
            out.display().to_string(),
            "--size-ms".into(),
            size.to_string(),
            "--lateness-ms".into(),
            a.to_string(),
            "--out-of-orderness-ms".into(),
            o.to_string(),
            "--parallelism".into(),
            p.to_string(),
        ];
        if slide != size {
            args.extend(["--slide-ms".to_string(), slide.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("window_count", &args);
        let (want, want_late) = simulate_fixed_windows(&records, size, slide, a, o);
        assert!(
            !want_late.is_empty(),
            "the input has late records: a={a} o={o}"
        );
        assert_eq!(
            read_window_lines(&out),
            want,
            "size={size} slide={slide} a={a} o={o} p={p}"
        );
        assert_eq!(
            read_lines(&out.join("late")),
            want_late,
            "late records, a={a} o={o}"
        );
        let files = std::fs::read_dir(&out)
            .unwrap()
            .filter(|f| f.as_ref().unwrap().path().is_file())
            .count();
        assert_eq!(files, p, "one file per sink subtask");
    }
}

#[test]
fn window_count_sessions_and_bad_input() {
    // Sessions: even timestamps, an odd gap, disorder within the bound: nothing is late.
    let mut records = window_csv(23, 1500, 30);
    for r in &mut records {
        r.1 *= 2;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    let text: String = records
        .iter()
        .map(|(k, ts, v)| format!("{k},{ts},{v}\n"))
        .collect();
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    run(
        "window_count",
        &[
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--gap-ms",
            "101",
            "--out-of-orderness-ms",
            "60",
            "--parallelism",
            "2",
        ],
    );
    let mut by_key: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (k, ts, v) in &records {
        by_key.entry(k).or_default().push((*ts, *v));
    }
    let mut want = Vec::new();
    for (k, mut v) in by_key {
        v.sort();
        let mut cur: Option<(i64, i64, u64, i64)> = None;
        for (ts, val) in v {
            cur = match cur {
                Some((s, e, c, sum)) if ts <= e => Some((s, e.max(ts + 101), c + 1, sum + val)),
                Some((s, e, c, sum)) => {
                    want.push((k.to_string(), s, e, c, sum));
                    Some((ts, ts + 101, 1, val))
                }
                None => Some((ts, ts + 101, 1, val)),
            };
        }
        if let Some((s, e, c, sum)) = cur {
            want.push((k.to_string(), s, e, c, sum));
        }
    }
    want.sort();
    assert_eq!(read_window_lines(&out), want);
    assert!(read_lines(&out.join("late")).is_empty());

    // A malformed line fails the job with file and line.
    std::fs::write(&input, "a,1,2\nb,oops,3\n").unwrap();
    let o = Command::new(example("window_count"))
        .args([
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--size-ms",
            "10",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("events.csv:2") && err.contains("oops"),
        "{err}"
    );
    // Bad arguments are rejected before anything runs.
    let o = Command::new(example("window_count"))
        .args(["--slide-ms", "5"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// Kills the checkpointed window_count with SIGKILL at random moments and restarts it with
/// `--restore latest` until it finishes; returns the number of kills.
fn run_killed_until_done(args: &[String], seed: &mut u64, max_kills: usize) -> usize {
    let mut kills = 0;
    loop {
        let mut child = Command::new(example("window_count"))
            .args(args)
            .args(["--restore", "latest"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start window_count");
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let wait = std::time::Duration::from_millis(30 + *seed % 400);
        let deadline = std::time::Instant::now() + wait;
        let mut done = None;
        while std::time::Instant::now() < deadline {
            if let Some(st) = child.try_wait().unwrap() {
                done = Some(st);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if done.is_none() && kills < max_kills {
            // SIGKILL: nothing of the process gets to clean up.
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            continue;
        }
        let st = match done {
            Some(st) => st,
            None => child.wait().unwrap(),
        };
        assert!(st.success(), "window_count failed after {kills} kills");
        return kills;
    }
}

#[test]
fn window_count_killed_at_random_moments_writes_exactly_the_uninterrupted_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    let mut f = std::fs::File::create(&input).unwrap();
    writeln!(f, "key,timestamp_ms,value").unwrap();
    for (k, t, v) in window_csv(99, 3000, 300) {
        writeln!(f, "{k},{t},{v}").unwrap();
    }
    drop(f);
    let rounds: usize = std::env::var("EDDY_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let args = |out: &std::path::Path, chk: &std::path::Path| -> Vec<String> {
        [
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--checkpoint-dir",
            chk.to_str().unwrap(),
            "--checkpoint-interval-ms",
            "40",
            "--records-per-second",
            "5000",
            "--size-ms",
            "500",
            "--lateness-ms",
            "150",
            "--out-of-orderness-ms",
            "100",
            "--parallelism",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let reference = dir.path().join("ref");
    let a = args(&reference, &dir.path().join("ref-chk"));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    run("window_count", &a);
    let want = finished_lines(&reference);
    assert!(want.len() > 100, "{}", want.len());
    // The finished job keeps no checkpoints, only its recorded result.
    assert!(completed_chks(&dir.path().join("ref-chk")).is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("ref-chk").join("job-result-store"))
            .map(|d| d.count())
            .unwrap_or(0),
        1
    );
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    for round in 0..rounds {
        let out = dir.path().join(format!("out-{round}"));
        let chk = dir.path().join(format!("chk-{round}"));
        let kills = run_killed_until_done(&args(&out, &chk), &mut seed, 6);
        let got = finished_lines(&out);
        assert_eq!(got.len(), want.len(), "round {round}: {kills} kills");
        assert_eq!(got, want, "round {round}: {kills} kills");
        eprintln!(
            "round {round}: {kills} kills, {} lines identical",
            got.len()
        );
    }
}

/// The chk directories with a `_metadata` under a checkpoint root.
fn completed_chks(root: &std::path::Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for job in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for chk in std::fs::read_dir(job.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if chk.path().join("_metadata").is_file() {
                v.push(chk.path());
            }
        }
    }
    v
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    try_copy_dir(from, to).unwrap();
}

fn try_copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::copy(e.path(), to.join(e.file_name()))?;
    }
    Ok(())
}

/// A run that finished is never replayed: an earlier run's checkpoint that outlived the finish
/// (a kill between recording the result and cleaning up, or NO_CLAIM) is not resumed by
/// `--restore latest`, which finds the finished run in the job result store and does nothing.
#[test]
fn window_count_restore_latest_after_a_finished_run_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.csv");
    let mut f = std::fs::File::create(&input).unwrap();
    for (k, t, v) in window_csv(5, 1500, 200) {
        writeln!(f, "{k},{t},{v}").unwrap();
    }
    drop(f);
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let args: Vec<String> = [
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--checkpoint-dir",
        chk.to_str().unwrap(),
        "--checkpoint-interval-ms",
        "30",
        "--size-ms",
        "500",
        "--restore",
        "latest",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A first run, killed once it completed a checkpoint; that checkpoint is kept aside.
    let mut first = Command::new(example("window_count"))
        .args(&args)
        .args(["--records-per-second", "2000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let kept = loop {
        if let Some(c) = completed_chks(&chk).pop() {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let kept = dir.path().join("kept");
            // The next checkpoint may subsume (delete) this one while it is copied: then the
            // newer one is kept instead.
            if try_copy_dir(&c, &kept).is_ok() {
                break (c, kept);
            }
            let _ = std::fs::remove_dir_all(&kept);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint completed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    first.kill().unwrap();
    first.wait().unwrap();
    // The second run resumes and finishes; its result is recorded.
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run("window_count", &a);
    let want = finished_lines(&out);
    assert!(!want.is_empty());
    assert!(
        completed_chks(&chk).is_empty(),
        "the finished run cleaned up"
    );
    let results: Vec<_> = std::fs::read_dir(chk.join("job-result-store"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].ends_with(".json") && !results[0].contains("DIRTY"));
    // The first run's checkpoint comes back, as a kill before cleanup would leave it.
    copy_dir(&kept.1, &kept.0);
    let o = run("window_count", &a);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("already finished"), "{stdout}");
    assert_eq!(finished_lines(&out), want, "a finished run was replayed");
}

#[test]
fn window_count_restore_arguments_are_checked() {
    let out = Command::new(example("window_count"))
        .args(["--size-ms", "10", "--restore", "latest"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--checkpoint-dir"));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("e.csv");
    std::fs::write(&input, "a,1,1\n").unwrap();
    let out = Command::new(example("window_count"))
        .args(["--input", input.to_str().unwrap(), "--output"])
        .arg(dir.path().join("o"))
        .args(["--size-ms", "10", "--restore"])
        .arg(dir.path().join("no-such-checkpoint"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-checkpoint"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn window_count_names_file_and_line_of_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    std::fs::write(&input, b"a,1,1\nb,2,2\nc,\xff3,3\n").unwrap();
    let out = Command::new(example("window_count"))
        .args(["--input", input.to_str().unwrap(), "--output"])
        .arg(dir.path().join("o"))
        .args(["--size-ms", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv:3") && err.contains("UTF-8"), "{err}");
}

/// Application mode: the example binary itself is jobmanager, taskmanager and client.
#[test]
fn an_example_binary_is_jobmanager_taskmanager_and_client() {
    use std::io::BufRead;
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let start = |args: &[&str]| {
        let mut c = Command::new(example("word_count"))
            .args(args)
            .env("EDDY_CONF_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        (Kill(c), line)
    };
    let (_jm, line) = start(&[
        "jobmanager",
        "-D",
        "jobmanager.rpc.port=0",
        "-D",
        "rest.port=0",
    ]);
    let word = |key: &str| {
        line.split(key)
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let rest = word("rest http://");
    let port = format!(
        "jobmanager.rpc.port={}",
        word("rpc ").rsplit(':').next().unwrap()
    );
    let (_tm, _) = start(&[
        "taskmanager",
        "-D",
        &port,
        "-D",
        "taskmanager.numberOfTaskSlots=2",
    ]);
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "to be or not to be\n").unwrap();
    let out = dir.path().join("out");
    let o = Command::new(example("word_count"))
        .args(["run", "-m", &rest, "word_count", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .env("EDDY_CONF_DIR", dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut lines: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    assert_eq!(lines, ["be 1", "be 2", "not 1", "or 1", "to 1", "to 2"]);
}
