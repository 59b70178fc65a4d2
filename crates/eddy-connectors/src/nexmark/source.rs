//! The Nexmark source: the generator's events through a [`DataGeneratorSource`], so subtask
//! `k` of `p` generates events `k, k + p, …` and the event sequence is the same at every
//! parallelism. Event time is each event's `date_time` (assigned with the watermarks).

use super::generator::{GeneratorConfig, InvalidGeneratorConfig};
use super::model::Event;
use crate::datagen::{DataGeneratorSource, GeneratorFunction};
use std::sync::Arc;

/// Checks `config` and returns what makes one source reader per subtask (for `add_source`).
pub fn nexmark_source(
    config: GeneratorConfig,
) -> Result<impl Fn() -> DataGeneratorSource<Event> + Send + Sync + 'static, InvalidGeneratorConfig>
{
    config.validate()?;
    let count = config.events;
    let generate: GeneratorFunction<Event> = Arc::new(move |n| config.event(n));
    Ok(move || DataGeneratorSource::new(count, generate.clone()))
}
