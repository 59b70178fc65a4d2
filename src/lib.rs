//! # Eddy
//!
//! Apache Flink's architecture rebuilt in Rust: a stateful stream processor with Flink's
//! DataStream API, keyed state, timers and event time, running as one native binary.
//!
//! ```no_run
//! use eddy::prelude::*;
//!
//! let env = StreamExecutionEnvironment::get_execution_environment();
//! env.from_collection(vec!["to be or not to be".to_string()])
//!     .flat_map(|line: String, out: &mut Collector<'_, (String, i64)>| {
//!         for w in line.split_whitespace() {
//!             out.collect((w.to_string(), 1));
//!         }
//!     })
//!     .key_by(|t: &(String, i64)| t.0.clone())
//!     .sum(|t: &mut (String, i64)| &mut t.1)
//!     .print();
//! env.execute("word count").unwrap();
//! ```
//!
//! ## Architecture
//!
//! A program builds a **StreamGraph** (one node per operator) through the DataStream API
//! (`eddy-datastream`). `execute` translates it into a **JobGraph** (`eddy-core`): consecutive
//! operators joined by a forward edge with equal parallelism are **chained** into one vertex and
//! call each other directly. The **MiniCluster** (`eddy-cluster`) expands the JobGraph into an
//! **ExecutionGraph** of subtasks and channels and runs each subtask on its own thread
//! (`eddy-runtime`): a mailbox loop that reads from credit-bounded input channels, so a slow
//! operator back-pressures its producers. Keyed state lives in `eddy-state`, split into **key
//! groups** so it can be snapshotted and rescaled; timers fire per key. Sources and sinks are in
//! `eddy-connectors`.
#![warn(missing_docs)]

pub mod execution;

pub use eddy_cluster as cluster;
pub use eddy_connectors as connectors;
pub use eddy_core as core;
pub use eddy_datastream as datastream;
pub use eddy_network as network;
pub use eddy_runtime as runtime;
pub use eddy_state as state;

/// Everything a streaming program usually needs.
pub mod prelude {
    pub use crate::execution::{Execute, ExecuteAndCollect, LocalExecutor};
    pub use eddy_cluster::jobmanager::checkpoint::{
        CheckpointStats, CheckpointStatsSnapshot, CheckpointStatus,
    };
    pub use eddy_cluster::{
        JobClient, JobExecutionError, JobExecutionResult, JobFailure, JobStatus, SubtaskWatermarks,
    };
    pub use eddy_core::config::ExecutionConfig;
    pub use eddy_core::{
        CheckpointConfig, CheckpointingMode, Data, ExternalizedCheckpointRetention, Key,
        RecoveryClaimMode, RestartStrategyConfig, Watermark, WatermarkStatus,
    };
    pub use eddy_datastream::{
        AllWindowedStream, BroadcastConnectedStream, BroadcastStream, CollectHandle,
        ConnectedStreams, DataStream, DataStreamSink, IntervalJoin, IntervalJoined,
        KeyedBroadcastConnectedStream, KeyedConnectedStreams, KeyedStream,
        SingleOutputStreamOperator, StreamExecutionEnvironment, WindowedStream, WriteMode,
    };
    pub use eddy_runtime::functions::{
        BroadcastState, CoProcessFunction, FunctionSnapshotContext, KeyedCoProcessFunction,
        KeyedContext, KeyedProcessFunction, ProcessContext, ProcessFunction, ProcessJoinContext,
        ProcessJoinFunction, RichFilterFunction, RichFlatMapFunction, RichMapFunction,
        RuntimeContext, TimeDomain, TimerService,
    };
    pub use eddy_runtime::operators::broadcast::{
        BroadcastContext, BroadcastProcessFunction, KeyedBroadcastProcessFunction,
        KeyedReadOnlyBroadcastContext, ReadOnlyBroadcastContext,
    };
    pub use eddy_runtime::operators::watermark::{
        AscendingTimestampsWatermarks, BoundedOutOfOrdernessWatermarks, WatermarkGenerator,
        WatermarkOutput, WatermarkStrategy,
    };
    pub use eddy_runtime::output::{Collector, OutputTag};
    pub use eddy_runtime::source::{InputStatus, Rescale, SourceContext, SourceReader};
    pub use eddy_runtime::windowing::{
        ContinuousEventTimeTrigger, CountEvictor, CountTrigger, DeltaEvictor,
        EventTimeSessionWindows, EventTimeTrigger, Evictor, EvictorContext, GlobalWindow,
        GlobalWindows, ProcessAllWindowFunction, ProcessWindowFunction,
        ProcessingTimeSessionWindows, ProcessingTimeTrigger, PurgingTrigger,
        SlidingEventTimeWindows, SlidingProcessingTimeWindows, TimeEvictor, TimeWindow,
        TimestampedValue, Trigger, TriggerContext, TriggerResult, TumblingEventTimeWindows,
        TumblingProcessingTimeWindows, Window, WindowAssigner, WindowContext,
    };
    pub use eddy_runtime::{FunctionError, FunctionResult};
    pub use eddy_state::{
        AggregateFunction, AggregatingState, AggregatingStateDescriptor, ListState,
        ListStateDescriptor, MapState, MapStateDescriptor, ReducingState, ReducingStateDescriptor,
        StateTtlConfig, ValueState, ValueStateDescriptor,
    };
}
