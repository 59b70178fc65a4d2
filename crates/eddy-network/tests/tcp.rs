//! Two network environments in one process, talking over loopback TCP: order, credit bounds,
//! and failure when a connection breaks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy_network::spanning::{length_prefix, RecordReassembler};
use eddy_network::{ChannelId, InboundHandler, NetworkBufferPool, NetworkEnvironment};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Collect {
    reassembler: Mutex<RecordReassembler>,
    records: Mutex<Vec<u64>>,
    /// Buffers delivered and not yet "consumed" (credits not returned).
    held: Mutex<usize>,
    events: Mutex<Vec<Vec<u8>>>,
    failure: Mutex<Option<String>>,
}

impl InboundHandler for Collect {
    fn on_buffer(&self, data: &[u8]) -> bool {
        let mut got = Vec::new();
        self.reassembler
            .lock()
            .feed(data, |b| {
                got.push(u64::from_le_bytes(b.try_into().expect("8 bytes")));
                Ok(())
            })
            .unwrap();
        self.records.lock().extend(got);
        *self.held.lock() += 1;
        true
    }
    fn on_event(&self, data: &[u8]) {
        self.events.lock().push(data.to_vec());
    }
    fn on_failure(&self, reason: &str) {
        *self.failure.lock() = Some(reason.to_string());
    }
}

fn env(buffers: usize, segment: usize) -> NetworkEnvironment {
    NetworkEnvironment::start("127.0.0.1:0", NetworkBufferPool::new(buffers, segment)).unwrap()
}

fn id(consumer: u32) -> ChannelId {
    ChannelId {
        job: 7,
        attempt: 1,
        edge: 0,
        producer: 0,
        consumer,
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sends `n` u64 records, 12 bytes each framed, into segments of the producer's pool.
fn produce(
    env: &NetworkEnvironment,
    id: ChannelId,
    n: u64,
) -> Result<(), eddy_network::NetworkError> {
    let out = env.output_channel(id);
    let mut seg = None;
    for i in 0..n {
        let mut rec = length_prefix(8).to_vec();
        rec.extend_from_slice(&i.to_le_bytes());
        let mut rest = &rec[..];
        while !rest.is_empty() {
            if seg.is_none() {
                out.reserve_credit()?;
                seg = env.pool().request(&|| false);
            }
            let s = seg.as_mut().unwrap();
            let k = s.put(rest);
            rest = &rest[k..];
            if s.remaining() == 0 {
                out.send_buffer(seg.take().unwrap())?;
            }
        }
    }
    if let Some(s) = seg.take() {
        out.send_buffer(s)?;
    }
    out.send_event(b"end".to_vec())
}

#[test]
fn records_arrive_in_order_across_segments_with_credit() {
    let (a, b) = (env(4, 100), env(4, 100));
    let handler = Arc::new(Collect::default());
    let credits = b
        .request_partition(id(0), &a.address().to_string(), 2, handler.clone())
        .unwrap();
    let a = Arc::new(a);
    let a2 = a.clone();
    let producer = std::thread::spawn(move || produce(&a2, id(0), 10_000));
    // The consumer takes buffers slowly; the producer may never run ahead by more than the
    // credit.
    while handler.events.lock().is_empty() {
        let held = std::mem::take(&mut *handler.held.lock());
        assert!(held <= 2, "{held} buffers in flight with 2 credits");
        if held > 0 {
            credits.add_credit(held as u32);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    producer.join().unwrap().unwrap();
    assert_eq!(*handler.records.lock(), (0..10_000).collect::<Vec<u64>>());
    assert_eq!(handler.events.lock()[0], b"end");
    // One connection carries the channel; all segments are back in the pool.
    assert_eq!(a.connection_count(), 1);
    wait_until("segments recycled", || a.pool().available() == 4);
}

#[test]
fn a_producer_without_credit_blocks_and_cancel_releases_it() {
    let (a, b) = (Arc::new(env(4, 64)), env(4, 64));
    let handler = Arc::new(Collect::default());
    let _credits = b
        .request_partition(id(1), &a.address().to_string(), 1, handler.clone())
        .unwrap();
    let a2 = a.clone();
    let producer = std::thread::spawn(move || produce(&a2, id(1), 1_000));
    wait_until("first buffer", || *handler.held.lock() == 1);
    std::thread::sleep(Duration::from_millis(100));
    // Still one buffer: no credit came back.
    assert_eq!(*handler.held.lock(), 1);
    assert_eq!(a.output_channel(id(1)).credit(), 0);
    a.release(7, 1);
    let err = producer.join().unwrap().unwrap_err();
    assert!(
        matches!(err, eddy_network::NetworkError::Cancelled),
        "{err}"
    );
}

#[test]
fn a_broken_connection_fails_both_sides() {
    let (a, b) = (Arc::new(env(4, 64)), env(4, 64));
    let handler = Arc::new(Collect::default());
    let _credits = b
        .request_partition(id(2), &a.address().to_string(), 1, handler.clone())
        .unwrap();
    let a2 = a.clone();
    let producer = std::thread::spawn(move || produce(&a2, id(2), 1_000));
    wait_until("first buffer", || *handler.held.lock() == 1);
    // The consumer's taskmanager goes away.
    b.shutdown();
    let err = producer.join().unwrap().unwrap_err();
    assert!(err.to_string().contains("lost"), "{err}");
    assert!(handler.failure.lock().is_some());
}

#[test]
fn connecting_to_a_dead_address_is_a_clear_error() {
    let a = env(2, 64);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let err = match a.request_partition(id(3), &dead, 1, Arc::new(Collect::default())) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("connected to a closed port"),
    };
    assert!(err.contains(&dead), "{err}");
}

/// Whether the data port closed `s` (end of stream or reset) within `within`.
fn closed_by_peer(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            // The port's own Hello comes first.
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

#[test]
fn hostile_bytes_close_the_connection_and_the_port_keeps_working() {
    use std::io::Write;
    use std::net::TcpStream;
    let limits = eddy_network::NetworkLimits {
        max_connections: 3,
        handshake_timeout: Duration::from_millis(300),
    };
    let a = Arc::new(
        NetworkEnvironment::start_with_limits(
            "127.0.0.1:0",
            NetworkBufferPool::new(4, 32 * 1024),
            limits,
        )
        .unwrap(),
    );
    let addr = a.address();
    // A length of 100 MiB: refused at once, not allocated and waited for.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&(100u32 << 20).to_le_bytes()).unwrap();
    s.write_all(&[1]).unwrap();
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(3)),
        "huge length"
    );
    // A well-formed frame that is not a Hello, and random bytes.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[5, 0, 0, 0, 99, 1, 2, 3, 4]).unwrap();
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(3)),
        "not a hello"
    );
    let mut s = TcpStream::connect(addr).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let junk: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let _ = s.write_all(&junk);
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(3)),
        "random bytes"
    );
    // Silence: closed after the handshake timeout.
    let mut s = TcpStream::connect(addr).unwrap();
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(3)),
        "silent peer"
    );
    // Trickling a Hello a byte at a time: the deadline is for the whole Hello, not per read.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&1000u32.to_le_bytes()).unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(3) {
        if s.write_all(&[1]).is_err() || closed_by_peer(&mut s, Duration::from_millis(100)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "trickling peer kept its slot");
    // Connections beyond the limit are refused while the first three are open.
    wait_until("closed connections released", || a.connection_count() == 0);
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).unwrap());
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut extra = TcpStream::connect(addr).unwrap();
    assert!(
        closed_by_peer(&mut extra, Duration::from_millis(200)),
        "over the limit"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(400));
    // A real peer still gets its data through.
    let b = env(4, 32 * 1024);
    let handler = Arc::new(Collect::default());
    let credits = b
        .request_partition(id(3), &addr.to_string(), 4, handler.clone())
        .unwrap();
    let a2 = a.clone();
    let producer = std::thread::spawn(move || produce(&a2, id(3), 1_000));
    while handler.events.lock().is_empty() {
        let held = std::mem::take(&mut *handler.held.lock());
        if held > 0 {
            credits.add_credit(held as u32);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    producer.join().unwrap().unwrap();
    assert_eq!(*handler.records.lock(), (0..1_000).collect::<Vec<u64>>());
}

#[test]
fn peers_with_larger_segments_than_ours_are_understood() {
    // The producer's 256 KiB segments reach a consumer whose own are 4 KiB: the limit is the
    // segment size the producer announced in its Hello.
    let a = Arc::new(env(4, 256 * 1024));
    let b = env(4, 4 * 1024);
    let handler = Arc::new(Collect::default());
    let credits = b
        .request_partition(id(4), &a.address().to_string(), 4, handler.clone())
        .unwrap();
    let a2 = a.clone();
    let producer = std::thread::spawn(move || produce(&a2, id(4), 100_000));
    while handler.events.lock().is_empty() {
        assert!(
            handler.failure.lock().is_none(),
            "{:?}",
            handler.failure.lock()
        );
        let held = std::mem::take(&mut *handler.held.lock());
        if held > 0 {
            credits.add_credit(held as u32);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    producer.join().unwrap().unwrap();
    assert_eq!(*handler.records.lock(), (0..100_000).collect::<Vec<u64>>());
}
