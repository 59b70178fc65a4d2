//! Flink's scheduler for one job: each attempt asks the ResourceManager for the job's shared
//! slots (subtask `i` of each vertex of a slot sharing group in the group's slot `i`,
//! [`crate::slot`]), places them on the slots it is granted, and deploys each taskmanager's share through its [`TaskExecutorGateway`], in-process
//! or over gRPC alike. A taskmanager that cannot be reached is dropped and the attempt placed
//! again on the others; the [`DeployedAttempt`] it returns reaches the attempt's tasks through
//! the same gateway.

use crate::deployment::{InProcessHandover, JobSubmission, TaskDeployment, TaskManagerLocation};
use crate::jobmanager::checkpoint::CheckpointCoordinator;
use crate::jobmanager::dispatcher::{JobRecord, TaskManagerTracker};
use crate::jobmanager::job_master::{DeployedAttempt, Deployer, JobExecutionError, RestoreSpec};
use crate::jobmanager::resource_manager::{ResourceManager, SlotRequestError};
use crate::slot::{AllocatedSlot, SharedSlot};
use crate::taskmanager::gateway::{SubmitError, TaskExecutorGateway};
use crate::taskmanager::task_executor::ExecutionState;
use eddy_core::jobgraph::JobGraph;
use eddy_core::JobId;
use eddy_runtime::checkpoint::storage::CheckpointStorage;
use eddy_runtime::checkpoint::{CheckpointBarrier, CheckpointMail, SubtaskKey};
use eddy_runtime::{OperatorError, TaskError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deploys attempts of a job onto the cluster's TaskExecutors.
pub(crate) struct Scheduler {
    pub(crate) submission: JobSubmission,
    pub(crate) graph: JobGraph,
    /// The slots the job needs (from its ExecutionGraph).
    pub(crate) slots: Vec<SharedSlot>,
    pub(crate) rm: Arc<ResourceManager>,
    pub(crate) links: Arc<dyn TaskExecutorGateway>,
    pub(crate) tracker: TaskManagerTracker,
    /// The id of the last attempt deployed: every try gets a new one, so commands of a
    /// try given up (cancel, free slots) never hit the next.
    pub(crate) last_attempt: u64,
    pub(crate) slot_timeout: Duration,
    pub(crate) record: Arc<JobRecord>,
    pub(crate) allow_non_restored: bool,
    /// Whether the taskmanagers run in this process: they then get the restored state and
    /// the coordinator's checkpoint storage handed over instead of reading them again.
    pub(crate) in_process: bool,
}

/// Why deploying an attempt did not work.
enum DeployFailure {
    /// A taskmanager could not be reached: it is dropped and the attempt tried again.
    Unreachable(String, String),
    /// Anything else fails the attempt.
    Fatal(JobExecutionError),
}

impl From<JobExecutionError> for DeployFailure {
    fn from(e: JobExecutionError) -> Self {
        DeployFailure::Fatal(e)
    }
}

impl Deployer for Scheduler {
    /// Deploys the attempt; a taskmanager that cannot be reached (it died and its heartbeat
    /// timeout has not passed yet) is removed and the attempt placed again on the others, until
    /// the slot request timeout.
    fn deploy(
        &mut self,
        attempt: u64,
        restore: &RestoreSpec,
        coordinator: &CheckpointCoordinator,
    ) -> Result<Box<dyn DeployedAttempt>, JobExecutionError> {
        let deadline = Instant::now() + self.slot_timeout;
        loop {
            let id = attempt.max(self.last_attempt + 1);
            self.last_attempt = id;
            match self.try_deploy(id, restore, coordinator.storage()) {
                Ok(a) => return Ok(Box::new(a)),
                Err(DeployFailure::Fatal(e)) => return Err(e),
                Err(DeployFailure::Unreachable(rid, e)) => {
                    tracing::warn!(job = %self.graph.job_id, "taskmanager {rid} is unreachable, dropping it: {e}");
                    // Every job with tasks there fails over, not only this one.
                    self.tracker
                        .lose(&rid, &format!("unreachable during deployment: {e}"));
                    if Instant::now() >= deadline {
                        return Err(JobExecutionError::Deployment(format!(
                            "taskmanager {rid} is unreachable: {e}"
                        )));
                    }
                }
            }
        }
    }
}

impl Scheduler {
    fn try_deploy(
        &mut self,
        attempt: u64,
        restore: &RestoreSpec,
        storage: &Arc<dyn CheckpointStorage>,
    ) -> Result<ScheduledAttempt, DeployFailure> {
        let g = &self.graph;
        let job = g.job_id;
        let needed = self.slots.len();
        self.rm.release(job);
        {
            let mut t = self.record.tasks.lock();
            t.0 = attempt;
            t.1.clear();
            for k in self.slots.iter().flat_map(|s| &s.subtasks) {
                t.1.insert(*k, (ExecutionState::Scheduled, None));
            }
        }
        let record = &self.record;
        let cancelled = || {
            record
                .cancel_requested
                .load(std::sync::atomic::Ordering::Acquire)
        };
        let granted = self
            .rm
            .request_slots(job, needed, self.slot_timeout, &cancelled)
            .map_err(|e| match e {
                SlotRequestError::NotEnoughSlots {
                    needed, available, ..
                } => JobExecutionError::NotEnoughSlots { needed, available },
                SlotRequestError::Cancelled => JobExecutionError::TaskFailed(TaskError::new(
                    g.job_name.clone(),
                    0,
                    "-",
                    OperatorError::Cancelled,
                )),
            })?;
        let allocated: Vec<AllocatedSlot> = self
            .slots
            .iter()
            .zip(granted)
            .map(|(shared, (id, allocation))| AllocatedSlot {
                id,
                allocation,
                shared: shared.clone(),
            })
            .collect();
        // The attempt's taskmanagers, in the order of their first slot.
        let mut tms: Vec<String> = Vec::new();
        for a in &allocated {
            if !tms.contains(&a.id.resource_id) {
                tms.push(a.id.resource_id.clone());
            }
        }
        let mut locations = Vec::new();
        for rid in &tms {
            let rec = self.rm.taskmanager(rid).ok_or_else(|| {
                JobExecutionError::Deployment(format!("taskmanager {rid} went away"))
            })?;
            locations.push(TaskManagerLocation {
                resource_id: rid.clone(),
                data_address: rec.data_address,
            });
        }
        let mut placement: Vec<Vec<usize>> =
            g.vertices.iter().map(|v| vec![0; v.parallelism]).collect();
        let mut tasks_on: BTreeMap<String, Vec<SubtaskKey>> = BTreeMap::new();
        let mut sources: BTreeSet<String> = BTreeSet::new();
        for (tm, rid) in tms.iter().enumerate() {
            for k in allocated
                .iter()
                .filter(|a| &a.id.resource_id == rid)
                .flat_map(|a| &a.shared.subtasks)
            {
                if let Some(p) = placement
                    .get_mut(k.vertex)
                    .and_then(|v| v.get_mut(k.subtask))
                {
                    *p = tm;
                }
                tasks_on.entry(rid.clone()).or_default().push(*k);
                let head = g.vertices.get(k.vertex).map(|v| v.head);
                if head
                    .and_then(|h| g.operator(h))
                    .is_some_and(|o| o.kind == eddy_core::jobgraph::OperatorKind::Source)
                {
                    sources.insert(rid.clone());
                }
            }
        }
        let restore_from = restore.checkpoint.as_ref().map(|c| c.location.dir.clone());
        let attempt_handle = ScheduledAttempt {
            job,
            attempt,
            total: self.slots.iter().map(|s| s.subtasks.len()).sum(),
            tasks_on: tasks_on.clone(),
            sources,
            stopped: BTreeSet::new(),
            links: self.links.clone(),
            rm: self.rm.clone(),
        };
        for (i, rid) in tms.iter().enumerate() {
            let mine = tasks_on.get(rid).cloned().unwrap_or_default();
            {
                let mut t = self.record.tasks.lock();
                for k in &mine {
                    t.1.insert(*k, (ExecutionState::Deploying, Some(rid.clone())));
                }
            }
            let d = TaskDeployment {
                submission: self.submission.clone(),
                attempt,
                slots: allocated
                    .iter()
                    .filter(|a| &a.id.resource_id == rid)
                    .cloned()
                    .collect(),
                placement: placement.clone(),
                taskmanagers: locations.clone(),
                restore_from: restore_from.clone(),
                allow_non_restored_state: self.allow_non_restored,
                in_process: self.in_process.then(|| InProcessHandover {
                    states: restore.states.clone(),
                    storage: storage.clone(),
                }),
            };
            if let Err(e) = self.links.submit(rid, &d) {
                tracing::warn!(job = %job, "deploying to {rid} failed: {e}");
                for other in &tms[..i] {
                    self.links.cancel(other, job, attempt);
                    self.links.free(other, job, attempt);
                }
                self.rm.release(job);
                return Err(match e {
                    SubmitError::Unreachable(m) => DeployFailure::Unreachable(rid.clone(), m),
                    SubmitError::Refused(m) => DeployFailure::Fatal(JobExecutionError::Deployment(
                        format!("taskmanager {rid}: {m}"),
                    )),
                    SubmitError::Task(e) => DeployFailure::Fatal(JobExecutionError::TaskFailed(e)),
                });
            }
        }
        Ok(attempt_handle)
    }
}

/// One attempt's tasks on the cluster.
struct ScheduledAttempt {
    job: JobId,
    attempt: u64,
    total: usize,
    tasks_on: BTreeMap<String, Vec<SubtaskKey>>,
    sources: BTreeSet<String>,
    stopped: BTreeSet<SubtaskKey>,
    links: Arc<dyn TaskExecutorGateway>,
    rm: Arc<ResourceManager>,
}

impl DeployedAttempt for ScheduledAttempt {
    fn attempt(&self) -> u64 {
        self.attempt
    }

    fn task_count(&self) -> usize {
        self.total
    }

    fn trigger_sources(&self, barrier: &CheckpointBarrier) {
        for rid in &self.sources {
            self.links.mail(
                rid,
                self.job,
                self.attempt,
                CheckpointMail::Trigger(barrier.clone()),
            );
        }
    }

    fn deliver_all(&self, mail: CheckpointMail) {
        for rid in self.tasks_on.keys() {
            self.links.mail(rid, self.job, self.attempt, mail.clone());
        }
    }

    fn cancel(&self) {
        for rid in self.tasks_on.keys() {
            self.links.cancel(rid, self.job, self.attempt);
        }
    }

    fn on_task_done(&mut self, task: SubtaskKey) {
        self.stopped.insert(task);
    }

    fn on_taskmanager_lost(&mut self, resource_id: &str) -> usize {
        let Some(tasks) = self.tasks_on.get(resource_id) else {
            return 0;
        };
        let mut n = 0;
        for t in tasks {
            if self.stopped.insert(*t) {
                n += 1;
            }
        }
        n
    }

    fn all_stopped(&self) -> bool {
        self.stopped.len() >= self.total
    }

    fn finish(&mut self) {
        for rid in self.tasks_on.keys() {
            self.links.free(rid, self.job, self.attempt);
        }
        self.rm.release(self.job);
    }
}
