//! Slots as one type (DESIGN §8), used alike by the ResourceManager (which slot of which
//! taskmanager is free or allocated), the scheduler (which subtasks share a slot and where it
//! is) and the TaskExecutor (which of its slots a deployment uses): Flink's `SlotID`,
//! `AllocationID` and the shared slot of a slot sharing group.
//!
//! Subtask `i` of every vertex of a slot sharing group runs in the group's `i`-th slot, so a
//! job needs, per group, as many slots as the group's highest parallelism
//! ([`shared_slots`]).

use eddy_core::jobgraph::JobGraph;
use eddy_core::JobId;
use eddy_runtime::checkpoint::SubtaskKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A slot of a taskmanager (Flink's `SlotID`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotId {
    /// The taskmanager.
    pub resource_id: String,
    /// 0-based index among its slots.
    pub index: usize,
}

impl std::fmt::Display for SlotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/slot-{}", self.resource_id, self.index)
    }
}

/// One allocation of a slot to a job (Flink's `AllocationID`): new for every slot request, so
/// what refers to an earlier allocation of the same slot is told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AllocationId(pub u128);

impl AllocationId {
    /// A fresh allocation id.
    pub fn generate() -> Self {
        AllocationId(JobId::generate().0)
    }
}

impl std::fmt::Display for AllocationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Who holds an allocated slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotAllocation {
    /// The job.
    pub job: JobId,
    /// The allocation.
    pub allocation: AllocationId,
}

/// One slot a job needs: its slot sharing group, its index in the group, and the subtasks
/// that share it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSlot {
    /// The slot sharing group.
    pub sharing_group: String,
    /// Index within the group.
    pub index: usize,
    /// The subtasks in it, by vertex.
    pub subtasks: Vec<SubtaskKey>,
}

/// A shared slot placed on a taskmanager's slot for one attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatedSlot {
    /// Where.
    pub id: SlotId,
    /// Under which allocation.
    pub allocation: AllocationId,
    /// What runs in it.
    pub shared: SharedSlot,
}

/// Every slot the job needs, group by group (in order of the groups' first vertex), index by
/// index.
pub fn shared_slots(g: &JobGraph) -> Vec<SharedSlot> {
    let vertices: Vec<(usize, &str)> = g
        .vertices
        .iter()
        .map(|v| (v.parallelism, v.slot_sharing_group.as_str()))
        .collect();
    shared_slots_of(&vertices)
}

/// [`shared_slots`] of vertices given as (parallelism, slot sharing group).
fn shared_slots_of(vertices: &[(usize, &str)]) -> Vec<SharedSlot> {
    let mut groups: Vec<&str> = Vec::new();
    let mut members: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for (vi, (parallelism, group)) in vertices.iter().enumerate() {
        if !groups.contains(group) {
            groups.push(group);
        }
        members.entry(group).or_default().push((vi, *parallelism));
    }
    let mut slots = Vec::new();
    for group in groups {
        let vertices = members.get(group).map(Vec::as_slice).unwrap_or_default();
        let size = vertices.iter().map(|(_, p)| *p).max().unwrap_or(0);
        for index in 0..size {
            slots.push(SharedSlot {
                sharing_group: group.to_string(),
                index,
                subtasks: vertices
                    .iter()
                    .filter(|(_, p)| index < *p)
                    .map(|(vertex, _)| SubtaskKey {
                        vertex: *vertex,
                        subtask: index,
                    })
                    .collect(),
            });
        }
    }
    slots
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn subtask_i_of_each_vertex_of_a_group_shares_slot_i() {
        let slots = shared_slots_of(&[(2, "default"), (3, "default"), (1, "other")]);
        assert_eq!(
            slots.len(),
            3 + 1,
            "the groups' highest parallelism, summed"
        );
        let keys = |s: &SharedSlot| -> Vec<(usize, usize)> {
            s.subtasks.iter().map(|k| (k.vertex, k.subtask)).collect()
        };
        assert_eq!(keys(&slots[0]), vec![(0, 0), (1, 0)]);
        assert_eq!(keys(&slots[1]), vec![(0, 1), (1, 1)]);
        assert_eq!(keys(&slots[2]), vec![(1, 2)]);
        assert_eq!(
            (slots[3].sharing_group.as_str(), keys(&slots[3])),
            ("other", vec![(2, 0)])
        );
        // Every subtask is in exactly one slot.
        let all: usize = slots.iter().map(|s| s.subtasks.len()).sum();
        assert_eq!(all, 6);
    }
}
