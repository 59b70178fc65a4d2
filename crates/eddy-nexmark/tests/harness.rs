//! The `nexmark` binary: the bench mode runs each query in its own process, checks its
//! checksum and writes the measurements as JSON; bad arguments are named.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::process::Command;

#[test]
fn bench_mode_measures_and_checks_every_query_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("nexmark.json");
    let out = Command::new(env!("CARGO_BIN_EXE_nexmark"))
        .args([
            "bench",
            "--queries",
            "q2,q5",
            "--events",
            "20000",
            "--rate",
            "500",
        ])
        .args(["-p", "2", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(" checked").count(), 2, "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["checked"], true, "{r}");
        assert_eq!(r["events"], 20000);
        assert!(r["events_per_second"].as_f64().unwrap() > 0.0);
        assert!(r["peak_rss_mb"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn an_unknown_query_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_nexmark"))
        .args(["--query", "q6"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown query 'q6'") && err.contains("q11"),
        "{err}"
    );
}

#[test]
fn a_bad_number_names_the_flag_and_bad_settings_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_nexmark"))
        .args(["--query", "q0", "--events", "ten"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--events ten"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_nexmark"))
        .args(["--query", "q0", "--events", "100", "--rate", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("events_per_second = 0"), "{err}");
}
