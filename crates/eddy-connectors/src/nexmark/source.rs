//! The Nexmark source: subtask `k` of `p` generates events `k, k + p, k + 2p, …` — every
//! subtask covers the whole event-time range at `1/p` of the density, so watermarks of all
//! subtasks advance together, and the union over subtasks is the same event sequence at any
//! parallelism. Records carry their event time as timestamp; the position is the next event
//! number.

use super::generator::GeneratorConfig;
use super::model::Event;
use crate::{decode_position, encode_position};
use eddy_core::StreamRecord;
use eddy_runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy_runtime::OperatorError;
use std::sync::Arc;

/// Reads this subtask's share of the generated events.
pub struct NexmarkSource {
    config: Arc<GeneratorConfig>,
    next: u64,
    step: u64,
    restored: bool,
}

impl NexmarkSource {
    /// A reader of the events `config` describes.
    pub fn new(config: Arc<GeneratorConfig>) -> Self {
        NexmarkSource {
            config,
            next: 0,
            step: 1,
            restored: false,
        }
    }
}

impl SourceReader for NexmarkSource {
    type Out = Event;

    fn open(&mut self, ctx: &SourceContext) -> Result<(), OperatorError> {
        self.step = ctx.parallelism.max(1) as u64;
        if !self.restored {
            self.next = ctx.subtask as u64;
        }
        Ok(())
    }

    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<Event>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        let end = self.config.events;
        for _ in 0..max {
            if self.next >= end {
                break;
            }
            let e = self.config.event(self.next);
            let ts = e.date_time();
            out.push(StreamRecord::with_timestamp(e, ts));
            self.next += self.step;
        }
        Ok(if self.next >= end {
            InputStatus::EndOfInput
        } else {
            InputStatus::MoreAvailable
        })
    }

    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(encode_position(&[self.next]))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        self.next = decode_position(position, 1)?[0];
        self.restored = true;
        Ok(())
    }
}
