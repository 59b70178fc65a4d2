//! The jobmanager's side of the control plane over gRPC (DESIGN §8): the ResourceManager and
//! JobMaster services taskmanagers call, the links that carry commands to each taskmanager,
//! the heartbeat monitor of each taskmanager, and the process entry point
//! [`start_jobmanager`].
//!
//! Heartbeats: the jobmanager asks every taskmanager for a heartbeat each `heartbeat.interval`
//! (the answer is its slot report and memory model); a taskmanager is lost after
//! `heartbeat.rpc-failure-threshold` failed heartbeat RPCs in a row, or when it has not
//! answered for `heartbeat.timeout`, and its jobs fail over.
//!
//! Commands to one taskmanager (checkpoint mail, cancel, free slots) go through one queue per
//! taskmanager, so they arrive in the order the JobMaster sent them, and are sent again after
//! a transport failure until answered or the taskmanager is lost.

use crate::deployment::{ProgramBuilder, TaskDeployment};
use crate::jobmanager::dispatcher::Dispatcher;
use crate::jobmanager::gateways::{ResourceManagerGateway, TaskExecutorRegistration};
use crate::jobmanager::job_master::JobMasterEvent;
use crate::jobmanager::resource_manager::ResourceManager;
use crate::rpc::{
    endpoint, execution_state, is_transport_failure, key, parse_job, report_from_proto,
    ClusterError, InvalidAddress, FAST_PROBE, RETRY_FIRST, RETRY_MAX,
};
use crate::taskmanager::gateway::{SubmitError, TaskExecutorGateway};
use crate::taskmanager::task_executor::ExecutionState;
use eddy_core::cluster_config::ClusterConfig;
use eddy_core::JobId;
use eddy_rpc::tonic::transport::server::TcpIncoming;
use eddy_rpc::tonic::transport::{Channel, Server};
use eddy_rpc::tonic::{self, Request, Response, Status};
use eddy_rpc::v1;
use eddy_rpc::v1::task_executor_client::TaskExecutorClient;
use eddy_runtime::checkpoint::{CheckpointMail, TaskAcknowledgement};
use eddy_runtime::{OperatorError, TaskError};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Clone)]
enum Command {
    Mail(JobId, u64, CheckpointMail),
    Cancel(JobId, u64),
    Free(JobId, u64),
}

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
pub(crate) struct TaskManagerLinks {
    rt: tokio::runtime::Handle,
    links: Mutex<HashMap<String, Link>>,
}

impl TaskManagerLinks {
    fn new(rt: tokio::runtime::Handle) -> Self {
        TaskManagerLinks {
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
    ) -> Result<(TaskExecutorClient<Channel>, Arc<AtomicBool>), InvalidAddress> {
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

    fn client(&self, rid: &str) -> Option<TaskExecutorClient<Channel>> {
        self.links.lock().get(rid).map(|l| l.client.clone())
    }

    fn command(&self, rid: &str, c: Command) {
        if let Some(l) = self.links.lock().get(rid) {
            let _ = l.tx.send(c);
        }
    }
}

impl TaskExecutorGateway for TaskManagerLinks {
    /// Deploys tasks (blocking the calling JobMaster thread until the taskmanager answers).
    fn submit(&self, rid: &str, d: &TaskDeployment) -> Result<(), SubmitError> {
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

    fn mail(&self, rid: &str, job: JobId, attempt: u64, mail: CheckpointMail) {
        self.command(rid, Command::Mail(job, attempt, mail));
    }

    fn cancel(&self, rid: &str, job: JobId, attempt: u64) {
        self.command(rid, Command::Cancel(job, attempt));
    }

    fn free(&self, rid: &str, job: JobId, attempt: u64) {
        self.command(rid, Command::Free(job, attempt));
    }

    fn remove(&self, rid: &str) {
        self.links.lock().remove(rid);
    }
}

struct ResourceManagerService {
    rm: Arc<ResourceManager>,
    links: Arc<TaskManagerLinks>,
    dispatcher: Arc<Dispatcher>,
    /// This jobmanager's session, sent with every heartbeat.
    session: String,
}

#[tonic::async_trait]
impl v1::resource_manager_server::ResourceManager for ResourceManagerService {
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
                    reason: e.to_string(),
                    ..Default::default()
                }))
            }
        };
        self.dispatcher
            .register_task_executor(TaskExecutorRegistration {
                resource_id: r.resource_id.clone(),
                rpc_address: r.rpc_address.clone(),
                data_address: r.data_address.clone(),
                report,
            });
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

struct JobMasterService {
    dispatcher: Arc<Dispatcher>,
}

#[tonic::async_trait]
impl v1::job_master_server::JobMaster for JobMasterService {
    async fn update_task_execution_state(
        &self,
        req: Request<v1::TaskExecutionState>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = req.into_inner();
        let state = execution_state(r.state);
        let task = key(r.vertex, r.subtask);
        // A failure from another process keeps its operator, subtask and message; the cause's
        // type stayed there. A CANCELED report is the cancellation's echo. Without a cause the
        // dispatcher names the task itself.
        let failure = (!r.cause.is_empty()
            && matches!(state, ExecutionState::Canceled | ExecutionState::Failed))
        .then(|| {
            let cause = if state == ExecutionState::Canceled {
                OperatorError::Cancelled
            } else {
                OperatorError::Remote(r.cause)
            };
            TaskError::new(r.operator, task.subtask, r.subtask_display, cause)
        });
        self.dispatcher
            .on_task_state(parse_job(&r.job_id)?, r.attempt, task, state, failure);
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
            .to_job(parse_job(&r.job_id)?, JobMasterEvent::Ack(ack));
        Ok(Response::new(v1::Empty {}))
    }

    async fn decline_checkpoint(
        &self,
        req: Request<v1::DeclineCheckpointRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = req.into_inner();
        self.dispatcher.to_job(
            parse_job(&r.job_id)?,
            JobMasterEvent::Decline {
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
            JobMasterEvent::SourceFinished {
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
    let links = Arc::new(TaskManagerLinks::new(tokio::runtime::Handle::current()));
    let dispatcher = Arc::new(Dispatcher::new(
        rm.clone(),
        links.clone(),
        builder,
        config.clone(),
        job_defaults,
    ));
    let router = Server::builder()
        .add_service(v1::resource_manager_server::ResourceManagerServer::new(
            ResourceManagerService {
                rm: rm.clone(),
                links: links.clone(),
                dispatcher: dispatcher.clone(),
                session: format!("{:032x}", JobId::generate().0),
            },
        ))
        .add_service(v1::job_master_server::JobMasterServer::new(
            JobMasterService {
                dispatcher: dispatcher.clone(),
            },
        ));
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
    tracker: crate::jobmanager::dispatcher::TaskManagerTracker,
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
        let links = TaskManagerLinks::new(tokio::runtime::Handle::current());
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
