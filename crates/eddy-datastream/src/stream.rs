//! `DataStream`, `SingleOutputStreamOperator` and `DataStreamSink`: declaring transformations
//! and sinks. Nothing runs until `execute`.

use crate::connected::ConnectedStreams;
use crate::env::StreamExecutionEnvironment;
use crate::graph::{ChainingStrategy, StreamEdge};
use crate::keyed::KeyedStream;
use eddy_connectors::file_sink::FileSink;
use eddy_core::jobgraph::OperatorKind;
use eddy_core::partitioner::PartitionerKind;
use eddy_core::{Data, Key, OperatorId};
use eddy_runtime::factory::{OneInputFactory, OperatorFactory, TypedSideOutput};
use eddy_runtime::functions::{
    FnFilter, FnFlatMap, FnMap, FnProcess, ProcessContext, ProcessFunction, RichFilterFunction,
    RichFlatMapFunction, RichMapFunction,
};
use eddy_runtime::operators::basic::{
    FilterOperator, FlatMapOperator, MapOperator, ProcessOperator,
};
use eddy_runtime::operators::sink::{CollectSink, DiscardSink, PrintSink, TextFileSink};
use eddy_runtime::operators::two_phase::{TwoPhaseCommitSink, TwoPhaseCommitSinkOperator};
use eddy_runtime::operators::watermark::{TimestampsAndWatermarksOperator, WatermarkStrategy};
use eddy_runtime::operators::CustomPartitionerWrapper;
use eddy_runtime::operators::{FnKeyRefSelector, FnKeySelector, KeySelector};
use eddy_runtime::output::{Collector, KeyPartitioner, OutputTag};
use eddy_runtime::{FunctionResult, OperatorError};
use parking_lot::Mutex;
use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a stream's records come from: an operator's main or side output, with the
/// partitioner the next operator should read it with.
#[derive(Clone)]
pub(crate) struct Port {
    pub(crate) node: OperatorId,
    pub(crate) side: Option<String>,
    pub(crate) partitioner: Option<PartitionerKind>,
    pub(crate) key_partitioner: Option<Arc<dyn Any + Send + Sync>>,
}

impl Port {
    pub(crate) fn main(node: OperatorId) -> Self {
        Port {
            node,
            side: None,
            partitioner: None,
            key_partitioner: None,
        }
    }
}

/// A stream of records of type `T` (Flink's `DataStream<T>`).
pub struct DataStream<T> {
    pub(crate) env: StreamExecutionEnvironment,
    pub(crate) ports: Vec<Port>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for DataStream<T> {
    fn clone(&self) -> Self {
        DataStream {
            env: self.env.clone(),
            ports: self.ports.clone(),
            _t: PhantomData,
        }
    }
}

/// Writes the text form (strings as they are, other values as `Debug`) of records.
pub use eddy_runtime::operators::sink::write_text;

/// How `write_as_text` treats an existing output directory (Flink's `WriteMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail if the directory already holds files.
    NoOverwrite,
    /// Replace the files a previous run wrote (`1`, `2`, …); other files are left alone.
    Overwrite,
}

/// Clones a user function per subtask from a prototype: the function only needs `Clone + Send`.
pub(crate) fn per_subtask<F: Clone + Send + 'static, Op>(
    f: F,
    make: impl Fn(F) -> Op + Send + Sync + 'static,
) -> impl Fn() -> Op + Send + Sync + 'static {
    let proto = Mutex::new(f);
    move || make(proto.lock().clone())
}

impl<T: Data> DataStream<T> {
    pub(crate) fn from_port(env: StreamExecutionEnvironment, port: Port) -> Self {
        DataStream {
            env,
            ports: vec![port],
            _t: PhantomData,
        }
    }

    /// The environment the stream belongs to.
    pub fn execution_environment(&self) -> &StreamExecutionEnvironment {
        &self.env
    }

    pub(crate) fn connect_node(&self, target: OperatorId, input: usize) {
        let mut inner = self.env.inner.borrow_mut();
        for p in &self.ports {
            inner.graph.edges.push(StreamEdge {
                source: p.node,
                target,
                target_input: input,
                side_output: p.side.clone(),
                partitioner: p.partitioner,
                key_partitioner: p.key_partitioner.clone(),
            });
        }
    }

    /// Adds a one-input operator reading this stream.
    pub fn transform<O: Data>(
        &self,
        name: &str,
        factory: Arc<dyn OperatorFactory>,
        keyed: bool,
    ) -> SingleOutputStreamOperator<O> {
        let id = self
            .env
            .add_node(name.to_string(), OperatorKind::OneInput, factory, keyed);
        self.connect_node(id, 0);
        SingleOutputStreamOperator::new(DataStream::from_port(self.env.clone(), Port::main(id)), id)
    }

    /// One output per input.
    pub fn map<O: Data, F: FnMut(T) -> O + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        self.map_rich(FnMap(f))
    }

    /// `map` with a [`RichMapFunction`] (`open`/`close` with a runtime context).
    pub fn map_rich<O: Data, F: RichMapFunction<T, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let make = per_subtask(f, MapOperator::new);
        self.transform("Map", Arc::new(OneInputFactory::new(make)), false)
    }

    /// Zero or more outputs per input, emitted through a [`Collector`].
    pub fn flat_map<O: Data, F: FnMut(T, &mut Collector<'_, O>) + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        self.flat_map_rich(FnFlatMap(f))
    }

    /// `flat_map` with a [`RichFlatMapFunction`].
    pub fn flat_map_rich<O: Data, F: RichFlatMapFunction<T, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let make = per_subtask(f, FlatMapOperator::new);
        self.transform("Flat Map", Arc::new(OneInputFactory::new(make)), false)
    }

    /// Keeps the records the predicate accepts.
    pub fn filter<F: FnMut(&T) -> bool + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<T> {
        self.filter_rich(FnFilter(f))
    }

    /// `filter` with a [`RichFilterFunction`].
    pub fn filter_rich<F: RichFilterFunction<T> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<T> {
        let make = per_subtask(f, FilterOperator::new);
        self.transform("Filter", Arc::new(OneInputFactory::new(make)), false)
    }

    /// Applies a [`ProcessFunction`] (side outputs, timestamps, no keyed state).
    pub fn process<O: Data, F: ProcessFunction<T, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let make = per_subtask(f, ProcessOperator::new);
        self.transform("Process", Arc::new(OneInputFactory::new(make)), false)
    }

    /// `process` with a closure `(value, ctx, out)`.
    pub fn process_fn<O: Data, F>(&self, f: F) -> SingleOutputStreamOperator<O>
    where
        F: FnMut(T, &mut ProcessContext<'_>, &mut Collector<'_, O>) -> FunctionResult
            + Clone
            + Send
            + 'static,
    {
        self.process(FnProcess(f))
    }

    /// Assigns event timestamps and emits watermarks.
    pub fn assign_timestamps_and_watermarks(
        &self,
        strategy: WatermarkStrategy<T>,
    ) -> SingleOutputStreamOperator<T> {
        let make = move || TimestampsAndWatermarksOperator::new(strategy.clone());
        self.transform(
            "Timestamps/Watermarks",
            Arc::new(OneInputFactory::new(make)),
            false,
        )
    }

    /// Partitions by key: records with equal keys go to the same subtask of the next operator.
    pub fn key_by<K: Key, F: Fn(&T) -> K + Send + Sync + 'static>(
        &self,
        f: F,
    ) -> KeyedStream<T, K> {
        let selector: Arc<dyn KeySelector<T, K>> = Arc::new(FnKeySelector(f));
        KeyedStream::new(self.clone(), selector)
    }

    /// [`key_by`](Self::key_by) for a key that is a part of the element, borrowed from it
    /// (`key_by_ref(|t: &(String, u64)| &t.0)`): the engine hashes the borrowed key to pick the
    /// subtask and clones it into the previous key's allocation when it sets the current key,
    /// so a `String` key costs no allocation per record.
    pub fn key_by_ref<K: Key, F: Fn(&T) -> &K + Send + Sync + 'static>(
        &self,
        f: F,
    ) -> KeyedStream<T, K> {
        let selector: Arc<dyn KeySelector<T, K>> = Arc::new(FnKeyRefSelector(f));
        KeyedStream::new(self.clone(), selector)
    }

    /// Adds the local phase of a two-phase aggregation: an operator that belongs to this
    /// stream's chain, so it gets the parallelism of the operator it follows (when the stream
    /// comes from one).
    pub(crate) fn transform_local_phase<O: Data>(
        &self,
        name: &str,
        factory: Arc<dyn OperatorFactory>,
    ) -> SingleOutputStreamOperator<O> {
        let local = self.transform::<O>(name, factory, false);
        let upstream = match self.ports.as_slice() {
            [port] => self.env.node_parallelism(port.node),
            _ => None,
        };
        match upstream {
            Some(p) => local.set_parallelism(p),
            None => local,
        }
    }

    pub(crate) fn with_partitioner(
        &self,
        kind: PartitionerKind,
        key_partitioner: Option<Arc<dyn Any + Send + Sync>>,
    ) -> DataStream<T> {
        let mut s = self.clone();
        for p in &mut s.ports {
            p.partitioner = Some(kind);
            p.key_partitioner = key_partitioner.clone();
        }
        s
    }

    /// Subtask `i` sends to subtask `i` of the next operator (same parallelism required).
    pub fn forward(&self) -> DataStream<T> {
        self.with_partitioner(PartitionerKind::Forward, None)
    }
    /// Round-robin over all subtasks of the next operator.
    pub fn rebalance(&self) -> DataStream<T> {
        self.with_partitioner(PartitionerKind::Rebalance, None)
    }
    /// Round-robin over a local subset of the next operator's subtasks.
    pub fn rescale(&self) -> DataStream<T> {
        self.with_partitioner(PartitionerKind::Rescale, None)
    }
    /// A random subtask of the next operator per record.
    pub fn shuffle(&self) -> DataStream<T> {
        self.with_partitioner(PartitionerKind::Shuffle, None)
    }
    /// Every subtask of the next operator gets every record.
    pub fn broadcast(&self) -> DataStream<T> {
        self.with_partitioner(PartitionerKind::Broadcast, None)
    }
    /// A user function picks the subtask from the key: `partitioner(key, num_partitions)`.
    pub fn partition_custom<K: Key>(
        &self,
        partitioner: impl Fn(&K, usize) -> usize + Send + Sync + 'static,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> DataStream<T> {
        let p: Arc<dyn KeyPartitioner<T>> = Arc::new(CustomPartitionerWrapper {
            selector: Arc::new(FnKeySelector(key)) as Arc<dyn KeySelector<T, K>>,
            partitioner,
        });
        self.with_partitioner(PartitionerKind::Custom, Some(Arc::new(p)))
    }

    /// Merges streams of the same type.
    pub fn union(&self, others: &[&DataStream<T>]) -> DataStream<T> {
        let mut s = self.clone();
        for o in others {
            s.ports.extend(o.ports.iter().cloned());
        }
        s
    }

    /// Connects to a stream of another type for a two-input operator.
    pub fn connect<U: Data>(&self, other: &DataStream<U>) -> ConnectedStreams<T, U> {
        ConnectedStreams::new(self.clone(), other.clone())
    }

    fn add_sink(&self, name: &str, factory: Arc<dyn OperatorFactory>) -> DataStreamSink {
        let id = self
            .env
            .add_node(name.to_string(), OperatorKind::Sink, factory, false);
        self.connect_node(id, 0);
        DataStreamSink {
            env: self.env.clone(),
            node: id,
        }
    }

    /// Prints every record to standard output, `N> ` prefixed when the sink is parallel.
    pub fn print(&self) -> DataStreamSink {
        self.add_sink(
            "Print to Std. Out",
            Arc::new(OneInputFactory::new(|| PrintSink::<T>::new(false, None))),
        )
    }

    /// Prints every record with a prefix (Flink's `print(sinkIdentifier)`).
    pub fn print_with_identifier(&self, identifier: &str) -> DataStreamSink {
        let id = identifier.to_string();
        self.add_sink(
            "Print to Std. Out",
            Arc::new(OneInputFactory::new(move || {
                PrintSink::<T>::new(false, Some(id.clone()))
            })),
        )
    }

    /// Prints every record to standard error.
    pub fn print_to_err(&self) -> DataStreamSink {
        self.add_sink(
            "Print to Std. Err",
            Arc::new(OneInputFactory::new(|| PrintSink::<T>::new(true, None))),
        )
    }

    /// Drops every record (Flink's `DiscardingSink`).
    pub fn sink_to_discard(&self) -> DataStreamSink {
        self.add_sink(
            "Discard",
            Arc::new(OneInputFactory::new(DiscardSink::<T>::default)),
        )
    }

    /// Writes records as text lines into directory `path`, one file per sink subtask named
    /// `1`, `2`, …; fails at startup if the directory already holds files.
    pub fn write_as_text(&self, path: impl Into<PathBuf>) -> DataStreamSink {
        self.write_as_text_with_mode(path, WriteMode::NoOverwrite)
    }

    /// `write_as_text` with an explicit [`WriteMode`].
    pub fn write_as_text_with_mode(
        &self,
        path: impl Into<PathBuf>,
        mode: WriteMode,
    ) -> DataStreamSink {
        let dir: PathBuf = path.into();
        let d2 = dir.clone();
        let factory = OneInputFactory::new(move || TextFileSink::<T>::new(dir.clone()))
            .with_global_init(move || prepare_output_dir(&d2, mode));
        self.add_sink("TextFileSink", Arc::new(factory))
    }

    /// Writes records exactly once as text lines into directory `dir` (Flink's `FileSink`
    /// with a row format): subtask `s` writes part files `part-<s>-<n>` that appear when the
    /// checkpoint covering them completes (without checkpointing: at the end of input); until
    /// then they are hidden (`.part-<s>-<n>.inprogress` / `.pending`). Parts roll over at
    /// 128 MB; use [`DataStream::add_two_phase_commit_sink`] with
    /// [`FileSink::with_max_part_size`] for another size.
    pub fn sink_to_file(&self, dir: impl Into<PathBuf>) -> DataStreamSink {
        let dir: PathBuf = dir.into();
        self.add_two_phase_commit_sink("Sink: File Sink", move || FileSink::<T>::new(&dir))
    }

    /// Adds an exactly-once sink (Flink's `addSink(TwoPhaseCommitSinkFunction)`): `make`
    /// creates the sink of each subtask, which a [`TwoPhaseCommitSinkOperator`] drives.
    pub fn add_two_phase_commit_sink<S: TwoPhaseCommitSink<T>>(
        &self,
        name: &str,
        make: impl Fn() -> S + Send + Sync + 'static,
    ) -> DataStreamSink {
        self.add_sink(
            name,
            Arc::new(OneInputFactory::new(move || {
                TwoPhaseCommitSinkOperator::new(make())
            })),
        )
    }

    /// Collects the records for the client; read them with [`CollectHandle::take`] after
    /// `execute`.
    pub fn collect(&self) -> CollectHandle<T> {
        let target = Arc::new(Mutex::new(Vec::new()));
        let t2 = target.clone();
        self.add_sink(
            "Collect Sink",
            Arc::new(OneInputFactory::new(move || CollectSink::new(t2.clone()))),
        );
        CollectHandle { target }
    }
}

fn prepare_output_dir(dir: &std::path::Path, mode: WriteMode) -> Result<(), OperatorError> {
    let ctx = |what: &str| format!("{what} output directory {}", dir.display());
    if dir.is_file() {
        return Err(OperatorError::BadInput(format!(
            "output path {} is a file, expected a directory",
            dir.display()
        )));
    }
    if !dir.exists() {
        return std::fs::create_dir_all(dir).map_err(|e| OperatorError::io(ctx("creating"), e));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| OperatorError::io(ctx("listing"), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| OperatorError::io(ctx("listing"), e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        match mode {
            WriteMode::NoOverwrite => {
                return Err(OperatorError::BadInput(format!(
                    "output directory {} is not empty (found '{name}'); use WriteMode::Overwrite to replace it",
                    dir.display()
                )))
            }
            WriteMode::Overwrite => {
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
                    std::fs::remove_file(entry.path())
                        .map_err(|e| OperatorError::io(format!("removing {}", entry.path().display()), e))?;
                }
            }
        }
    }
    Ok(())
}

/// The records a collect sink received, readable after the job ran.
pub struct CollectHandle<T> {
    target: Arc<Mutex<Vec<T>>>,
}

impl<T> CollectHandle<T> {
    /// Takes the collected records.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.target.lock())
    }
}

/// The stream an operator produced; its settings (`name`, `uid`, `set_parallelism`, …) apply to
/// that operator (Flink's `SingleOutputStreamOperator`).
pub struct SingleOutputStreamOperator<T> {
    stream: DataStream<T>,
    node: OperatorId,
}

impl<T> Clone for SingleOutputStreamOperator<T> {
    fn clone(&self) -> Self {
        SingleOutputStreamOperator {
            stream: self.stream.clone(),
            node: self.node,
        }
    }
}

impl<T> From<SingleOutputStreamOperator<T>> for DataStream<T> {
    fn from(s: SingleOutputStreamOperator<T>) -> Self {
        s.stream
    }
}

impl<T> Deref for SingleOutputStreamOperator<T> {
    type Target = DataStream<T>;
    fn deref(&self) -> &DataStream<T> {
        &self.stream
    }
}

macro_rules! operator_settings {
    () => {
        /// Display name of the operator.
        pub fn name(self, name: &str) -> Self {
            let n = name.to_string();
            self.env().with_node(self.node, |node| node.name = n);
            self
        }
        /// Stable id mapping the operator's state across program versions.
        pub fn uid(self, uid: &str) -> Self {
            let u = uid.to_string();
            self.env().with_node(self.node, |node| node.uid = Some(u));
            self
        }
        /// Parallelism of this operator.
        pub fn set_parallelism(self, p: usize) -> Self {
            if p == 0 {
                self.env().error(format!(
                    "parallelism of operator #{} must be at least 1",
                    self.node
                ));
            }
            self.env()
                .with_node(self.node, |node| node.parallelism = Some(p));
            self
        }
        /// Max parallelism (number of key groups) of this operator.
        pub fn set_max_parallelism(self, p: usize) -> Self {
            if p == 0 {
                self.env().error(format!(
                    "max parallelism of operator #{} must be at least 1",
                    self.node
                ));
            }
            self.env()
                .with_node(self.node, |node| node.max_parallelism = Some(p));
            self
        }
        /// Slot sharing group of this operator.
        pub fn slot_sharing_group(self, group: &str) -> Self {
            let g = group.to_string();
            self.env()
                .with_node(self.node, |node| node.slot_sharing_group = Some(g));
            self
        }
        /// Starts a new chain at this operator.
        pub fn start_new_chain(self) -> Self {
            self.env()
                .with_node(self.node, |node| node.chaining = ChainingStrategy::Head);
            self
        }
        /// Never chains this operator to its neighbours.
        pub fn disable_chaining(self) -> Self {
            self.env()
                .with_node(self.node, |node| node.chaining = ChainingStrategy::Never);
            self
        }
        /// The operator's id in the StreamGraph.
        pub fn id(&self) -> OperatorId {
            self.node
        }
    };
}

impl<T: Data> SingleOutputStreamOperator<T> {
    pub(crate) fn new(stream: DataStream<T>, node: OperatorId) -> Self {
        SingleOutputStreamOperator { stream, node }
    }

    fn env(&self) -> &StreamExecutionEnvironment {
        &self.stream.env
    }

    operator_settings!();

    /// The records this operator emitted to side output `tag`.
    pub fn get_side_output<X: Data>(&self, tag: &OutputTag<X>) -> DataStream<X> {
        let key = (self.node, tag.id().to_string());
        let mut inner = self.env().inner.borrow_mut();
        match inner.graph.side_outputs.get(&key) {
            Some((_, ty)) if *ty != TypeId::of::<X>() => inner.graph.errors.push(format!(
                "side output '{}' is read with two different types",
                tag.id()
            )),
            Some(_) => {}
            None => {
                inner.graph.side_outputs.insert(
                    key,
                    (Arc::new(TypedSideOutput::<X>::default()), TypeId::of::<X>()),
                );
            }
        }
        drop(inner);
        DataStream::from_port(
            self.env().clone(),
            Port {
                node: self.node,
                side: Some(tag.id().to_string()),
                partitioner: None,
                key_partitioner: None,
            },
        )
    }
}

/// A sink; its settings apply to the sink operator.
pub struct DataStreamSink {
    env: StreamExecutionEnvironment,
    node: OperatorId,
}

impl DataStreamSink {
    fn env(&self) -> &StreamExecutionEnvironment {
        &self.env
    }
    operator_settings!();
}
