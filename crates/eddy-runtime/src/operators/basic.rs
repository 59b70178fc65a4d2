//! Stateless one-input operators: map, flat_map, filter, process.

use crate::chain::{OneInputOperator, OperatorContext};
use crate::environment::Clock;
use crate::error::OperatorError;
use crate::functions::{
    ProcessContext, ProcessFunction, RichFilterFunction, RichFlatMapFunction, RichMapFunction,
    RuntimeContext,
};
use crate::output::Output;
use eddy_core::{Data, StreamRecord, Watermark};
use std::marker::PhantomData;
use std::sync::Arc;

/// A runtime context without keyed state, for `open`.
pub(crate) fn plain_runtime_context<'a>(ctx: &'a OperatorContext<'_>) -> RuntimeContext<'a> {
    RuntimeContext {
        env: ctx.env,
        operator_name: &ctx.label.name,
        max_parallelism: ctx.max_parallelism,
        backend: None,
        restored: ctx.restored(),
    }
}

/// `map`: one output per input.
pub struct MapOperator<I, O, F> {
    f: F,
    _t: PhantomData<fn(I) -> O>,
}

impl<I, O, F> MapOperator<I, O, F> {
    /// Wraps the function.
    pub fn new(f: F) -> Self {
        MapOperator { f, _t: PhantomData }
    }
}

impl<I: Data, O: Data, F: RichMapFunction<I, O>> OneInputOperator for MapOperator<I, O, F> {
    type In = I;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        Ok(self.f.open(&mut plain_runtime_context(ctx))?)
    }

    #[inline]
    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<I>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        for r in batch.drain(..) {
            out.push(StreamRecord {
                value: self.f.map(r.value),
                timestamp: r.timestamp,
            });
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }

    super::function_checkpoint_hooks!(f);
}

/// `flat_map`: zero or more outputs per input.
pub struct FlatMapOperator<I, O, F> {
    f: F,
    _t: PhantomData<fn(I) -> O>,
}

impl<I, O, F> FlatMapOperator<I, O, F> {
    /// Wraps the function.
    pub fn new(f: F) -> Self {
        FlatMapOperator { f, _t: PhantomData }
    }
}

impl<I: Data, O: Data, F: RichFlatMapFunction<I, O>> OneInputOperator for FlatMapOperator<I, O, F> {
    type In = I;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        Ok(self.f.open(&mut plain_runtime_context(ctx))?)
    }

    #[inline]
    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<I>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let mut c = out.collector(StreamRecord::<O>::NO_TIMESTAMP);
        for r in batch.drain(..) {
            c.set_timestamp(r.timestamp);
            self.f.flat_map(r.value, &mut c);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }

    super::function_checkpoint_hooks!(f);
}

/// `filter`: keeps the inputs the predicate accepts.
pub struct FilterOperator<T, F> {
    f: F,
    _t: PhantomData<fn(T)>,
}

impl<T, F> FilterOperator<T, F> {
    /// Wraps the predicate.
    pub fn new(f: F) -> Self {
        FilterOperator { f, _t: PhantomData }
    }
}

impl<T: Data, F: RichFilterFunction<T>> OneInputOperator for FilterOperator<T, F> {
    type In = T;
    type Out = T;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        Ok(self.f.open(&mut plain_runtime_context(ctx))?)
    }

    #[inline]
    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        out: &mut Output<T>,
    ) -> Result<(), OperatorError> {
        for r in batch.drain(..) {
            if self.f.filter(&r.value) {
                out.push(r);
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }

    super::function_checkpoint_hooks!(f);
}

/// `process` on a non-keyed stream.
pub struct ProcessOperator<I, O, F> {
    f: F,
    clock: Option<Arc<dyn Clock>>,
    watermark: i64,
    _t: PhantomData<fn(I) -> O>,
}

impl<I, O, F> ProcessOperator<I, O, F> {
    /// Wraps the function.
    pub fn new(f: F) -> Self {
        ProcessOperator {
            f,
            clock: None,
            watermark: i64::MIN,
            _t: PhantomData,
        }
    }
}

impl<I: Data, O: Data, F: ProcessFunction<I, O>> OneInputOperator for ProcessOperator<I, O, F> {
    type In = I;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        self.clock = Some(ctx.env.clock.clone());
        Ok(self.f.open(&mut plain_runtime_context(ctx))?)
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<I>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let now = super::now(&self.clock);
        let (mut c, side) = out.split(StreamRecord::<O>::NO_TIMESTAMP);
        let mut ctx = ProcessContext {
            timestamp: StreamRecord::<O>::NO_TIMESTAMP,
            side,
            watermark: self.watermark,
            now,
        };
        for r in batch.drain(..) {
            c.set_timestamp(r.timestamp);
            ctx.side.set_timestamp(r.timestamp);
            ctx.timestamp = r.timestamp;
            self.f.process_element(r.value, &mut ctx, &mut c)?;
        }
        Ok(())
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        _out: &mut Output<O>,
    ) -> Result<Option<Watermark>, OperatorError> {
        self.watermark = wm.timestamp;
        Ok(Some(wm))
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }

    super::function_checkpoint_hooks!(f);
}
