//! Windows (Flink's windowing): assigners put elements into [`TimeWindow`]s or the
//! [`GlobalWindow`], [`Trigger`]s decide when a window fires, [`Evictor`]s trim its elements,
//! and window functions ([`ProcessWindowFunction`], or incremental `reduce`/`aggregate`
//! contents) evaluate it. The [`WindowOperator`] ties them together over keyed state and timers
//! namespaced by window; for aligned event-time windows a [`LocalWindowAggregateOperator`] can
//! pre-aggregate before the shuffle (two-phase aggregation).

pub mod assigner;
pub mod contents;
pub mod evictor;
pub mod function;
pub mod local;
mod merging;
pub mod operator;
pub mod trigger;
pub mod window;

pub use assigner::{
    EventTimeSessionWindows, GlobalWindows, ProcessingTimeSessionWindows, SessionWindows,
    SlidingEventTimeWindows, SlidingProcessingTimeWindows, TimeSlicing, TumblingEventTimeWindows,
    TumblingProcessingTimeWindows, WindowAssigner,
};
pub use evictor::{CountEvictor, DeltaEvictor, Evictor, EvictorContext, TimeEvictor};
pub use function::{
    AllWindowAdapter, FnProcessAllWindow, FnProcessWindow, FnWindow, PassThroughWindowFunction,
    ProcessAllWindowFunction, ProcessWindowFunction, WindowContext,
};
pub use local::{LocalWindowAggregateOperator, MergePartials, DEFAULT_LOCAL_BUFFER_ENTRIES};
pub use operator::{WindowOperator, WindowSettings};
pub use trigger::{
    ContinuousEventTimeTrigger, CountTrigger, EventTimeTrigger, NeverTrigger,
    ProcessingTimeTrigger, PurgingTrigger, Trigger, TriggerContext, TriggerResult,
};
pub use window::{GlobalWindow, TimeWindow, TimestampedValue, Window};
