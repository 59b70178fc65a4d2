//! What one operator of one subtask puts into a checkpoint, and how the state of a previous
//! run is handed to the subtasks of the next one, possibly at another parallelism:
//! keyed state and timers by key group, split list state in contiguous chunks, union list state
//! to everyone, broadcast state as a copy (Flink's `OperatorSubtaskState` and its
//! repartitioners).

use eddy_core::keygroup::KeyGroupRange;
use eddy_state::{KeyedStateSnapshot, TimerServiceSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How operator (non-keyed) list state is redistributed on restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorStateMode {
    /// `ListState` of `getListState`: the items of all subtasks are split among the new ones.
    Split,
    /// `getUnionListState`: every new subtask gets all items of all subtasks.
    Union,
    /// Broadcast state: every subtask holds the same; each new subtask gets one copy.
    Broadcast,
}

/// One named operator list state (or broadcast state, as serialized map entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListStateSnapshot {
    /// The state's name.
    pub name: String,
    /// How it is redistributed.
    pub mode: OperatorStateMode,
    /// The serialized items.
    pub items: Vec<Vec<u8>>,
}

/// The snapshot of one operator in one subtask.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorSubtaskState {
    /// Keyed state by key group.
    pub keyed: Option<KeyedStateSnapshot>,
    /// Timer services by name.
    pub timers: Vec<(String, TimerServiceSnapshot)>,
    /// Operator list, union and broadcast states.
    pub operator: Vec<ListStateSnapshot>,
}

/// Errors of encoding and decoding operator snapshots.
#[derive(Debug, thiserror::Error)]
#[error("operator state of '{operator}' could not be {what}: {source}")]
pub struct StateCodecError {
    /// The operator.
    pub operator: String,
    /// "encoded" or "decoded".
    pub what: &'static str,
    /// Why.
    #[source]
    pub source: postcard::Error,
}

impl OperatorSubtaskState {
    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.keyed.as_ref().is_none_or(|k| k.key_groups.is_empty())
            && self.timers.iter().all(|(_, t)| t.key_groups.is_empty())
            && self.operator.iter().all(|l| l.items.is_empty())
    }

    /// The postcard bytes of the snapshot.
    pub fn to_bytes(&self, operator: &str) -> Result<Vec<u8>, StateCodecError> {
        postcard::to_stdvec(self).map_err(|source| StateCodecError {
            operator: operator.to_string(),
            what: "encoded",
            source,
        })
    }

    /// Streams the bytes of [`to_bytes`](Self::to_bytes) into `out`. An encoding failure comes
    /// back as an I/O error of kind `Other` wrapping the [`StateCodecError`].
    pub fn write_to(&self, operator: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut keep = KeepIoError { out, error: None };
        match postcard::to_io(self, &mut keep) {
            Ok(_) => Ok(()),
            Err(source) => Err(keep.error.take().unwrap_or_else(|| {
                std::io::Error::other(StateCodecError {
                    operator: operator.to_string(),
                    what: "encoded",
                    source,
                })
            })),
        }
    }

    /// Reads bytes written by [`OperatorSubtaskState::to_bytes`].
    pub fn from_bytes(bytes: &[u8], operator: &str) -> Result<Self, StateCodecError> {
        postcard::from_bytes(bytes).map_err(|source| StateCodecError {
            operator: operator.to_string(),
            what: "decoded",
            source,
        })
    }
}

/// Keeps the writer's error, which postcard would replace by its own.
struct KeepIoError<'a> {
    out: &'a mut dyn std::io::Write,
    error: Option<std::io::Error>,
}

impl std::io::Write for KeepIoError<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write_all(buf).map(|()| buf.len()).map_err(|e| {
            let kind = e.kind();
            self.error = Some(e);
            std::io::Error::from(kind)
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The state one operator of one new subtask starts from.
#[derive(Clone, Debug, Default)]
pub struct RestoredOperatorState {
    /// The operator's parallelism when the snapshot was taken.
    pub old_parallelism: usize,
    /// Keyed state snapshots of every old subtask whose key groups overlap this one's (the
    /// backend keeps only its own key groups).
    pub keyed: Vec<KeyedStateSnapshot>,
    /// Timer snapshots by name, likewise.
    pub timers: BTreeMap<String, Vec<TimerServiceSnapshot>>,
    /// Operator states by name: this subtask's share of the items.
    pub operator: BTreeMap<String, (OperatorStateMode, Vec<Vec<u8>>)>,
}

impl RestoredOperatorState {
    /// Redistributes the snapshots of all old subtasks of an operator (index = old subtask;
    /// `None` where a subtask had no state) to new subtask `subtask` of `parallelism`, which
    /// owns `range`.
    pub fn assign(
        old: &[Option<OperatorSubtaskState>],
        subtask: usize,
        parallelism: usize,
        range: KeyGroupRange,
    ) -> Self {
        let mut r = RestoredOperatorState {
            old_parallelism: old.len(),
            ..Default::default()
        };
        let overlaps = |k: &KeyGroupRange| {
            !range.is_empty() && !k.is_empty() && k.start <= range.end && range.start <= k.end
        };
        for s in old.iter().flatten() {
            if let Some(k) = &s.keyed {
                if overlaps(&k.key_group_range) {
                    r.keyed.push(k.clone());
                }
            }
            for (name, t) in &s.timers {
                if overlaps(&t.key_group_range) {
                    r.timers.entry(name.clone()).or_default().push(t.clone());
                }
            }
        }
        let same_parallelism = old.len() == parallelism;
        // Every state name with its mode, in first-seen order.
        let mut names: Vec<(String, OperatorStateMode)> = Vec::new();
        for s in old.iter().flatten() {
            for l in &s.operator {
                if !names.iter().any(|(n, _)| n == &l.name) {
                    names.push((l.name.clone(), l.mode));
                }
            }
        }
        let items_of = |i: usize, name: &str| -> Vec<Vec<u8>> {
            old.get(i)
                .and_then(Option::as_ref)
                .and_then(|s| s.operator.iter().find(|l| l.name == name))
                .map(|l| l.items.clone())
                .unwrap_or_default()
        };
        for (name, mode) in names {
            let items = match mode {
                OperatorStateMode::Split if same_parallelism => items_of(subtask, &name),
                OperatorStateMode::Split => {
                    let all: Vec<Vec<u8>> =
                        (0..old.len()).flat_map(|i| items_of(i, &name)).collect();
                    // Contiguous chunks, the first `rem` one item larger (Flink's round-robin
                    // repartitioner).
                    let base = all.len() / parallelism;
                    let rem = all.len() % parallelism;
                    let start = subtask * base + subtask.min(rem);
                    let len = base + usize::from(subtask < rem);
                    all[start..start + len].to_vec()
                }
                OperatorStateMode::Union => {
                    (0..old.len()).flat_map(|i| items_of(i, &name)).collect()
                }
                OperatorStateMode::Broadcast => {
                    if old.is_empty() {
                        Vec::new()
                    } else {
                        items_of(subtask % old.len(), &name)
                    }
                }
            };
            r.operator.insert(name, (mode, items));
        }
        r
    }
}

/// The state a whole subtask starts from: per operator of its chain.
#[derive(Clone, Debug, Default)]
pub struct TaskRestore {
    /// The checkpoint restored from.
    pub checkpoint_id: u64,
    /// Per operator id.
    pub operators: BTreeMap<eddy_core::OperatorId, RestoredOperatorState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str, mode: OperatorStateMode, items: &[u8]) -> OperatorSubtaskState {
        OperatorSubtaskState {
            operator: vec![ListStateSnapshot {
                name: name.into(),
                mode,
                items: items.iter().map(|b| vec![*b]).collect(),
            }],
            ..Default::default()
        }
    }

    fn items(r: &RestoredOperatorState, name: &str) -> Vec<u8> {
        r.operator[name].1.iter().map(|v| v[0]).collect()
    }

    #[test]
    fn streamed_bytes_are_the_encoded_bytes() {
        let state = list("s", OperatorStateMode::Union, &[1, 2, 3]);
        let mut streamed = Vec::new();
        state.write_to("op", &mut streamed).unwrap();
        assert_eq!(streamed, state.to_bytes("op").unwrap());
        assert_eq!(
            OperatorSubtaskState::from_bytes(&streamed, "op").unwrap(),
            state
        );
    }

    #[test]
    fn split_state_is_redistributed_without_loss() {
        let old = vec![
            Some(list("s", OperatorStateMode::Split, &[1, 2, 3])),
            Some(list("s", OperatorStateMode::Split, &[4, 5])),
        ];
        for p in 1..=6 {
            let mut all = Vec::new();
            for i in 0..p {
                all.extend(items(
                    &RestoredOperatorState::assign(&old, i, p, KeyGroupRange::new(0, 0)),
                    "s",
                ));
            }
            assert_eq!(all, vec![1, 2, 3, 4, 5], "p={p}");
        }
        // Same parallelism: each keeps its own.
        let r = RestoredOperatorState::assign(&old, 1, 2, KeyGroupRange::new(0, 0));
        assert_eq!(items(&r, "s"), vec![4, 5]);
    }

    #[test]
    fn union_goes_to_all_and_broadcast_is_copied() {
        let old = vec![
            Some(list("u", OperatorStateMode::Union, &[1])),
            Some(list("u", OperatorStateMode::Union, &[2])),
        ];
        for i in 0..3 {
            let r = RestoredOperatorState::assign(&old, i, 3, KeyGroupRange::new(0, 0));
            assert_eq!(items(&r, "u"), vec![1, 2]);
        }
        let old = vec![
            Some(list("b", OperatorStateMode::Broadcast, &[7, 8])),
            Some(list("b", OperatorStateMode::Broadcast, &[7, 8])),
        ];
        let r = RestoredOperatorState::assign(&old, 2, 3, KeyGroupRange::new(0, 0));
        assert_eq!(items(&r, "b"), vec![7, 8]);
    }
}
