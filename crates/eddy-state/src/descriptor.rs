//! State descriptors (Flink's `StateDescriptor` family): a state's name, kind, types and
//! options, handed to the backend in `open()` to obtain a handle.
//!
//! Descriptors are `Clone + Send` so operators can keep them in their (serializable) setup and
//! register them on every subtask.

use crate::functions::{AggregateFunction, ReduceFn};
use crate::ttl::StateTtlConfig;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// The kind of a state, recorded in snapshots so a state cannot be restored as another kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StateKind {
    /// [`crate::ValueState`].
    Value,
    /// [`crate::ListState`].
    List,
    /// [`crate::MapState`].
    Map,
    /// [`crate::ReducingState`].
    Reducing,
    /// [`crate::AggregatingState`].
    Aggregating,
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateKind::Value => "ValueState",
            StateKind::List => "ListState",
            StateKind::Map => "MapState",
            StateKind::Reducing => "ReducingState",
            StateKind::Aggregating => "AggregatingState",
        })
    }
}

/// Adds Flink's `enableTimeToLive` in two spellings to a descriptor type.
macro_rules! ttl_methods {
    () => {
        /// Enables time-to-live for this state (Flink's `enableTimeToLive`).
        pub fn enable_time_to_live(&mut self, ttl_config: StateTtlConfig) {
            self.ttl = Some(ttl_config);
        }

        /// Builder form of [`Self::enable_time_to_live`].
        pub fn with_time_to_live(mut self, ttl_config: StateTtlConfig) -> Self {
            self.ttl = Some(ttl_config);
            self
        }

        /// The state's name, unique per operator.
        pub fn name(&self) -> &str {
            &self.name
        }

        /// The time-to-live configuration, if enabled.
        pub fn ttl_config(&self) -> Option<&StateTtlConfig> {
            self.ttl.as_ref()
        }
    };
}

/// Describes a [`crate::ValueState`] holding one `V` per key (and namespace).
#[derive(Clone, Debug)]
pub struct ValueStateDescriptor<V> {
    pub(crate) name: String,
    pub(crate) default: Option<V>,
    pub(crate) ttl: Option<StateTtlConfig>,
}

impl<V> ValueStateDescriptor<V> {
    /// A value state called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ValueStateDescriptor {
            name: name.into(),
            default: None,
            ttl: None,
        }
    }

    /// The value `value()` returns for keys that have none (Flink's deprecated default value).
    pub fn with_default(mut self, default: V) -> Self {
        self.default = Some(default);
        self
    }

    ttl_methods!();
}

/// Describes a [`crate::ListState`] holding a list of `V` per key (and namespace).
pub struct ListStateDescriptor<V> {
    pub(crate) name: String,
    pub(crate) ttl: Option<StateTtlConfig>,
    _v: PhantomData<fn() -> V>,
}

impl<V> ListStateDescriptor<V> {
    /// A list state called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ListStateDescriptor {
            name: name.into(),
            ttl: None,
            _v: PhantomData,
        }
    }

    ttl_methods!();
}

impl<V> Clone for ListStateDescriptor<V> {
    fn clone(&self) -> Self {
        ListStateDescriptor {
            name: self.name.clone(),
            ttl: self.ttl,
            _v: PhantomData,
        }
    }
}

impl<V> fmt::Debug for ListStateDescriptor<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListStateDescriptor")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Describes a [`crate::MapState`] holding a map `UK -> UV` per key (and namespace).
pub struct MapStateDescriptor<UK, UV> {
    pub(crate) name: String,
    pub(crate) ttl: Option<StateTtlConfig>,
    _kv: PhantomData<fn() -> (UK, UV)>,
}

impl<UK, UV> MapStateDescriptor<UK, UV> {
    /// A map state called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MapStateDescriptor {
            name: name.into(),
            ttl: None,
            _kv: PhantomData,
        }
    }

    ttl_methods!();
}

impl<UK, UV> Clone for MapStateDescriptor<UK, UV> {
    fn clone(&self) -> Self {
        MapStateDescriptor {
            name: self.name.clone(),
            ttl: self.ttl,
            _kv: PhantomData,
        }
    }
}

impl<UK, UV> fmt::Debug for MapStateDescriptor<UK, UV> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapStateDescriptor")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Describes a [`crate::ReducingState`]: one `V` per key (and namespace) that every `add`
/// combines with the reduce function.
pub struct ReducingStateDescriptor<V> {
    pub(crate) name: String,
    pub(crate) reduce: ReduceFn<V>,
    pub(crate) ttl: Option<StateTtlConfig>,
}

impl<V> ReducingStateDescriptor<V> {
    /// A reducing state called `name` combining values with `reduce`.
    pub fn new(
        name: impl Into<String>,
        reduce: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> Self {
        ReducingStateDescriptor {
            name: name.into(),
            reduce: Arc::new(reduce),
            ttl: None,
        }
    }

    ttl_methods!();
}

impl<V> Clone for ReducingStateDescriptor<V> {
    fn clone(&self) -> Self {
        ReducingStateDescriptor {
            name: self.name.clone(),
            reduce: Arc::clone(&self.reduce),
            ttl: self.ttl,
        }
    }
}

impl<V> fmt::Debug for ReducingStateDescriptor<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReducingStateDescriptor")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Describes an [`crate::AggregatingState`]: an accumulator `ACC` per key (and namespace) that
/// `add` feeds `IN` values and `get` turns into an `OUT`.
pub struct AggregatingStateDescriptor<IN, ACC, OUT> {
    pub(crate) name: String,
    pub(crate) agg: Arc<dyn AggregateFunction<IN, ACC, OUT>>,
    pub(crate) ttl: Option<StateTtlConfig>,
}

impl<IN, ACC, OUT> AggregatingStateDescriptor<IN, ACC, OUT> {
    /// An aggregating state called `name` using `agg_fn`.
    pub fn new(
        name: impl Into<String>,
        agg_fn: impl AggregateFunction<IN, ACC, OUT> + 'static,
    ) -> Self {
        AggregatingStateDescriptor {
            name: name.into(),
            agg: Arc::new(agg_fn),
            ttl: None,
        }
    }

    /// An aggregating state sharing an already shared aggregate function.
    pub fn from_shared(
        name: impl Into<String>,
        agg_fn: Arc<dyn AggregateFunction<IN, ACC, OUT>>,
    ) -> Self {
        AggregatingStateDescriptor {
            name: name.into(),
            agg: agg_fn,
            ttl: None,
        }
    }

    ttl_methods!();
}

impl<IN, ACC, OUT> Clone for AggregatingStateDescriptor<IN, ACC, OUT> {
    fn clone(&self) -> Self {
        AggregatingStateDescriptor {
            name: self.name.clone(),
            agg: Arc::clone(&self.agg),
            ttl: self.ttl,
        }
    }
}

impl<IN, ACC, OUT> fmt::Debug for AggregatingStateDescriptor<IN, ACC, OUT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregatingStateDescriptor")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
