//! Real processes: a child killed when its handle drops, with its stdout lines on a channel
//! and its stderr in a log file ([`Proc`]); a jobmanager and taskmanagers of an `eddy` binary
//! on 127.0.0.1 with ephemeral ports, driven through its CLI and REST API ([`Cluster`]).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    /// The process.
    pub child: Child,
    /// Its stdout, line by line.
    pub lines: mpsc::Receiver<String>,
    /// A name for messages (and its log file's).
    pub name: String,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Proc {
    /// Starts `bin` with `args` in the configuration directory `dir` (`EDDY_CONF_DIR`).
    pub fn start(bin: &str, name: &str, dir: &Path, args: &[&str]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(bin)
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

    /// SIGKILL: nothing of the process gets to clean up.
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

/// A jobmanager and its taskmanagers, each a process, with the configuration directory.
pub struct Cluster {
    /// The `eddy` binary every process runs.
    pub bin: String,
    /// The configuration directory; the processes' logs are written here too.
    pub dir: tempfile::TempDir,
    /// The REST endpoint, `host:port`.
    pub rest: String,
    /// The jobmanager's RPC port.
    pub rpc_port: String,
    /// The jobmanager process.
    pub jm: Proc,
    /// The taskmanager processes, in start order (killed ones stay in place).
    pub tms: Vec<Proc>,
    /// The resource id each taskmanager printed, by index into `tms`.
    pub tm_ids: Vec<String>,
    /// Heartbeat settings of every process.
    pub heartbeats: &'static [&'static str],
}

/// `GET url` as JSON (`null` when it fails).
pub fn get_json(url: &str) -> Value {
    ureq::get(url)
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
        .unwrap_or(Value::Null)
}

/// `PATCH url` (Flink's cancel verb); the HTTP status, or 0 when nothing answered.
pub fn patch(url: &str) -> u16 {
    match ureq::patch(url).send_empty() {
        Ok(r) => r.status().as_u16(),
        Err(ureq::Error::StatusCode(code)) => code,
        Err(_) => 0,
    }
}

/// Sends `method url` (with a JSON `body`) and returns the HTTP status (0 when nothing
/// answered) and the JSON answer (`Null` when there is none), whatever the status.
pub fn request(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    request_raw(method, url, body.map(Value::to_string).as_deref())
}

/// [`request`] with the body as text, sent as `application/json` whether it is JSON or not
/// (for testing what a server makes of a malformed body).
pub fn request_raw(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let sent = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("PATCH", _) => agent.patch(url).send_empty(),
        ("POST", Some(b)) => agent
            .post(url)
            .header("content-type", "application/json")
            .send(b),
        ("POST", None) => agent.post(url).send_empty(),
        (other, _) => panic!("request: unsupported method {other}"),
    };
    match sent {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_json::<Value>().unwrap_or(Value::Null),
        ),
        Err(_) => (0, Value::Null),
    }
}

/// The word after `after` in `line`.
pub fn field<'a>(line: &'a str, after: &str) -> &'a str {
    line.split(after)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no '{after}' in '{line}'"))
}

impl Cluster {
    /// A jobmanager and `tms` taskmanagers of `slots` slots each.
    pub fn start(bin: &str, tms: usize, slots: usize) -> Cluster {
        Self::start_with(bin, tms, slots, &[])
    }

    /// Likewise, with extra jobmanager arguments.
    pub fn start_with(bin: &str, tms: usize, slots: usize, extra: &[&str]) -> Cluster {
        Self::start_heartbeats(bin, tms, slots, FAST, extra)
    }

    /// Likewise, with these heartbeat settings (`&[]`: the defaults, 10 s / 50 s).
    pub fn start_heartbeats(
        bin: &str,
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
        let jm = Proc::start(bin, "jobmanager", dir.path(), &args);
        let line = jm.wait_line("jobmanager started");
        let rest = field(&line, "rest http://").to_string();
        let rpc_port = field(&line, "rpc ").rsplit(':').next().unwrap().to_string();
        let mut c = Cluster {
            bin: bin.to_string(),
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

    /// Starts one more taskmanager with `slots` slots and waits until it printed its id.
    pub fn add_taskmanager(&mut self, slots: usize) {
        let port = format!("jobmanager.rpc.port={}", self.rpc_port);
        let slots = format!("taskmanager.numberOfTaskSlots={slots}");
        let mut args = vec!["taskmanager", "-D", &port, "-D", &slots];
        args.extend_from_slice(self.heartbeats);
        let name = format!("taskmanager-{}", self.tms.len());
        let tm = Proc::start(&self.bin, &name, self.dir.path(), &args);
        let line = tm.wait_line("taskmanager started");
        self.tm_ids.push(field(&line, "id ").to_string());
        self.tms.push(tm);
    }

    /// Waits until `n` taskmanagers are registered.
    pub fn wait_taskmanagers(&self, n: u64) {
        self.wait_for(&format!("{n} taskmanagers"), |c| {
            c.get("/overview")["taskmanagers"].as_u64() == Some(n)
        });
    }

    /// Waits up to 60 s until `f` holds, failing with the jobmanager's log.
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

    /// `GET path` on the REST API as JSON (`null` when it fails).
    pub fn get(&self, path: &str) -> Value {
        get_json(&format!("http://{}{path}", self.rest))
    }

    /// Runs the CLI with `args` and this cluster's configuration directory.
    pub fn eddy_raw(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
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

    /// `GET /jobs/{id}`.
    pub fn job(&self, id: &str) -> Value {
        self.get(&format!("/jobs/{id}"))
    }

    /// Waits until job `id` is in `state`.
    pub fn wait_state(&self, id: &str, state: &str) {
        self.wait_for(&format!("job {id} {state}"), |c| {
            c.job(id)["state"] == state
        });
    }
}

/// A command's stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The job id `eddy run` printed.
pub fn job_id_of(o: &Output) -> String {
    let t = text(o);
    field(&t, "JobID ").to_string()
}
