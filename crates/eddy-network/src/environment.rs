//! A taskmanager's data plane: its data port, its connections to other taskmanagers, the
//! output channels of its producers and the inbound channels of its consumers.
//!
//! Connections are opened by consumers (Flink's partition requests): a consumer subtask whose
//! producer runs elsewhere sends a `PartitionRequest` with its initial credit over the
//! connection to the producer's taskmanager, opening that connection if there is none yet in
//! either direction. Both sides register the connection under the peer's data address, so one
//! TCP connection carries the channels of both directions between two taskmanagers (two only if
//! both opened one at the same moment; each channel stays on the connection it was requested
//! on, so that is harmless).
//!
//! A producer's [`OutputChannel`] learns its connection and credit from the request, which may
//! arrive before or after the producer task created it. A broken connection fails every
//! channel on it, on both sides: producers get an error from their next send, consumers a
//! failure through their [`InboundHandler`]. Nothing hangs.

use crate::frame::{self, ADD_CREDIT, BUFFER, EVENT, HELLO, PARTITION_REQUEST};
use crate::pool::{NetworkBufferPool, Segment};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// One channel of a network edge of one job attempt: producer subtask to consumer subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId {
    /// The job (its 128-bit id).
    pub job: u128,
    /// The deployment attempt: channels of a restarted job never mix with the old ones.
    pub attempt: u64,
    /// The JobGraph's stream edge index.
    pub edge: u32,
    /// Producer subtask.
    pub producer: u32,
    /// Consumer subtask.
    pub consumer: u32,
}

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "edge {} {}->{} (job {:032x}, attempt {})",
            self.edge, self.producer, self.consumer, self.job, self.attempt
        )
    }
}

/// Why the network could not move data.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The channel was cancelled (its job attempt is being cancelled).
    #[error("channel cancelled")]
    Cancelled,
    /// The connection that carried the channel broke (the peer died or the network failed).
    #[error("connection to taskmanager at {peer} lost: {reason}")]
    ConnectionLost {
        /// The peer's data address.
        peer: String,
        /// What happened.
        reason: String,
    },
    /// The producer's taskmanager could not be reached.
    #[error("cannot connect to taskmanager at {address}: {source}")]
    Connect {
        /// The address tried.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// An event is larger than any receiver accepts (a bug: events are barriers, watermarks and
    /// end-of-partition markers).
    #[error("event of {size} bytes exceeds the {max} bytes every data connection accepts")]
    EventTooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
}

/// The consumer side of a remote channel: what the connection does with what arrives.
pub trait InboundHandler: Send + Sync {
    /// A buffer arrived. Returns whether it now occupies a slot of the consumer's input gate:
    /// then its credit comes back through the [`CreditReturner`] when the consumer takes it;
    /// otherwise (it completed no record) the credit goes back at once.
    fn on_buffer(&self, data: &[u8]) -> bool;
    /// An event arrived (watermark, barrier, end of partition, …).
    fn on_event(&self, data: &[u8]);
    /// The channel failed: the connection broke. Nothing more arrives.
    fn on_failure(&self, reason: &str);
}

/// Returns credits of one inbound channel to its producer.
#[derive(Clone)]
pub struct CreditReturner {
    id: ChannelId,
    conn: Arc<Connection>,
}

impl CreditReturner {
    /// Grants the producer `n` more buffers (errors are the connection's: it fails the channel
    /// through its handler anyway).
    pub fn add_credit(&self, n: u32) {
        self.conn
            .send_control(frame::head(ADD_CREDIT, Some(&self.id), &n.to_le_bytes(), 0));
    }
}

enum Body {
    None,
    Segment(Segment),
    Bytes(Vec<u8>),
}

struct OutFrame {
    head: Vec<u8>,
    body: Body,
}

/// One TCP connection to another taskmanager, shared by all channels between the two.
pub(crate) struct Connection {
    id: u64,
    peer: Mutex<String>,
    tx: Mutex<Option<mpsc::Sender<OutFrame>>>,
    stream: TcpStream,
    broken: Mutex<Option<String>>,
}

impl Connection {
    fn peer(&self) -> String {
        self.peer.lock().clone()
    }

    fn broken(&self) -> Option<String> {
        self.broken.lock().clone()
    }

    fn send(&self, f: OutFrame) -> Result<(), NetworkError> {
        let lost = |reason: String| NetworkError::ConnectionLost {
            peer: self.peer(),
            reason,
        };
        if let Some(r) = self.broken() {
            return Err(lost(r));
        }
        match &*self.tx.lock() {
            Some(tx) => tx
                .send(f)
                .map_err(|_| lost("the connection's writer stopped".into())),
            None => Err(lost("closed".into())),
        }
    }

    fn send_control(&self, head: Vec<u8>) {
        let _ = self.send(OutFrame {
            head,
            body: Body::None,
        });
    }
}

struct OutState {
    conn: Option<Arc<Connection>>,
    credit: u32,
    failed: Option<NetworkError>,
    cancelled: bool,
}

/// The producer side of a remote channel. The producer reserves a credit, fills a segment,
/// and ships it; events go without credit but after everything sent before them.
pub struct OutputChannel {
    id: ChannelId,
    state: Mutex<OutState>,
    changed: Condvar,
}

impl std::fmt::Debug for OutputChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutputChannel({})", self.id)
    }
}

fn copy_error(e: &NetworkError) -> NetworkError {
    match e {
        NetworkError::Cancelled => NetworkError::Cancelled,
        NetworkError::ConnectionLost { peer, reason } => NetworkError::ConnectionLost {
            peer: peer.clone(),
            reason: reason.clone(),
        },
        NetworkError::Connect { address, source } => NetworkError::Connect {
            address: address.clone(),
            source: io::Error::new(source.kind(), source.to_string()),
        },
        NetworkError::EventTooLarge { size, max } => NetworkError::EventTooLarge {
            size: *size,
            max: *max,
        },
    }
}

impl OutputChannel {
    fn new(id: ChannelId) -> Self {
        OutputChannel {
            id,
            state: Mutex::new(OutState {
                conn: None,
                credit: 0,
                failed: None,
                cancelled: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// The channel.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Whether the channel was cancelled or failed: sends fail from now on.
    pub fn is_closed(&self) -> bool {
        let st = self.state.lock();
        st.cancelled || st.failed.is_some()
    }

    /// Credits granted and not yet used.
    pub fn credit(&self) -> u32 {
        self.state.lock().credit
    }

    /// Waits until the consumer has requested the channel and (with `need_credit`) granted a
    /// credit, which is then taken. Returns the connection and how long it waited.
    fn acquire(&self, need_credit: bool) -> Result<(Arc<Connection>, Duration), NetworkError> {
        let mut st = self.state.lock();
        let started = Instant::now();
        loop {
            if let Some(e) = &st.failed {
                return Err(copy_error(e));
            }
            if st.cancelled {
                return Err(NetworkError::Cancelled);
            }
            if let Some(c) = st.conn.clone() {
                if !need_credit || st.credit > 0 {
                    if need_credit {
                        st.credit -= 1;
                    }
                    return Ok((c, started.elapsed()));
                }
            }
            // Bounded: a lost wake-up costs at most this long.
            self.changed.wait_for(&mut st, Duration::from_millis(100));
        }
    }

    /// Blocks until a credit is available and takes it; returns how long it waited
    /// (back-pressured time). Follow with [`OutputChannel::send_buffer`].
    pub fn reserve_credit(&self) -> Result<Duration, NetworkError> {
        let (_, waited) = self.acquire(true)?;
        Ok(waited)
    }

    /// Ships a filled segment against the credit taken by [`OutputChannel::reserve_credit`].
    pub fn send_buffer(&self, seg: Segment) -> Result<(), NetworkError> {
        let conn = self.connection()?;
        conn.send(OutFrame {
            head: frame::head(BUFFER, Some(&self.id), &[], seg.len()),
            body: Body::Segment(seg),
        })
    }

    /// Sends an event (needs no credit), after everything sent before it.
    pub fn send_event(&self, bytes: Vec<u8>) -> Result<(), NetworkError> {
        if bytes.len() > frame::MAX_EVENT {
            return Err(NetworkError::EventTooLarge {
                size: bytes.len(),
                max: frame::MAX_EVENT,
            });
        }
        let (conn, _) = self.acquire(false)?;
        conn.send(OutFrame {
            head: frame::head(EVENT, Some(&self.id), &[], bytes.len()),
            body: Body::Bytes(bytes),
        })
    }

    fn connection(&self) -> Result<Arc<Connection>, NetworkError> {
        let st = self.state.lock();
        if let Some(e) = &st.failed {
            return Err(copy_error(e));
        }
        st.conn.clone().ok_or(NetworkError::Cancelled)
    }

    /// Releases a producer blocked on this channel; later sends fail with `Cancelled`.
    pub fn cancel(&self) {
        self.state.lock().cancelled = true;
        self.changed.notify_all();
    }

    fn bind(&self, conn: Arc<Connection>, credit: u32) {
        let mut st = self.state.lock();
        st.conn = Some(conn);
        st.credit += credit;
        drop(st);
        self.changed.notify_all();
    }

    fn add_credit(&self, n: u32) {
        self.state.lock().credit += n;
        self.changed.notify_all();
    }

    fn fail(&self, e: NetworkError) {
        self.state.lock().failed.get_or_insert(e);
        self.changed.notify_all();
    }

    fn bound_to(&self, conn_id: u64) -> bool {
        self.state
            .lock()
            .conn
            .as_ref()
            .is_some_and(|c| c.id == conn_id)
    }
}

struct InboundEntry {
    handler: Arc<dyn InboundHandler>,
    conn: Arc<Connection>,
}

struct Shared {
    local_address: String,
    /// Per job, the newest attempt released: requests for its channels that arrive late are
    /// ignored instead of creating channels nobody will use.
    released: Mutex<HashMap<u128, u64>>,
    outputs: Mutex<HashMap<ChannelId, Arc<OutputChannel>>>,
    inbound: Mutex<HashMap<ChannelId, InboundEntry>>,
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    next_conn: AtomicU64,
    shutdown: AtomicBool,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    /// Connections with running reader threads, including those still before their `Hello`.
    live: AtomicUsize,
    limits: NetworkLimits,
    segment_size: usize,
}

/// Bounds on what peers can make a data port hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkLimits {
    /// Open connections (inbound and outbound) beyond which new inbound ones are refused
    /// (`taskmanager.network.max-connections`). A taskmanager needs about two per peer.
    pub max_connections: usize,
    /// How long a new connection may take to send its `Hello`.
    pub handshake_timeout: Duration,
}

impl Default for NetworkLimits {
    fn default() -> Self {
        NetworkLimits {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A taskmanager's network stack: data port, connections, channels and buffer pool.
pub struct NetworkEnvironment {
    shared: Arc<Shared>,
    pool: Arc<NetworkBufferPool>,
    address: SocketAddr,
}

impl std::fmt::Debug for NetworkEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkEnvironment")
            .field("address", &self.address)
            .field("pool", &self.pool)
            .finish()
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl NetworkEnvironment {
    /// Binds the data port (`host:0` picks a free port) and starts accepting connections, with
    /// the default [`NetworkLimits`].
    pub fn start(bind: &str, pool: Arc<NetworkBufferPool>) -> io::Result<Self> {
        Self::start_with_limits(bind, pool, NetworkLimits::default())
    }

    /// [`NetworkEnvironment::start`] with explicit limits.
    pub fn start_with_limits(
        bind: &str,
        pool: Arc<NetworkBufferPool>,
        limits: NetworkLimits,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(bind)?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            local_address: address.to_string(),
            released: Default::default(),
            outputs: Default::default(),
            inbound: Default::default(),
            connections: Default::default(),
            next_conn: AtomicU64::new(1),
            shutdown: AtomicBool::new(false),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            limits,
            segment_size: pool.segment_size(),
        });
        let s2 = shared.clone();
        std::thread::Builder::new()
            .name("network-acceptor".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if s2.shutdown.load(Ordering::Acquire) {
                        return;
                    }
                    match stream {
                        Ok(s) if s2.live.load(Ordering::Acquire) >= s2.limits.max_connections => {
                            let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                            tracing::warn!(
                                "refusing a data connection from {peer}: {} connections are open \
                                 (taskmanager.network.max-connections)",
                                s2.limits.max_connections
                            );
                            let _ = s.shutdown(Shutdown::Both);
                        }
                        Ok(s) => {
                            if let Err(e) = open_connection(&s2, s, None) {
                                tracing::warn!("accepting a data connection failed: {e}");
                            }
                        }
                        Err(e) => tracing::warn!("accept on the data port failed: {e}"),
                    }
                }
            })?;
        Ok(NetworkEnvironment {
            shared,
            pool,
            address,
        })
    }

    /// The data port's address, as other taskmanagers reach it.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The buffer pool producers serialize into.
    pub fn pool(&self) -> &Arc<NetworkBufferPool> {
        &self.pool
    }

    /// Bytes received and sent over all connections so far.
    pub fn bytes_transferred(&self) -> (u64, u64) {
        (
            self.shared.bytes_received.load(Ordering::Relaxed),
            self.shared.bytes_sent.load(Ordering::Relaxed),
        )
    }

    /// Open connections, including inbound ones that have not said `Hello` yet (what
    /// `taskmanager.network.max-connections` bounds).
    pub fn connection_count(&self) -> usize {
        self.shared.live.load(Ordering::Acquire)
    }

    /// The producer side of channel `id` (created on first use by either the producer or the
    /// consumer's request).
    pub fn output_channel(&self, id: ChannelId) -> Arc<OutputChannel> {
        output_entry(&self.shared, id)
    }

    /// Requests channel `id` from the producer's taskmanager at `producer_address`, granting
    /// `initial_credit` buffers; what arrives goes to `handler`.
    pub fn request_partition(
        &self,
        id: ChannelId,
        producer_address: &str,
        initial_credit: u32,
        handler: Arc<dyn InboundHandler>,
    ) -> Result<CreditReturner, NetworkError> {
        let conn = self.connection_to(producer_address)?;
        self.shared.inbound.lock().insert(
            id,
            InboundEntry {
                handler,
                conn: conn.clone(),
            },
        );
        conn.send(OutFrame {
            head: frame::head(
                PARTITION_REQUEST,
                Some(&id),
                &initial_credit.to_le_bytes(),
                0,
            ),
            body: Body::None,
        })?;
        Ok(CreditReturner { id, conn })
    }

    fn connection_to(&self, address: &str) -> Result<Arc<Connection>, NetworkError> {
        if let Some(c) = self.shared.connections.lock().get(address) {
            if c.broken().is_none() {
                return Ok(c.clone());
            }
        }
        let connect_err = |source: io::Error| NetworkError::Connect {
            address: address.to_string(),
            source,
        };
        let addr = address
            .to_socket_addrs()
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| connect_err(io::Error::other("address resolves to nothing")))?;
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(connect_err)?;
        open_connection(&self.shared, stream, Some(address.to_string())).map_err(connect_err)
    }

    /// Drops every channel of `job` with an attempt up to `attempt`: producers blocked on them
    /// are released, late data for them is ignored.
    pub fn release(&self, job: u128, attempt: u64) {
        {
            let mut r = self.shared.released.lock();
            let e = r.entry(job).or_insert(0);
            *e = (*e).max(attempt);
        }
        let matches = |id: &ChannelId| id.job == job && id.attempt <= attempt;
        let outs: Vec<Arc<OutputChannel>> = {
            let mut o = self.shared.outputs.lock();
            let ids: Vec<ChannelId> = o.keys().filter(|id| matches(id)).copied().collect();
            ids.iter().filter_map(|id| o.remove(id)).collect()
        };
        for o in outs {
            o.cancel();
        }
        self.shared.inbound.lock().retain(|id, _| !matches(id));
    }

    /// Marks the environment as shutting down without closing anything yet: connections that
    /// break from now on are not reported as lost (several taskmanagers of one process stop
    /// together, each closing its side).
    pub fn begin_shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
        let conns: Vec<Arc<Connection>> =
            self.shared.connections.lock().values().cloned().collect();
        for c in conns {
            break_connection(&self.shared, &c, "the taskmanager shut down".into());
        }
    }
}

fn output_entry(shared: &Shared, id: ChannelId) -> Arc<OutputChannel> {
    shared
        .outputs
        .lock()
        .entry(id)
        .or_insert_with(|| Arc::new(OutputChannel::new(id)))
        .clone()
}

/// Sets up a connection over `stream`: a writer thread, a reader thread, and a `Hello` with our
/// address. `peer` is known when we connected, learnt from the peer's `Hello` otherwise.
fn open_connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: Option<String>,
) -> io::Result<Arc<Connection>> {
    stream.set_nodelay(true)?;
    let (tx, rx) = mpsc::channel::<OutFrame>();
    let conn = Arc::new(Connection {
        id: shared.next_conn.fetch_add(1, Ordering::Relaxed),
        peer: Mutex::new(peer.clone().unwrap_or_else(|| {
            stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        })),
        tx: Mutex::new(Some(tx)),
        stream: stream.try_clone()?,
        broken: Mutex::new(None),
    });
    if let Some(p) = &peer {
        shared
            .connections
            .lock()
            .entry(p.clone())
            .or_insert_with(|| conn.clone());
    }
    let hello = frame::hello_body(&shared.local_address, shared.segment_size);
    conn.send(OutFrame {
        head: frame::head(HELLO, None, &[], hello.len()),
        body: Body::Bytes(hello),
    })
    .map_err(|e| io::Error::other(e.to_string()))?;
    let write_stream = stream.try_clone()?;
    let (s_w, c_w) = (shared.clone(), conn.clone());
    std::thread::Builder::new()
        .name(format!("net-writer-{}", conn.id))
        .spawn(move || writer_loop(&s_w, &c_w, write_stream, rx))?;
    let (s_r, c_r) = (shared.clone(), conn.clone());
    shared.live.fetch_add(1, Ordering::AcqRel);
    let reader = std::thread::Builder::new()
        .name(format!("net-reader-{}", conn.id))
        .spawn(move || {
            let reason = match reader_loop(&s_r, &c_r, stream) {
                Ok(()) => "the peer closed the connection".to_string(),
                Err(e) => e.to_string(),
            };
            break_connection(&s_r, &c_r, reason);
            s_r.live.fetch_sub(1, Ordering::AcqRel);
        });
    if let Err(e) = reader {
        shared.live.fetch_sub(1, Ordering::AcqRel);
        break_connection(shared, &conn, format!("no reader thread: {e}"));
        return Err(e);
    }
    Ok(conn)
}

fn writer_loop(
    shared: &Arc<Shared>,
    conn: &Arc<Connection>,
    stream: TcpStream,
    rx: mpsc::Receiver<OutFrame>,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, stream);
    // The segment goes back to the pool when the frame drops, once its bytes are written.
    let write = |w: &mut BufWriter<TcpStream>, f: OutFrame| -> io::Result<usize> {
        w.write_all(&f.head)?;
        let body = match &f.body {
            Body::None => &[][..],
            Body::Segment(s) => s.bytes(),
            Body::Bytes(b) => &b[..],
        };
        w.write_all(body)?;
        Ok(f.head.len() + body.len())
    };
    while let Ok(f) = rx.recv() {
        let mut res = write(&mut w, f);
        // Write what is queued before flushing: one syscall for many small frames.
        while res.is_ok() {
            match rx.try_recv() {
                Ok(f) => {
                    res = res.and_then(|n| write(&mut w, f).map(|m| n + m));
                }
                Err(_) => break,
            }
        }
        let res = res.and_then(|n| w.flush().map(|()| n));
        match res {
            Ok(n) => {
                shared.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                break_connection(shared, conn, format!("write failed: {e}"));
                return;
            }
        }
    }
}

/// The socket, with a deadline every read must meet while it is set (the handshake's).
struct DeadlineStream {
    stream: TcpStream,
    deadline: Option<Instant>,
}

impl Read for DeadlineStream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "handshake deadline",
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
        }
        self.stream.read(b)
    }
}

fn reader_loop(shared: &Arc<Shared>, conn: &Arc<Connection>, stream: TcpStream) -> io::Result<()> {
    // The whole Hello must arrive within the handshake timeout: a peer that connects and says
    // nothing, or trickles a byte now and then, would hold a connection slot for ever.
    let handshake = shared.limits.handshake_timeout;
    let mut r = BufReader::with_capacity(
        64 * 1024,
        DeadlineStream {
            stream,
            deadline: Some(Instant::now() + handshake),
        },
    );
    let mut buf = Vec::new();
    let mut max = frame::max_frame(0);
    match frame::read_frame(&mut r, &mut buf, max) {
        Ok(true) if buf.first() == Some(&HELLO) => {}
        Ok(true) => {
            return Err(frame::invalid(&format!(
                "the first frame is of kind {}, not a Hello: not an Eddy data connection",
                buf[0]
            )))
        }
        Ok(false) => return Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Err(frame::invalid(&format!(
                "no Hello within {handshake:?} of connecting"
            )))
        }
        Err(e) => return Err(e),
    }
    r.get_mut().deadline = None;
    r.get_ref().stream.set_read_timeout(None)?;
    let mut first = true;
    while first || frame::read_frame(&mut r, &mut buf, max)? {
        first = false;
        shared
            .bytes_received
            .fetch_add(buf.len() as u64 + 4, Ordering::Relaxed);
        let kind = buf[0];
        let body = &buf[1..];
        match kind {
            HELLO => {
                let (peer, segment_size) = frame::parse_hello(body)?;
                // Buffer frames hold one of the peer's segments, whatever ours are.
                max = frame::max_frame(segment_size);
                *conn.peer.lock() = peer.clone();
                shared
                    .connections
                    .lock()
                    .entry(peer)
                    .or_insert_with(|| conn.clone());
            }
            PARTITION_REQUEST | ADD_CREDIT => {
                let id = frame::decode_id(body)?;
                let n = body
                    .get(frame::ID_LEN..frame::ID_LEN + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| frame::invalid("credit frame without a count"))?;
                let released = shared
                    .released
                    .lock()
                    .get(&id.job)
                    .is_some_and(|a| id.attempt <= *a);
                if released {
                    // A request or credit of a cancelled attempt: nothing produces for it.
                } else if kind == PARTITION_REQUEST {
                    output_entry(shared, id).bind(conn.clone(), n);
                } else if let Some(out) = shared.outputs.lock().get(&id).cloned() {
                    out.add_credit(n);
                }
            }
            BUFFER | EVENT => {
                let id = frame::decode_id(body)?;
                let data = &body[frame::ID_LEN..];
                let handler = shared.inbound.lock().get(&id).map(|e| e.handler.clone());
                // Unknown channel: it was released (its attempt was cancelled); drop the data.
                if let Some(h) = handler {
                    if kind == EVENT {
                        h.on_event(data);
                    } else if !h.on_buffer(data) {
                        conn.send_control(frame::head(
                            ADD_CREDIT,
                            Some(&id),
                            &1u32.to_le_bytes(),
                            0,
                        ));
                    }
                }
            }
            other => return Err(frame::invalid(&format!("unknown frame kind {other}"))),
        }
    }
    Ok(())
}

/// Marks a connection broken and fails every channel on it, once.
fn break_connection(shared: &Arc<Shared>, conn: &Arc<Connection>, reason: String) {
    {
        let mut b = conn.broken.lock();
        if b.is_some() {
            return;
        }
        *b = Some(reason.clone());
    }
    let peer = conn.peer();
    if !shared.shutdown.load(Ordering::Acquire) {
        tracing::warn!("data connection to {peer} lost: {reason}");
    }
    conn.tx.lock().take();
    let _ = conn.stream.shutdown(Shutdown::Both);
    {
        let mut conns = shared.connections.lock();
        if conns.get(&peer).is_some_and(|c| c.id == conn.id) {
            conns.remove(&peer);
        }
    }
    let failed: Vec<Arc<dyn InboundHandler>> = {
        let mut inbound = shared.inbound.lock();
        let ids: Vec<ChannelId> = inbound
            .iter()
            .filter(|(_, e)| e.conn.id == conn.id)
            .map(|(id, _)| *id)
            .collect();
        ids.iter()
            .filter_map(|id| inbound.remove(id))
            .map(|e| e.handler)
            .collect()
    };
    let msg = format!("connection to taskmanager at {peer} lost: {reason}");
    for h in failed {
        h.on_failure(&msg);
    }
    let outs: Vec<Arc<OutputChannel>> = shared
        .outputs
        .lock()
        .values()
        .filter(|o| o.bound_to(conn.id))
        .cloned()
        .collect();
    for o in outs {
        o.fail(NetworkError::ConnectionLost {
            peer: peer.clone(),
            reason: reason.clone(),
        });
    }
}
