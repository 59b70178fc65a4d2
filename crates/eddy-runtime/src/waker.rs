//! The task's waker: how input, checkpoint mail and cancellation wake a sleeping mailbox loop.
//! Below the channels and the checkpoint mailbox, which both wake through it.

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::Instant;

/// Wakes a task's mailbox loop when input, mail or cancellation arrives.
#[derive(Debug, Default)]
pub struct TaskWaker {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl TaskWaker {
    /// A new waker.
    pub fn new() -> Arc<Self> {
        Arc::new(TaskWaker::default())
    }

    /// Signals the task that something is available.
    pub fn wake(&self) {
        let mut p = self.pending.lock();
        if !*p {
            *p = true;
            self.cv.notify_one();
        }
    }

    /// Waits until woken or until `deadline`; returns immediately if a wake-up is pending.
    pub fn wait(&self, deadline: Option<Instant>) {
        let mut p = self.pending.lock();
        if !*p {
            match deadline {
                Some(d) => {
                    self.cv.wait_until(&mut p, d);
                }
                None => self.cv.wait(&mut p),
            }
        }
        *p = false;
    }
}
