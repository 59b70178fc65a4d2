//! `from_collection` / `from_iter`: a non-parallel source over a vector of values.

use crate::{decode_position, encode_position};
use eddy_core::{Data, StreamRecord};
use eddy_runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy_runtime::OperatorError;

/// Emits the elements of a vector in order, then ends.
pub struct CollectionReader<T> {
    items: Vec<T>,
    pos: usize,
}

impl<T> CollectionReader<T> {
    /// A reader over `items`.
    pub fn new(items: Vec<T>) -> Self {
        CollectionReader { items, pos: 0 }
    }
}

impl<T: Data> SourceReader for CollectionReader<T> {
    type Out = T;

    fn open(&mut self, _ctx: &SourceContext) -> Result<(), OperatorError> {
        Ok(())
    }

    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<T>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        let end = (self.pos + max).min(self.items.len());
        out.extend(
            self.items[self.pos..end]
                .iter()
                .cloned()
                .map(StreamRecord::new),
        );
        self.pos = end;
        Ok(if self.pos >= self.items.len() {
            InputStatus::EndOfInput
        } else {
            InputStatus::MoreAvailable
        })
    }

    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(encode_position(&[self.pos as u64]))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        self.pos = decode_position(position, 1)?[0] as usize;
        Ok(())
    }
}
