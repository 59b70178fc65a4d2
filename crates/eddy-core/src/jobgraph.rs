//! The JobGraph: what the client submits. Vertices are chains of operators, edges carry a
//! partitioner. Plain serializable data (serde), versioned; the user's code (closures) is not in
//! it but is looked up by [`OperatorId`] in the program that built the graph (DESIGN §1,
//! application mode).

use crate::config::ExecutionConfig;
use crate::error::CoreError;
use crate::ids::{JobId, OperatorId, VertexId};
use crate::partitioner::PartitionerKind;
use serde::{Deserialize, Serialize};

/// Version of the serialized JobGraph format; bump on incompatible change.
pub const JOB_GRAPH_VERSION: u32 = 1;

/// The role of an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorKind {
    /// Produces records from outside (no inputs).
    Source,
    /// One input, one main output.
    OneInput,
    /// Two inputs (`connect`), one main output.
    TwoInput,
    /// Consumes records, no output.
    Sink,
}

/// One operator of the program, as the JobGraph records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorDescriptor {
    /// Its id in the program.
    pub id: OperatorId,
    /// Display name (`name(..)`), e.g. `Map` or `Source: Collection Source`.
    pub name: String,
    /// Stable user id (`uid(..)`) used to map state across program versions.
    pub uid: Option<String>,
    /// Role.
    pub kind: OperatorKind,
    /// Parallelism after defaults were applied.
    pub parallelism: usize,
    /// Max parallelism (number of key groups).
    pub max_parallelism: usize,
    /// Slot sharing group.
    pub slot_sharing_group: String,
    /// Whether the operator's state is keyed.
    pub keyed: bool,
}

/// An edge between two operators (a StreamGraph edge). Chained edges stay inside a vertex and
/// pass records by function call; the others become network channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamEdgeDescriptor {
    /// Producing operator.
    pub source: OperatorId,
    /// Consuming operator.
    pub target: OperatorId,
    /// Which input of the target: 0, or 1 for the second input of a two-input operator.
    pub target_input: usize,
    /// The side output this edge reads (`get_side_output`), or the main output.
    pub side_output: Option<String>,
    /// Exchange strategy.
    pub partitioner: PartitionerKind,
    /// Whether source and target are fused into one task.
    pub chained: bool,
}

/// A vertex: a chain of operators run by one task per subtask.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobVertex {
    /// Id: the head operator's id.
    pub id: VertexId,
    /// Display name: the chained operators' names joined by ` -> `, as Flink shows them.
    pub name: String,
    /// The chain's head operator.
    pub head: OperatorId,
    /// Every operator in the chain, head first, in topological order.
    pub operators: Vec<OperatorId>,
    /// Parallelism of the vertex.
    pub parallelism: usize,
    /// Max parallelism of the vertex.
    pub max_parallelism: usize,
    /// Slot sharing group.
    pub slot_sharing_group: String,
}

/// The serializable job: what the client hands to the JobManager.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobGraph {
    /// Format version ([`JOB_GRAPH_VERSION`]).
    pub version: u32,
    /// Job id.
    pub job_id: JobId,
    /// Job name given to `execute(name)`.
    pub job_name: String,
    /// All operators, by id order.
    pub operators: Vec<OperatorDescriptor>,
    /// All StreamGraph edges (chained and not).
    pub edges: Vec<StreamEdgeDescriptor>,
    /// Vertices in topological order.
    pub vertices: Vec<JobVertex>,
    /// Execution configuration.
    pub config: ExecutionConfig,
}

impl JobGraph {
    /// The operator with this id.
    pub fn operator(&self, id: OperatorId) -> Option<&OperatorDescriptor> {
        self.operators.iter().find(|o| o.id == id)
    }

    /// The vertex that contains the operator.
    pub fn vertex_of(&self, op: OperatorId) -> Option<&JobVertex> {
        self.vertices.iter().find(|v| v.operators.contains(&op))
    }

    /// Edges leaving the operator.
    pub fn out_edges(
        &self,
        op: OperatorId,
    ) -> impl Iterator<Item = (usize, &StreamEdgeDescriptor)> {
        self.edges
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.source == op)
    }

    /// Edges entering the operator.
    pub fn in_edges(&self, op: OperatorId) -> impl Iterator<Item = (usize, &StreamEdgeDescriptor)> {
        self.edges
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.target == op)
    }

    /// Serialized JSON.
    pub fn to_json(&self) -> Result<String, CoreError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses JSON, rejecting other format versions.
    pub fn from_json(s: &str) -> Result<Self, CoreError> {
        let g: JobGraph = serde_json::from_str(s)?;
        if g.version != JOB_GRAPH_VERSION {
            return Err(CoreError::InvalidGraph(format!(
                "job graph format version {} is not supported (expected {})",
                g.version, JOB_GRAPH_VERSION
            )));
        }
        Ok(g)
    }
}
