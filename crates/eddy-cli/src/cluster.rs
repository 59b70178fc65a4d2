//! `eddy cluster start|stop`: a local standalone cluster in the background, like Flink's
//! `start-cluster.sh`: one jobmanager and N taskmanagers started from this binary, each in its
//! own process group, with a pid file and a log file per process under `log/` (or
//! `EDDY_LOG_DIR`). `start` returns once the REST endpoint answers and every taskmanager has
//! registered.

use crate::client::RestClient;
use anyhow::{bail, Context, Result};
use eddy::cluster::rest_api::ClusterOverview;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn log_dir() -> PathBuf {
    std::env::var_os("EDDY_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("log"))
}

fn pid_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "pid")
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("eddy-"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn spawn(role: &str, index: usize, defines: &[String], conf_dir: Option<&Path>) -> Result<u32> {
    spawn_with(role, index, defines, &[], conf_dir)
}

fn spawn_with(
    role: &str,
    index: usize,
    defines: &[String],
    extra: &[String],
    conf_dir: Option<&Path>,
) -> Result<u32> {
    let dir = log_dir();
    let exe = std::env::current_exe().context("locating the eddy binary")?;
    let log = dir.join(format!("eddy-{role}-{index}.log"));
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.arg(role);
    for d in defines.iter().chain(extra) {
        cmd.arg("-D").arg(d);
    }
    if let Some(c) = conf_dir {
        cmd.arg("--conf-dir").arg(c);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: a Ctrl-C in this terminal does not reach it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting the {role}"))?;
    let pid = child.id();
    std::fs::write(
        dir.join(format!("eddy-{role}-{index}.pid")),
        pid.to_string(),
    )?;
    Ok(pid)
}

/// Starts the jobmanager and `taskmanagers` taskmanagers.
pub fn start(taskmanagers: usize, defines: &[String], conf_dir: Option<&Path>) -> Result<ExitCode> {
    let dir = log_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for p in pid_files(&dir) {
        if let Some(pid) = std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            if alive(pid) {
                bail!(
                    "a cluster is already running ({} has pid {pid}); run `eddy cluster stop` first",
                    p.display()
                );
            }
        }
        let _ = std::fs::remove_file(&p);
    }
    spawn("jobmanager", 0, defines, conf_dir)?;
    // The jobmanager prints its actual REST address (ports may be 0 = any).
    let jm_log = dir.join("eddy-jobmanager-0.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (rpc_port, rest) = loop {
        let text = std::fs::read_to_string(&jm_log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.starts_with("jobmanager started:")) {
            let word_after = |key: &str| {
                line.split(key)
                    .nth(1)
                    .and_then(|s| s.split_whitespace().next())
                    .unwrap_or_default()
                    .to_string()
            };
            let rpc = word_after("rpc ");
            let port = rpc.rsplit(':').next().unwrap_or_default().to_string();
            break (port, word_after("rest http://"));
        }
        if Instant::now() > deadline {
            bail!(
                "the jobmanager did not start within 30 s; see {}",
                jm_log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The taskmanagers find the jobmanager on the port it actually bound.
    let rpc = [format!("jobmanager.rpc.port={rpc_port}")];
    for i in 0..taskmanagers {
        spawn_with("taskmanager", i, defines, &rpc, conf_dir)?;
    }
    let client = RestClient::new(&rest);
    loop {
        let registered = client
            .get::<ClusterOverview>("/overview")
            .map(|o| o.taskmanagers)
            .unwrap_or(0);
        if registered >= taskmanagers {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {registered} of {taskmanagers} taskmanagers registered within 30 s; see {}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "Started a cluster: jobmanager with REST endpoint http://{rest}, {taskmanagers} \
         taskmanager(s). Logs and pid files in {}.",
        dir.display()
    );
    println!("Submit with: eddy run -m {rest} JOB [ARGS]");
    Ok(ExitCode::SUCCESS)
}

/// Stops every process `start` started (SIGTERM) and waits until they are gone, so a new
/// `start` finds the ports free.
pub fn stop() -> Result<ExitCode> {
    let dir = log_dir();
    let files = pid_files(&dir);
    if files.is_empty() {
        println!("No cluster to stop (no pid files in {}).", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut stopping = Vec::new();
    for p in files {
        let pid = std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|pid| alive(*pid)) {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
            match Command::new("kill").arg(pid.to_string()).status() {
                Ok(st) if st.success() => {
                    println!("Stopping {name} (pid {pid}).");
                    stopping.push(pid);
                }
                Ok(st) => eprintln!("eddy: kill {pid} ({name}) failed: {st}"),
                Err(e) => eprintln!("eddy: cannot run kill for {name} (pid {pid}): {e}"),
            }
        }
        let _ = std::fs::remove_file(&p);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while stopping.iter().any(|p| alive(*p)) {
        if Instant::now() > deadline {
            bail!("processes {stopping:?} did not stop within 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(ExitCode::SUCCESS)
}
