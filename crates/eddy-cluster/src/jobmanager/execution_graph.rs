//! The ExecutionGraph: the JobGraph expanded to subtasks, with one channel per pair of
//! producer and consumer subtask that an edge connects (all-to-all, or pointwise for forward
//! and rescale), and the shared slots its subtasks run in.

use crate::slot::{shared_slots, SharedSlot};
use eddy_core::jobgraph::JobGraph;
use eddy_core::partitioner::consumers_of;
use eddy_core::{CoreError, OperatorId};

/// One channel of a network edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Index of the StreamGraph edge.
    pub edge: usize,
    /// Producer subtask.
    pub producer: usize,
    /// Consumer subtask.
    pub consumer: usize,
}

/// One subtask of a vertex.
#[derive(Clone, Debug)]
pub struct ExecutionVertex {
    /// The JobGraph vertex (by index in `job_graph.vertices`).
    pub vertex: usize,
    /// 0-based subtask index.
    pub subtask: usize,
    /// Per input of the head: the channels feeding it, in gate order.
    pub input_channels: Vec<Vec<Channel>>,
}

/// The job expanded to subtasks.
#[derive(Clone, Debug)]
pub struct ExecutionGraph {
    /// All subtasks, vertex by vertex.
    pub subtasks: Vec<ExecutionVertex>,
    /// The slots the job needs, with the subtasks sharing each.
    pub slots: Vec<SharedSlot>,
}

impl ExecutionGraph {
    /// Expands the JobGraph.
    pub fn build(g: &JobGraph) -> Result<Self, CoreError> {
        let vertex_index = |op: OperatorId| -> Result<usize, CoreError> {
            g.vertices
                .iter()
                .position(|v| v.operators.contains(&op))
                .ok_or_else(|| CoreError::InvalidGraph(format!("operator {op} is in no vertex")))
        };
        let mut subtasks = Vec::new();
        for (vi, v) in g.vertices.iter().enumerate() {
            let inputs = g
                .in_edges(v.head)
                .filter(|(_, e)| !e.chained)
                .map(|(_, e)| e.target_input)
                .max()
                .map_or(0, |m| m + 1);
            for s in 0..v.parallelism {
                let mut input_channels = vec![Vec::new(); inputs];
                for (ei, e) in g.in_edges(v.head).filter(|(_, e)| !e.chained) {
                    let up = &g.vertices[vertex_index(e.source)?];
                    for p in 0..up.parallelism {
                        if consumers_of(e.partitioner, p, up.parallelism, v.parallelism)
                            .contains(&s)
                        {
                            input_channels[e.target_input].push(Channel {
                                edge: ei,
                                producer: p,
                                consumer: s,
                            });
                        }
                    }
                }
                subtasks.push(ExecutionVertex {
                    vertex: vi,
                    subtask: s,
                    input_channels,
                });
            }
        }
        Ok(ExecutionGraph {
            subtasks,
            slots: shared_slots(g),
        })
    }
}
