//! The StreamGraph (one node per operator, as the program declared it) and its translation
//! into a JobGraph with Flink's chaining rules, plus Flink's execution-plan JSON.

use eddy_core::config::ExecutionConfig;
use eddy_core::ids::JobId;
use eddy_core::jobgraph::{
    JobGraph, JobVertex, OperatorDescriptor, OperatorKind, StreamEdgeDescriptor, JOB_GRAPH_VERSION,
};
use eddy_core::keygroup::{default_max_parallelism, UPPER_BOUND_MAX_PARALLELISM};
use eddy_core::partitioner::PartitionerKind;
use eddy_core::{CoreError, OperatorId};
use eddy_runtime::factory::{JobProgram, OperatorFactory, SideOutputBuilder};
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Whether an operator may be chained to its neighbours (Flink's `ChainingStrategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainingStrategy {
    /// Chains with the operator before and after it when the rules allow.
    Always,
    /// Starts a new chain (`start_new_chain`), but the next operator may chain to it.
    Head,
    /// Never chained (`disable_chaining`).
    Never,
}

/// One operator of the program.
pub struct StreamNode {
    /// Id (index in the graph).
    pub id: OperatorId,
    /// Display name.
    pub name: String,
    /// Stable user id.
    pub uid: Option<String>,
    /// Role.
    pub kind: OperatorKind,
    /// Explicit parallelism.
    pub parallelism: Option<usize>,
    /// Explicit max parallelism.
    pub max_parallelism: Option<usize>,
    /// Explicit slot sharing group.
    pub slot_sharing_group: Option<String>,
    /// Chaining strategy.
    pub chaining: ChainingStrategy,
    /// Whether the operator is keyed.
    pub keyed: bool,
    /// Whether it can only run with parallelism 1 (collection and socket sources).
    pub non_parallel: bool,
    /// Flink's plan "pact" label: `Data Source`, `Operator` or `Data Sink`.
    pub pact: &'static str,
    /// Builds the operator per subtask.
    pub factory: Arc<dyn OperatorFactory>,
}

/// An edge of the program.
#[derive(Clone)]
pub struct StreamEdge {
    /// Producer.
    pub source: OperatorId,
    /// Consumer.
    pub target: OperatorId,
    /// Input of the consumer (0 or 1).
    pub target_input: usize,
    /// Side output read, if any.
    pub side_output: Option<String>,
    /// Explicit partitioner; `None` means forward when parallelism matches, else rebalance.
    pub partitioner: Option<PartitionerKind>,
    /// `Arc<dyn KeyPartitioner<T>>` for hash and custom edges.
    pub key_partitioner: Option<Arc<dyn Any + Send + Sync>>,
}

/// The program's operators and edges.
#[derive(Default)]
pub struct StreamGraph {
    /// Operators by id.
    pub nodes: Vec<StreamNode>,
    /// Edges in creation order.
    pub edges: Vec<StreamEdge>,
    /// Side outputs read by the program: builder and record type.
    pub side_outputs: HashMap<(OperatorId, String), (Arc<dyn SideOutputBuilder>, TypeId)>,
    /// Mistakes found while the program was built, reported by `execute`.
    pub errors: Vec<String>,
}

struct Resolved {
    parallelism: Vec<usize>,
    max_parallelism: Vec<usize>,
    group: Vec<String>,
    partitioners: Vec<PartitionerKind>,
}

impl StreamGraph {
    fn resolve(&self, config: &ExecutionConfig) -> Result<Resolved, CoreError> {
        if let Some(e) = self.errors.first() {
            return Err(CoreError::InvalidGraph(e.clone()));
        }
        let mut parallelism = Vec::new();
        let mut max_parallelism = Vec::new();
        let mut group: Vec<String> = Vec::new();
        for n in &self.nodes {
            let p = if n.non_parallel {
                match n.parallelism {
                    Some(p) if p != 1 => {
                        return Err(CoreError::InvalidParallelism {
                            what: n.name.clone(),
                            value: p,
                            reason: "the parallelism of a non-parallel operator must be 1".into(),
                        })
                    }
                    _ => 1,
                }
            } else {
                n.parallelism.unwrap_or(config.parallelism)
            };
            let maxp = n
                .max_parallelism
                .or(config.max_parallelism)
                .unwrap_or_else(|| default_max_parallelism(p));
            if maxp < p || maxp > UPPER_BOUND_MAX_PARALLELISM {
                return Err(CoreError::InvalidParallelism {
                    what: n.name.clone(),
                    value: p,
                    reason: format!(
                        "max parallelism {maxp} must be at least the parallelism and at most {UPPER_BOUND_MAX_PARALLELISM}"
                    ),
                });
            }
            parallelism.push(p);
            max_parallelism.push(maxp);
            let g = match &n.slot_sharing_group {
                Some(g) => g.clone(),
                None => {
                    // Inherit the inputs' group when they agree, as Flink does.
                    let mut gs = self
                        .edges
                        .iter()
                        .filter(|e| e.target == n.id)
                        .map(|e| group[e.source as usize].clone());
                    match gs.next() {
                        Some(first) if gs.all(|g| g == first) => first,
                        _ => "default".to_string(),
                    }
                }
            };
            group.push(g);
        }
        let mut partitioners = Vec::new();
        for e in &self.edges {
            let (ps, pt) = (
                parallelism[e.source as usize],
                parallelism[e.target as usize],
            );
            let kind = match e.partitioner {
                Some(PartitionerKind::Forward) if ps != pt => {
                    return Err(CoreError::InvalidGraph(format!(
                        "forward partitioning does not allow a change of parallelism: upstream '{}' has parallelism {ps}, downstream '{}' has {pt}; use rebalance() or rescale()",
                        self.nodes[e.source as usize].name,
                        self.nodes[e.target as usize].name
                    )))
                }
                Some(k) => k,
                None if ps == pt => PartitionerKind::Forward,
                None => PartitionerKind::Rebalance,
            };
            partitioners.push(kind);
        }
        Ok(Resolved {
            parallelism,
            max_parallelism,
            group,
            partitioners,
        })
    }

    fn chainable(&self, r: &Resolved, idx: usize, config: &ExecutionConfig) -> bool {
        let e = &self.edges[idx];
        let (up, down) = (
            &self.nodes[e.source as usize],
            &self.nodes[e.target as usize],
        );
        let in_degree = self.edges.iter().filter(|x| x.target == e.target).count();
        config.chaining_enabled
            && in_degree == 1
            && down.kind != OperatorKind::TwoInput
            && down.kind != OperatorKind::Source
            && r.partitioners[idx] == PartitionerKind::Forward
            && r.parallelism[up.id as usize] == r.parallelism[down.id as usize]
            && r.group[up.id as usize] == r.group[down.id as usize]
            && up.chaining != ChainingStrategy::Never
            && down.chaining == ChainingStrategy::Always
    }

    /// Translates to an executable JobProgram: resolves parallelism, partitioners and slot
    /// sharing groups, validates, and chains operators.
    pub fn to_program(
        &self,
        job_name: &str,
        config: &ExecutionConfig,
    ) -> Result<JobProgram, CoreError> {
        let r = self.resolve(config)?;
        let chained: Vec<bool> = (0..self.edges.len())
            .map(|i| self.chainable(&r, i, config))
            .collect();
        let operators = self
            .nodes
            .iter()
            .map(|n| OperatorDescriptor {
                id: n.id,
                name: n.name.clone(),
                uid: n.uid.clone(),
                kind: n.kind,
                parallelism: r.parallelism[n.id as usize],
                max_parallelism: r.max_parallelism[n.id as usize],
                slot_sharing_group: r.group[n.id as usize].clone(),
                keyed: n.keyed,
            })
            .collect();
        let edges: Vec<StreamEdgeDescriptor> = self
            .edges
            .iter()
            .enumerate()
            .map(|(i, e)| StreamEdgeDescriptor {
                source: e.source,
                target: e.target,
                target_input: e.target_input,
                side_output: e.side_output.clone(),
                partitioner: r.partitioners[i],
                chained: chained[i],
            })
            .collect();
        let mut uids = BTreeMap::new();
        for n in &self.nodes {
            if let Some(u) = &n.uid {
                if let Some(prev) = uids.insert(u.clone(), n.name.clone()) {
                    return Err(CoreError::InvalidGraph(format!(
                        "uid '{u}' is used by both '{prev}' and '{}'",
                        n.name
                    )));
                }
            }
        }
        let is_chained_target: Vec<bool> = self
            .nodes
            .iter()
            .map(|n| edges.iter().any(|e| e.chained && e.target == n.id))
            .collect();
        let mut vertices = Vec::new();
        for n in &self.nodes {
            if is_chained_target[n.id as usize] {
                continue;
            }
            let mut ops = vec![n.id];
            let mut i = 0;
            while i < ops.len() {
                let cur = ops[i];
                for e in edges.iter().filter(|e| e.chained && e.source == cur) {
                    ops.push(e.target);
                }
                i += 1;
            }
            ops.sort();
            let name = ops
                .iter()
                .map(|o| self.nodes[*o as usize].name.as_str())
                .collect::<Vec<_>>()
                .join(" -> ");
            vertices.push(JobVertex {
                id: n.id,
                name,
                head: n.id,
                operators: ops,
                parallelism: r.parallelism[n.id as usize],
                max_parallelism: r.max_parallelism[n.id as usize],
                slot_sharing_group: r.group[n.id as usize].clone(),
            });
        }
        let job_graph = JobGraph {
            version: JOB_GRAPH_VERSION,
            job_id: JobId::generate(),
            job_name: job_name.to_string(),
            operators,
            edges,
            vertices,
            config: config.clone(),
        };
        Ok(JobProgram {
            job_graph,
            factories: self
                .nodes
                .iter()
                .map(|n| (n.id, n.factory.clone()))
                .collect(),
            edge_partitioners: self
                .edges
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.key_partitioner.clone().map(|k| (i, k)))
                .collect(),
            side_outputs: self
                .side_outputs
                .iter()
                .map(|(k, (b, _))| (k.clone(), b.clone()))
                .collect(),
        })
    }

    /// Flink's `getExecutionPlan()` JSON: one node per operator with its predecessors and
    /// ship strategies.
    pub fn execution_plan(&self, config: &ExecutionConfig) -> Result<String, CoreError> {
        let r = self.resolve(config)?;
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|n| {
                let preds: Vec<serde_json::Value> = self
                    .edges
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.target == n.id)
                    .map(|(i, e)| {
                        let mut v = serde_json::json!({
                            "id": e.source,
                            "ship_strategy": r.partitioners[i].ship_strategy(),
                            "side": if e.target_input == 0 { "first" } else { "second" },
                        });
                        if let Some(s) = &e.side_output {
                            v["side_output"] = serde_json::Value::String(s.clone());
                        }
                        v
                    })
                    .collect();
                let mut v = serde_json::json!({
                    "id": n.id,
                    "type": n.name,
                    "pact": n.pact,
                    "contents": n.name,
                    "parallelism": r.parallelism[n.id as usize],
                });
                if !preds.is_empty() {
                    v["predecessors"] = serde_json::Value::Array(preds);
                }
                v
            })
            .collect();
        Ok(serde_json::to_string_pretty(
            &serde_json::json!({ "nodes": nodes }),
        )?)
    }
}
