//! Runs every program in `examples/` as a user would and checks what it prints or writes.
//! `cargo test` builds the examples first; they are found next to this test binary.

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
        &["--lines", "400", "--rate", "500", "--window-ms", "200", "--output", out.to_str().unwrap()],
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
    assert!(counts.iter().filter(|(w, _)| w == "the").count() > 1, "{counts:?}");
}

#[test]
fn session_window_example_closes_sessions_after_30_minutes_of_inactivity() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(
        "session_window",
        &["--users", "7", "--clicks", "3000", "--parallelism", "3", "--output", out.to_str().unwrap()],
    );
    let mut sessions: BTreeMap<String, Vec<(i64, i64, u64)>> = BTreeMap::new();
    for f in std::fs::read_dir(&out).unwrap() {
        for l in std::fs::read_to_string(f.unwrap().path()).unwrap().lines() {
            let v: Vec<&str> = l.split(',').collect();
            assert_eq!(v.len(), 5, "{l}");
            sessions
                .entry(v[0].to_string())
                .or_default()
                .push((v[1].parse().unwrap(), v[2].parse().unwrap(), v[3].parse().unwrap()));
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
