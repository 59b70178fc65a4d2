//! The broadcast state pattern: `stream.broadcast_with(&descriptor)` makes a
//! [`BroadcastStream`] (every record to every subtask, broadcast state declared), and
//! `connect_broadcast` on a `DataStream` or `KeyedStream` joins it with another stream into a
//! [`BroadcastProcessFunction`] or [`KeyedBroadcastProcessFunction`] (Flink's
//! `BroadcastConnectedStream`).

use crate::connected::two_input;
use crate::keyed::KeyedStream;
use crate::stream::{per_subtask, DataStream, SingleOutputStreamOperator};
use eddy_core::{Data, Key};
use eddy_runtime::factory::TwoInputFactory;
use eddy_runtime::operator_state::BroadcastStateDeclaration;
use eddy_runtime::operators::broadcast::{
    BroadcastProcessFunction, BroadcastProcessOperator, KeyedBroadcastProcessFunction,
    KeyedBroadcastProcessOperator,
};
use eddy_runtime::operators::KeySelector;
use eddy_state::MapStateDescriptor;
use std::sync::Arc;

/// A stream broadcast to every subtask of the operator it is connected to, with the broadcast
/// states that operator holds (Flink's `BroadcastStream`).
#[derive(Clone)]
pub struct BroadcastStream<T> {
    stream: DataStream<T>,
    declared: Vec<BroadcastStateDeclaration>,
}

impl<T: Data> BroadcastStream<T> {
    /// Declares one more broadcast state.
    pub fn and_state<K: Key, V: Data>(mut self, desc: &MapStateDescriptor<K, V>) -> Self {
        self.declared.push(BroadcastStateDeclaration::of(desc));
        self
    }
}

impl<T: Data> DataStream<T> {
    /// Broadcasts this stream, declaring the broadcast state `desc` describes (Flink's
    /// `broadcast(MapStateDescriptor...)`; more with [`BroadcastStream::and_state`]).
    pub fn broadcast_with<K: Key, V: Data>(
        &self,
        desc: &MapStateDescriptor<K, V>,
    ) -> BroadcastStream<T> {
        BroadcastStream {
            stream: self.broadcast(),
            declared: vec![BroadcastStateDeclaration::of(desc)],
        }
    }

    /// Connects with a broadcast stream (Flink's `connect(BroadcastStream)`).
    pub fn connect_broadcast<B: Data>(
        &self,
        broadcast: &BroadcastStream<B>,
    ) -> BroadcastConnectedStream<T, B> {
        BroadcastConnectedStream {
            first: self.clone(),
            broadcast: broadcast.clone(),
        }
    }
}

/// A non-keyed stream connected with a broadcast stream.
pub struct BroadcastConnectedStream<T, B> {
    first: DataStream<T>,
    broadcast: BroadcastStream<B>,
}

impl<T: Data, B: Data> BroadcastConnectedStream<T, B> {
    /// Applies a [`BroadcastProcessFunction`].
    pub fn process<O: Data, F: BroadcastProcessFunction<T, B, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let declared = self.broadcast.declared.clone();
        let make = per_subtask(f, move |f| {
            BroadcastProcessOperator::new(f, declared.clone())
        });
        two_input(
            &self.first,
            &self.broadcast.stream,
            "Co-Process-Broadcast",
            Arc::new(TwoInputFactory::new(make)),
            false,
        )
    }
}

impl<T: Data, K: Key> KeyedStream<T, K> {
    /// Connects with a broadcast stream (Flink's `KeyedStream.connect(BroadcastStream)`).
    pub fn connect_broadcast<B: Data>(
        &self,
        broadcast: &BroadcastStream<B>,
    ) -> KeyedBroadcastConnectedStream<T, B, K> {
        KeyedBroadcastConnectedStream {
            first: self.clone(),
            broadcast: broadcast.clone(),
        }
    }
}

/// A keyed stream connected with a broadcast stream.
pub struct KeyedBroadcastConnectedStream<T, B, K> {
    first: KeyedStream<T, K>,
    broadcast: BroadcastStream<B>,
}

impl<T: Data, B: Data, K: Key> KeyedBroadcastConnectedStream<T, B, K> {
    /// Applies a [`KeyedBroadcastProcessFunction`].
    pub fn process<O: Data, F: KeyedBroadcastProcessFunction<K, T, B, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let selector: Arc<dyn KeySelector<T, K>> = self.first.key_selector();
        let declared = self.broadcast.declared.clone();
        let make = per_subtask(f, move |f| {
            KeyedBroadcastProcessOperator::new(f, selector.clone(), declared.clone())
        });
        two_input(
            &self.first,
            &self.broadcast.stream,
            "Co-Process-Broadcast-Keyed",
            Arc::new(TwoInputFactory::new(make)),
            true,
        )
    }
}
