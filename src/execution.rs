//! Running programs (Flink's `PipelineExecutor`s and `execute`): the local executor — the
//! embedded MiniCluster, optionally serving its REST API while a job runs — and the
//! `execute` methods [`crate::prelude`] adds to the DataStream API.
//!
//! The DataStream API (`eddy-datastream`) builds programs and reaches execution only through
//! [`PipelineExecutor`]; this facade installs the MiniCluster behind it, so the API crate does
//! not depend on the control plane.

use eddy_cluster::{JobClient, JobExecutionError, JobExecutionResult, MiniCluster};
use eddy_core::Data;
use eddy_datastream::{DataStream, StreamExecutionEnvironment};
use eddy_runtime::execution::PipelineExecutor;
use eddy_runtime::factory::JobProgram;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// Runs jobs on an embedded MiniCluster started for each job (Flink's `LocalExecutor`); with
/// [`LocalExecutor::with_rest`], the MiniCluster's REST API is served while the job runs
/// (Flink's `createLocalEnvironmentWithWebUI`).
#[derive(Default)]
pub struct LocalExecutor {
    cluster: MiniCluster,
    rest: Option<RestEndpoint>,
}

/// A bound REST port and the runtime serving it, shared by the jobs of one executor.
struct RestEndpoint {
    listener: TcpListener,
    address: SocketAddr,
    runtime: Arc<RestRuntime>,
}

/// The REST server's async runtime. Shut down in the background when the last job using it
/// is gone, so dropping a [`JobClient`] inside an async context does not panic.
struct RestRuntime(Option<tokio::runtime::Runtime>);

impl Drop for RestRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// One job's REST server; dropped with its [`JobClient`].
struct RestServer {
    task: tokio::task::JoinHandle<()>,
    _runtime: Arc<RestRuntime>,
}

impl Drop for RestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the REST port of a local executor could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve the REST API on {bind} (rest.port, rest.bind-address): {source}")]
pub struct RestBindError {
    /// The address asked for.
    pub bind: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl LocalExecutor {
    /// An executor running each job on a MiniCluster of this shape.
    pub fn new(cluster: MiniCluster) -> Self {
        LocalExecutor {
            cluster,
            rest: None,
        }
    }

    /// Serves the MiniCluster's REST API on `bind` (`host:port`; port 0 picks a free one, see
    /// [`LocalExecutor::rest_address`]) while each job runs. The port is bound now, so a bad
    /// address fails before any job starts. Jobs of one executor share the address; run one
    /// at a time when you watch them.
    pub fn with_rest(mut self, bind: &str) -> Result<Self, RestBindError> {
        let bind_error = |source| RestBindError {
            bind: bind.to_string(),
            source,
        };
        let listener = TcpListener::bind(bind).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("eddy-rest")
            .enable_all()
            .build()
            .map_err(bind_error)?;
        self.rest = Some(RestEndpoint {
            listener,
            address,
            runtime: Arc::new(RestRuntime(Some(runtime))),
        });
        Ok(self)
    }

    /// Where the REST API is served, when it is.
    pub fn rest_address(&self) -> Option<SocketAddr> {
        self.rest.as_ref().map(|r| r.address)
    }
}

impl PipelineExecutor for LocalExecutor {
    type Client = JobClient;
    type Error = JobExecutionError;

    fn execute(&self, program: JobProgram) -> Result<JobClient, JobExecutionError> {
        let Some(rest) = &self.rest else {
            return self.cluster.execute_async(program);
        };
        let Some(runtime) = rest.runtime.0.as_ref() else {
            return self.cluster.execute_async(program);
        };
        // The listening socket stays with the executor; each job's server accepts on a
        // duplicate of it, so every job is served at the same address.
        let listener = rest
            .listener
            .try_clone()
            .and_then(|l| {
                let _guard = runtime.enter();
                tokio::net::TcpListener::from_std(l)
            })
            .map_err(|e| JobExecutionError::ClusterService {
                service: "REST endpoint",
                cause: format!("{}: {e}", rest.address),
            })?;
        let mut client = self.cluster.execute_async(program)?;
        let task = runtime.spawn(eddy_web::serve(client.dispatcher().clone(), listener));
        client.attach(Box::new(RestServer {
            task,
            _runtime: rest.runtime.clone(),
        }));
        Ok(client)
    }
}

/// `execute` and `execute_async` on the embedded MiniCluster (its shape from the job's
/// `minicluster.number-of-taskmanagers`), as Flink's environment runs a job locally when no
/// cluster is configured.
pub trait Execute {
    /// Runs the job and waits for it to finish. The program's operators are consumed: a
    /// later `execute` runs only what was declared after this one.
    fn execute(&self, job_name: &str) -> Result<JobExecutionResult, JobExecutionError>;

    /// Starts the job and returns without waiting for it (Flink's `executeAsync`): the
    /// [`JobClient`] shows its watermarks, cancels it, or waits for it. Dropping the client
    /// cancels the job.
    fn execute_async(&self, job_name: &str) -> Result<JobClient, JobExecutionError>;
}

impl Execute for StreamExecutionEnvironment {
    fn execute(&self, job_name: &str) -> Result<JobExecutionResult, JobExecutionError> {
        self.execute_async(job_name)?.wait()
    }

    fn execute_async(&self, job_name: &str) -> Result<JobClient, JobExecutionError> {
        self.execute_with(&LocalExecutor::default(), job_name)
    }
}

/// `execute_and_collect` on the embedded MiniCluster (Flink's `executeAndCollect`).
pub trait ExecuteAndCollect<T> {
    /// Runs the job and returns every record of this stream. With parallelism > 1 the order
    /// between subtasks is not defined.
    fn execute_and_collect(&self, job_name: &str) -> Result<Vec<T>, JobExecutionError>;
}

impl<T: Data> ExecuteAndCollect<T> for DataStream<T> {
    fn execute_and_collect(&self, job_name: &str) -> Result<Vec<T>, JobExecutionError> {
        let handle = self.collect();
        self.execution_environment().execute(job_name)?;
        Ok(handle.take())
    }
}
