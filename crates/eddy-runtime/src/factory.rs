//! From a JobGraph vertex to a runnable task: the type-erased operator factories the
//! DataStream API registers per operator, and the [`ChainContext`] that wires a subtask's chain
//! to its input gates and output channels.
//!
//! The JobGraph is plain data; the typed parts of a job (operators, key selectors, side output
//! types) live in the [`JobProgram`] next to it, keyed by operator id and edge index. Types are
//! erased (`dyn Any`) only while a task is being built; once built, everything is typed.

use crate::chain::{OneInputDriver, OneInputOperator};
use crate::channel::{Cancellable, ChannelWriter, Erased, InputGate, OutputMetrics};
use crate::error::{OperatorError, OperatorLabel, TaskError};
use crate::operators::co::{TwoInputDriver, TwoInputOperator};
use crate::output::Input;
use crate::output::{ErasedOutput, KeyPartitioner, Output, Partitioner, RecordWriter};
use crate::source::SourceReader;
use crate::task::{OneInputStreamTask, SourceStreamTask, StreamTask, TwoInputStreamTask};
use crate::waker::TaskWaker;
use eddy_core::jobgraph::{JobGraph, OperatorDescriptor};
use eddy_core::keygroup::KeyGroupRange;
use eddy_core::partitioner::PartitionerKind;
use eddy_core::{Data, OperatorId, StreamRecord};
use parking_lot::Mutex;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

/// A freshly made input gate: the gate for the consumer, one writer per channel for the
/// producers, and the handle that releases blocked producers on cancel.
pub struct ErasedGate {
    /// `InputGate<T>`.
    pub gate: Erased,
    /// `ChannelWriter<T>` per channel.
    pub writers: Vec<Erased>,
    /// Cancels the gate.
    pub cancel: Arc<dyn Cancellable>,
}

/// A gate for records of type `T`, with its writers, type-erased.
fn erased_gate<T: Data>(channels: usize, capacity: usize, waker: Arc<TaskWaker>) -> ErasedGate {
    let (gate, writers) = InputGate::<T>::new(channels, capacity, waker);
    ErasedGate {
        cancel: gate.cancel_handle(),
        gate: Box::new(gate),
        writers: writers.into_iter().map(|w| Box::new(w) as Erased).collect(),
    }
}

/// Builds one operator for one subtask. Registered per operator by the DataStream API.
pub trait OperatorFactory: Send + Sync {
    /// Creates the input gate for input `input` (0 or 1) of this operator.
    fn create_input_gate(
        &self,
        input: usize,
        channels: usize,
        capacity: usize,
        waker: Arc<TaskWaker>,
    ) -> Result<ErasedGate, TaskError>;

    /// The typed remote-channel halves of input `input` (0 or 1), for channels whose producer
    /// runs on another taskmanager.
    fn input_codec(&self, input: usize) -> Result<crate::remote::RemoteCodec, TaskError>;

    /// Builds this operator (and, through the context, the rest of the chain after it) as a
    /// chain element: a `Box<dyn Input<In>>`, erased.
    fn build_chained(
        &self,
        ctx: &mut ChainContext<'_>,
        id: OperatorId,
    ) -> Result<Erased, TaskError>;

    /// Builds a task headed by this operator.
    fn build_task(
        &self,
        ctx: &mut ChainContext<'_>,
        id: OperatorId,
    ) -> Result<Box<dyn StreamTask>, TaskError>;

    /// The operator's Rust type: part of the job graph fingerprint, so a taskmanager whose
    /// binary builds different code for the same graph is caught.
    fn type_name(&self) -> &'static str;

    /// Called once per job before any task is deployed (Flink's `InitializeOnMaster`), e.g. to
    /// prepare an output directory. Errors here fail the job before it starts.
    fn initialize_global(&self) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// Builds the [`Output`] of one side output of an operator, knowing its record type.
pub trait SideOutputBuilder: Send + Sync {
    /// Builds `Output<X>` for side output `tag` of `op`.
    fn build(
        &self,
        ctx: &mut ChainContext<'_>,
        op: OperatorId,
        tag: &str,
    ) -> Result<Box<dyn ErasedOutput>, TaskError>;
}

/// The [`SideOutputBuilder`] for side outputs of type `X`.
pub struct TypedSideOutput<X>(std::marker::PhantomData<fn() -> X>);

impl<X> Default for TypedSideOutput<X> {
    fn default() -> Self {
        TypedSideOutput(std::marker::PhantomData)
    }
}

impl<X: Data> SideOutputBuilder for TypedSideOutput<X> {
    fn build(
        &self,
        ctx: &mut ChainContext<'_>,
        op: OperatorId,
        tag: &str,
    ) -> Result<Box<dyn ErasedOutput>, TaskError> {
        Ok(Box::new(ctx.build_output::<X>(op, Some(tag))?))
    }
}

/// An executable job: the serializable JobGraph plus the typed code behind it.
#[derive(Clone)]
pub struct JobProgram {
    /// The graph.
    pub job_graph: JobGraph,
    /// Operator factories by operator id.
    pub factories: HashMap<OperatorId, Arc<dyn OperatorFactory>>,
    /// Key partitioners (`Arc<dyn KeyPartitioner<T>>`, erased) by edge index.
    pub edge_partitioners: HashMap<usize, Arc<dyn Any + Send + Sync>>,
    /// Side output builders by (operator, tag id).
    pub side_outputs: HashMap<(OperatorId, String), Arc<dyn SideOutputBuilder>>,
}

impl JobProgram {
    /// The job graph fingerprint (DESIGN §1): a stable hash of the topology, the operators'
    /// names, uids, parallelism and Rust types, and the job's configuration; everything but the
    /// job id. Two processes that build the same program from the same arguments agree on it.
    pub fn fingerprint(&self) -> String {
        let mut g = self.job_graph.clone();
        g.job_id = eddy_core::JobId(0);
        let mut text = serde_json::to_string(&g).unwrap_or_default();
        let mut ids: Vec<&OperatorId> = self.factories.keys().collect();
        ids.sort();
        for id in ids {
            text.push_str(&format!("|{id}:{}", self.factories[id].type_name()));
        }
        // Two independent 64-bit FNV-1a lanes: 128 bits, stable across builds and platforms.
        let (mut a, mut b) = (0xcbf2_9ce4_8422_2325u64, 0x8422_2325_cbf2_9ce4u64);
        for byte in text.bytes() {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(byte).rotate_left(3)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{a:016x}{b:016x}")
    }
}

/// Everything needed to build one subtask's chain.
pub struct ChainContext<'a> {
    /// The job.
    pub program: &'a JobProgram,
    /// 0-based subtask index.
    pub subtask: usize,
    /// The head's input gates, by input index (taken once).
    pub gates: Vec<Option<Erased>>,
    /// Channel writers of this subtask's network edges, by edge index, in channel order.
    pub writers: HashMap<usize, Vec<Erased>>,
    /// Counters for this subtask's outputs.
    pub metrics: Arc<OutputMetrics>,
}

fn internal(op: OperatorId, msg: impl Into<String>) -> TaskError {
    TaskError::new(
        format!("operator #{op}"),
        0,
        "?",
        OperatorError::Internal(msg.into()),
    )
}

impl ChainContext<'_> {
    /// The operator's descriptor.
    pub fn descriptor(&self, op: OperatorId) -> Result<&OperatorDescriptor, TaskError> {
        self.program
            .job_graph
            .operator(op)
            .ok_or_else(|| internal(op, "operator missing from the job graph"))
    }

    /// The operator's label for errors.
    pub fn label(&self, op: OperatorId) -> Result<OperatorLabel, TaskError> {
        let d = self.descriptor(op)?;
        Ok(OperatorLabel {
            name: d.name.clone(),
            subtask: self.subtask,
            parallelism: d.parallelism,
        })
    }

    /// Max parallelism and key-group range of the operator in this subtask.
    pub fn key_groups(&self, op: OperatorId) -> Result<(usize, KeyGroupRange), TaskError> {
        let d = self.descriptor(op)?;
        Ok((
            d.max_parallelism,
            KeyGroupRange::for_operator_index(d.max_parallelism, d.parallelism, self.subtask),
        ))
    }

    fn factory(&self, op: OperatorId) -> Result<Arc<dyn OperatorFactory>, TaskError> {
        self.program
            .factories
            .get(&op)
            .cloned()
            .ok_or_else(|| internal(op, "no factory for operator"))
    }

    /// Takes the head's gate for `input`.
    pub fn take_gate<T: Data>(
        &mut self,
        op: OperatorId,
        input: usize,
    ) -> Result<InputGate<T>, TaskError> {
        let g = self
            .gates
            .get_mut(input)
            .and_then(Option::take)
            .ok_or_else(|| internal(op, format!("no input gate {input}")))?;
        g.downcast::<InputGate<T>>()
            .map(|b| *b)
            .map_err(|_| internal(op, format!("input gate {input} has the wrong record type")))
    }

    /// Builds operator `op` as the chain element after another operator.
    pub fn build_chained_input<T: Data>(
        &mut self,
        op: OperatorId,
    ) -> Result<Box<dyn Input<T>>, TaskError> {
        let f = self.factory(op)?;
        let e = f.build_chained(self, op)?;
        e.downcast::<Box<dyn Input<T>>>()
            .map(|b| *b)
            .map_err(|_| internal(op, "chained operator has the wrong input type"))
    }

    /// Builds the main output (`side = None`) or a side output of `op`: chained operators,
    /// record writers of network edges, and (for the main output) the side outputs.
    pub fn build_output<T: Data>(
        &mut self,
        op: OperatorId,
        side: Option<&str>,
    ) -> Result<Output<T>, TaskError> {
        let graph = &self.program.job_graph;
        let edges: Vec<(usize, eddy_core::jobgraph::StreamEdgeDescriptor)> = graph
            .out_edges(op)
            .filter(|(_, e)| e.side_output.as_deref() == side)
            .map(|(i, e)| (i, e.clone()))
            .collect();
        let mut chained = Vec::new();
        let mut writers = Vec::new();
        let records_per_buffer =
            (graph.config.segment_size / size_of::<StreamRecord<T>>().max(1)).clamp(1, 1 << 16);
        for (idx, e) in edges {
            if e.chained {
                chained.push(self.build_chained_input::<T>(e.target)?);
                continue;
            }
            let channels: Vec<ChannelWriter<T>> = self
                .writers
                .remove(&idx)
                .ok_or_else(|| internal(op, format!("no channels for edge {idx}")))?
                .into_iter()
                .map(|w| {
                    w.downcast::<ChannelWriter<T>>()
                        .map(|b| (*b).with_metrics(self.metrics.clone()))
                        .map_err(|_| internal(op, "channel has the wrong record type"))
                })
                .collect::<Result<_, _>>()?;
            let n = channels.len().max(1);
            let partitioner = match e.partitioner {
                PartitionerKind::Forward => Partitioner::Forward,
                PartitionerKind::Rebalance | PartitionerKind::Rescale => Partitioner::RoundRobin {
                    // Start where this subtask's share begins so parallel producers spread out.
                    next: (self.subtask + n - 1) % n,
                },
                PartitionerKind::Shuffle => Partitioner::Shuffle {
                    state: eddy_core::keygroup::fmix64(0x9e37_79b9 + self.subtask as u64) | 1,
                },
                PartitionerKind::Broadcast => Partitioner::Broadcast,
                PartitionerKind::Hash | PartitionerKind::Custom => {
                    let sel = self
                        .program
                        .edge_partitioners
                        .get(&idx)
                        .and_then(|a| a.downcast_ref::<Arc<dyn KeyPartitioner<T>>>())
                        .cloned()
                        .ok_or_else(|| {
                            internal(op, format!("no key partitioner for edge {idx}"))
                        })?;
                    Partitioner::Keyed {
                        selector: sel,
                        max_parallelism: self.descriptor(e.target)?.max_parallelism,
                    }
                }
            };
            writers.push(RecordWriter::new(channels, partitioner, records_per_buffer));
        }
        let mut sides = Vec::new();
        if side.is_none() {
            let mut tags: Vec<String> = graph
                .out_edges(op)
                .filter_map(|(_, e)| e.side_output.clone())
                .collect();
            tags.sort();
            tags.dedup();
            for tag in tags {
                let b = self
                    .program
                    .side_outputs
                    .get(&(op, tag.clone()))
                    .cloned()
                    .ok_or_else(|| internal(op, format!("no builder for side output '{tag}'")))?;
                let o = b.build(self, op, &tag)?;
                sides.push((tag, o));
            }
        }
        Ok(Output::new(chained, writers, sides))
    }
}

/// Factory of a one-input operator (also sinks, whose output type is `()`).
pub struct OneInputFactory<Op: OneInputOperator> {
    make: Box<dyn Fn() -> Op + Send + Sync>,
    init: Option<Box<dyn Fn() -> Result<(), OperatorError> + Send + Sync>>,
}

impl<Op: OneInputOperator> OneInputFactory<Op> {
    /// A factory creating one operator instance per subtask.
    pub fn new(make: impl Fn() -> Op + Send + Sync + 'static) -> Self {
        OneInputFactory {
            make: Box::new(make),
            init: None,
        }
    }

    /// Adds a once-per-job initialization (see [`OperatorFactory::initialize_global`]).
    pub fn with_global_init(
        mut self,
        init: impl Fn() -> Result<(), OperatorError> + Send + Sync + 'static,
    ) -> Self {
        self.init = Some(Box::new(init));
        self
    }

    /// A factory from a prototype that is cloned per subtask; the user's function only needs to
    /// be `Send + Clone`.
    pub fn from_prototype(proto: Op) -> Self
    where
        Op: Clone,
    {
        let proto = Mutex::new(proto);
        Self::new(move || proto.lock().clone())
    }
}

impl<Op: OneInputOperator> OperatorFactory for OneInputFactory<Op> {
    fn create_input_gate(
        &self,
        _input: usize,
        channels: usize,
        capacity: usize,
        waker: Arc<TaskWaker>,
    ) -> Result<ErasedGate, TaskError> {
        Ok(erased_gate::<Op::In>(channels, capacity, waker))
    }

    fn input_codec(&self, _input: usize) -> Result<crate::remote::RemoteCodec, TaskError> {
        Ok(crate::remote::codec::<Op::In>())
    }

    fn build_chained(
        &self,
        ctx: &mut ChainContext<'_>,
        id: OperatorId,
    ) -> Result<Erased, TaskError> {
        let out = ctx.build_output::<Op::Out>(id, None)?;
        let (maxp, range) = ctx.key_groups(id)?;
        let driver = OneInputDriver::new((self.make)(), out, ctx.label(id)?, maxp, range, id);
        Ok(Box::new(Box::new(driver) as Box<dyn Input<Op::In>>))
    }

    fn build_task(
        &self,
        ctx: &mut ChainContext<'_>,
        id: OperatorId,
    ) -> Result<Box<dyn StreamTask>, TaskError> {
        let gate = ctx.take_gate::<Op::In>(id, 0)?;
        let chain = ctx.build_chained_input_from(self, id)?;
        Ok(Box::new(OneInputStreamTask::new(
            gate,
            chain,
            ctx.label(id)?,
        )))
    }

    fn initialize_global(&self) -> Result<(), OperatorError> {
        self.init.as_ref().map_or(Ok(()), |f| f())
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<Op>()
    }
}

impl ChainContext<'_> {
    fn build_chained_input_from<Op: OneInputOperator>(
        &mut self,
        f: &OneInputFactory<Op>,
        id: OperatorId,
    ) -> Result<Box<dyn Input<Op::In>>, TaskError> {
        f.build_chained(self, id)?
            .downcast::<Box<dyn Input<Op::In>>>()
            .map(|b| *b)
            .map_err(|_| internal(id, "chain head has the wrong type"))
    }
}

/// Factory of a source.
pub struct SourceFactory<R: SourceReader> {
    make: Box<dyn Fn() -> R + Send + Sync>,
    init: Option<Box<dyn Fn() -> Result<(), OperatorError> + Send + Sync>>,
}

impl<R: SourceReader> SourceFactory<R> {
    /// A factory creating one reader per subtask.
    pub fn new(make: impl Fn() -> R + Send + Sync + 'static) -> Self {
        SourceFactory {
            make: Box::new(make),
            init: None,
        }
    }

    /// Adds a once-per-job check (e.g. that the input path exists).
    pub fn with_global_init(
        mut self,
        init: impl Fn() -> Result<(), OperatorError> + Send + Sync + 'static,
    ) -> Self {
        self.init = Some(Box::new(init));
        self
    }
}

impl<R: SourceReader> OperatorFactory for SourceFactory<R> {
    fn create_input_gate(
        &self,
        _input: usize,
        _channels: usize,
        _capacity: usize,
        _waker: Arc<TaskWaker>,
    ) -> Result<ErasedGate, TaskError> {
        Err(internal(0, "a source has no inputs"))
    }

    fn input_codec(&self, _input: usize) -> Result<crate::remote::RemoteCodec, TaskError> {
        Err(internal(0, "a source has no inputs"))
    }

    fn build_chained(
        &self,
        _ctx: &mut ChainContext<'_>,
        id: OperatorId,
    ) -> Result<Erased, TaskError> {
        Err(internal(
            id,
            "a source cannot be chained after another operator",
        ))
    }

    fn build_task(
        &self,
        ctx: &mut ChainContext<'_>,
        id: OperatorId,
    ) -> Result<Box<dyn StreamTask>, TaskError> {
        let out = ctx.build_output::<R::Out>(id, None)?;
        let batch = (ctx.program.job_graph.config.segment_size
            / size_of::<StreamRecord<R::Out>>().max(1))
        .clamp(64, 4096);
        Ok(Box::new(SourceStreamTask::new(
            (self.make)(),
            out,
            ctx.label(id)?,
            batch,
            id,
        )))
    }

    fn initialize_global(&self) -> Result<(), OperatorError> {
        self.init.as_ref().map_or(Ok(()), |f| f())
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<R>()
    }
}

/// Factory of a two-input operator.
pub struct TwoInputFactory<Op: TwoInputOperator> {
    make: Box<dyn Fn() -> Op + Send + Sync>,
}

impl<Op: TwoInputOperator> TwoInputFactory<Op> {
    /// A factory creating one operator per subtask.
    pub fn new(make: impl Fn() -> Op + Send + Sync + 'static) -> Self {
        TwoInputFactory {
            make: Box::new(make),
        }
    }
}

impl<Op: TwoInputOperator> OperatorFactory for TwoInputFactory<Op> {
    fn create_input_gate(
        &self,
        input: usize,
        channels: usize,
        capacity: usize,
        waker: Arc<TaskWaker>,
    ) -> Result<ErasedGate, TaskError> {
        Ok(if input == 0 {
            erased_gate::<Op::In1>(channels, capacity, waker)
        } else {
            erased_gate::<Op::In2>(channels, capacity, waker)
        })
    }

    fn input_codec(&self, input: usize) -> Result<crate::remote::RemoteCodec, TaskError> {
        Ok(if input == 0 {
            crate::remote::codec::<Op::In1>()
        } else {
            crate::remote::codec::<Op::In2>()
        })
    }

    fn build_chained(
        &self,
        _ctx: &mut ChainContext<'_>,
        id: OperatorId,
    ) -> Result<Erased, TaskError> {
        Err(internal(id, "a two-input operator always heads its chain"))
    }

    fn build_task(
        &self,
        ctx: &mut ChainContext<'_>,
        id: OperatorId,
    ) -> Result<Box<dyn StreamTask>, TaskError> {
        let g1 = ctx.take_gate::<Op::In1>(id, 0)?;
        let g2 = ctx.take_gate::<Op::In2>(id, 1)?;
        let out = ctx.build_output::<Op::Out>(id, None)?;
        let (maxp, range) = ctx.key_groups(id)?;
        let label = ctx.label(id)?;
        let driver = TwoInputDriver::new((self.make)(), out, label.clone(), maxp, range, id);
        Ok(Box::new(TwoInputStreamTask::new(g1, g2, driver, label)))
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<Op>()
    }
}
