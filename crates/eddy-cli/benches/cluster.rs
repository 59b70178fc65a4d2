//! The same jobs on the embedded MiniCluster and on a jobmanager + 2 taskmanagers (real
//! processes on this machine, data over loopback TCP), and the TM-to-TM throughput of the
//! network stack.
//!
//! ```text
//! cargo bench -p eddy-cli --bench cluster [-- --records N --words-mb M]
//! ```
//! - `backpressure --sink-delay-us 0`: a sequence source → rebalance → map → discard, each side
//!   in its own slot sharing group; on 2 one-slot taskmanagers every record crosses TCP. Reports
//!   records/s and MB/s on the wire (the source taskmanager's bytes sent).
//! - `word_count -p 4` over generated text: MiniCluster vs 2 taskmanagers × 2 slots.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const EDDY: &str = env!("CARGO_BIN_EXE_eddy");

struct Proc(Child, mpsc::Receiver<String>);

impl Proc {
    fn start(args: &[&str], conf: &Path) -> Proc {
        let mut c = Command::new(EDDY)
            .args(args)
            .env("EDDY_CONF_DIR", conf)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start eddy");
        let out = c.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Proc(c, rx)
    }

    fn line(&self, what: &str) -> String {
        loop {
            let l = self
                .1
                .recv_timeout(Duration::from_secs(30))
                .expect("process output");
            if l.contains(what) {
                return l;
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn word<'a>(line: &'a str, after: &str) -> &'a str {
    line.split(after)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
}

struct Cluster {
    rest: String,
    _procs: Vec<Proc>,
}

fn cluster(conf: &Path, tms: usize, slots: usize) -> Cluster {
    // Short heartbeats: the taskmanagers' byte counters reach the jobmanager with them.
    let hb = [
        "-D",
        "heartbeat.interval=100ms",
        "-D",
        "heartbeat.timeout=5s",
    ];
    let mut jm_args = vec![
        "jobmanager",
        "-D",
        "jobmanager.rpc.port=0",
        "-D",
        "rest.port=0",
    ];
    jm_args.extend_from_slice(&hb);
    let jm = Proc::start(&jm_args, conf);
    let l = jm.line("jobmanager started");
    let rest = word(&l, "rest http://").to_string();
    let port = format!(
        "jobmanager.rpc.port={}",
        word(&l, "rpc ").rsplit(':').next().unwrap()
    );
    let slots = format!("taskmanager.numberOfTaskSlots={slots}");
    let mut procs = vec![jm];
    for _ in 0..tms {
        let mut tm_args = vec!["taskmanager", "-D", &port, "-D", &slots];
        tm_args.extend_from_slice(&hb);
        let tm = Proc::start(&tm_args, conf);
        tm.line("taskmanager started");
        procs.push(tm);
    }
    let c = Cluster {
        rest,
        _procs: procs,
    };
    while get(&c, "/overview")["taskmanagers"].as_u64() != Some(tms as u64) {
        std::thread::sleep(Duration::from_millis(20));
    }
    c
}

fn get(c: &Cluster, path: &str) -> Value {
    ureq::get(&format!("http://{}{path}", c.rest))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
        .unwrap_or(Value::Null)
}

fn bytes_sent(c: &Cluster) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    get(c, "/taskmanagers")["taskmanagers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t["network"]["bytesSent"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Runs `eddy run` (attached) and returns the job's runtime: the jobmanager's duration for
/// remote runs, the wall time of the process for local ones.
fn run(conf: &Path, rest: Option<&str>, job: &[&str]) -> Duration {
    let mut args = vec!["run"];
    if let Some(r) = rest {
        args.extend(["-m", r]);
    }
    args.extend_from_slice(job);
    let started = Instant::now();
    let o = Command::new(EDDY)
        .args(&args)
        .env("EDDY_CONF_DIR", conf)
        .output()
        .unwrap();
    let wall = started.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    out.lines()
        .find_map(|l| l.strip_prefix("Job Runtime: "))
        .and_then(|s| s.trim_end_matches(" ms").parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(wall)
}

fn main() {
    let mut records: u64 = 30_000_000;
    let mut words_mb: usize = 40;
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--records" => records = w[1].parse().expect("--records N"),
            "--words-mb" => words_mb = w[1].parse().expect("--words-mb M"),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path();
    let n = records.to_string();
    let bp = ["backpressure", "--records", &n, "--sink-delay-us", "0"];

    let local = run(conf, None, &bp);
    println!(
        "backpressure (source -> rebalance -> map, {records} records) MiniCluster: {:.2} s = {:.1} M records/s",
        local.as_secs_f64(),
        records as f64 / local.as_secs_f64() / 1e6
    );
    {
        let c = cluster(conf, 2, 1);
        let before = bytes_sent(&c);
        let t = run(conf, Some(&c.rest), &bp);
        let bytes = bytes_sent(&c) - before;
        println!(
            "backpressure on JM + 2 TMs (every record over TCP): {:.2} s = {:.1} M records/s, {:.0} MB/s on the wire ({:.1} bytes/record)",
            t.as_secs_f64(),
            records as f64 / t.as_secs_f64() / 1e6,
            bytes as f64 / t.as_secs_f64() / 1e6,
            bytes as f64 / records as f64
        );
    }

    // Word count over generated text.
    let input = dir.path().join("text");
    std::fs::create_dir(&input).unwrap();
    let mut total_words = 0u64;
    for f in 0..4 {
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(input.join(format!("part-{f}.txt"))).unwrap(),
        );
        let mut written = 0usize;
        let mut s = 0x2545_f491_4f6c_dd1du64 ^ f;
        while written < words_mb * 1024 * 1024 / 4 {
            let mut line = String::new();
            for _ in 0..10 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                line.push_str(&format!("w{} ", s % 5000));
                total_words += 1;
            }
            line.push('\n');
            written += line.len();
            w.write_all(line.as_bytes()).unwrap();
        }
    }
    let out = dir.path().join("out");
    let wc = [
        "word_count",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "-p",
        "4",
    ];
    let local = run(conf, None, &wc);
    println!(
        "word_count -p 4 ({words_mb} MB, {total_words} words) MiniCluster: {:.2} s = {:.2} M words/s",
        local.as_secs_f64(),
        total_words as f64 / local.as_secs_f64() / 1e6
    );
    let c = cluster(conf, 2, 2);
    let before = bytes_sent(&c);
    let t = run(conf, Some(&c.rest), &wc);
    println!(
        "word_count -p 4 on JM + 2 TMs x 2 slots: {:.2} s = {:.2} M words/s ({:.0} MB over TCP)",
        t.as_secs_f64(),
        total_words as f64 / t.as_secs_f64() / 1e6,
        (bytes_sent(&c) - before) as f64 / 1e6
    );
}
