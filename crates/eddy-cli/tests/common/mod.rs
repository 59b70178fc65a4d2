//! The cluster harness shared by the process tests: real `eddy` processes on 127.0.0.1 with
//! ephemeral ports, killed when their handles drop, and helpers to compare the outputs of
//! the exactly-once file sink.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const EDDY: &str = env!("CARGO_BIN_EXE_eddy");

/// Short heartbeats so a killed taskmanager is noticed quickly.
pub const FAST: &[&str] = &[
    "-D",
    "heartbeat.interval=200ms",
    "-D",
    "heartbeat.timeout=2s",
    "-D",
    "slot.request.timeout=20s",
];

/// A child process killed on drop, with its stdout lines on a channel and stderr in a file.
pub struct Proc {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn start(name: &str, dir: &Path, args: &[&str]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(EDDY)
            .args(args)
            .env("EDDY_CONF_DIR", dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Proc {
            child,
            lines,
            name: name.to_string(),
            log,
        }
    }

    /// The first stdout line containing `what`.
    pub fn wait_line(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!(
            "{} did not print '{what}'; its log:\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Every stdout line printed so far and not read yet.
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub rest: String,
    pub rpc_port: String,
    pub jm: Proc,
    pub tms: Vec<Proc>,
    /// The resource id each taskmanager printed, by index into `tms`.
    pub tm_ids: Vec<String>,
    /// Heartbeat settings of every process.
    pub heartbeats: &'static [&'static str],
}

pub fn field<'a>(line: &'a str, after: &str) -> &'a str {
    line.split(after)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no '{after}' in '{line}'"))
}

impl Cluster {
    /// A jobmanager and `tms` taskmanagers of `slots` slots each.
    pub fn start(tms: usize, slots: usize) -> Cluster {
        Self::start_with(tms, slots, &[])
    }

    /// Likewise, with extra jobmanager arguments.
    pub fn start_with(tms: usize, slots: usize, extra: &[&str]) -> Cluster {
        Self::start_heartbeats(tms, slots, FAST, extra)
    }

    /// Likewise, with these heartbeat settings (`&[]`: the defaults, 10 s / 50 s).
    pub fn start_heartbeats(
        tms: usize,
        slots: usize,
        heartbeats: &'static [&'static str],
        extra: &[&str],
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "jobmanager",
            "-D",
            "jobmanager.rpc.port=0",
            "-D",
            "rest.port=0",
        ];
        args.extend_from_slice(heartbeats);
        args.extend_from_slice(extra);
        let jm = Proc::start("jobmanager", dir.path(), &args);
        let line = jm.wait_line("jobmanager started");
        let rest = field(&line, "rest http://").to_string();
        let rpc_port = field(&line, "rpc ").rsplit(':').next().unwrap().to_string();
        let mut c = Cluster {
            dir,
            rest,
            rpc_port,
            jm,
            tms: Vec::new(),
            tm_ids: Vec::new(),
            heartbeats,
        };
        for _ in 0..tms {
            c.add_taskmanager(slots);
        }
        c.wait_taskmanagers(tms as u64);
        c
    }

    pub fn add_taskmanager(&mut self, slots: usize) {
        let port = format!("jobmanager.rpc.port={}", self.rpc_port);
        let slots = format!("taskmanager.numberOfTaskSlots={slots}");
        let mut args = vec!["taskmanager", "-D", &port, "-D", &slots];
        args.extend_from_slice(self.heartbeats);
        let name = format!("taskmanager-{}", self.tms.len());
        let tm = Proc::start(&name, self.dir.path(), &args);
        let line = tm.wait_line("taskmanager started");
        self.tm_ids.push(field(&line, "id ").to_string());
        self.tms.push(tm);
    }

    pub fn wait_taskmanagers(&self, n: u64) {
        self.wait_for(&format!("{n} taskmanagers"), |c| {
            c.get("/overview")["taskmanagers"].as_u64() == Some(n)
        });
    }

    pub fn wait_for(&self, what: &str, mut f: impl FnMut(&Cluster) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f(self) {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; jobmanager log:\n{}",
                    std::fs::read_to_string(&self.jm.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> Value {
        let url = format!("http://{}{path}", self.rest);
        ureq::get(&url)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
            .unwrap_or(Value::Null)
    }

    pub fn eddy_raw(&self, args: &[&str]) -> Output {
        Command::new(EDDY)
            .args(args)
            .env("EDDY_CONF_DIR", self.dir.path())
            .output()
            .unwrap()
    }

    /// Runs the CLI against this cluster's jobmanager (`-m` added after the verb).
    pub fn eddy(&self, verb: &str, args: &[&str]) -> Output {
        let mut all = vec![verb, "-m", &self.rest];
        all.extend_from_slice(args);
        self.eddy_raw(&all)
    }

    pub fn job(&self, id: &str) -> Value {
        self.get(&format!("/jobs/{id}"))
    }

    pub fn wait_state(&self, id: &str, state: &str) {
        self.wait_for(&format!("job {id} {state}"), |c| {
            c.job(id)["state"] == state
        });
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn job_id_of(o: &Output) -> String {
    let t = text(o);
    field(&t, "JobID ").to_string()
}

pub fn window_csv(path: &Path, keys: u64, records: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    writeln!(f, "key,timestamp_ms,value").unwrap();
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..records {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let ts = i as i64 * 10 - (s % 120) as i64;
        writeln!(f, "k{},{},{}", s % keys, ts.max(0), (s >> 20) % 1000).unwrap();
    }
}

/// Compares outputs without dumping thousands of lines.
pub fn assert_same_lines(got: &[String], expected: &[String]) {
    if got != expected {
        let missing: Vec<&String> = expected
            .iter()
            .filter(|l| !got.contains(l))
            .take(5)
            .collect();
        let extra: Vec<&String> = got
            .iter()
            .filter(|l| !expected.contains(l))
            .take(5)
            .collect();
        let mut dups = got.to_vec();
        dups.dedup();
        panic!(
            "output differs: {} lines, expected {} ({} duplicates); missing e.g. {missing:?}; \
             unexpected e.g. {extra:?}",
            got.len(),
            expected.len(),
            got.len() - dups.len()
        );
    }
}

/// Finished (visible) lines of the exactly-once file sink's output, sorted.
pub fn finished_lines(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.extend(
                    std::fs::read_to_string(&p)
                        .unwrap()
                        .lines()
                        .map(str::to_string),
                );
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}
