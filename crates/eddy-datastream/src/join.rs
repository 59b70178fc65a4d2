//! Window joins and co-groups of two streams (Flink's `JoinedStreams` / `CoGroupedStreams`):
//! both inputs are tagged, unioned, keyed by their key selectors and windowed together; a
//! window firing hands the elements of each side to the co-group function, or every pair to the
//! join function.

use crate::stream::{DataStream, SingleOutputStreamOperator};
use crate::windowed::WindowedStream;
use eddy_core::{Data, Key};
use eddy_runtime::output::Collector;
use eddy_runtime::windowing::{Evictor, Trigger, WindowAssigner};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// An element of either input of a co-group (Flink's `TaggedUnion`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TaggedUnion<A, B> {
    /// From the first input.
    One(A),
    /// From the second input.
    Two(B),
}

type KeyFn<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// `a.co_group(b)`: choose keys with `where_` and `equal_to`, then a window.
pub struct CoGroupedStreams<A, B> {
    a: DataStream<A>,
    b: DataStream<B>,
}

/// `a.join(b)`: like a co-group, but the function sees every matching pair.
pub struct JoinedStreams<A, B> {
    inner: CoGroupedStreams<A, B>,
}

impl<A: Data> DataStream<A> {
    /// Co-groups this stream with `other` per key and window.
    pub fn co_group<B: Data>(&self, other: &DataStream<B>) -> CoGroupedStreams<A, B> {
        CoGroupedStreams {
            a: self.clone(),
            b: other.clone(),
        }
    }

    /// Joins this stream with `other` per key and window (inner join).
    pub fn join<B: Data>(&self, other: &DataStream<B>) -> JoinedStreams<A, B> {
        JoinedStreams {
            inner: self.co_group(other),
        }
    }
}

/// Keys chosen for the first input.
pub struct Where<A, B, K, M> {
    a: DataStream<A>,
    b: DataStream<B>,
    key_a: KeyFn<A, K>,
    _m: PhantomData<M>,
}

/// Keys chosen for both inputs.
pub struct EqualTo<A, B, K, M> {
    a: DataStream<A>,
    b: DataStream<B>,
    key_a: KeyFn<A, K>,
    key_b: KeyFn<B, K>,
    _m: PhantomData<M>,
}

/// Marker: a co-group.
pub struct CoGroupMode;
/// Marker: a join.
pub struct JoinMode;

impl<A: Data, B: Data> CoGroupedStreams<A, B> {
    /// The key of the first input.
    pub fn where_<K: Key>(
        self,
        f: impl Fn(&A) -> K + Send + Sync + 'static,
    ) -> Where<A, B, K, CoGroupMode> {
        Where {
            a: self.a,
            b: self.b,
            key_a: Arc::new(f),
            _m: PhantomData,
        }
    }
}

impl<A: Data, B: Data> JoinedStreams<A, B> {
    /// The key of the first input.
    pub fn where_<K: Key>(
        self,
        f: impl Fn(&A) -> K + Send + Sync + 'static,
    ) -> Where<A, B, K, JoinMode> {
        Where {
            a: self.inner.a,
            b: self.inner.b,
            key_a: Arc::new(f),
            _m: PhantomData,
        }
    }
}

impl<A: Data, B: Data, K: Key, M> Where<A, B, K, M> {
    /// The key of the second input; elements with equal keys meet.
    pub fn equal_to(self, f: impl Fn(&B) -> K + Send + Sync + 'static) -> EqualTo<A, B, K, M> {
        EqualTo {
            a: self.a,
            b: self.b,
            key_a: self.key_a,
            key_b: Arc::new(f),
            _m: PhantomData,
        }
    }
}

impl<A: Data, B: Data, K: Key, M> EqualTo<A, B, K, M> {
    /// The windows both inputs are cut into.
    pub fn window<W: WindowAssigner<TaggedUnion<A, B>>>(
        self,
        assigner: W,
    ) -> WithWindow<A, B, K, W, M> {
        let tagged_a = self
            .a
            .map(TaggedUnion::<A, B>::One)
            .name("Map (tag first input)");
        let tagged_b = self
            .b
            .map(TaggedUnion::<A, B>::Two)
            .name("Map (tag second input)");
        let (ka, kb) = (self.key_a, self.key_b);
        let windowed = tagged_a
            .union(&[&tagged_b])
            .key_by(move |t: &TaggedUnion<A, B>| match t {
                TaggedUnion::One(x) => ka(x),
                TaggedUnion::Two(y) => kb(y),
            })
            .window(assigner);
        WithWindow {
            windowed,
            _m: PhantomData,
        }
    }
}

/// A co-group or join with its window; finish it with `apply`.
pub struct WithWindow<A, B, K, W: WindowAssigner<TaggedUnion<A, B>>, M> {
    windowed: WindowedStream<TaggedUnion<A, B>, K, W>,
    _m: PhantomData<M>,
}

impl<A: Data, B: Data, K: Key, W: WindowAssigner<TaggedUnion<A, B>>, M> WithWindow<A, B, K, W, M> {
    /// Replaces the window's default trigger.
    pub fn trigger<Tr: Trigger<K, TaggedUnion<A, B>, W::W> + Clone>(self, t: Tr) -> Self {
        WithWindow {
            windowed: self.windowed.trigger(t),
            _m: PhantomData,
        }
    }
    /// Evicts elements of both sides before/after the function.
    pub fn evictor<E: Evictor<TaggedUnion<A, B>, W::W> + Clone>(self, e: E) -> Self {
        WithWindow {
            windowed: self.windowed.evictor(e),
            _m: PhantomData,
        }
    }
    /// Keeps windows for `lateness` after their end.
    pub fn allowed_lateness(self, lateness: Duration) -> Self {
        WithWindow {
            windowed: self.windowed.allowed_lateness(lateness),
            _m: PhantomData,
        }
    }

    fn co_group_apply<O: Data, F>(&self, name: &str, mut f: F) -> SingleOutputStreamOperator<O>
    where
        F: FnMut(Vec<A>, Vec<B>, &mut Collector<'_, O>) + Clone + Send + 'static,
    {
        self.windowed
            .apply(
                move |_k: &K, _w: &W::W, v: Vec<TaggedUnion<A, B>>, out: &mut Collector<'_, O>| {
                    let (mut first, mut second) = (Vec::new(), Vec::new());
                    for t in v {
                        match t {
                            TaggedUnion::One(x) => first.push(x),
                            TaggedUnion::Two(y) => second.push(y),
                        }
                    }
                    f(first, second, out);
                    Ok(())
                },
            )
            .name(name)
    }
}

impl<A: Data, B: Data, K: Key, W: WindowAssigner<TaggedUnion<A, B>>>
    WithWindow<A, B, K, W, CoGroupMode>
{
    /// Calls `f(first_side, second_side, out)` once per key and window firing (Flink's
    /// `CoGroupFunction`); either side may be empty.
    pub fn apply<O: Data, F>(&self, f: F) -> SingleOutputStreamOperator<O>
    where
        F: FnMut(Vec<A>, Vec<B>, &mut Collector<'_, O>) + Clone + Send + 'static,
    {
        self.co_group_apply("CoGroup", f)
    }
}

impl<A: Data, B: Data, K: Key, W: WindowAssigner<TaggedUnion<A, B>>>
    WithWindow<A, B, K, W, JoinMode>
{
    /// Calls `f(a, b)` for every pair with equal keys in the same window (Flink's
    /// `JoinFunction`, an inner join).
    pub fn apply<O: Data, F>(&self, mut f: F) -> SingleOutputStreamOperator<O>
    where
        F: FnMut(A, B) -> O + Clone + Send + 'static,
    {
        self.co_group_apply(
            "Join",
            move |first: Vec<A>, second: Vec<B>, out: &mut Collector<'_, O>| {
                for a in &first {
                    for b in &second {
                        out.collect(f(a.clone(), b.clone()));
                    }
                }
            },
        )
    }

    /// Calls `f(a, b, out)` for every pair (Flink's `FlatJoinFunction`).
    pub fn flat_apply<O: Data, F>(&self, mut f: F) -> SingleOutputStreamOperator<O>
    where
        F: FnMut(A, B, &mut Collector<'_, O>) + Clone + Send + 'static,
    {
        self.co_group_apply(
            "Join",
            move |first: Vec<A>, second: Vec<B>, out: &mut Collector<'_, O>| {
                for a in &first {
                    for b in &second {
                        f(a.clone(), b.clone(), out);
                    }
                }
            },
        )
    }
}
