//! How records travel from the subtasks of one operator to the subtasks of the next
//! (DESIGN §2): the partitioner kinds and the channel wiring each implies.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The exchange strategy of an edge, named as in Flink's plan (`ship_strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PartitionerKind {
    /// Subtask `i` sends to subtask `i`; both sides have the same parallelism. Chainable.
    Forward,
    /// Round-robin over all downstream subtasks.
    Rebalance,
    /// Round-robin over the subset of downstream subtasks wired to this subtask (pointwise).
    Rescale,
    /// A uniformly random downstream subtask.
    Shuffle,
    /// Every downstream subtask gets every record.
    Broadcast,
    /// By key group of the record's key (`key_by`).
    Hash,
    /// A user function picks the downstream subtask from the key.
    Custom,
}

impl PartitionerKind {
    /// Whether the edge connects subtasks pointwise (each producer to a subset of consumers)
    /// rather than all-to-all.
    pub fn is_pointwise(self) -> bool {
        matches!(self, PartitionerKind::Forward | PartitionerKind::Rescale)
    }

    /// Flink's plan name for the strategy.
    pub fn ship_strategy(self) -> &'static str {
        match self {
            PartitionerKind::Forward => "FORWARD",
            PartitionerKind::Rebalance => "REBALANCE",
            PartitionerKind::Rescale => "RESCALE",
            PartitionerKind::Shuffle => "SHUFFLE",
            PartitionerKind::Broadcast => "BROADCAST",
            PartitionerKind::Hash => "HASH",
            PartitionerKind::Custom => "CUSTOM",
        }
    }
}

impl fmt::Display for PartitionerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ship_strategy())
    }
}

/// The downstream subtasks producer subtask `producer` of `up` subtasks sends to, for an edge
/// of this kind into `down` subtasks. All-to-all edges return `0..down`. Pointwise edges follow
/// Flink's `POINTWISE` pattern: with `up >= down` each producer feeds exactly one consumer and
/// each consumer reads a contiguous range of producers; with `up < down` each producer feeds a
/// contiguous range of consumers.
pub fn consumers_of(kind: PartitionerKind, producer: usize, up: usize, down: usize) -> Vec<usize> {
    if !kind.is_pointwise() {
        return (0..down).collect();
    }
    if up == down {
        return vec![producer];
    }
    if up > down {
        // Consumer j reads producers [j*up/down, (j+1)*up/down).
        (0..down)
            .filter(|&j| (j * up / down..(j + 1) * up / down).contains(&producer))
            .collect()
    } else {
        // Producer i feeds consumers [i*down/up, (i+1)*down/up).
        (producer * down / up..(producer + 1) * down / up).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointwise_wiring_covers_every_pair_once() {
        for up in 1..9 {
            for down in 1..9 {
                let mut seen = vec![0; down];
                for i in 0..up {
                    let c = consumers_of(PartitionerKind::Rescale, i, up, down);
                    assert!(!c.is_empty(), "producer {i} of {up}->{down} feeds nobody");
                    if up >= down {
                        assert_eq!(c.len(), 1);
                    }
                    for j in c {
                        seen[j] += 1;
                    }
                }
                assert!(seen.iter().all(|&n| n > 0), "{up}->{down}: {seen:?}");
            }
        }
    }
}
