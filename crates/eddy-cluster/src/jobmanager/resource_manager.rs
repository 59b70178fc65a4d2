//! The ResourceManager and its SlotManager (DESIGN §8): which taskmanagers are registered,
//! their slots, which job holds which slot, and the slot requests waiting for slots.
//!
//! A JobMaster asks for the slots of an attempt all at once ([`ResourceManager::request_slots`]);
//! the request waits (listed as pending) until enough slots are free or the slot request timeout
//! passes, then fails with "not enough slots: needed X, available Y"; cancelling the job ends
//! the wait. Slots are spread over the
//! taskmanagers (the one with the most free slots first), so a job uses every taskmanager and
//! its channels cross machines. A lost taskmanager's slots disappear with it.

use crate::slot::{AllocationId, SlotAllocation, SlotId};
use crate::taskmanager::task_executor::TaskExecutorReport;
use eddy_core::JobId;
use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A registered taskmanager.
#[derive(Clone, Debug)]
pub struct TaskManagerRecord {
    /// Its resource id.
    pub resource_id: String,
    /// Its TaskExecutor RPC address.
    pub rpc_address: String,
    /// Its data port.
    pub data_address: String,
    /// Per slot: who holds it.
    pub slots: Vec<Option<SlotAllocation>>,
    /// When it registered (ms since the epoch).
    pub registered_ms: i64,
    /// When it last answered a heartbeat.
    pub last_heartbeat: Instant,
    /// What it reported last.
    pub report: TaskExecutorReport,
}

/// A slot request that waits for slots.
#[derive(Clone, Debug, Serialize)]
pub struct PendingSlotRequest {
    /// The job.
    pub job_id: JobId,
    /// Slots asked for.
    pub slots: usize,
    /// Waiting for this long (ms).
    pub waiting_ms: u64,
}

#[derive(Default)]
struct State {
    taskmanagers: BTreeMap<String, TaskManagerRecord>,
    pending: Vec<(JobId, usize, Instant)>,
}

/// Why a slot request failed.
#[derive(Debug, thiserror::Error)]
pub enum SlotRequestError {
    /// The timeout passed with too few free slots.
    #[error(
        "not enough slots: needed {needed}, available {available} (waited {waited_ms} ms for more)"
    )]
    NotEnoughSlots {
        /// Slots the job needs.
        needed: usize,
        /// Slots free when the request gave up.
        available: usize,
        /// How long it waited.
        waited_ms: u64,
    },
    /// The job was cancelled while it waited.
    #[error("the job was cancelled while it waited for slots")]
    Cancelled,
}

/// The ResourceManager of a jobmanager.
#[derive(Default)]
pub struct ResourceManager {
    state: Mutex<State>,
    changed: Condvar,
}

impl ResourceManager {
    /// An empty ResourceManager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a taskmanager. One that registers again under the same id (it restarted)
    /// replaces the old record, which is returned: its jobs lost their tasks.
    pub fn register(&self, rec: TaskManagerRecord) -> Option<TaskManagerRecord> {
        let old = self
            .state
            .lock()
            .taskmanagers
            .insert(rec.resource_id.clone(), rec);
        self.changed.notify_all();
        old
    }

    /// Removes a taskmanager (lost or disconnected); returns its record.
    pub fn remove(&self, resource_id: &str) -> Option<TaskManagerRecord> {
        let r = self.state.lock().taskmanagers.remove(resource_id);
        self.changed.notify_all();
        r
    }

    /// Records a heartbeat answer.
    pub fn heartbeat(&self, resource_id: &str, report: TaskExecutorReport) {
        if let Some(t) = self.state.lock().taskmanagers.get_mut(resource_id) {
            t.last_heartbeat = Instant::now();
            t.report = report;
        }
    }

    /// Taskmanagers whose last heartbeat is older than `timeout`.
    pub fn overdue(&self, timeout: Duration) -> Vec<String> {
        self.state
            .lock()
            .taskmanagers
            .values()
            .filter(|t| t.last_heartbeat.elapsed() > timeout)
            .map(|t| t.resource_id.clone())
            .collect()
    }

    /// Every registered taskmanager.
    pub fn taskmanagers(&self) -> Vec<TaskManagerRecord> {
        self.state.lock().taskmanagers.values().cloned().collect()
    }

    /// One taskmanager.
    pub fn taskmanager(&self, resource_id: &str) -> Option<TaskManagerRecord> {
        self.state.lock().taskmanagers.get(resource_id).cloned()
    }

    /// (total, free) slots.
    pub fn slot_counts(&self) -> (usize, usize) {
        let st = self.state.lock();
        let total = st.taskmanagers.values().map(|t| t.slots.len()).sum();
        let free = st
            .taskmanagers
            .values()
            .flat_map(|t| &t.slots)
            .filter(|s| s.is_none())
            .count();
        (total, free)
    }

    /// Slot requests waiting for slots.
    pub fn pending_requests(&self) -> Vec<PendingSlotRequest> {
        self.state
            .lock()
            .pending
            .iter()
            .map(|(job, n, since)| PendingSlotRequest {
                job_id: *job,
                slots: *n,
                waiting_ms: since.elapsed().as_millis() as u64,
            })
            .collect()
    }

    /// Allocates `n` slots to `job`, waiting up to `timeout` for enough to be free (and giving
    /// up when `cancelled` says so). Returns each slot with its new allocation.
    pub fn request_slots(
        &self,
        job: JobId,
        n: usize,
        timeout: Duration,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<(SlotId, AllocationId)>, SlotRequestError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut st = self.state.lock();
        st.pending.push((job, n, started));
        let result = loop {
            let free: usize = st
                .taskmanagers
                .values()
                .flat_map(|t| &t.slots)
                .filter(|s| s.is_none())
                .count();
            if free >= n {
                break Ok(allocate(&mut st, job, n));
            }
            if cancelled() {
                break Err(SlotRequestError::Cancelled);
            }
            if Instant::now() >= deadline {
                break Err(SlotRequestError::NotEnoughSlots {
                    needed: n,
                    available: free,
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            // Bounded, so a cancellation is seen within 100 ms.
            let wake = deadline.min(Instant::now() + Duration::from_millis(100));
            self.changed.wait_until(&mut st, wake);
        };
        st.pending.retain(|(j, _, s)| !(*j == job && *s == started));
        result
    }

    /// Frees every slot of `job`.
    pub fn release(&self, job: JobId) {
        let mut st = self.state.lock();
        for t in st.taskmanagers.values_mut() {
            for s in &mut t.slots {
                if s.is_some_and(|a| a.job == job) {
                    *s = None;
                }
            }
        }
        drop(st);
        self.changed.notify_all();
    }
}

/// Takes `n` free slots (there are enough), one at a time from the taskmanager with the most
/// free slots, so the job spreads evenly.
fn allocate(st: &mut State, job: JobId, n: usize) -> Vec<(SlotId, AllocationId)> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let Some(t) = st
            .taskmanagers
            .values_mut()
            .filter(|t| t.slots.iter().any(Option::is_none))
            .max_by_key(|t| {
                (
                    t.slots.iter().filter(|s| s.is_none()).count(),
                    std::cmp::Reverse(t.resource_id.clone()),
                )
            })
        else {
            break;
        };
        if let Some(i) = t.slots.iter().position(Option::is_none) {
            let allocation = AllocationId::generate();
            t.slots[i] = Some(SlotAllocation { job, allocation });
            out.push((
                SlotId {
                    resource_id: t.resource_id.clone(),
                    index: i,
                },
                allocation,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(id: &str, slots: usize) -> TaskManagerRecord {
        TaskManagerRecord {
            resource_id: id.into(),
            rpc_address: String::new(),
            data_address: String::new(),
            slots: vec![None; slots],
            registered_ms: 0,
            last_heartbeat: Instant::now(),
            report: Default::default(),
        }
    }

    #[test]
    fn slots_spread_over_taskmanagers_and_are_released() {
        let rm = ResourceManager::new();
        rm.register(tm("a", 2));
        rm.register(tm("b", 2));
        let got = rm
            .request_slots(JobId(1), 2, Duration::from_millis(10), &|| false)
            .unwrap();
        let tms: Vec<&str> = got.iter().map(|(s, _)| s.resource_id.as_str()).collect();
        assert_ne!(got[0].1, got[1].1, "every slot gets its own allocation");
        assert_eq!(tms, vec!["a", "b"]);
        assert_eq!(rm.slot_counts(), (4, 2));
        let err = rm
            .request_slots(JobId(2), 3, Duration::from_millis(20), &|| false)
            .unwrap_err();
        assert!(matches!(
            err,
            SlotRequestError::NotEnoughSlots {
                needed: 3,
                available: 2,
                ..
            }
        ));
        assert!(err
            .to_string()
            .contains("not enough slots: needed 3, available 2"));
        let cancelled = rm
            .request_slots(JobId(2), 3, Duration::from_secs(60), &|| true)
            .unwrap_err();
        assert!(matches!(cancelled, SlotRequestError::Cancelled));
        rm.release(JobId(1));
        assert_eq!(rm.slot_counts(), (4, 4));
    }

    #[test]
    fn a_pending_request_gets_the_slots_of_a_new_taskmanager() {
        let rm = std::sync::Arc::new(ResourceManager::new());
        rm.register(tm("a", 1));
        let rm2 = rm.clone();
        let t = std::thread::spawn(move || {
            rm2.request_slots(JobId(1), 2, Duration::from_secs(10), &|| false)
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(rm.pending_requests().len(), 1);
        rm.register(tm("b", 1));
        assert_eq!(t.join().unwrap().unwrap().len(), 2);
        assert!(rm.pending_requests().is_empty());
    }
}
