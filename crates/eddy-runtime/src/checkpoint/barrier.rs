//! Barrier handling at a task's inputs (Flink's `CheckpointBarrierHandler`): which checkpoint a
//! task snapshots when, and which input channels it must not read meanwhile.
//!
//! Exactly-once **aligns**: a channel that delivered barrier n is blocked until barrier n came
//! on every channel, so the snapshot holds exactly the records before the barrier. At-least-once
//! counts barriers without blocking. A channel that ended counts as having delivered every
//! barrier. A newer barrier while an older alignment is open aborts the older checkpoint (an
//! upstream task declined it), as Flink does. A checkpoint the coordinator aborted is forgotten
//! on its own: an older alignment still open goes on (under `max_concurrent > 1` a newer
//! checkpoint can be aborted while an older one aligns), and the aborted one's barriers are
//! ignored when they come.

use super::{CheckpointBarrier, CheckpointId};
use eddy_core::CheckpointingMode;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// What a barrier (or an ended channel) means for the task.
#[derive(Debug, Default, PartialEq)]
pub struct BarrierOutcome {
    /// An older checkpoint whose alignment was given up.
    pub aborted: Option<CheckpointId>,
    /// Barrier n arrived on every channel: snapshot now, after this alignment time.
    pub trigger: Option<(CheckpointBarrier, Duration)>,
}

struct Alignment {
    barrier: CheckpointBarrier,
    started: Instant,
    seen: Vec<bool>,
    count: usize,
}

/// Tracks barriers over all input channels of one task (both inputs of a two-input task, as one
/// index space).
pub struct BarrierHandler {
    mode: CheckpointingMode,
    ended: Vec<bool>,
    num_ended: usize,
    /// Exactly-once: the open alignment (at most one; channels are FIFO).
    /// At-least-once: every open checkpoint.
    open: BTreeMap<CheckpointId, Alignment>,
    /// Channels not to read (exactly-once only).
    blocked: Vec<bool>,
    /// Checkpoints at or below this id are done here (snapshotted or aborted).
    done_up_to: Option<CheckpointId>,
    /// Checkpoints above `done_up_to` aborted by the coordinator while an older alignment was
    /// open: their barriers are ignored, the older alignment is not given up for them.
    aborted: BTreeSet<CheckpointId>,
}

impl BarrierHandler {
    /// A handler for `channels` input channels.
    pub fn new(mode: CheckpointingMode, channels: usize) -> Self {
        BarrierHandler {
            mode,
            ended: vec![false; channels],
            num_ended: 0,
            open: BTreeMap::new(),
            blocked: vec![false; channels],
            done_up_to: None,
            aborted: BTreeSet::new(),
        }
    }

    /// Channels that must not be read now (`None`: read everything).
    pub fn blocked(&self) -> Option<&[bool]> {
        if self.mode == CheckpointingMode::ExactlyOnce && !self.open.is_empty() {
            Some(&self.blocked)
        } else {
            None
        }
    }

    /// Whether a checkpoint is being aligned.
    pub fn is_aligning(&self) -> bool {
        !self.open.is_empty()
    }

    fn is_done(&self, id: CheckpointId) -> bool {
        self.done_up_to.is_some_and(|d| id <= d)
    }

    /// Barrier `b` arrived on `channel`.
    pub fn on_barrier(&mut self, channel: usize, b: CheckpointBarrier) -> BarrierOutcome {
        let mut out = BarrierOutcome::default();
        if self.is_done(b.id) || channel >= self.ended.len() {
            return out;
        }
        // A newer barrier means older open checkpoints lost a barrier upstream (channels are
        // FIFO), whether or not the newer one was itself aborted.
        if self.mode == CheckpointingMode::ExactlyOnce {
            if let Some((&old, _)) = self.open.iter().next() {
                if old < b.id {
                    out.aborted = Some(old);
                    self.abort(old);
                }
            }
        }
        if self.aborted.contains(&b.id) {
            if self.open.range(..b.id).next().is_none() {
                self.mark_done(b.id);
            }
            return out;
        }
        let n = self.ended.len();
        let a = self.open.entry(b.id).or_insert_with(|| Alignment {
            barrier: b.clone(),
            started: Instant::now(),
            seen: vec![false; n],
            count: 0,
        });
        if !a.seen[channel] {
            a.seen[channel] = true;
            a.count += 1;
            if self.mode == CheckpointingMode::ExactlyOnce {
                self.blocked[channel] = true;
            }
        }
        out.trigger = self.check_complete(b.id);
        if out.trigger.is_some() && self.mode == CheckpointingMode::AtLeastOnce {
            // Older open ones can no longer complete in order: give them up.
            let older: Vec<_> = self.open.range(..b.id).map(|(k, _)| *k).collect();
            for o in older {
                self.open.remove(&o);
                out.aborted.get_or_insert(o);
            }
        }
        out
    }

    /// `channel` ended (end of partition): it owes no more barriers.
    pub fn on_channel_ended(&mut self, channel: usize) -> BarrierOutcome {
        let mut out = BarrierOutcome::default();
        if channel >= self.ended.len() || self.ended[channel] {
            return out;
        }
        self.ended[channel] = true;
        self.num_ended += 1;
        if let Some(&id) = self.open.keys().next() {
            out.trigger = self.check_complete(id);
        }
        out
    }

    fn check_complete(&mut self, id: CheckpointId) -> Option<(CheckpointBarrier, Duration)> {
        let a = self.open.get(&id)?;
        let missing = a
            .seen
            .iter()
            .zip(&self.ended)
            .filter(|(s, e)| !**s && !**e)
            .count();
        if missing > 0 {
            return None;
        }
        let a = self.open.remove(&id)?;
        self.finish_up_to(id);
        Some((a.barrier, a.started.elapsed()))
    }

    fn finish_up_to(&mut self, id: CheckpointId) {
        self.mark_done(id);
        if self.mode == CheckpointingMode::ExactlyOnce {
            self.blocked.iter_mut().for_each(|b| *b = false);
        }
    }

    fn mark_done(&mut self, id: CheckpointId) {
        self.done_up_to = Some(self.done_up_to.map_or(id, |d| d.max(id)));
        self.aborted.retain(|a| *a > id);
    }

    /// Gives up checkpoint `id` (the coordinator aborted it): unblocks its channels. An older
    /// checkpoint still aligning is left to complete.
    pub fn abort(&mut self, id: CheckpointId) {
        if self.is_done(id) {
            return;
        }
        if self.open.remove(&id).is_some() && self.mode == CheckpointingMode::ExactlyOnce {
            self.blocked.iter_mut().for_each(|b| *b = false);
        }
        if self.open.range(..id).next().is_some() {
            self.aborted.insert(id);
        } else {
            self.mark_done(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::SnapshotKind;

    fn b(id: u64) -> CheckpointBarrier {
        CheckpointBarrier {
            id,
            timestamp: 0,
            kind: SnapshotKind::Checkpoint,
            savepoint_dir: None,
            final_checkpoint: false,
        }
    }

    #[test]
    fn exactly_once_blocks_until_all_channels_delivered() {
        let mut h = BarrierHandler::new(CheckpointingMode::ExactlyOnce, 3);
        assert!(h.on_barrier(1, b(1)).trigger.is_none());
        assert_eq!(h.blocked().unwrap(), &[false, true, false]);
        assert!(h.on_barrier(0, b(1)).trigger.is_none());
        let out = h.on_barrier(2, b(1));
        assert_eq!(out.trigger.unwrap().0.id, 1);
        assert!(h.blocked().is_none());
        // A late duplicate of a done checkpoint is ignored.
        assert_eq!(h.on_barrier(0, b(1)), BarrierOutcome::default());
    }

    #[test]
    fn ended_channels_count_and_newer_barrier_aborts_older() {
        let mut h = BarrierHandler::new(CheckpointingMode::ExactlyOnce, 2);
        h.on_barrier(0, b(1));
        assert_eq!(h.on_channel_ended(1).trigger.unwrap().0.id, 1);
        let mut h = BarrierHandler::new(CheckpointingMode::ExactlyOnce, 2);
        h.on_barrier(0, b(1));
        let out = h.on_barrier(1, b(2));
        assert_eq!(out.aborted, Some(1));
        assert!(out.trigger.is_none());
        assert_eq!(h.blocked().unwrap(), &[false, true]);
        assert_eq!(h.on_barrier(0, b(2)).trigger.unwrap().0.id, 2);
    }

    #[test]
    fn aborting_a_newer_checkpoint_lets_the_open_alignment_complete() {
        let mut h = BarrierHandler::new(CheckpointingMode::ExactlyOnce, 2);
        h.on_barrier(0, b(1));
        // Checkpoint 2 was declined elsewhere while 1 aligns here (max_concurrent > 1).
        h.abort(2);
        assert_eq!(h.blocked().unwrap(), &[true, false]);
        assert_eq!(h.on_barrier(1, b(1)).trigger.unwrap().0.id, 1);
        assert!(h.blocked().is_none());
        // Barrier 2 comes after all: nothing to align, nothing blocked.
        assert_eq!(h.on_barrier(0, b(2)), BarrierOutcome::default());
        assert_eq!(h.on_barrier(1, b(2)), BarrierOutcome::default());
        assert!(h.blocked().is_none());
        assert_eq!(h.on_barrier(0, b(3)).trigger, None);
        assert_eq!(h.on_barrier(1, b(3)).trigger.unwrap().0.id, 3);
        // An aborted barrier arriving before the older one's also gives the older one up.
        let mut h = BarrierHandler::new(CheckpointingMode::ExactlyOnce, 2);
        h.on_barrier(0, b(1));
        h.abort(2);
        let out = h.on_barrier(1, b(2));
        assert_eq!(out.aborted, Some(1));
        assert!(out.trigger.is_none() && h.blocked().is_none());
        // At-least-once: an aborted newer checkpoint does not end the older one either.
        let mut h = BarrierHandler::new(CheckpointingMode::AtLeastOnce, 2);
        h.on_barrier(0, b(1));
        h.on_barrier(0, b(2));
        h.abort(2);
        assert_eq!(h.on_barrier(1, b(1)).trigger.unwrap().0.id, 1);
    }

    #[test]
    fn at_least_once_never_blocks() {
        let mut h = BarrierHandler::new(CheckpointingMode::AtLeastOnce, 2);
        h.on_barrier(0, b(1));
        assert!(h.blocked().is_none());
        h.on_barrier(0, b(2));
        assert_eq!(h.on_barrier(1, b(1)).trigger.unwrap().0.id, 1);
        assert_eq!(h.on_barrier(1, b(2)).trigger.unwrap().0.id, 2);
    }
}
