//! `ConnectedStreams`: two streams of different types feeding one two-input operator
//! (`connect`), keyed or not.

use crate::keyed::KeyedStream;
use crate::stream::{per_subtask, DataStream, Port, SingleOutputStreamOperator};
use eddy_core::jobgraph::OperatorKind;
use eddy_core::{Data, Key};
use eddy_runtime::factory::{OperatorFactory, TwoInputFactory};
use eddy_runtime::functions::{CoProcessFunction, KeyedCoProcessFunction, ProcessContext};
use eddy_runtime::operators::co::{CoProcessOperator, KeyedCoProcessOperator};
use eddy_runtime::operators::KeySelector;
use eddy_runtime::output::Collector;
use eddy_runtime::FunctionResult;
use std::marker::PhantomData;
use std::sync::Arc;

/// Two connected streams (Flink's `ConnectedStreams<A, B>`).
pub struct ConnectedStreams<A, B> {
    first: DataStream<A>,
    second: DataStream<B>,
}

pub(crate) fn two_input<A: Data, B: Data, O: Data>(
    first: &DataStream<A>,
    second: &DataStream<B>,
    name: &str,
    factory: Arc<dyn OperatorFactory>,
    keyed: bool,
) -> SingleOutputStreamOperator<O> {
    let env = first.execution_environment().clone();
    let id = env.add_node(name.to_string(), OperatorKind::TwoInput, factory, keyed);
    first.connect_node(id, 0);
    second.connect_node(id, 1);
    SingleOutputStreamOperator::new(DataStream::from_port(env, Port::main(id)), id)
}

/// `CoMap`: one function per input, one output each.
#[derive(Clone)]
pub struct CoMap<F1, F2, O> {
    f1: F1,
    f2: F2,
    _o: PhantomData<fn() -> O>,
}

impl<A, B, O: Send + 'static, F1, F2> CoProcessFunction<A, B, O> for CoMap<F1, F2, O>
where
    F1: FnMut(A) -> O + Send + 'static,
    F2: FnMut(B) -> O + Send + 'static,
{
    fn process_element1(
        &mut self,
        v: A,
        _: &mut ProcessContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        out.collect((self.f1)(v));
        Ok(())
    }
    fn process_element2(
        &mut self,
        v: B,
        _: &mut ProcessContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        out.collect((self.f2)(v));
        Ok(())
    }
}

/// `CoFlatMap`: one function per input, each emitting through a collector.
#[derive(Clone)]
pub struct CoFlatMap<F1, F2, O> {
    f1: F1,
    f2: F2,
    _o: PhantomData<fn() -> O>,
}

impl<A, B, O: Send + 'static, F1, F2> CoProcessFunction<A, B, O> for CoFlatMap<F1, F2, O>
where
    F1: FnMut(A, &mut Collector<'_, O>) + Send + 'static,
    F2: FnMut(B, &mut Collector<'_, O>) + Send + 'static,
{
    fn process_element1(
        &mut self,
        v: A,
        _: &mut ProcessContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        (self.f1)(v, out);
        Ok(())
    }
    fn process_element2(
        &mut self,
        v: B,
        _: &mut ProcessContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        (self.f2)(v, out);
        Ok(())
    }
}

impl<A: Data, B: Data> ConnectedStreams<A, B> {
    pub(crate) fn new(first: DataStream<A>, second: DataStream<B>) -> Self {
        ConnectedStreams { first, second }
    }

    /// Applies a [`CoProcessFunction`].
    pub fn process<O: Data, F: CoProcessFunction<A, B, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let make = per_subtask(f, CoProcessOperator::new);
        two_input(
            &self.first,
            &self.second,
            "Co-Process",
            Arc::new(TwoInputFactory::new(make)),
            false,
        )
    }

    /// Maps each input with its own function (`CoMapFunction`).
    pub fn map<O: Data, F1, F2>(&self, f1: F1, f2: F2) -> SingleOutputStreamOperator<O>
    where
        F1: FnMut(A) -> O + Clone + Send + 'static,
        F2: FnMut(B) -> O + Clone + Send + 'static,
    {
        let make = per_subtask(
            CoMap {
                f1,
                f2,
                _o: PhantomData,
            },
            CoProcessOperator::new,
        );
        two_input(
            &self.first,
            &self.second,
            "Co-Map",
            Arc::new(TwoInputFactory::new(make)),
            false,
        )
    }

    /// Flat-maps each input with its own function (`CoFlatMapFunction`).
    pub fn flat_map<O: Data, F1, F2>(&self, f1: F1, f2: F2) -> SingleOutputStreamOperator<O>
    where
        F1: FnMut(A, &mut Collector<'_, O>) + Clone + Send + 'static,
        F2: FnMut(B, &mut Collector<'_, O>) + Clone + Send + 'static,
    {
        let make = per_subtask(
            CoFlatMap {
                f1,
                f2,
                _o: PhantomData,
            },
            CoProcessOperator::new,
        );
        two_input(
            &self.first,
            &self.second,
            "Co-Flat Map",
            Arc::new(TwoInputFactory::new(make)),
            false,
        )
    }

    /// Keys both inputs; records with equal keys meet in the same subtask and share state.
    pub fn key_by<K: Key>(
        &self,
        k1: impl Fn(&A) -> K + Send + Sync + 'static,
        k2: impl Fn(&B) -> K + Send + Sync + 'static,
    ) -> KeyedConnectedStreams<A, B, K> {
        KeyedConnectedStreams {
            first: self.first.key_by(k1),
            second: self.second.key_by(k2),
        }
    }
}

/// Two connected keyed streams.
pub struct KeyedConnectedStreams<A, B, K> {
    first: KeyedStream<A, K>,
    second: KeyedStream<B, K>,
}

impl<A: Data, B: Data, K: Key> KeyedConnectedStreams<A, B, K> {
    /// Applies a [`KeyedCoProcessFunction`].
    pub fn process<O: Data, F: KeyedCoProcessFunction<K, A, B, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let s1: Arc<dyn KeySelector<A, K>> = self.first.key_selector();
        let s2: Arc<dyn KeySelector<B, K>> = self.second.key_selector();
        let make = per_subtask(f, move |f| {
            KeyedCoProcessOperator::new(f, s1.clone(), s2.clone())
        });
        two_input(
            &self.first,
            &self.second,
            "KeyedCo-Process",
            Arc::new(TwoInputFactory::new(make)),
            true,
        )
    }
}
