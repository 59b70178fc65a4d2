//! `StreamExecutionEnvironment`: where a program declares its sources and runs.

use crate::graph::{ChainingStrategy, StreamGraph, StreamNode};
use crate::stream::{DataStream, Port};
use eddy_connectors::collection::CollectionReader;
use eddy_connectors::file::list_files;
use eddy_connectors::sequence::SequenceReader;
use eddy_connectors::socket::SocketReader;
use eddy_core::config::ExecutionConfig;
use eddy_core::jobgraph::OperatorKind;
use eddy_core::{
    CheckpointConfig, CoreError, Data, OperatorId, RecoveryClaimMode, RestartStrategyConfig,
    SavepointRestoreSettings,
};
use eddy_runtime::execution::PipelineExecutor;
use eddy_runtime::factory::{JobProgram, OperatorFactory, SourceFactory};
use eddy_runtime::source::SourceReader;
use eddy_runtime::OperatorError;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct EnvInner {
    pub(crate) config: ExecutionConfig,
    pub(crate) graph: StreamGraph,
}

/// The context a streaming program runs in (Flink's `StreamExecutionEnvironment`). Without a
/// cluster configured, `execute` runs the job on the embedded MiniCluster: one thread per
/// subtask in this process.
#[derive(Clone)]
pub struct StreamExecutionEnvironment {
    pub(crate) inner: Rc<RefCell<EnvInner>>,
}

impl Default for StreamExecutionEnvironment {
    fn default() -> Self {
        Self::get_execution_environment()
    }
}

impl StreamExecutionEnvironment {
    /// A new environment with the default configuration.
    pub fn get_execution_environment() -> Self {
        Self::with_config(ExecutionConfig::default())
    }

    /// A new environment with the given configuration.
    pub fn with_config(config: ExecutionConfig) -> Self {
        StreamExecutionEnvironment {
            inner: Rc::new(RefCell::new(EnvInner {
                config,
                graph: StreamGraph::default(),
            })),
        }
    }

    /// Sets a configuration key by its Flink name (e.g. `parallelism.default`).
    pub fn set_config(&self, key: &str, value: &str) -> Result<&Self, CoreError> {
        self.inner.borrow_mut().config.set(key, value)?;
        Ok(self)
    }

    /// The current configuration.
    pub fn config(&self) -> ExecutionConfig {
        self.inner.borrow().config.clone()
    }

    /// Default parallelism of operators.
    pub fn set_parallelism(&self, p: usize) -> &Self {
        if p == 0 {
            self.error("parallelism must be at least 1, got 0".into());
        } else {
            self.inner.borrow_mut().config.parallelism = p;
        }
        self
    }

    /// Default parallelism.
    pub fn parallelism(&self) -> usize {
        self.inner.borrow().config.parallelism
    }

    /// Default max parallelism (number of key groups) of keyed operators.
    pub fn set_max_parallelism(&self, p: usize) -> &Self {
        if p == 0 || p > eddy_core::keygroup::UPPER_BOUND_MAX_PARALLELISM {
            self.error(format!("max parallelism must be in 1..=32768, got {p}"));
        } else {
            self.inner.borrow_mut().config.max_parallelism = Some(p);
        }
        self
    }

    /// Turns operator chaining off for the whole job.
    pub fn disable_operator_chaining(&self) -> &Self {
        self.inner.borrow_mut().config.chaining_enabled = false;
        self
    }

    /// How long a partially filled output buffer may wait before it is sent: `Some(0)` after
    /// every element, `None` only when full (Flink's `setBufferTimeout(-1)`).
    pub fn set_buffer_timeout(&self, timeout: Option<Duration>) -> &Self {
        self.inner.borrow_mut().config.buffer_timeout_ms =
            timeout.map(|d| d.as_millis() as i64).unwrap_or(-1);
        self
    }

    /// How often periodic watermark generators emit, for strategies that set no interval of
    /// their own (`pipeline.auto-watermark-interval`); zero turns periodic watermarks off.
    pub fn set_auto_watermark_interval(&self, interval: Duration) -> &Self {
        self.inner.borrow_mut().config.auto_watermark_interval_ms =
            i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// Turns on periodic checkpoints every `interval`, exactly-once (Flink's
    /// `enableCheckpointing`). Tune the rest with [`StreamExecutionEnvironment::configure_checkpointing`].
    pub fn enable_checkpointing(&self, interval: Duration) -> &Self {
        self.inner.borrow_mut().config.checkpoint.interval_ms =
            Some((interval.as_millis() as u64).max(1));
        self
    }

    /// Adjusts the checkpoint configuration (mode, storage URL, timeout, minimum pause,
    /// concurrency, tolerable failures, retention, retained count) — Flink's `CheckpointConfig`.
    pub fn configure_checkpointing(&self, f: impl FnOnce(&mut CheckpointConfig)) -> &Self {
        f(&mut self.inner.borrow_mut().config.checkpoint);
        self
    }

    /// Sets the restart strategy (Flink's `setRestartStrategy`).
    pub fn set_restart_strategy(&self, strategy: RestartStrategyConfig) -> &Self {
        self.inner.borrow_mut().config.restart_strategy = Some(strategy);
        self
    }

    /// Starts the job from a savepoint or retained checkpoint (`execution.savepoint.path`);
    /// with `allow_non_restored_state`, state of operators no longer in the job is skipped.
    pub fn restore_from(&self, path: impl Into<String>, allow_non_restored_state: bool) -> &Self {
        let mut inner = self.inner.borrow_mut();
        let claim_mode = inner
            .config
            .savepoint_restore
            .as_ref()
            .map(|s| s.claim_mode)
            .unwrap_or_default();
        inner.config.savepoint_restore = Some(SavepointRestoreSettings {
            path: path.into(),
            allow_non_restored_state,
            claim_mode,
        });
        self
    }

    /// Who owns the snapshot the job starts from (`execution.state-recovery.claim-mode`):
    /// `NoClaim` (the default) leaves it untouched, `Claim` makes it the job's own checkpoint,
    /// deleted once subsumed.
    pub fn set_claim_mode(&self, mode: RecoveryClaimMode) -> &Self {
        let mut inner = self.inner.borrow_mut();
        match &mut inner.config.savepoint_restore {
            Some(s) => s.claim_mode = mode,
            None => {
                inner.config.savepoint_restore = Some(SavepointRestoreSettings {
                    path: String::new(),
                    allow_non_restored_state: false,
                    claim_mode: mode,
                })
            }
        }
        self
    }

    pub(crate) fn error(&self, msg: String) {
        self.inner.borrow_mut().graph.errors.push(msg);
    }

    pub(crate) fn add_node(
        &self,
        name: String,
        kind: OperatorKind,
        factory: Arc<dyn OperatorFactory>,
        keyed: bool,
    ) -> OperatorId {
        let mut inner = self.inner.borrow_mut();
        let id = inner.graph.nodes.len() as OperatorId;
        let pact = match kind {
            OperatorKind::Source => "Data Source",
            OperatorKind::Sink => "Data Sink",
            _ => "Operator",
        };
        inner.graph.nodes.push(StreamNode {
            id,
            name,
            uid: None,
            kind,
            parallelism: None,
            max_parallelism: None,
            slot_sharing_group: None,
            chaining: ChainingStrategy::Always,
            keyed,
            non_parallel: false,
            pact,
            factory,
        });
        id
    }

    /// The parallelism set on operator `id` (1 for a non-parallel one), if one was.
    pub(crate) fn node_parallelism(&self, id: OperatorId) -> Option<usize> {
        self.inner
            .borrow()
            .graph
            .nodes
            .get(id as usize)
            .and_then(|n| {
                if n.non_parallel {
                    Some(1)
                } else {
                    n.parallelism
                }
            })
    }

    pub(crate) fn with_node(&self, id: OperatorId, f: impl FnOnce(&mut StreamNode)) {
        if let Some(n) = self.inner.borrow_mut().graph.nodes.get_mut(id as usize) {
            f(n);
        }
    }

    /// Adds a source reading with one reader per subtask.
    pub fn add_source<R: SourceReader>(
        &self,
        name: &str,
        make: impl Fn() -> R + Send + Sync + 'static,
    ) -> crate::stream::SingleOutputStreamOperator<R::Out> {
        self.source_node(format!("Source: {name}"), SourceFactory::new(make), false)
    }

    fn source_node<R: SourceReader>(
        &self,
        name: String,
        factory: SourceFactory<R>,
        non_parallel: bool,
    ) -> crate::stream::SingleOutputStreamOperator<R::Out> {
        let id = self.add_node(name, OperatorKind::Source, Arc::new(factory), false);
        self.with_node(id, |n| n.non_parallel = non_parallel);
        crate::stream::SingleOutputStreamOperator::new(
            DataStream::from_port(self.clone(), Port::main(id)),
            id,
        )
    }

    /// A non-parallel source of the given elements, in order (`fromCollection`).
    pub fn from_collection<T: Data>(
        &self,
        items: Vec<T>,
    ) -> crate::stream::SingleOutputStreamOperator<T> {
        // A Mutex makes the factory shareable without asking `T: Sync`.
        let items = parking_lot::Mutex::new(items);
        self.source_node(
            "Source: Collection Source".into(),
            SourceFactory::new(move || CollectionReader::new(items.lock().clone())),
            true,
        )
    }

    /// A non-parallel source of an iterator's elements (collected when the job is built).
    pub fn from_iter<T: Data, I: IntoIterator<Item = T>>(
        &self,
        items: I,
    ) -> crate::stream::SingleOutputStreamOperator<T> {
        self.from_collection(items.into_iter().collect())
    }

    /// A non-parallel source of the given elements (Flink's `fromElements`).
    pub fn from_elements<T: Data>(
        &self,
        items: &[T],
    ) -> crate::stream::SingleOutputStreamOperator<T> {
        self.from_collection(items.to_vec())
    }

    /// A parallel source of the numbers `from..=to` (`fromSequence`).
    pub fn from_sequence(
        &self,
        from: i64,
        to: i64,
    ) -> crate::stream::SingleOutputStreamOperator<i64> {
        self.source_node(
            "Source: Sequence Source".into(),
            SourceFactory::new(move || SequenceReader::new(from, to)),
            false,
        )
    }

    /// A parallel source of the lines of a file, or of the files of a directory. A missing path
    /// fails the job before it starts.
    pub fn read_text_file(
        &self,
        path: impl Into<PathBuf>,
    ) -> crate::stream::SingleOutputStreamOperator<String> {
        let path: PathBuf = path.into();
        let check = path.clone();
        let p2 = path.clone();
        self.source_node(
            format!("Source: {}", path.display()),
            SourceFactory::new(move || eddy_connectors::file::TextFileReader::new(p2.clone()))
                .with_global_init(move || list_files(&check).map(|_| ())),
            false,
        )
    }

    /// A non-parallel source of the lines read from a TCP server; it ends when the server closes
    /// the connection.
    pub fn socket_text_stream(
        &self,
        host: &str,
        port: u16,
    ) -> crate::stream::SingleOutputStreamOperator<String> {
        let host = host.to_string();
        let addr = format!("{host}:{port}");
        self.source_node(
            "Source: Socket Stream".into(),
            SourceFactory::new(move || SocketReader::new(host.clone(), port)).with_global_init(
                move || {
                    use std::net::ToSocketAddrs;
                    addr.to_socket_addrs().map(|_| ()).map_err(|e| {
                        OperatorError::io(format!("resolving socket address {addr}"), e)
                    })
                },
            ),
            true,
        )
    }

    /// Flink's execution plan JSON (operators, parallelism, ship strategies).
    pub fn get_execution_plan(&self) -> Result<String, CoreError> {
        let inner = self.inner.borrow();
        inner.graph.execution_plan(&inner.config)
    }

    /// The JobGraph this program would submit (chains resolved).
    pub fn get_job_graph(
        &self,
        job_name: &str,
    ) -> Result<eddy_core::jobgraph::JobGraph, CoreError> {
        Ok(self.get_program(job_name)?.job_graph)
    }

    /// The executable program (JobGraph plus the operators' code).
    pub fn get_program(&self, job_name: &str) -> Result<JobProgram, CoreError> {
        let inner = self.inner.borrow();
        inner.graph.to_program(job_name, &inner.config)
    }

    /// Hands the program to `executor` and returns its handle to the started job (Flink's
    /// `executeAsync` through a `PipelineExecutor`). The configuration is checked first; the
    /// program's operators are consumed: a later call runs only what was declared after this
    /// one. `eddy::prelude` adds `execute` and `execute_async`, which run on the embedded
    /// MiniCluster.
    pub fn execute_with<X: PipelineExecutor>(
        &self,
        executor: &X,
        job_name: &str,
    ) -> Result<X::Client, X::Error> {
        let program = self.get_program(job_name)?;
        program.job_graph.config.validate()?;
        self.inner.borrow_mut().graph = StreamGraph::default();
        executor.execute(program)
    }
}
