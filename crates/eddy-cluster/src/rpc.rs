//! The control plane over gRPC (DESIGN §8): the jobmanager's ResourceManager and JobMaster
//! services, the taskmanager's TaskExecutor service, the clients between them, heartbeats both
//! ways, and the two process entry points ([`start_jobmanager`], [`start_taskmanager`]).
//!
//! Heartbeats: the jobmanager asks every taskmanager for a heartbeat each `heartbeat.interval`
//! (the answer is its slot report and memory model); a taskmanager that has not answered for
//! `heartbeat.timeout` is removed and its jobs fail over. A taskmanager that has not heard a
//! heartbeat for `heartbeat.timeout` considers the jobmanager lost, cancels its tasks and
//! registers again (the jobmanager may come back).
//!
//! Commands to one taskmanager (checkpoint mail, cancel, free slots) go through one queue per
//! taskmanager, so they arrive in the order the JobMaster sent them.

use crate::deployment::{ProgramBuilder, TaskDeployment};
use crate::dispatcher::Dispatcher;
use crate::jobmaster::JmEvent;
use crate::resource_manager::{ResourceManager, TaskManagerRecord};
use crate::taskexecutor::{
    ExecutionState, JobMasterGateway, TaskExecutor, TaskExecutorReport, TaskFailureReport,
};
use eddy_core::cluster_config::ClusterConfig;
use eddy_core::JobId;
use eddy_network::{NetworkBufferPool, NetworkEnvironment, NetworkLimits};
use eddy_rpc::tonic::transport::server::TcpIncoming;
use eddy_rpc::tonic::transport::{Channel, Endpoint, Server};
use eddy_rpc::tonic::{self, Request, Response, Status};
use eddy_rpc::v1;
use eddy_rpc::v1::job_master_client::JobMasterClient;
use eddy_rpc::v1::resource_manager_client::ResourceManagerClient;
use eddy_rpc::v1::task_executor_client::TaskExecutorClient;
use eddy_runtime::checkpoint::{CheckpointId, CheckpointMail, SubtaskKey, TaskAcknowledgement};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Errors starting a cluster process.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The jobmanager's address is unusable.
    #[error("invalid jobmanager address '{0}'")]
    Address(String),
}

fn parse_job(id: &str) -> Result<JobId, Status> {
    id.parse().map_err(Status::invalid_argument)
}

fn endpoint(address: &str) -> Result<Endpoint, String> {
    Endpoint::from_shared(format!("http://{address}"))
        .map(|e| {
            e.connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
        })
        .map_err(|e| format!("invalid address '{address}': {e}"))
}

fn report_to_proto(r: &TaskExecutorReport) -> v1::TaskExecutorStatus {
    v1::TaskExecutorStatus {
        resource_id: r.resource_id.clone(),
        slots: r
            .slots
            .iter()
            .enumerate()
            .map(|(i, j)| v1::SlotStatus {
                index: i as u32,
                job_id: j.map(|j| j.to_string()).unwrap_or_default(),
            })
            .collect(),
        network_buffers_total: r.network_buffers_total as u32,
        network_buffers_available: r.network_buffers_available as u32,
        network_segment_size: r.network_segment_size as u32,
        managed_memory_per_slot: r.managed_memory_per_slot,
        rss_bytes: r.rss_bytes,
        running_tasks: r.running_tasks as u32,
        network_bytes_received: r.network_bytes.0,
        network_bytes_sent: r.network_bytes.1,
    }
}

fn report_from_proto(s: &v1::TaskExecutorStatus) -> TaskExecutorReport {
    TaskExecutorReport {
        resource_id: s.resource_id.clone(),
        slots: s.slots.iter().map(|x| x.job_id.parse().ok()).collect(),
        network_buffers_total: s.network_buffers_total as usize,
        network_buffers_available: s.network_buffers_available as usize,
        network_segment_size: s.network_segment_size as usize,
        managed_memory_per_slot: s.managed_memory_per_slot,
        rss_bytes: s.rss_bytes,
        running_tasks: s.running_tasks as usize,
        network_bytes: (s.network_bytes_received, s.network_bytes_sent),
    }
}

// ---------------------------------------------------------------- jobmanager side

/// Why a taskmanager did not take a deployment.
#[derive(Debug)]
pub(crate) enum SubmitError {
    /// It could not be reached.
    Unreachable(String),
    /// It answered no (wrong binary, slots taken, bad input).
    Refused(String),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Unreachable(m) => write!(f, "unreachable: {m}"),
            SubmitError::Refused(m) => write!(f, "refused: {m}"),
        }
    }
}

#[derive(Clone)]
enum Command {
    Mail(JobId, u64, CheckpointMail),
    Cancel(JobId, u64),
    Free(JobId, u64),
}

/// Whether an RPC failed in the transport (peer gone, connection refused or reset), as
/// opposed to an answer: retried for commands, counted by the heartbeat monitor.
fn is_transport_failure(s: &Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

/// How long a failed command waits before it is sent again (doubling up to a second).
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);
/// How soon a heartbeat is sent again after one failed in the transport.
const FAST_PROBE: Duration = Duration::from_millis(100);

async fn send_command(c: &mut TaskExecutorClient<Channel>, cmd: &Command) -> Result<(), Status> {
    match cmd {
        Command::Mail(job, attempt, mail) => {
            let mail = serde_json::to_vec(mail)
                .map_err(|e| Status::internal(format!("cannot encode checkpoint mail: {e}")))?;
            c.checkpoint_mail(v1::CheckpointMailRequest {
                job_id: job.to_string(),
                attempt: *attempt,
                mail,
            })
            .await
            .map(|_| ())
        }
        Command::Cancel(job, attempt) => c
            .cancel_tasks(v1::CancelTasksRequest {
                job_id: job.to_string(),
                attempt: *attempt,
            })
            .await
            .map(|_| ()),
        Command::Free(job, attempt) => c
            .free_slots(v1::FreeSlotsRequest {
                job_id: job.to_string(),
                attempt: *attempt,
            })
            .await
            .map(|_| ()),
    }
}

/// Sends one taskmanager's commands in order; a command that fails in the transport is sent
/// again (the ones behind it wait, keeping the order) until the taskmanager answers or is
/// declared lost (`closed`): a lost checkpoint-complete notification would leave the job's
/// last output uncommitted and its sources waiting for ever.
async fn deliver_commands(
    name: String,
    mut c: TaskExecutorClient<Channel>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    closed: Arc<AtomicBool>,
) {
    while let Some(cmd) = rx.recv().await {
        let mut delay = RETRY_FIRST;
        loop {
            match send_command(&mut c, &cmd).await {
                Ok(()) => break,
                Err(e) if is_transport_failure(&e) && !closed.load(Ordering::Acquire) => {
                    tracing::debug!(
                        "command to taskmanager {name} failed, sending it again in {delay:?}: {}",
                        e.message()
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                    if closed.load(Ordering::Acquire) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("command to taskmanager {name} failed: {}", e.message());
                    break;
                }
            }
        }
    }
}

struct Link {
    client: TaskExecutorClient<Channel>,
    tx: mpsc::UnboundedSender<Command>,
    /// Set when the taskmanager is lost (or registered again): retries and its heartbeat
    /// monitor stop.
    closed: Arc<AtomicBool>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// The jobmanager's connections to taskmanagers.
pub(crate) struct TmLinks {
    rt: tokio::runtime::Handle,
    links: Mutex<HashMap<String, Link>>,
}

impl TmLinks {
    fn new(rt: tokio::runtime::Handle) -> Self {
        TmLinks {
            rt,
            links: Mutex::new(HashMap::new()),
        }
    }

    /// Connects to a (newly registered) taskmanager; returns its client and the flag that
    /// says it is gone. A link it replaces is closed.
    fn add(
        &self,
        rid: &str,
        address: &str,
    ) -> Result<(TaskExecutorClient<Channel>, Arc<AtomicBool>), String> {
        let channel = {
            let _guard = self.rt.enter();
            endpoint(address)?.connect_lazy()
        };
        let client = TaskExecutorClient::new(channel);
        let (tx, rx) = mpsc::unbounded_channel::<Command>();
        let closed = Arc::new(AtomicBool::new(false));
        self.rt.spawn(deliver_commands(
            rid.to_string(),
            client.clone(),
            rx,
            closed.clone(),
        ));
        self.links.lock().insert(
            rid.to_string(),
            Link {
                client: client.clone(),
                tx,
                closed: closed.clone(),
            },
        );
        Ok((client, closed))
    }

    pub(crate) fn remove(&self, rid: &str) {
        self.links.lock().remove(rid);
    }

    fn client(&self, rid: &str) -> Option<TaskExecutorClient<Channel>> {
        self.links.lock().get(rid).map(|l| l.client.clone())
    }

    fn command(&self, rid: &str, c: Command) {
        if let Some(l) = self.links.lock().get(rid) {
            let _ = l.tx.send(c);
        }
    }

    /// Deploys tasks (blocking the calling JobMaster thread until the taskmanager answers).
    pub(crate) fn submit(&self, rid: &str, d: &TaskDeployment) -> Result<(), SubmitError> {
        let mut c = self
            .client(rid)
            .ok_or_else(|| SubmitError::Unreachable("it is not registered".into()))?;
        let deployment = serde_json::to_vec(d).map_err(|e| SubmitError::Refused(e.to_string()))?;
        let r = self
            .rt
            .block_on(c.submit_tasks(v1::SubmitTasksRequest { deployment }))
            .map_err(|e| match e.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
                    SubmitError::Unreachable(e.message().to_string())
                }
                _ => SubmitError::Refused(e.message().to_string()),
            })?
            .into_inner();
        if r.accepted {
            Ok(())
        } else {
            Err(SubmitError::Refused(r.reason))
        }
    }

    pub(crate) fn mail(&self, rid: &str, job: JobId, attempt: u64, mail: CheckpointMail) {
        self.command(rid, Command::Mail(job, attempt, mail));
    }

    pub(crate) fn cancel(&self, rid: &str, job: JobId, attempt: u64) {
        self.command(rid, Command::Cancel(job, attempt));
    }

    pub(crate) fn free(&self, rid: &str, job: JobId, attempt: u64) {
        self.command(rid, Command::Free(job, attempt));
    }
}

struct RmService {
    rm: Arc<ResourceManager>,
    links: Arc<TmLinks>,
    dispatcher: Arc<Dispatcher>,
    /// This jobmanager's session, sent with every heartbeat.
    session: String,
}

#[tonic::async_trait]
impl v1::resource_manager_server::ResourceManager for RmService {
    async fn register_task_executor(
        &self,
        req: Request<v1::RegisterTaskExecutorRequest>,
    ) -> Result<Response<v1::RegisterTaskExecutorResponse>, Status> {
        let r = req.into_inner();
        let report = r.status.as_ref().map(report_from_proto).unwrap_or_default();
        let cfg = self.dispatcher.config();
        let (client, closed) = match self.links.add(&r.resource_id, &r.rpc_address) {
            Ok(l) => l,
            Err(e) => {
                return Ok(Response::new(v1::RegisterTaskExecutorResponse {
                    accepted: false,
                    reason: e,
                    ..Default::default()
                }))
            }
        };
        let old = self.rm.register(TaskManagerRecord {
            resource_id: r.resource_id.clone(),
            rpc_address: r.rpc_address.clone(),
            data_address: r.data_address.clone(),
            slots: vec![None; report.slots.len()],
            registered_ms: crate::jobmaster::now_ms(),
            last_heartbeat: Instant::now(),
            report,
        });
        tracing::info!(
            "taskmanager {} registered (rpc {}, data {})",
            r.resource_id,
            r.rpc_address,
            r.data_address
        );
        if old.is_some() {
            self.dispatcher
                .taskmanager_tracker()
                .notify(&r.resource_id, "it registered again (restarted)");
        }
        tokio::spawn(monitor_taskmanager(
            r.resource_id.clone(),
            client,
            closed,
            self.rm.clone(),
            self.dispatcher.taskmanager_tracker(),
            cfg.clone(),
            self.session.clone(),
        ));
        Ok(Response::new(v1::RegisterTaskExecutorResponse {
            accepted: true,
            reason: String::new(),
            heartbeat_interval_ms: cfg.heartbeat_interval_ms,
            heartbeat_timeout_ms: cfg.heartbeat_timeout_ms,
        }))
    }
}

struct JmService {
    dispatcher: Arc<Dispatcher>,
}

fn execution_state(s: i32) -> ExecutionState {
    match v1::ExecutionState::try_from(s).unwrap_or(v1::ExecutionState::Failed) {
        v1::ExecutionState::Created => ExecutionState::Created,
        v1::ExecutionState::Scheduled => ExecutionState::Scheduled,
        v1::ExecutionState::Deploying => ExecutionState::Deploying,
        v1::ExecutionState::Initializing => ExecutionState::Initializing,
        v1::ExecutionState::Running => ExecutionState::Running,
        v1::ExecutionState::Finished => ExecutionState::Finished,
        v1::ExecutionState::Canceling => ExecutionState::Canceling,
        v1::ExecutionState::Canceled => ExecutionState::Canceled,
        v1::ExecutionState::Failed => ExecutionState::Failed,
    }
}

fn execution_state_proto(s: ExecutionState) -> v1::ExecutionState {
    match s {
        ExecutionState::Created => v1::ExecutionState::Created,
        ExecutionState::Scheduled => v1::ExecutionState::Scheduled,
        ExecutionState::Deploying => v1::ExecutionState::Deploying,
        ExecutionState::Initializing => v1::ExecutionState::Initializing,
        ExecutionState::Running => v1::ExecutionState::Running,
        ExecutionState::Finished => v1::ExecutionState::Finished,
        ExecutionState::Canceling => v1::ExecutionState::Canceling,
        ExecutionState::Canceled => v1::ExecutionState::Canceled,
        ExecutionState::Failed => v1::ExecutionState::Failed,
    }
}

fn key(vertex: u32, subtask: u32) -> SubtaskKey {
    SubtaskKey {
        vertex: vertex as usize,
        subtask: subtask as usize,
    }
}

#[tonic::async_trait]
impl v1::job_master_server::JobMaster for JmService {
    async fn update_task_execution_state(
        &self,
        req: Request<v1::TaskExecutionState>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = req.into_inner();
        let state = execution_state(r.state);
        let failure = (!r.cause.is_empty()).then(|| TaskFailureReport {
            operator: r.operator.clone(),
            subtask_display: r.subtask_display.clone(),
            cause: r.cause.clone(),
        });
        self.dispatcher.on_task_state(
            parse_job(&r.job_id)?,
            r.attempt,
            key(r.vertex, r.subtask),
            state,
            failure,
        );
        Ok(Response::new(v1::Empty {}))
    }

    async fn acknowledge_checkpoint(
        &self,
        req: Request<v1::AcknowledgeCheckpointRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = req.into_inner();
        let ack: TaskAcknowledgement = serde_json::from_slice(&r.acknowledgement)
            .map_err(|e| Status::invalid_argument(format!("bad acknowledgement: {e}")))?;
        self.dispatcher
            .to_job(parse_job(&r.job_id)?, JmEvent::Ack(ack));
        Ok(Response::new(v1::Empty {}))
    }

    async fn decline_checkpoint(
        &self,
        req: Request<v1::DeclineCheckpointRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = req.into_inner();
        self.dispatcher.to_job(
            parse_job(&r.job_id)?,
            JmEvent::Decline {
                id: r.checkpoint_id,
                task: key(r.vertex, r.subtask),
                reason: r.reason,
            },
        );
        Ok(Response::new(v1::Empty {}))
    }

    async fn source_finished(
        &self,
        req: Request<v1::SourceFinishedRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = req.into_inner();
        self.dispatcher.to_job(
            parse_job(&r.job_id)?,
            JmEvent::SourceFinished {
                attempt: r.attempt,
                task: key(r.vertex, r.subtask),
            },
        );
        Ok(Response::new(v1::Empty {}))
    }
}

/// A running jobmanager: its Dispatcher (for the REST API) and RPC address.
pub struct JobManagerHandle {
    /// The Dispatcher.
    pub dispatcher: Arc<Dispatcher>,
    /// Where its RPC services listen.
    pub rpc_address: SocketAddr,
}

/// Starts a jobmanager's RPC services and heartbeats on the current tokio runtime.
/// `job_defaults` are the job settings of its configuration.
pub async fn start_jobmanager(
    config: ClusterConfig,
    job_defaults: BTreeMap<String, String>,
    builder: Arc<dyn ProgramBuilder>,
) -> Result<JobManagerHandle, ClusterError> {
    let bind = format!(
        "{}:{}",
        config.jobmanager_bind_host, config.jobmanager_rpc_port
    );
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|source| ClusterError::Bind {
            address: bind.clone(),
            source,
        })?;
    let rpc_address = listener.local_addr().map_err(|source| ClusterError::Bind {
        address: bind.clone(),
        source,
    })?;
    let rm = Arc::new(ResourceManager::new());
    let links = Arc::new(TmLinks::new(tokio::runtime::Handle::current()));
    let dispatcher = Arc::new(Dispatcher::new(
        rm.clone(),
        links.clone(),
        builder,
        config.clone(),
        job_defaults,
    ));
    let router = Server::builder()
        .add_service(v1::resource_manager_server::ResourceManagerServer::new(
            RmService {
                rm: rm.clone(),
                links: links.clone(),
                dispatcher: dispatcher.clone(),
                session: format!("{:032x}", JobId::generate().0),
            },
        ))
        .add_service(v1::job_master_server::JobMasterServer::new(JmService {
            dispatcher: dispatcher.clone(),
        }));
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::error!("jobmanager RPC server stopped: {e}");
        }
    });
    tracing::info!("jobmanager RPC listening on {rpc_address}");
    Ok(JobManagerHandle {
        dispatcher,
        rpc_address,
    })
}

/// Watches one taskmanager from its registration until it is lost or registers again: a
/// heartbeat each `heartbeat.interval` (the answer is its slot report); lost after
/// `heartbeat.rpc-failure-threshold` heartbeats in a row fail in the transport (a dead process
/// refuses connections at once) or after `heartbeat.timeout` without an answer (a partition,
/// a hung process). A held-open Watch stream ends the moment the taskmanager's connection
/// dies, and a failed heartbeat is retried after [`FAST_PROBE`] instead of an interval, so a
/// killed taskmanager is lost within a fraction of a second, not at its next heartbeat.
async fn monitor_taskmanager(
    rid: String,
    client: TaskExecutorClient<Channel>,
    closed: Arc<AtomicBool>,
    rm: Arc<ResourceManager>,
    tracker: crate::dispatcher::TaskManagerTracker,
    config: ClusterConfig,
    session: String,
) {
    let interval = Duration::from_millis(config.heartbeat_interval_ms);
    let timeout = Duration::from_millis(config.heartbeat_timeout_ms);
    let probe = Arc::new(tokio::sync::Notify::new());
    let watching = Arc::new(AtomicBool::new(false));
    let mut failures = 0u32;
    let mut delay = interval;
    let mut watch_started: Option<Instant> = None;
    loop {
        // At most one stream, opened again at most once a second (a stream that keeps ending
        // at once must not turn into a heartbeat loop).
        if watch_started.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
            && !watching.swap(true, Ordering::AcqRel)
        {
            watch_started = Some(Instant::now());
            tokio::spawn(watch(client.clone(), probe.clone(), watching.clone()));
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = probe.notified() => {}
        }
        if closed.load(Ordering::Acquire) {
            return;
        }
        let Some(record) = rm.taskmanager(&rid) else {
            return;
        };
        let mut c = client.clone();
        let req = v1::HeartbeatRequest {
            session: session.clone(),
        };
        match tokio::time::timeout(interval, c.heartbeat(req)).await {
            Ok(Ok(r)) => {
                rm.heartbeat(&rid, report_from_proto(&r.into_inner()));
                failures = 0;
                delay = interval;
                continue;
            }
            Ok(Err(e)) if is_transport_failure(&e) => {
                failures += 1;
                if config
                    .heartbeat_rpc_failure_threshold
                    .is_some_and(|t| failures >= t)
                {
                    tracker.lose(
                        &rid,
                        &format!(
                            "{failures} heartbeat RPCs in a row failed ({})",
                            e.message()
                        ),
                    );
                    return;
                }
                delay = FAST_PROBE.min(interval);
            }
            // An answer that is an error, or no answer within the interval: the timeout
            // decides.
            Ok(Err(_)) | Err(_) => delay = interval,
        }
        if record.last_heartbeat.elapsed() > timeout {
            tracker.lose(
                &rid,
                &format!("no heartbeat for {} ms", config.heartbeat_timeout_ms),
            );
            return;
        }
    }
}

/// Holds a Watch stream open; when it ends (the connection died), asks for a heartbeat now.
/// A taskmanager without the call (an older binary) is only heartbeated.
async fn watch(
    mut client: TaskExecutorClient<Channel>,
    probe: Arc<tokio::sync::Notify>,
    watching: Arc<AtomicBool>,
) {
    match client.watch(v1::WatchRequest {}).await {
        Ok(r) => {
            let mut stream = r.into_inner();
            while let Ok(Some(_)) = stream.message().await {}
        }
        Err(e) if e.code() == tonic::Code::Unimplemented => return,
        Err(_) => {}
    }
    watching.store(false, Ordering::Release);
    probe.notify_one();
}

// ---------------------------------------------------------------- taskmanager side

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
struct RpcGateway {
    tx: mpsc::UnboundedSender<Report>,
}

impl JobMasterGateway for RpcGateway {
    fn task_state(
        &self,
        job: JobId,
        attempt: u64,
        task: SubtaskKey,
        state: ExecutionState,
        failure: Option<TaskFailureReport>,
    ) {
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

struct TeService {
    executor: Arc<TaskExecutor>,
    last_heartbeat: Arc<Mutex<Instant>>,
    /// The session of the jobmanager that sends heartbeats; another one means the jobmanager
    /// restarted and knows nothing of the tasks running here.
    session: Mutex<String>,
}

#[tonic::async_trait]
impl v1::task_executor_server::TaskExecutor for TeService {
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
            Err(reason) => v1::SubmitTasksResponse {
                accepted: false,
                reason,
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
        Arc::new(RpcGateway { tx }),
    ));
    let service = v1::task_executor_server::TaskExecutorServer::new(TeService {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A TaskExecutor service that records the checkpoint mail it receives.
    #[derive(Clone, Default)]
    struct Recorder {
        mail: Arc<Mutex<Vec<CheckpointMail>>>,
    }

    #[tonic::async_trait]
    impl v1::task_executor_server::TaskExecutor for Recorder {
        async fn submit_tasks(
            &self,
            _r: Request<v1::SubmitTasksRequest>,
        ) -> Result<Response<v1::SubmitTasksResponse>, Status> {
            Err(Status::unimplemented("test"))
        }
        async fn cancel_tasks(
            &self,
            _r: Request<v1::CancelTasksRequest>,
        ) -> Result<Response<v1::Empty>, Status> {
            Ok(Response::new(v1::Empty {}))
        }
        async fn checkpoint_mail(
            &self,
            r: Request<v1::CheckpointMailRequest>,
        ) -> Result<Response<v1::Empty>, Status> {
            let m = serde_json::from_slice(&r.into_inner().mail)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            self.mail.lock().push(m);
            Ok(Response::new(v1::Empty {}))
        }
        async fn free_slots(
            &self,
            _r: Request<v1::FreeSlotsRequest>,
        ) -> Result<Response<v1::Empty>, Status> {
            Ok(Response::new(v1::Empty {}))
        }
        async fn heartbeat(
            &self,
            _r: Request<v1::HeartbeatRequest>,
        ) -> Result<Response<v1::TaskExecutorStatus>, Status> {
            Err(Status::unimplemented("test"))
        }
        type WatchStream = std::pin::Pin<
            Box<
                dyn tonic::codegen::tokio_stream::Stream<Item = Result<v1::WatchEvent, Status>>
                    + Send,
            >,
        >;
        async fn watch(
            &self,
            _r: Request<v1::WatchRequest>,
        ) -> Result<Response<Self::WatchStream>, Status> {
            Err(Status::unimplemented("test"))
        }
    }

    /// A TCP proxy that can be taken down: while down it resets every connection, as a
    /// restarting process or a broken network does.
    async fn proxy(to: SocketAddr, up: Arc<AtomicBool>) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = l.accept().await else {
                    return;
                };
                if !up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let up = up.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.split();
                    let (mut ro, mut wo) = outbound.split();
                    let cut = async {
                        while up.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy(&mut ri, &mut wo) => {}
                        _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        _ = cut => {}
                    }
                    let _ = wi.shutdown().await;
                });
            }
        });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_lost_in_an_outage_are_delivered_after_it_in_order() {
        let rec = Recorder::default();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = l.local_addr().unwrap();
        let svc = v1::task_executor_server::TaskExecutorServer::new(rec.clone());
        tokio::spawn(
            Server::builder()
                .add_service(svc)
                .serve_with_incoming(TcpIncoming::from(l)),
        );
        let up = Arc::new(AtomicBool::new(true));
        let via = proxy(server, up.clone()).await;
        let links = TmLinks::new(tokio::runtime::Handle::current());
        links.add("tm", &via.to_string()).unwrap();
        let job = JobId(7);
        let got = |n: usize| {
            let rec = rec.clone();
            async move {
                for _ in 0..1000 {
                    if rec.mail.lock().len() >= n {
                        return rec.mail.lock().clone();
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                rec.mail.lock().clone()
            }
        };
        links.mail("tm", job, 1, CheckpointMail::Complete(1));
        assert_eq!(got(1).await.len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The connection breaks; the notifications sent meanwhile fail in the transport.
        up.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        links.mail("tm", job, 1, CheckpointMail::Complete(2));
        links.mail("tm", job, 1, CheckpointMail::Abort(3));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            rec.mail.lock().len(),
            1,
            "delivered through a dead connection?"
        );
        up.store(true, Ordering::SeqCst);
        // At least once, in order: a command whose answer was lost in the cut comes again.
        let mut mail: Vec<String> = got(3).await.iter().map(|m| format!("{m:?}")).collect();
        mail.dedup();
        assert_eq!(mail, vec!["Complete(1)", "Complete(2)", "Abort(3)"]);
        // Once the taskmanager is lost, nothing is retried for ever.
        up.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        links.mail("tm", job, 1, CheckpointMail::Complete(4));
        tokio::time::sleep(Duration::from_millis(100)).await;
        links.remove("tm");
        tokio::time::sleep(Duration::from_millis(300)).await;
        up.store(true, Ordering::SeqCst);
        let before = rec.mail.lock().len();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !rec.mail
                .lock()
                .iter()
                .any(|m| matches!(m, CheckpointMail::Complete(4))),
            "retried after the taskmanager was lost"
        );
        assert_eq!(rec.mail.lock().len(), before);
    }
}
