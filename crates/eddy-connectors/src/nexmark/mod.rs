//! The Nexmark benchmark's data: a deterministic, splittable generator of people, auctions
//! and bids ([`generator`], following Flink's Nexmark generator) and a parallel source of its
//! events ([`source`], a `DataGeneratorSource`).

pub mod generator;
pub mod model;
pub mod random;
pub mod source;

pub use generator::{kind_of, EventKind, GeneratorConfig, InvalidGeneratorConfig};
pub use model::{Auction, Bid, Event, Person, Text};
pub use source::nexmark_source;
