//! The taskmanager's side of the control plane over gRPC (DESIGN §8): the TaskExecutor
//! service the jobmanager calls, the gateway that sends task reports to the JobMaster in
//! order, registration and the jobmanager's heartbeats, and the process entry point
//! [`start_taskmanager`].
//!
//! A taskmanager that has not heard a heartbeat for `heartbeat.timeout` considers the
//! jobmanager lost, cancels its tasks and registers again (the jobmanager may come back).

use crate::deployment::{ProgramBuilder, TaskDeployment};
use crate::rpc::{
    endpoint, execution_state_proto, is_transport_failure, parse_job, report_to_proto,
    ClusterError, RETRY_FIRST, RETRY_MAX,
};
use crate::taskmanager::gateway::SubmitError;
use crate::taskmanager::task_executor::{
    ExecutionState, JobMasterGateway, TaskExecutor, TaskFailureReport,
};
use eddy_core::cluster_config::ClusterConfig;
use eddy_core::JobId;
use eddy_network::{NetworkBufferPool, NetworkEnvironment, NetworkLimits};
use eddy_rpc::tonic::transport::server::TcpIncoming;
use eddy_rpc::tonic::transport::{Channel, Server};
use eddy_rpc::tonic::{self, Request, Response, Status};
use eddy_rpc::v1;
use eddy_rpc::v1::job_master_client::JobMasterClient;
use eddy_rpc::v1::resource_manager_client::ResourceManagerClient;
use eddy_runtime::checkpoint::{CheckpointId, CheckpointMail, SubtaskKey, TaskAcknowledgement};
use eddy_runtime::TaskError;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Clone)]
enum Report {
    State(
        JobId,
        u64,
        SubtaskKey,
        ExecutionState,
        Option<TaskFailureReport>,
    ),
    Ack(JobId, u64, TaskAcknowledgement),
    Decline(JobId, u64, CheckpointId, SubtaskKey, String),
    SourceFinished(JobId, u64, SubtaskKey),
}

/// Sends task reports to the jobmanager, in order, from a background task.
struct JobMasterRpcGateway {
    tx: mpsc::UnboundedSender<Report>,
}

impl JobMasterGateway for JobMasterRpcGateway {
    fn task_state(
        &self,
        job: JobId,
        attempt: u64,
        task: SubtaskKey,
        state: ExecutionState,
        failure: Option<TaskError>,
    ) {
        let failure = failure.as_ref().map(TaskFailureReport::from);
        let _ = self
            .tx
            .send(Report::State(job, attempt, task, state, failure));
    }
    fn acknowledge(&self, job: JobId, attempt: u64, ack: TaskAcknowledgement) {
        let _ = self.tx.send(Report::Ack(job, attempt, ack));
    }
    fn decline(
        &self,
        job: JobId,
        attempt: u64,
        id: CheckpointId,
        task: SubtaskKey,
        reason: String,
    ) {
        let _ = self
            .tx
            .send(Report::Decline(job, attempt, id, task, reason));
    }
    fn source_finished(&self, job: JobId, attempt: u64, task: SubtaskKey) {
        let _ = self.tx.send(Report::SourceFinished(job, attempt, task));
    }
}

async fn send_report(jm: &mut JobMasterClient<Channel>, r: &Report) -> Result<(), Status> {
    match r {
        Report::State(job, attempt, task, state, failure) => {
            let f = failure.clone().unwrap_or(TaskFailureReport {
                operator: String::new(),
                subtask_display: String::new(),
                cause: String::new(),
            });
            jm.update_task_execution_state(v1::TaskExecutionState {
                job_id: job.to_string(),
                attempt: *attempt,
                vertex: task.vertex as u32,
                subtask: task.subtask as u32,
                state: execution_state_proto(*state) as i32,
                operator: f.operator,
                subtask_display: f.subtask_display,
                cause: f.cause,
            })
            .await
            .map(|_| ())
        }
        Report::Ack(job, attempt, ack) => match serde_json::to_vec(ack) {
            Ok(acknowledgement) => jm
                .acknowledge_checkpoint(v1::AcknowledgeCheckpointRequest {
                    job_id: job.to_string(),
                    attempt: *attempt,
                    acknowledgement,
                })
                .await
                .map(|_| ()),
            // An acknowledgement that cannot be sent declines the checkpoint instead of
            // leaving it to time out.
            Err(e) => jm
                .decline_checkpoint(v1::DeclineCheckpointRequest {
                    job_id: job.to_string(),
                    attempt: *attempt,
                    checkpoint_id: ack.checkpoint_id,
                    vertex: ack.task.vertex as u32,
                    subtask: ack.task.subtask as u32,
                    reason: format!("cannot encode the acknowledgement: {e}"),
                })
                .await
                .map(|_| ()),
        },
        Report::Decline(job, attempt, id, task, reason) => jm
            .decline_checkpoint(v1::DeclineCheckpointRequest {
                job_id: job.to_string(),
                attempt: *attempt,
                checkpoint_id: *id,
                vertex: task.vertex as u32,
                subtask: task.subtask as u32,
                reason: reason.clone(),
            })
            .await
            .map(|_| ()),
        Report::SourceFinished(job, attempt, task) => jm
            .source_finished(v1::SourceFinishedRequest {
                job_id: job.to_string(),
                attempt: *attempt,
                vertex: task.vertex as u32,
                subtask: task.subtask as u32,
            })
            .await
            .map(|_| ()),
    }
}

/// Sends task reports to the jobmanager in order. A report that fails in the transport is
/// sent again (those behind it wait) until the jobmanager answers or is considered lost
/// (`jm_lost`: no heartbeat from it for the timeout): a lost task end, acknowledgement or
/// source-finished report would leave the attempt or its final checkpoint waiting.
async fn send_reports(
    mut rx: mpsc::UnboundedReceiver<Report>,
    mut jm: JobMasterClient<Channel>,
    jm_lost: impl Fn() -> bool + Send + 'static,
) {
    while let Some(r) = rx.recv().await {
        let mut delay = RETRY_FIRST;
        loop {
            match send_report(&mut jm, &r).await {
                Ok(()) => break,
                Err(e) if is_transport_failure(&e) && !jm_lost() => {
                    tracing::debug!(
                        "report to the jobmanager failed, again in {delay:?}: {}",
                        e.message()
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                    if jm_lost() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("report to the jobmanager failed: {}", e.message());
                    break;
                }
            }
        }
    }
}

struct TaskExecutorService {
    executor: Arc<TaskExecutor>,
    last_heartbeat: Arc<Mutex<Instant>>,
    /// The session of the jobmanager that sends heartbeats; another one means the jobmanager
    /// restarted and knows nothing of the tasks running here.
    session: Mutex<String>,
}

#[tonic::async_trait]
impl v1::task_executor_server::TaskExecutor for TaskExecutorService {
    async fn submit_tasks(
        &self,
        req: Request<v1::SubmitTasksRequest>,
    ) -> Result<Response<v1::SubmitTasksResponse>, Status> {
        let d: TaskDeployment = serde_json::from_slice(&req.into_inner().deployment)
            .map_err(|e| Status::invalid_argument(format!("bad deployment: {e}")))?;
        let ex = self.executor.clone();
        let res = tokio::task::spawn_blocking(move || ex.submit(d))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(match res {
            Ok(()) => v1::SubmitTasksResponse {
                accepted: true,
                reason: String::new(),
            },
            Err(e) => v1::SubmitTasksResponse {
                accepted: false,
                reason: match e {
                    SubmitError::Refused(m) | SubmitError::Unreachable(m) => m,
                    SubmitError::Task(e) => e.to_string(),
                },
            },
        }))
    }

    async fn cancel_tasks(
        &self,
        req: Request<v1::CancelTasksRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = req.into_inner();
        self.executor.cancel(parse_job(&r.job_id)?, r.attempt);
        Ok(Response::new(v1::Empty {}))
    }

    async fn checkpoint_mail(
        &self,
        req: Request<v1::CheckpointMailRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = req.into_inner();
        let mail: CheckpointMail = serde_json::from_slice(&r.mail)
            .map_err(|e| Status::invalid_argument(format!("bad checkpoint mail: {e}")))?;
        self.executor
            .deliver(parse_job(&r.job_id)?, r.attempt, mail);
        Ok(Response::new(v1::Empty {}))
    }

    async fn free_slots(
        &self,
        req: Request<v1::FreeSlotsRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = req.into_inner();
        let job = parse_job(&r.job_id)?;
        let ex = self.executor.clone();
        tokio::task::spawn_blocking(move || ex.free_slots(job, r.attempt))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(v1::Empty {}))
    }

    type WatchStream = std::pin::Pin<
        Box<dyn tonic::codegen::tokio_stream::Stream<Item = Result<v1::WatchEvent, Status>> + Send>,
    >;

    /// Never sends anything: the jobmanager only learns when the stream breaks.
    async fn watch(
        &self,
        _req: Request<v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Ok(Response::new(Box::pin(
            tonic::codegen::tokio_stream::pending(),
        )))
    }

    async fn heartbeat(
        &self,
        req: Request<v1::HeartbeatRequest>,
    ) -> Result<Response<v1::TaskExecutorStatus>, Status> {
        *self.last_heartbeat.lock() = Instant::now();
        let session = req.into_inner().session;
        let previous = std::mem::replace(&mut *self.session.lock(), session.clone());
        if !previous.is_empty() && previous != session {
            tracing::warn!("a new jobmanager session: cancelling the tasks of the old one");
            let ex = self.executor.clone();
            tokio::task::spawn_blocking(move || ex.cancel_all());
        }
        Ok(Response::new(report_to_proto(&self.executor.report())))
    }
}

/// A running taskmanager.
pub struct TaskManagerHandle {
    /// Its TaskExecutor.
    pub executor: Arc<TaskExecutor>,
    /// Where its TaskExecutor service listens.
    pub rpc_address: SocketAddr,
}

/// Starts a taskmanager on the current tokio runtime: data port, TaskExecutor service, and
/// registration with the jobmanager (retried until it succeeds, and again whenever the
/// jobmanager is lost). `segment_size` is the network buffer size.
pub async fn start_taskmanager(
    config: ClusterConfig,
    segment_size: usize,
    builder: Arc<dyn ProgramBuilder>,
) -> Result<TaskManagerHandle, ClusterError> {
    let host = config.taskmanager_host.clone();
    let data_bind = format!("{host}:{}", config.taskmanager_data_port);
    let pool = NetworkBufferPool::new(config.network_buffer_count(segment_size), segment_size);
    let net = Arc::new(
        NetworkEnvironment::start_with_limits(
            &data_bind,
            pool,
            NetworkLimits {
                max_connections: config.network_max_connections,
                ..NetworkLimits::default()
            },
        )
        .map_err(|source| ClusterError::Bind {
            address: data_bind.clone(),
            source,
        })?,
    );
    let rpc_bind = format!("{host}:{}", config.taskmanager_rpc_port);
    let listener = tokio::net::TcpListener::bind(&rpc_bind)
        .await
        .map_err(|source| ClusterError::Bind {
            address: rpc_bind.clone(),
            source,
        })?;
    let rpc_address = listener.local_addr().map_err(|source| ClusterError::Bind {
        address: rpc_bind.clone(),
        source,
    })?;
    let resource_id = config.taskmanager_resource_id.clone().unwrap_or_else(|| {
        format!(
            "taskmanager-{}-{}",
            rpc_address.port(),
            &format!("{:032x}", JobId::generate().0)[..6]
        )
    });
    let jm_address = format!(
        "{}:{}",
        config.jobmanager_rpc_address, config.jobmanager_rpc_port
    );
    let jm_channel = endpoint(&jm_address)
        .map_err(ClusterError::Address)?
        .connect_lazy();
    let (tx, rx) = mpsc::unbounded_channel();
    let last_heartbeat = Arc::new(Mutex::new(Instant::now()));
    let (heard, jm_timeout) = (
        last_heartbeat.clone(),
        Duration::from_millis(config.heartbeat_timeout_ms),
    );
    tokio::spawn(send_reports(
        rx,
        JobMasterClient::new(jm_channel.clone()),
        move || heard.lock().elapsed() > jm_timeout,
    ));
    let executor = Arc::new(TaskExecutor::new(
        resource_id.clone(),
        config.slots,
        config.managed_memory_per_slot(),
        net.clone(),
        builder,
        Arc::new(JobMasterRpcGateway { tx }),
    ));
    let service = v1::task_executor_server::TaskExecutorServer::new(TaskExecutorService {
        executor: executor.clone(),
        last_heartbeat: last_heartbeat.clone(),
        session: Mutex::new(String::new()),
    });
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(async move {
        if let Err(e) = Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!("taskexecutor RPC server stopped: {e}");
        }
    });
    let registration = v1::RegisterTaskExecutorRequest {
        resource_id: resource_id.clone(),
        rpc_address: rpc_address.to_string(),
        data_address: net.address().to_string(),
        status: None,
    };
    tokio::spawn(stay_registered(
        ResourceManagerClient::new(jm_channel),
        registration,
        executor.clone(),
        last_heartbeat,
        jm_address,
    ));
    tracing::info!(
        "taskmanager {resource_id}: rpc {rpc_address}, data {}",
        net.address()
    );
    Ok(TaskManagerHandle {
        executor,
        rpc_address,
    })
}

/// Registers with the ResourceManager, then watches the jobmanager's heartbeats; when they stop
/// for the timeout, cancels every task and registers again.
async fn stay_registered(
    mut rm: ResourceManagerClient<Channel>,
    mut registration: v1::RegisterTaskExecutorRequest,
    executor: Arc<TaskExecutor>,
    last_heartbeat: Arc<Mutex<Instant>>,
    jm_address: String,
) {
    loop {
        registration.status = Some(report_to_proto(&executor.report()));
        let timeout = match rm.register_task_executor(registration.clone()).await {
            Ok(r) if r.get_ref().accepted => {
                tracing::info!("registered at the jobmanager {jm_address}");
                Duration::from_millis(r.get_ref().heartbeat_timeout_ms.max(1))
            }
            Ok(r) => {
                tracing::warn!(
                    "the jobmanager refused the registration: {}",
                    r.get_ref().reason
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::debug!("jobmanager {jm_address} not reachable yet: {}", e.message());
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        *last_heartbeat.lock() = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200).min(timeout / 4)).await;
            if last_heartbeat.lock().elapsed() > timeout {
                break;
            }
        }
        tracing::warn!(
            "no heartbeat from the jobmanager for {timeout:?}: cancelling tasks, registering again"
        );
        let ex = executor.clone();
        let _ = tokio::task::spawn_blocking(move || ex.cancel_all()).await;
    }
}
