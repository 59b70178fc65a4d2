//! `WindowedStream` (`KeyedStream::window`, `count_window`) and `AllWindowedStream`
//! (`DataStream::window_all`): trigger, evictor, allowed lateness and late-data side output
//! settings, then `reduce`/`aggregate`/`process`/`apply` (alone or combined) to get a stream of
//! window results.

use crate::keyed::{Field, KeyedStream};
use crate::stream::{per_subtask, DataStream, SingleOutputStreamOperator};
use eddy_core::{Data, Key};
use eddy_runtime::factory::OneInputFactory;
use eddy_runtime::output::{Collector, OutputTag};
use eddy_runtime::windowing::contents::{
    AggregateContents, EvictingContents, Fold, ListContents, ReduceContents, WindowContents,
};
use eddy_runtime::windowing::{
    AllWindowAdapter, CountEvictor, CountTrigger, Evictor, FnProcessAllWindow, FnProcessWindow,
    FnWindow, GlobalWindows, LocalWindowAggregateOperator, MergePartials,
    PassThroughWindowFunction, ProcessAllWindowFunction, ProcessWindowFunction, PurgingTrigger,
    TimeWindow, Trigger, WindowAssigner, WindowContext, WindowOperator, WindowSettings,
    DEFAULT_LOCAL_BUFFER_ENTRIES,
};
use eddy_runtime::FunctionResult;
use eddy_state::AggregateFunction;
use std::ops::Add;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type TriggerFactory<K, T, W> = Arc<dyn Fn() -> Box<dyn Trigger<K, T, W>> + Send + Sync>;
type EvictorFactory<T, W> = Arc<dyn Fn() -> Box<dyn Evictor<T, W>> + Send + Sync>;

/// A keyed stream cut into windows (Flink's `WindowedStream<T, K, W>`).
pub struct WindowedStream<T, K, A: WindowAssigner<T>> {
    keyed: KeyedStream<T, K>,
    assigner: A,
    trigger: Option<TriggerFactory<K, T, A::W>>,
    evictor: Option<EvictorFactory<T, A::W>>,
    settings: WindowSettings<T>,
    /// `window_all`: one subtask sees everything.
    non_parallel: bool,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<T: Data, K: Key> KeyedStream<T, K> {
    /// Windows of each key, as `assigner` defines them.
    pub fn window<A: WindowAssigner<T>>(&self, assigner: A) -> WindowedStream<T, K, A> {
        WindowedStream::new(self.clone(), assigner, false)
    }

    /// Tumbling windows of `size` elements per key (fires and purges every `size` elements).
    pub fn count_window(&self, size: u64) -> WindowedStream<T, K, GlobalWindows> {
        self.window(GlobalWindows::create())
            .trigger(PurgingTrigger::of(CountTrigger::of(size)))
    }

    /// Sliding windows of the last `size` elements per key, evaluated every `slide` elements.
    pub fn count_window_slide(&self, size: u64, slide: u64) -> WindowedStream<T, K, GlobalWindows> {
        self.window(GlobalWindows::create())
            .evictor(CountEvictor::of(
                usize::try_from(size).unwrap_or(usize::MAX),
            ))
            .trigger(CountTrigger::of(slide))
    }
}

impl<T: Data, K: Key, A: WindowAssigner<T>> WindowedStream<T, K, A> {
    fn new(keyed: KeyedStream<T, K>, assigner: A, non_parallel: bool) -> Self {
        if let Err(e) = assigner.validate() {
            keyed.execution_environment().error(e.to_string());
        }
        WindowedStream {
            keyed,
            assigner,
            trigger: None,
            evictor: None,
            settings: WindowSettings {
                allowed_lateness: 0,
                late_data: None,
            },
            non_parallel,
        }
    }

    /// Replaces the assigner's default trigger.
    pub fn trigger<Tr: Trigger<K, T, A::W> + Clone>(mut self, trigger: Tr) -> Self {
        if self.assigner.is_merging() && !trigger.can_merge() {
            self.keyed.execution_environment().error(format!(
                "{}: a merging window assigner cannot be used with a trigger that does not \
                 support merging",
                self.assigner.name()
            ));
        }
        let proto = Mutex::new(trigger);
        self.trigger = Some(Arc::new(move || {
            let t = match proto.lock() {
                Ok(g) => g.clone(),
                Err(p) => p.into_inner().clone(),
            };
            Box::new(t) as Box<dyn Trigger<K, T, A::W>>
        }));
        self
    }

    /// Removes elements before and/or after the window function. The window then keeps all its
    /// elements, even with `reduce`/`aggregate`.
    pub fn evictor<E: Evictor<T, A::W> + Clone>(mut self, evictor: E) -> Self {
        let proto = Mutex::new(evictor);
        self.evictor = Some(Arc::new(move || {
            let e = match proto.lock() {
                Ok(g) => g.clone(),
                Err(p) => p.into_inner().clone(),
            };
            Box::new(e) as Box<dyn Evictor<T, A::W>>
        }));
        self
    }

    /// Keeps event-time windows for `lateness` after their end: late elements then update
    /// (and re-fire) them instead of being dropped.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.settings.allowed_lateness = ms(lateness);
        self
    }

    /// Sends elements that are too late for every window to `tag` instead of dropping them;
    /// read them with `get_side_output(&tag)` on the result.
    pub fn side_output_late_data(mut self, tag: &OutputTag<T>) -> Self {
        self.settings.late_data = Some(tag.clone());
        self
    }

    fn build<C, O, F>(
        &self,
        function_name: &str,
        make_contents: impl Fn() -> C + Send + Sync + 'static,
        f: F,
    ) -> SingleOutputStreamOperator<O>
    where
        O: Data,
        C: WindowContents<K, T, A::W>,
        F: ProcessWindowFunction<C::Out, O, K, A::W> + Clone,
    {
        let sel = self.keyed.key_selector();
        let assigner = self.assigner.clone();
        let trigger = self.trigger.clone();
        let settings = self.settings.clone();
        let make = per_subtask(f, move |f| {
            WindowOperator::new(
                assigner.clone(),
                trigger.as_ref().map(|t| t()),
                make_contents(),
                f,
                sel.clone(),
                settings.clone(),
            )
        });
        let name = format!(
            "{}({}, {})",
            if self.non_parallel {
                "AllWindow"
            } else {
                "Window"
            },
            self.assigner.name(),
            function_name
        );
        let op = self
            .keyed
            .transform(&name, Arc::new(OneInputFactory::new(make)), true);
        if self.non_parallel {
            op.set_parallelism(1).set_max_parallelism(1)
        } else {
            op
        }
    }

    fn evicting<O: Send + 'static>(
        &self,
        fold: impl Fn() -> Fold<T, O> + Send + Sync + 'static,
    ) -> Option<impl Fn() -> EvictingContents<T, A::W, O> + Send + Sync + 'static> {
        let evictor = self.evictor.clone()?;
        Some(move || EvictingContents::new(evictor(), fold()))
    }

    /// Incrementally reduces each window to one element.
    pub fn reduce<F>(&self, f: F) -> SingleOutputStreamOperator<T>
    where
        F: Fn(T, T) -> T + Clone + Send + Sync + 'static,
    {
        self.reduce_with(f, PassThroughWindowFunction::<T>::default())
    }

    /// Reduces each window incrementally, then gives the result to `p` with the window's
    /// metadata.
    pub fn reduce_with<O: Data, F, P>(&self, f: F, p: P) -> SingleOutputStreamOperator<O>
    where
        F: Fn(T, T) -> T + Clone + Send + Sync + 'static,
        P: ProcessWindowFunction<T, O, K, A::W> + Clone,
    {
        let g = f.clone();
        match self.evicting(move || {
            let g = g.clone();
            Box::new(move |v: Vec<T>| v.into_iter().reduce(&g).into_iter().collect()) as Fold<T, T>
        }) {
            Some(c) => self.build("ReduceFunction", c, p),
            None => {
                let f: eddy_state::ReduceFn<T> = Arc::new(f);
                self.build("ReduceFunction", move || ReduceContents::new(f.clone()), p)
            }
        }
    }

    /// Incrementally aggregates each window with one accumulator.
    pub fn aggregate<ACC: Data, O: Data>(
        &self,
        agg: impl AggregateFunction<T, ACC, O> + 'static,
    ) -> SingleOutputStreamOperator<O> {
        self.aggregate_with(agg, PassThroughWindowFunction::<O>::default())
    }

    /// Aggregates each window incrementally, then gives the result to `p` with the window's
    /// metadata.
    pub fn aggregate_with<ACC: Data, V: Data, O: Data, P>(
        &self,
        agg: impl AggregateFunction<T, ACC, V> + 'static,
        p: P,
    ) -> SingleOutputStreamOperator<O>
    where
        P: ProcessWindowFunction<V, O, K, A::W> + Clone,
    {
        let agg: Arc<dyn AggregateFunction<T, ACC, V>> = Arc::new(agg);
        let a = agg.clone();
        match self.evicting(move || {
            let a = a.clone();
            Box::new(move |v: Vec<T>| {
                let mut acc = a.create_accumulator();
                for x in v {
                    a.add(x, &mut acc);
                }
                vec![a.get_result(&acc)]
            }) as Fold<T, V>
        }) {
            Some(c) => self.build("AggregateFunction", c, p),
            None => self.build(
                "AggregateFunction",
                move || AggregateContents::new(agg.clone()),
                p,
            ),
        }
    }

    /// [`aggregate`](Self::aggregate) in two phases (Flink SQL's local-global window
    /// aggregation): see [`aggregate_two_phase_with`](Self::aggregate_two_phase_with).
    pub fn aggregate_two_phase<ACC: Data, O: Data>(
        &self,
        agg: impl AggregateFunction<T, ACC, O> + 'static,
    ) -> SingleOutputStreamOperator<O>
    where
        A: WindowAssigner<T, W = TimeWindow> + WindowAssigner<(K, ACC), W = TimeWindow>,
    {
        self.aggregate_two_phase_with(agg, PassThroughWindowFunction::<O>::default())
    }

    /// [`aggregate_with`](Self::aggregate_with) in two phases (Flink SQL's local-global window
    /// aggregation): a local phase chained before the shuffle folds the elements of each key
    /// and slice of time into one accumulator; the window operator after the shuffle merges
    /// these partials (with `agg.merge`) instead of adding every element to every window it
    /// belongs to. Far fewer records cross the shuffle and far fewer state updates happen when
    /// keys repeat; the results are the same as with `aggregate_with`, provided `merge` is
    /// exact (merging partials equals adding their elements in sequence).
    ///
    /// Only for tumbling and sliding event-time windows with the default trigger, no evictor
    /// and no late-data side output (the window operator sees partial accumulators, not
    /// elements); anything else fails the job at submission, naming what is not supported.
    /// Late elements are handed on at once, so allowed lateness behaves as in one phase.
    pub fn aggregate_two_phase_with<ACC: Data, V: Data, O: Data, P>(
        &self,
        agg: impl AggregateFunction<T, ACC, V> + 'static,
        p: P,
    ) -> SingleOutputStreamOperator<O>
    where
        A: WindowAssigner<T, W = TimeWindow> + WindowAssigner<(K, ACC), W = TimeWindow>,
        P: ProcessWindowFunction<V, O, K, TimeWindow> + Clone,
    {
        let name = WindowAssigner::<T>::name(&self.assigner);
        let unsupported = if self.trigger.is_some() {
            Some("a custom trigger")
        } else if self.evictor.is_some() {
            Some("an evictor")
        } else if self.settings.late_data.is_some() {
            Some("a late-data side output")
        } else if self.non_parallel {
            Some("window_all")
        } else {
            None
        };
        let slicing = WindowAssigner::<T>::time_slicing(&self.assigner);
        let env = self.keyed.execution_environment();
        let slicing = match (unsupported, slicing) {
            (None, Some(s)) => s,
            (Some(what), _) => {
                env.error(format!(
                    "{name}: two-phase aggregation does not support {what}"
                ));
                return self.aggregate_with(agg, p);
            }
            (None, None) => {
                env.error(format!(
                    "{name}: two-phase aggregation needs tumbling or sliding event-time windows"
                ));
                return self.aggregate_with(agg, p);
            }
        };
        let agg: Arc<dyn AggregateFunction<T, ACC, V>> = Arc::new(agg);
        let (sel, local_agg) = (self.keyed.key_selector(), agg.clone());
        let make = move || {
            LocalWindowAggregateOperator::new(
                sel.clone(),
                local_agg.clone(),
                slicing,
                DEFAULT_LOCAL_BUFFER_ENTRIES,
            )
        };
        let local = self
            .keyed
            .unpartitioned()
            .transform_local_phase::<(K, ACC)>(
                &format!("LocalWindowAggregate({name})"),
                Arc::new(OneInputFactory::new(make)),
            );
        let partials = local.key_by_ref(|p: &(K, ACC)| &p.0);
        let global = WindowedStream {
            keyed: partials,
            assigner: self.assigner.clone(),
            trigger: None,
            evictor: None,
            settings: WindowSettings {
                allowed_lateness: self.settings.allowed_lateness,
                late_data: None,
            },
            non_parallel: false,
        };
        let merge = MergePartials::<K, T, ACC, V>::new(agg);
        global.build(
            "AggregateFunction",
            move || AggregateContents::new(Arc::new(merge.clone())),
            p,
        )
    }

    /// Evaluates each window with all its elements.
    pub fn process<O: Data, P>(&self, p: P) -> SingleOutputStreamOperator<O>
    where
        P: ProcessWindowFunction<T, O, K, A::W> + Clone,
    {
        match self.evicting(|| Box::new(|v: Vec<T>| v) as Fold<T, T>) {
            Some(c) => self.build("ProcessWindowFunction", c, p),
            None => self.build("ProcessWindowFunction", ListContents::default, p),
        }
    }

    /// `process` with a closure `(key, ctx, elements, out)`.
    pub fn process_fn<O: Data, F>(&self, f: F) -> SingleOutputStreamOperator<O>
    where
        F: FnMut(
                &K,
                &mut WindowContext<'_, K, A::W>,
                Vec<T>,
                &mut Collector<'_, O>,
            ) -> FunctionResult
            + Clone
            + Send
            + 'static,
    {
        self.process(FnProcessWindow(f))
    }

    /// Evaluates each window with a closure `(key, window, elements, out)` (Flink's
    /// `WindowFunction`).
    pub fn apply<O: Data, F>(&self, f: F) -> SingleOutputStreamOperator<O>
    where
        F: FnMut(&K, &A::W, Vec<T>, &mut Collector<'_, O>) -> FunctionResult
            + Clone
            + Send
            + 'static,
    {
        self.process(FnWindow(f))
    }

    /// Sum of a field per window; other fields come from the window's first element.
    pub fn sum<N: Add<Output = N> + Copy + Send + Sync + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce(move |mut acc: T, mut v: T| {
            let x = *field(&mut v);
            let f = field(&mut acc);
            *f = *f + x;
            acc
        })
    }

    /// Minimum of a field per window; other fields come from the window's first element.
    pub fn min<N: PartialOrd + Copy + Send + Sync + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce(move |mut acc: T, mut v: T| {
            let x = *field(&mut v);
            let f = field(&mut acc);
            if x < *f {
                *f = x;
            }
            acc
        })
    }

    /// Maximum of a field per window; other fields come from the window's first element.
    pub fn max<N: PartialOrd + Copy + Send + Sync + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce(move |mut acc: T, mut v: T| {
            let x = *field(&mut v);
            let f = field(&mut acc);
            if x > *f {
                *f = x;
            }
            acc
        })
    }

    /// The element with the smallest field value per window (the first on ties).
    pub fn min_by<N: PartialOrd + Copy + Send + Sync + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce(move |mut acc: T, mut v: T| {
            if *field(&mut v) < *field(&mut acc) {
                v
            } else {
                acc
            }
        })
    }

    /// The element with the largest field value per window (the first on ties).
    pub fn max_by<N: PartialOrd + Copy + Send + Sync + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce(move |mut acc: T, mut v: T| {
            if *field(&mut v) > *field(&mut acc) {
                v
            } else {
                acc
            }
        })
    }
}

/// A whole (non-keyed) stream cut into windows, evaluated by one subtask (Flink's
/// `AllWindowedStream`).
pub struct AllWindowedStream<T, A: WindowAssigner<T>> {
    inner: WindowedStream<T, (), A>,
}

impl<T: Data> DataStream<T> {
    /// Windows over the whole stream; all elements go to one subtask.
    pub fn window_all<A: WindowAssigner<T>>(&self, assigner: A) -> AllWindowedStream<T, A> {
        AllWindowedStream {
            inner: WindowedStream::new(self.key_by(|_| ()), assigner, true),
        }
    }

    /// Tumbling windows of `size` elements over the whole stream.
    pub fn count_window_all(&self, size: u64) -> AllWindowedStream<T, GlobalWindows> {
        self.window_all(GlobalWindows::create())
            .trigger(PurgingTrigger::of(CountTrigger::of(size)))
    }

    /// Sliding windows of the last `size` elements over the whole stream, every `slide`.
    pub fn count_window_all_slide(
        &self,
        size: u64,
        slide: u64,
    ) -> AllWindowedStream<T, GlobalWindows> {
        self.window_all(GlobalWindows::create())
            .evictor(CountEvictor::of(
                usize::try_from(size).unwrap_or(usize::MAX),
            ))
            .trigger(CountTrigger::of(slide))
    }
}

impl<T: Data, A: WindowAssigner<T>> AllWindowedStream<T, A> {
    /// Replaces the assigner's default trigger.
    pub fn trigger<Tr: Trigger<(), T, A::W> + Clone>(self, trigger: Tr) -> Self {
        AllWindowedStream {
            inner: self.inner.trigger(trigger),
        }
    }
    /// Removes elements before and/or after the window function.
    pub fn evictor<E: Evictor<T, A::W> + Clone>(self, evictor: E) -> Self {
        AllWindowedStream {
            inner: self.inner.evictor(evictor),
        }
    }
    /// Keeps event-time windows for `lateness` after their end.
    pub fn allowed_lateness(self, lateness: Duration) -> Self {
        AllWindowedStream {
            inner: self.inner.allowed_lateness(lateness),
        }
    }
    /// Sends elements too late for every window to `tag`.
    pub fn side_output_late_data(self, tag: &OutputTag<T>) -> Self {
        AllWindowedStream {
            inner: self.inner.side_output_late_data(tag),
        }
    }
    /// Incrementally reduces each window to one element.
    pub fn reduce<F>(&self, f: F) -> SingleOutputStreamOperator<T>
    where
        F: Fn(T, T) -> T + Clone + Send + Sync + 'static,
    {
        self.inner.reduce(f)
    }
    /// Incrementally aggregates each window.
    pub fn aggregate<ACC: Data, O: Data>(
        &self,
        agg: impl AggregateFunction<T, ACC, O> + 'static,
    ) -> SingleOutputStreamOperator<O> {
        self.inner.aggregate(agg)
    }
    /// Reduces each window, then gives the result to `p`.
    pub fn reduce_with<O: Data, F, P>(&self, f: F, p: P) -> SingleOutputStreamOperator<O>
    where
        F: Fn(T, T) -> T + Clone + Send + Sync + 'static,
        P: ProcessAllWindowFunction<T, O, A::W> + Clone,
    {
        self.inner.reduce_with(f, AllWindowAdapter(p))
    }
    /// Aggregates each window, then gives the result to `p`.
    pub fn aggregate_with<ACC: Data, V: Data, O: Data, P>(
        &self,
        agg: impl AggregateFunction<T, ACC, V> + 'static,
        p: P,
    ) -> SingleOutputStreamOperator<O>
    where
        P: ProcessAllWindowFunction<V, O, A::W> + Clone,
    {
        self.inner.aggregate_with(agg, AllWindowAdapter(p))
    }
    /// Evaluates each window with all its elements.
    pub fn process<O: Data, P>(&self, p: P) -> SingleOutputStreamOperator<O>
    where
        P: ProcessAllWindowFunction<T, O, A::W> + Clone,
    {
        self.inner.process(AllWindowAdapter(p))
    }
    /// `process` with a closure `(ctx, elements, out)`.
    pub fn process_fn<O: Data, F>(&self, f: F) -> SingleOutputStreamOperator<O>
    where
        F: FnMut(&mut WindowContext<'_, (), A::W>, Vec<T>, &mut Collector<'_, O>) -> FunctionResult
            + Clone
            + Send
            + 'static,
    {
        self.process(FnProcessAllWindow(f))
    }
    /// Sum of a field per window.
    pub fn sum<N: Add<Output = N> + Copy + Send + Sync + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.inner.sum(field)
    }
}
