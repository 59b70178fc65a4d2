//! How the other roles talk to the jobmanager (Flink's `DispatcherGateway` and
//! `ResourceManagerGateway`): the REST API through the [`DispatcherGateway`], TaskExecutors
//! through the [`ResourceManagerGateway`]. The [`Dispatcher`] implements both; the MiniCluster
//! calls them directly, the jobmanager's gRPC services and `eddy-web` call the same methods,
//! so registering a taskmanager or answering a REST call is written once.

use crate::deployment::JobSubmission;
use crate::jobmanager::dispatcher::{
    Dispatcher, DispatcherError, SavepointStatus, SubmitRejection,
};
use crate::jobmanager::job_master::now_ms;
use crate::jobmanager::resource_manager::TaskManagerRecord;
use crate::rest_api::{
    CheckpointConfigInfo, CheckpointingStatistics, ClusterOverview, JobDetailsInfo,
    JobExceptionsInfoWithHistory, JobIdsWithStatusOverview, MultipleJobsDetails, TaskManagersInfo,
};
use crate::taskmanager::task_executor::TaskExecutorReport;
use eddy_core::jobgraph::JobGraph;
use eddy_core::JobId;
use eddy_runtime::checkpoint::SnapshotKind;
use std::path::PathBuf;
use std::time::Instant;

/// What the REST API asks of the cluster's Dispatcher (Flink's `DispatcherGateway`).
pub trait DispatcherGateway: Send + Sync {
    /// `GET /overview`.
    fn overview(&self) -> ClusterOverview;
    /// `GET /taskmanagers`.
    fn taskmanagers_info(&self) -> TaskManagersInfo;
    /// `GET /jobs`.
    fn job_ids_with_status(&self) -> JobIdsWithStatusOverview;
    /// `GET /jobs/overview`.
    fn jobs_overview(&self) -> MultipleJobsDetails;
    /// `GET /jobs/{id}`.
    fn job_details_info(&self, id: JobId) -> Option<JobDetailsInfo>;
    /// `GET /jobs/{id}/plan`.
    fn job_graph(&self, id: JobId) -> Option<JobGraph>;
    /// `GET /jobs/{id}/checkpoints`.
    fn checkpointing_statistics(&self, id: JobId) -> Option<CheckpointingStatistics>;
    /// `GET /jobs/{id}/checkpoints/config`.
    fn checkpoint_config_info(&self, id: JobId) -> Option<CheckpointConfigInfo>;
    /// `GET /jobs/{id}/exceptions`.
    fn job_exceptions(&self, id: JobId) -> Option<JobExceptionsInfoWithHistory>;
    /// `POST /jobs`: builds and starts a built-in job of the binary (blocks while it builds).
    fn submit(&self, submission: JobSubmission) -> Result<JobId, SubmitRejection>;
    /// `PATCH /jobs/{id}`.
    fn cancel(&self, id: JobId) -> Result<(), DispatcherError>;
    /// `POST /jobs/{id}/savepoints` and `/stop`: the trigger id to poll.
    fn trigger_savepoint(
        &self,
        id: JobId,
        dir: Option<PathBuf>,
        kind: SnapshotKind,
    ) -> Result<String, DispatcherError>;
    /// `GET /jobs/{id}/savepoints/{trigger}`.
    fn savepoint_status(&self, trigger: &str) -> Result<SavepointStatus, DispatcherError>;
}

impl DispatcherGateway for Dispatcher {
    fn overview(&self) -> ClusterOverview {
        Dispatcher::overview(self)
    }
    fn taskmanagers_info(&self) -> TaskManagersInfo {
        Dispatcher::taskmanagers_info(self)
    }
    fn job_ids_with_status(&self) -> JobIdsWithStatusOverview {
        Dispatcher::job_ids_with_status(self)
    }
    fn jobs_overview(&self) -> MultipleJobsDetails {
        Dispatcher::jobs_overview(self)
    }
    fn job_details_info(&self, id: JobId) -> Option<JobDetailsInfo> {
        Dispatcher::job_details_info(self, id)
    }
    fn job_graph(&self, id: JobId) -> Option<JobGraph> {
        Dispatcher::job_graph(self, id)
    }
    fn checkpointing_statistics(&self, id: JobId) -> Option<CheckpointingStatistics> {
        Dispatcher::checkpointing_statistics(self, id)
    }
    fn checkpoint_config_info(&self, id: JobId) -> Option<CheckpointConfigInfo> {
        Dispatcher::checkpoint_config_info(self, id)
    }
    fn job_exceptions(&self, id: JobId) -> Option<JobExceptionsInfoWithHistory> {
        Dispatcher::job_exceptions(self, id)
    }
    fn submit(&self, submission: JobSubmission) -> Result<JobId, SubmitRejection> {
        Dispatcher::submit(self, submission)
    }
    fn cancel(&self, id: JobId) -> Result<(), DispatcherError> {
        Dispatcher::cancel(self, id)
    }
    fn trigger_savepoint(
        &self,
        id: JobId,
        dir: Option<PathBuf>,
        kind: SnapshotKind,
    ) -> Result<String, DispatcherError> {
        Dispatcher::trigger_savepoint(self, id, dir, kind)
    }
    fn savepoint_status(&self, trigger: &str) -> Result<SavepointStatus, DispatcherError> {
        Dispatcher::savepoint_status(self, trigger)
    }
}

/// A TaskExecutor introducing itself to the ResourceManager (Flink's
/// `TaskExecutorRegistration`).
#[derive(Clone, Debug)]
pub struct TaskExecutorRegistration {
    /// Its resource id.
    pub resource_id: String,
    /// Where its TaskExecutor gateway answers (`in-process` in the MiniCluster).
    pub rpc_address: String,
    /// Its data port.
    pub data_address: String,
    /// Its slots, memory and traffic now.
    pub report: TaskExecutorReport,
}

/// What TaskExecutors call on the ResourceManager (Flink's `ResourceManagerGateway`).
pub trait ResourceManagerGateway: Send + Sync {
    /// Registers a TaskExecutor; its slots become available to jobs. One that registers
    /// again under the same id (it restarted) replaces its old record, and every job that
    /// had tasks there is told they are gone.
    fn register_task_executor(&self, registration: TaskExecutorRegistration);
    /// A TaskExecutor's latest report (its answer to a heartbeat).
    fn heartbeat_from_task_executor(&self, resource_id: &str, report: TaskExecutorReport);
}

impl ResourceManagerGateway for Dispatcher {
    fn register_task_executor(&self, r: TaskExecutorRegistration) {
        let old = self.resource_manager().register(TaskManagerRecord {
            slots: vec![None; r.report.slots.len()],
            resource_id: r.resource_id.clone(),
            rpc_address: r.rpc_address.clone(),
            data_address: r.data_address.clone(),
            registered_ms: now_ms(),
            last_heartbeat: Instant::now(),
            report: r.report,
        });
        tracing::info!(
            "taskmanager {} registered (rpc {}, data {})",
            r.resource_id,
            r.rpc_address,
            r.data_address
        );
        if old.is_some() {
            self.taskmanager_tracker()
                .notify(&r.resource_id, "it registered again (restarted)");
        }
    }

    fn heartbeat_from_task_executor(&self, resource_id: &str, report: TaskExecutorReport) {
        self.resource_manager().heartbeat(resource_id, report);
    }
}
