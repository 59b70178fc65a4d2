//! The Nexmark benchmark on Eddy (issue #6): the queries written with the DataStream API
//! ([`queries`]), single-threaded reference implementations ([`reference`]), output
//! checksums ([`checksum`]) and the job wiring the `nexmark` binary and the tests share. The
//! generator and its source live in `eddy_connectors::nexmark`.
#![warn(missing_docs)]

pub mod checksum;
pub mod cli;
pub mod queries;
pub mod reference;
pub mod wordcount;

use checksum::{checksum_sink, Checksum, SharedChecksum};
use eddy::connectors::nexmark::{nexmark_source, Event, GeneratorConfig, InvalidGeneratorConfig};
use eddy::prelude::*;
use std::fmt::Debug;
use std::hash::Hash;

/// The queries Eddy runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Query {
    /// Pass-through.
    Q0,
    /// Currency conversion.
    Q1,
    /// Selection.
    Q2,
    /// Local item suggestion (incremental join).
    Q3,
    /// Average price per category.
    Q4,
    /// Hot items (sliding window).
    Q5,
    /// Highest bid (tumbling window).
    Q7,
    /// Monitor new users (window join).
    Q8,
    /// User sessions (session window).
    Q11,
}

impl Query {
    /// Every query, in order.
    pub const ALL: [Query; 9] = [
        Query::Q0,
        Query::Q1,
        Query::Q2,
        Query::Q3,
        Query::Q4,
        Query::Q5,
        Query::Q7,
        Query::Q8,
        Query::Q11,
    ];

    /// `q0`, `q1`, ….
    pub fn name(self) -> &'static str {
        match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q3 => "q3",
            Query::Q4 => "q4",
            Query::Q5 => "q5",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
            Query::Q11 => "q11",
        }
    }
}

/// A name that is not one of the Nexmark queries Eddy runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownQuery(pub String);

impl std::fmt::Display for UnknownQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown query '{}' (known: {})",
            self.0,
            Query::ALL.map(|q| q.name()).join(", ")
        )
    }
}

impl std::error::Error for UnknownQuery {}

impl std::str::FromStr for Query {
    type Err = UnknownQuery;
    fn from_str(s: &str) -> Result<Self, UnknownQuery> {
        Query::ALL
            .into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownQuery(s.to_string()))
    }
}

/// Where a query's rows go.
pub enum Sink {
    /// Into a checksum (the benchmark).
    Checksum(SharedChecksum),
    /// Collected as `Debug` strings (tests); q4's rows are its changelog.
    Collect,
    /// A checksum printed by each process as its sink subtasks finish (runs on a cluster,
    /// where no single process sees all output): `LABEL: output checksum …`.
    Report(String),
}

fn finish<T: Data + Hash + Debug>(
    stream: DataStream<T>,
    sink: &Sink,
    upsert: Option<fn(&T) -> i64>,
) -> Option<CollectHandle<String>> {
    match sink {
        Sink::Checksum(c) => {
            checksum_sink(&stream, c, upsert, None);
            None
        }
        Sink::Report(label) => {
            checksum_sink(
                &stream,
                &SharedChecksum::default(),
                upsert,
                Some(label.clone()),
            );
            None
        }
        Sink::Collect => Some(stream.map(|r: T| format!("{r:?}")).collect()),
    }
}

/// Adds the generated events (a source of `config` at the environment's parallelism, with
/// watermarks) and `query` reading them to `env`; a generator setting that cannot work is an
/// error here, before anything runs.
pub fn add_query(
    env: &StreamExecutionEnvironment,
    query: Query,
    config: &GeneratorConfig,
    sink: &Sink,
) -> Result<Option<CollectHandle<String>>, InvalidGeneratorConfig> {
    let source: DataStream<Event> = env
        .add_source("Nexmark", nexmark_source(config.clone())?)
        .uid("nexmark-source")
        .into();
    let events = queries::with_watermarks(&source);
    Ok(match query {
        Query::Q0 => finish(queries::q0(&events), sink, None),
        Query::Q1 => finish(queries::q1(&events), sink, None),
        Query::Q2 => finish(queries::q2(&events), sink, None),
        Query::Q3 => finish(queries::q3(&events), sink, None),
        Query::Q4 => finish(queries::q4(&events), sink, Some(|r: &(i64, i64)| r.0)),
        Query::Q5 => finish(queries::q5(&events), sink, None),
        Query::Q7 => finish(queries::q7(&events), sink, None),
        Query::Q8 => finish(queries::q8(&events), sink, None),
        Query::Q11 => finish(queries::q11(&events), sink, None),
    })
}

/// A reference row, seen through what the callers need of it: its text and its hash.
pub trait ReferenceRow: Debug {
    /// `stable_hash` of the row, as the checksum sink computes it.
    fn row_hash(&self) -> u64;
}

impl<T: Hash + Debug> ReferenceRow for T {
    fn row_hash(&self) -> u64 {
        eddy::core::keygroup::stable_hash(self)
    }
}

/// Runs the reference implementation of `query` over the events of `config`, handing every
/// row to `emit` (q4: the final row per category).
pub fn for_each_reference_row(
    query: Query,
    config: &GeneratorConfig,
    emit: &mut dyn FnMut(&dyn ReferenceRow),
) {
    let events = reference::Events(config);
    macro_rules! run {
        ($($q:ident => $f:ident),*) => {
            match query {
                $(Query::$q => reference::$f(&events, &mut |r| emit(&r)),)*
            }
        };
    }
    run!(Q0 => q0, Q1 => q1, Q2 => q2, Q3 => q3, Q4 => q4, Q5 => q5, Q7 => q7, Q8 => q8, Q11 => q11);
}

/// The reference result of `query` over the events of `config` as `Debug` strings.
pub fn reference_rows(query: Query, config: &GeneratorConfig) -> Vec<String> {
    let mut rows = Vec::new();
    for_each_reference_row(query, config, &mut |r| rows.push(format!("{r:?}")));
    rows
}

/// The checksum the engine's output of `query` over the events of `config` must have.
pub fn reference_checksum(query: Query, config: &GeneratorConfig) -> Checksum {
    let mut sum = Checksum::default();
    for_each_reference_row(query, config, &mut |r| sum.add_hash(r.row_hash()));
    sum
}
