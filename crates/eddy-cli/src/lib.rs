//! The `eddy` command line, and the entry point of **application mode**: a program built on
//! the `eddy` library registers its jobs and calls [`main_with`] (or [`application_mode`] at the
//! top of its `main`), and the same binary is client, jobmanager and taskmanager:
//!
//! ```text
//! eddy jobmanager                      # Dispatcher + ResourceManager + REST endpoint
//! eddy taskmanager                     # registers its slots with the jobmanager
//! eddy cluster start [--taskmanagers N] / eddy cluster stop
//! eddy run JOB [ARGS..] [-m host:port] [-p N] [-d] [-s SAVEPOINT|latest] [--claimMode MODE]
//!          [--allow-non-restored-state]
//! eddy list [--all] | cancel ID | stop ID [--savepoint-path DIR] [--drain] | savepoint ID [DIR]
//! eddy info JOB [ARGS..]               # the plan as JSON
//! eddy jobs                            # the jobs this binary carries
//! eddy bench nexmark [--queries q0,q5] [--events N] [-p P] [--json FILE]
//! ```
//!
//! Without a jobmanager address (`-m` or `rest.address`), `eddy run` runs the job on the
//! embedded MiniCluster. Exit codes of attached runs: 0 finished, 1 failed (or any error),
//! 2 bad usage or configuration, 3 cancelled.
#![warn(missing_docs)]

extern crate self as eddy_cli;

mod client;
mod cluster;
pub mod conf;
pub mod jobs;
mod registry;

pub use registry::{BuildFn, JobDefinition, JobRegistry};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use client::RestClient;
use eddy::cluster::rest_api::{
    JobDetailsInfo, JobOverview, JobSubmitRequest, JobSubmitResponse, MultipleJobsDetails,
    SavepointTriggerRequest, StopWithSavepointRequest, TriggerResponse,
};
use eddy::cluster::JobStatus;
use eddy::cluster::MiniCluster;
use eddy::core::cluster_config::Configuration;
use eddy::execution::LocalExecutor;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code of a job that failed, or of any other error.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a job that was cancelled.
pub const EXIT_CANCELLED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "eddy",
    version,
    about = "Eddy: Apache Flink's architecture in Rust"
)]
struct Cli {
    /// A configuration override, `key=value` (repeatable); wins over config.yaml.
    #[arg(short = 'D', value_name = "KEY=VALUE", global = true)]
    define: Vec<String>,
    /// The configuration directory (default: EDDY_CONF_DIR, else ./conf).
    #[arg(long, global = true, value_name = "DIR")]
    conf_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a jobmanager (Dispatcher, ResourceManager, REST endpoint) in the foreground.
    Jobmanager,
    /// Runs a taskmanager in the foreground; it registers with the jobmanager.
    Taskmanager,
    /// Starts or stops a local standalone cluster in the background.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Runs a job: on the jobmanager at -m (or rest.address), else on the embedded MiniCluster.
    Run {
        /// The jobmanager's REST address, host:port.
        #[arg(short = 'm', long = "jobmanager")]
        jobmanager: Option<String>,
        /// Default parallelism of the job.
        #[arg(short = 'p', long)]
        parallelism: Option<usize>,
        /// Submit and return without waiting for the job.
        #[arg(short = 'd', long)]
        detached: bool,
        /// A savepoint or retained checkpoint to start from; `latest`: the job's newest
        /// checkpoint under state.checkpoints.dir, unless the job result store says it finished.
        #[arg(short = 's', long = "fromSavepoint")]
        savepoint: Option<String>,
        /// Skip state of operators that are no longer in the job.
        #[arg(
            short = 'n',
            long = "allowNonRestoredState",
            alias = "allow-non-restored-state"
        )]
        allow_non_restored_state: bool,
        /// Who owns the snapshot of -s afterwards: NO_CLAIM (default) or CLAIM
        /// (`execution.state-recovery.claim-mode`).
        #[arg(long = "claimMode", alias = "restoreMode", value_name = "MODE")]
        claim_mode: Option<String>,
        /// The job (see `eddy jobs`).
        job: String,
        /// The job's own arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Lists running jobs (with --all also ended ones).
    List {
        /// The jobmanager's REST address, host:port.
        #[arg(short = 'm', long = "jobmanager")]
        jobmanager: Option<String>,
        /// Also jobs that ended.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Cancels a job.
    Cancel {
        /// The jobmanager's REST address, host:port.
        #[arg(short = 'm', long = "jobmanager")]
        jobmanager: Option<String>,
        /// The job id.
        id: String,
    },
    /// Stops a job with a savepoint.
    Stop {
        /// The jobmanager's REST address, host:port.
        #[arg(short = 'm', long = "jobmanager")]
        jobmanager: Option<String>,
        /// Where the savepoint goes (default: state.savepoints.dir).
        #[arg(short = 'p', long = "savepointPath", alias = "savepoint-path")]
        savepoint_path: Option<String>,
        /// Emit the final watermark first, so every event-time window fires.
        #[arg(short = 'd', long)]
        drain: bool,
        /// The job id.
        id: String,
    },
    /// Takes a savepoint of a running job.
    Savepoint {
        /// The jobmanager's REST address, host:port.
        #[arg(short = 'm', long = "jobmanager")]
        jobmanager: Option<String>,
        /// The job id.
        id: String,
        /// Where the savepoint goes (default: state.savepoints.dir).
        dir: Option<String>,
    },
    /// Prints a job's plan as JSON (built locally; nothing runs).
    Info {
        /// The job.
        job: String,
        /// The job's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Lists the jobs this binary carries.
    Jobs,
    /// Benchmarks: `eddy bench nexmark [cost] [--queries q0,q5] [--events N] [-p P]
    /// [--rate R] [--checkpoint-interval-ms I] [--json FILE]` (each query in a process of its
    /// own on the MiniCluster, output checked against the reference implementation).
    Bench {
        /// What to run: `nexmark`.
        what: String,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterAction {
    /// Starts a jobmanager and N taskmanagers in the background (pid and log files in log/).
    Start {
        /// How many taskmanagers.
        #[arg(long, default_value_t = 1)]
        taskmanagers: usize,
    },
    /// Stops what `cluster start` started.
    Stop,
}

/// The CLI verbs: a first argument that is one of these selects the CLI in application mode.
pub const VERBS: &[&str] = &[
    "jobmanager",
    "taskmanager",
    "cluster",
    "run",
    "list",
    "cancel",
    "stop",
    "savepoint",
    "info",
    "jobs",
    "bench",
    "help",
    "--help",
    "-h",
    "--version",
    "-V",
];

/// Application mode for a program's `main`: when the first argument is a CLI verb, runs the CLI
/// with `jobs` and returns its exit code; otherwise returns `None` and the program goes on.
pub fn application_mode(jobs: &[JobDefinition]) -> Option<ExitCode> {
    let first = std::env::args().nth(1)?;
    VERBS
        .contains(&first.as_str())
        .then(|| main_with(JobRegistry::new(jobs)))
}

/// The `main` of an example: application mode when the first argument is a CLI verb, else the
/// job runs on the embedded MiniCluster with the program's arguments (`--input …`), as
/// `eddy run JOB ARGS` would.
pub fn example_main(job: &JobDefinition) -> ExitCode {
    if let Some(code) = application_mode(std::slice::from_ref(job)) {
        return code;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    init_logging("warn");
    let registry = JobRegistry::new(std::slice::from_ref(job));
    let settings = match load_job_settings(None, &[]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e:#}", job.name);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    run_local(
        &registry,
        job.name,
        &args,
        &settings,
        false,
        MiniCluster::default(),
        None,
    )
}

/// Runs the CLI with these jobs: the `main` of the `eddy` binary and of application-mode
/// programs.
pub fn main_with(registry: JobRegistry) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_USAGE,
            });
        }
    };
    match dispatch(cli, Arc::new(registry)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("eddy: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_job_settings(
    conf_dir: Option<&std::path::Path>,
    defines: &[String],
) -> Result<BTreeMap<String, String>> {
    let dir = conf::conf_dir(conf_dir);
    let c = conf::load(&dir, defines)?;
    conf::resolve(&c, &dir)?;
    Ok(c.job_settings())
}

fn dispatch(cli: Cli, registry: Arc<JobRegistry>) -> Result<ExitCode> {
    let dir = conf::conf_dir(cli.conf_dir.as_deref());
    let configuration = conf::load(&dir, &cli.define)?;
    let (cluster, exec) = match conf::resolve(&configuration, &dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("eddy: {e:#}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let rest_of = |m: Option<String>| -> Option<String> {
        m.or_else(|| {
            cluster
                .rest_address
                .as_ref()
                .map(|a| format!("{a}:{}", cluster.rest_port))
        })
    };
    let need_rest = |m: Option<String>| -> Result<RestClient> {
        rest_of(m)
            .map(|a| RestClient::new(&a))
            .ok_or_else(|| anyhow!("no jobmanager address: pass -m host:port or set rest.address"))
    };
    match cli.command {
        Command::Jobmanager => {
            init_logging("info");
            run_jobmanager(cluster, configuration.job_settings(), registry)
        }
        Command::Taskmanager => {
            init_logging("info");
            run_taskmanager(cluster, exec.segment_size, registry)
        }
        Command::Cluster { action } => match action {
            ClusterAction::Start { taskmanagers } => {
                cluster::start(taskmanagers, &cli.define, cli.conf_dir.as_deref())
            }
            ClusterAction::Stop => cluster::stop(),
        },
        Command::Run {
            jobmanager,
            parallelism,
            detached,
            savepoint,
            allow_non_restored_state,
            claim_mode,
            job,
            args,
        } => {
            init_logging("warn");
            let mut settings = configuration.job_settings();
            if let Some(p) = parallelism {
                settings.insert("parallelism.default".into(), p.to_string());
            }
            if let Some(s) = savepoint {
                settings.insert("execution.savepoint.path".into(), s);
            }
            if allow_non_restored_state {
                settings.insert(
                    "execution.savepoint.ignore-unclaimed-state".into(),
                    "true".into(),
                );
            }
            if let Some(m) = claim_mode {
                settings.insert(eddy::core::config::CLAIM_MODE.into(), m);
            }
            // Check the job's settings before anything is submitted.
            let mut probe = Configuration::default();
            for (k, v) in &settings {
                probe.set(k, v);
            }
            if let Err(e) = probe.resolve() {
                eprintln!("eddy: {e}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            match rest_of(jobmanager) {
                None => {
                    let rest = cluster
                        .rest_enabled
                        .then(|| format!("{}:{}", cluster.rest_bind_address, cluster.rest_port));
                    // Slots per in-process TaskManager: as configured, else as many as the job
                    // needs (Flink's local default).
                    let minicluster = MiniCluster {
                        slots_per_taskmanager: configuration
                            .settings
                            .contains_key(eddy::core::cluster_config::NUMBER_OF_TASK_SLOTS)
                            .then_some(cluster.slots),
                        ..MiniCluster::default()
                    };
                    Ok(run_local(
                        &registry,
                        &job,
                        &args,
                        &settings,
                        true,
                        minicluster,
                        rest,
                    ))
                }
                Some(address) => run_remote(&address, &job, &args, &settings, detached),
            }
        }
        Command::List { jobmanager, all } => {
            list(&need_rest(jobmanager)?, all)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { jobmanager, id } => {
            need_rest(jobmanager)?.patch(&format!("/jobs/{id}?mode=cancel"))?;
            println!("Cancelled job {id}.");
            Ok(ExitCode::SUCCESS)
        }
        Command::Stop {
            jobmanager,
            savepoint_path,
            drain,
            id,
        } => {
            let c = need_rest(jobmanager)?;
            println!("Suspending job {id}.");
            let t: TriggerResponse = c.post(
                &format!("/jobs/{id}/stop"),
                &StopWithSavepointRequest {
                    target_directory: savepoint_path,
                    drain,
                },
            )?;
            let trigger = t.request_id;
            let path = c.await_savepoint(&id, &trigger, Duration::from_secs(600))?;
            println!("Savepoint completed. Path: {path}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Savepoint {
            jobmanager,
            id,
            dir,
        } => {
            let c = need_rest(jobmanager)?;
            println!("Triggering savepoint for job {id}.");
            let t: TriggerResponse = c.post(
                &format!("/jobs/{id}/savepoints"),
                &SavepointTriggerRequest {
                    target_directory: dir,
                    cancel_job: false,
                },
            )?;
            let trigger = t.request_id;
            let path = c.await_savepoint(&id, &trigger, Duration::from_secs(600))?;
            println!("Savepoint completed. Path: {path}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Info { job, args } => {
            let settings = configuration.job_settings();
            let (env, _) = registry
                .build_env(&job, &args, &settings)
                .map_err(|e| anyhow!(e))?;
            let plan = env.get_execution_plan().map_err(|e| anyhow!("{e}"))?;
            println!("{plan}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { what, args } => {
            if what != "nexmark" {
                eprintln!("eddy: unknown benchmark '{what}' (known: nexmark)");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            let args = if args.first().map(String::as_str) == Some("cost") {
                args
            } else {
                std::iter::once("bench".to_string()).chain(args).collect()
            };
            eddy_nexmark::cli::main(args, &["bench", "nexmark"])?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs => {
            for j in registry.jobs() {
                println!(
                    "{:<20} {}\n{:<20} usage: {} {}",
                    j.name, j.about, "", j.name, j.usage
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a job on the embedded MiniCluster, as `env.execute()` would; with `rest` (`host:port`,
/// `rest.enabled`), serves the MiniCluster's REST API there while the job runs.
fn run_local(
    registry: &JobRegistry,
    entry: &str,
    args: &[String],
    settings: &BTreeMap<String, String>,
    announce: bool,
    minicluster: MiniCluster,
    rest: Option<String>,
) -> ExitCode {
    let (env, name) = match registry.build_env(entry, args, settings) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // The port is bound before the job starts, so a bad rest.port fails before anything runs.
    let executor = LocalExecutor::new(minicluster);
    let executor = match rest {
        None => executor,
        Some(bind) => match executor.with_rest(&bind) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("eddy: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    let mut client = match env.execute_with(&executor, &name) {
        Ok(c) => c,
        Err(eddy::cluster::JobExecutionError::AlreadyFinished(r)) => {
            println!(
                "{}",
                already_finished(&r.job_id.to_string(), &r.job_name, r.end_time_ms)
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{entry}: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    if let Some(addr) = executor.rest_address() {
        // One parseable line: scripts and tests read the actual port from it.
        println!("MiniCluster REST endpoint: http://{addr}");
    }
    if announce {
        println!("Job has been submitted with JobID {}", client.job_id());
    }
    let result = client.wait();
    // Failures the job recovered from (Flink's exception history).
    for f in client.failures() {
        let recovered = match (f.restored_checkpoint, f.recovered_after) {
            (Some(c), Some(d)) => format!("restored checkpoint {c}, running again after {d:?}"),
            (None, Some(d)) => format!("restarted from the beginning, running again after {d:?}"),
            _ => "not restarted".to_string(),
        };
        eprintln!("{entry}: failure: {} ({recovered})", f.cause);
    }
    match result {
        Ok(r) => {
            eprintln!("job {} finished in {:?}", r.job_id, r.net_runtime);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{entry}: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Submits a job to a jobmanager and, attached, follows it to its end.
fn run_remote(
    address: &str,
    entry: &str,
    args: &[String],
    settings: &BTreeMap<String, String>,
    detached: bool,
) -> Result<ExitCode> {
    let c = RestClient::new(address);
    let r: JobSubmitResponse = c.post(
        "/jobs",
        &JobSubmitRequest {
            entry: entry.to_string(),
            args: args.to_vec(),
            settings: settings.clone(),
        },
    )?;
    let id = r.jobid;
    if r.already_finished {
        let name = r.name.unwrap_or_default();
        println!("{}", already_finished(&id, &name, r.end_time.unwrap_or(0)));
        return Ok(ExitCode::SUCCESS);
    }
    println!("Job has been submitted with JobID {id}");
    if detached {
        return Ok(ExitCode::SUCCESS);
    }
    let mut seen = 0usize;
    loop {
        let j: JobDetailsInfo = c
            .get(&format!("/jobs/{id}"))
            .with_context(|| format!("following job {id}"))?;
        // Print each status transition once, in order.
        let history: Vec<JobStatus> = j.status_history.iter().map(|t| t.state).collect();
        for (i, s) in history.iter().enumerate().skip(seen) {
            match i.checked_sub(1).and_then(|p| history.get(p)) {
                Some(from) => println!("Job {id} switched from state {from} to {s}."),
                None => println!("Job {id} is {s}."),
            }
        }
        seen = seen.max(history.len());
        match j.state {
            JobStatus::Finished => {
                println!(
                    "Job with JobID {id} has finished.\nJob Runtime: {} ms",
                    j.duration
                );
                return Ok(ExitCode::SUCCESS);
            }
            JobStatus::Canceled => {
                println!("Job with JobID {id} was cancelled.");
                return Ok(ExitCode::from(EXIT_CANCELLED));
            }
            JobStatus::Failed => {
                let cause = j.error.as_deref().unwrap_or("unknown cause");
                eprintln!("Job with JobID {id} failed: {cause}");
                return Ok(ExitCode::from(EXIT_FAILED));
            }
            JobStatus::Created | JobStatus::Running | JobStatus::Restarting => {
                std::thread::sleep(Duration::from_millis(100))
            }
        }
    }
}

fn list(c: &RestClient, all: bool) -> Result<()> {
    let v: MultipleJobsDetails = c.get("/jobs/overview")?;
    let jobs = v.jobs;
    let line = |j: &JobOverview| {
        format!(
            "{} : {} : {} ({})",
            utc_time(j.start_time),
            j.jid,
            j.name,
            j.state
        )
    };
    let terminal = |j: &JobOverview| j.state.is_terminal();
    let running: Vec<&JobOverview> = jobs.iter().filter(|j| !terminal(j)).collect();
    if running.is_empty() {
        println!("No running jobs.");
    } else {
        println!("------------------ Running/Restarting Jobs -------------------");
        for j in running {
            println!("{}", line(j));
        }
        println!("--------------------------------------------------------------");
    }
    if all {
        let ended: Vec<&JobOverview> = jobs.iter().filter(|j| terminal(j)).collect();
        if ended.is_empty() {
            println!("No terminated jobs.");
        } else {
            println!("---------------------- Terminated Jobs -----------------------");
            for j in ended {
                println!("{}", line(j));
            }
            println!("--------------------------------------------------------------");
        }
    }
    Ok(())
}

/// What a run of a job that already finished (by the JobResultStore) prints: nothing ran.
fn already_finished(id: &str, name: &str, end_ms: i64) -> String {
    format!(
        "Job {id} ('{name}') already finished at {} UTC (recorded in the job result store): \
         nothing to do.",
        utc_time(end_ms)
    )
}

/// `dd.MM.yyyy HH:mm:ss` in UTC, as Flink's `list` prints start times.
fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}.{month:02}.{year} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run_jobmanager(
    cluster: eddy::core::cluster_config::ClusterConfig,
    job_settings: BTreeMap<String, String>,
    registry: Arc<JobRegistry>,
) -> Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async move {
        let rest_bind = format!("{}:{}", cluster.rest_bind_address, cluster.rest_port);
        let listener = tokio::net::TcpListener::bind(&rest_bind)
            .await
            .with_context(|| format!("cannot listen on {rest_bind} (rest.port)"))?;
        let rest = listener.local_addr()?;
        let jm = eddy::cluster::jobmanager::start_jobmanager(cluster, job_settings, registry)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        // One parseable line: scripts and tests read the actual ports from it.
        println!(
            "jobmanager started: rpc {} rest http://{rest}",
            jm.rpc_address
        );
        eddy_web::serve(jm.dispatcher, listener).await;
        bail!("the REST endpoint stopped")
    })
}

fn run_taskmanager(
    cluster: eddy::core::cluster_config::ClusterConfig,
    segment_size: usize,
    registry: Arc<JobRegistry>,
) -> Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async move {
        let tm = eddy::cluster::taskmanager::start_taskmanager(cluster, segment_size, registry)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        println!(
            "taskmanager started: id {} rpc {} data {}",
            tm.executor.resource_id(),
            tm.rpc_address,
            tm.executor.network().address()
        );
        std::future::pending::<()>().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_time_formats_like_flink() {
        assert_eq!(super::utc_time(0), "01.01.1970 00:00:00");
        assert_eq!(super::utc_time(1_795_276_278_005), "21.11.2026 15:51:18");
        assert_eq!(super::utc_time(951_782_400_000), "29.02.2000 00:00:00");
    }
}
