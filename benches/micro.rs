//! Criterion micro-benchmarks of the engine's per-record costs (issue #6):
//!
//! ```text
//! cargo bench --bench micro [-- FILTER]
//! ```
//! - `chain/map_filter`: a source chained to a map and a filter into a discarding sink —
//!   the per-record cost of a task's chain.
//! - `channel/rebalance`: the same records crossing an in-memory channel between two tasks
//!   (buffers, credit, batching).
//! - `network/tcp_channel`: records through one remote channel over loopback TCP: serialized
//!   into 32 KiB pooled buffers, credit-based flow control (4 credits), decoded into the
//!   consumer's input gate — the network stack's per-channel throughput.
//! - `serialization/bid`: postcard encoding and decoding of Nexmark bids, the record format of
//!   checkpoints and of the coming network stack.
//! - `keyed_state/value`: `ValueState` read + update over 10,000 keys on the heap backend.
//! - `window/tumbling_count`: a keyed tumbling event-time window count, end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eddy::connectors::nexmark::{Bid, Event, GeneratorConfig};
use eddy::core::keygroup::KeyGroupRange;
use eddy::prelude::*;
use eddy::state::KeyedStateBackend;
use std::time::Duration;

const RECORDS: i64 = 1_000_000;

fn env(p: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(p);
    env
}

fn chain(c: &mut Criterion) {
    let mut g = c.benchmark_group("chain");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(10);
    g.bench_function("map_filter", |b| {
        b.iter(|| {
            let env = env(1);
            env.from_sequence(0, RECORDS - 1)
                .map(|v: i64| v.wrapping_mul(31))
                .filter(|v: &i64| v & 1 == 0)
                .sink_to_discard();
            env.execute("chain").expect("job")
        })
    });
    g.finish();
}

fn channel(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(10);
    g.bench_function("rebalance", |b| {
        b.iter(|| {
            let env = env(1);
            env.from_sequence(0, RECORDS - 1)
                .rebalance()
                .map(|v: i64| v + 1)
                .sink_to_discard();
            env.execute("channel").expect("job")
        })
    });
    g.finish();
}

fn network(c: &mut Criterion) {
    use eddy::core::StreamRecord;
    use eddy::network::{ChannelId, NetworkBufferPool, NetworkEnvironment};
    use eddy::runtime::channel::{ChannelElement, ChannelWriter, InputGate};
    use eddy::runtime::remote::codec;
    use eddy::runtime::waker::TaskWaker;
    use std::sync::Arc;
    const N: u64 = 2_000_000;
    const BATCH: usize = 1024;
    let producer = Arc::new(
        NetworkEnvironment::start("127.0.0.1:0", NetworkBufferPool::new(64, 32 * 1024))
            .expect("data port"),
    );
    let consumer = NetworkEnvironment::start("127.0.0.1:0", NetworkBufferPool::new(64, 32 * 1024))
        .expect("data port");
    let mut g = c.benchmark_group("network");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    let mut attempt = 0u64;
    g.bench_function("tcp_channel", |b| {
        b.iter(|| {
            attempt += 1;
            let id = ChannelId {
                job: 1,
                attempt,
                edge: 0,
                producer: 0,
                consumer: 0,
            };
            let waker = TaskWaker::new();
            let (mut gate, mut writers) = InputGate::<(u64, u64)>::new(1, 4, waker.clone());
            let c = codec::<(u64, u64)>();
            (c.connect_inbound)(
                Box::new(writers.remove(0)),
                &consumer,
                id,
                &producer.address().to_string(),
                4,
            )
            .expect("partition request");
            let mut w = *(c.writer)(producer.output_channel(id), producer.pool().clone())
                .downcast::<ChannelWriter<(u64, u64)>>()
                .expect("writer type");
            let t = std::thread::spawn(move || {
                let mut i = 0u64;
                while i < N {
                    let batch: Vec<StreamRecord<(u64, u64)>> = (i..(i + BATCH as u64).min(N))
                        .map(|v| StreamRecord::new((v, v * 3)))
                        .collect();
                    i += batch.len() as u64;
                    w.send(ChannelElement::Buffer(batch)).expect("send");
                }
                w.send(ChannelElement::EndOfPartition).expect("end");
            });
            let mut got = 0u64;
            loop {
                match gate.poll(None) {
                    Some((_, ChannelElement::Buffer(b))) => got += b.len() as u64,
                    Some((_, ChannelElement::EndOfPartition)) => break,
                    Some((_, ChannelElement::Failure(e))) => panic!("{e}"),
                    Some(_) => {}
                    None => waker.wait(Some(std::time::Instant::now() + Duration::from_millis(10))),
                }
            }
            t.join().expect("producer");
            assert_eq!(got, N);
            consumer.release(1, attempt);
            producer.release(1, attempt);
        })
    });
    g.finish();
}

fn bids(n: u64) -> Vec<Bid> {
    let config = GeneratorConfig::default();
    (0..n)
        .filter_map(|i| match config.event(i) {
            Event::Bid(b) => Some(b),
            _ => None,
        })
        .take(1000)
        .collect()
}

fn serialization(c: &mut Criterion) {
    let bids = bids(2000);
    let mut g = c.benchmark_group("serialization");
    g.throughput(Throughput::Elements(bids.len() as u64));
    g.bench_function("bid_encode", |b| {
        let mut buf = Vec::with_capacity(256 * 1024);
        b.iter(|| {
            buf.clear();
            for bid in &bids {
                buf = postcard::to_extend(bid, std::mem::take(&mut buf)).expect("encode");
            }
            buf.len()
        })
    });
    let mut encoded = Vec::new();
    for bid in &bids {
        encoded.push(postcard::to_stdvec(bid).expect("encode"));
    }
    g.bench_function("bid_decode", |b| {
        b.iter(|| {
            encoded
                .iter()
                .map(|e| postcard::from_bytes::<Bid>(e).expect("decode").price)
                .sum::<i64>()
        })
    });
    g.finish();
}

fn keyed_state(c: &mut Criterion) {
    const KEYS: u64 = 10_000;
    let mut g = c.benchmark_group("keyed_state");
    g.throughput(Throughput::Elements(KEYS));
    g.bench_function("value_read_update", |b| {
        b.iter_batched_ref(
            || {
                let mut backend = KeyedStateBackend::<u64>::new(KeyGroupRange::new(0, 127), 128);
                let state = backend
                    .get_state(&ValueStateDescriptor::<u64>::new("count"))
                    .expect("state");
                (backend, state)
            },
            |(backend, state)| {
                for k in 0..KEYS {
                    backend.set_current_key(k);
                    let v = state.value(backend).expect("read").unwrap_or(0);
                    state.update(backend, v + 1).expect("update");
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

#[derive(Clone)]
struct Count;
impl AggregateFunction<(u64, i64), u64, u64> for Count {
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, _v: (u64, i64), acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

fn window(c: &mut Criterion) {
    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(10);
    g.bench_function("tumbling_count", |b| {
        b.iter(|| {
            let env = env(1);
            env.from_sequence(0, RECORDS - 1)
                .map(|i: i64| (i as u64 % 1000, i / 10))
                .assign_timestamps_and_watermarks(
                    WatermarkStrategy::for_monotonous_timestamps()
                        .with_timestamp_assigner(|r: &(u64, i64), _| r.1),
                )
                .key_by(|r: &(u64, i64)| r.0)
                .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
                .aggregate(Count)
                .sink_to_discard();
            env.execute("window").expect("job")
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    chain,
    channel,
    network,
    serialization,
    keyed_state,
    window
);
criterion_main!(benches);
