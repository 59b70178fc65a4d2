//! The wire format of a data connection: `[u32 length][u8 kind][body]`, little endian, where
//! the length counts kind and body. Every frame but `Hello` names its channel.
//!
//! A length is checked against the connection's limit before the frame is read: a buffer frame
//! holds at most one network segment of the sender (its size travels in the Hello; until then
//! only small frames are accepted), so anything larger is garbage or another protocol, and the
//! connection is closed with an error naming the length and the limit. The body is read into a
//! buffer that grows with the bytes that actually arrive, never sized by the length alone.

use crate::environment::ChannelId;
use std::io::{self, Read};

pub(crate) const HELLO: u8 = 1;
pub(crate) const PARTITION_REQUEST: u8 = 2;
pub(crate) const ADD_CREDIT: u8 = 3;
pub(crate) const BUFFER: u8 = 4;
pub(crate) const EVENT: u8 = 5;

pub(crate) const ID_LEN: usize = 16 + 8 + 4 + 4 + 4;

/// Room for the kind, the channel id and small headers on top of a segment.
const FRAME_OVERHEAD: usize = 1 + ID_LEN + 64;

/// Events (barriers, watermarks, end of partition) are small; every connection accepts this
/// much whatever its segment size, and no sender sends more.
pub(crate) const MAX_EVENT: usize = 64 << 10;

/// The largest network segment a peer may announce in its Hello.
pub(crate) const MAX_SEGMENT: usize = 64 << 20;

/// The largest frame a connection accepts from a peer whose network segments are
/// `segment_size` bytes (0 before its Hello: only events and the Hello itself).
pub(crate) fn max_frame(segment_size: usize) -> usize {
    segment_size.clamp(MAX_EVENT, MAX_SEGMENT) + FRAME_OVERHEAD
}

/// The body of a Hello: the sender's data address and its segment size.
pub(crate) fn hello_body(address: &str, segment_size: usize) -> Vec<u8> {
    format!("{address}\n{segment_size}").into_bytes()
}

/// Reads a Hello body: the peer's address and segment size.
pub(crate) fn parse_hello(body: &[u8]) -> io::Result<(String, usize)> {
    let text = std::str::from_utf8(body).map_err(|_| invalid("a Hello that is not UTF-8"))?;
    let (address, segment) = text
        .split_once('\n')
        .ok_or_else(|| invalid("a Hello without a segment size"))?;
    let segment = segment
        .parse::<usize>()
        .map_err(|_| invalid(&format!("a Hello with segment size '{segment}'")))?;
    Ok((address.to_string(), segment))
}

pub(crate) fn encode_id(id: &ChannelId, out: &mut Vec<u8>) {
    out.extend_from_slice(&id.job.to_le_bytes());
    out.extend_from_slice(&id.attempt.to_le_bytes());
    out.extend_from_slice(&id.edge.to_le_bytes());
    out.extend_from_slice(&id.producer.to_le_bytes());
    out.extend_from_slice(&id.consumer.to_le_bytes());
}

pub(crate) fn decode_id(b: &[u8]) -> io::Result<ChannelId> {
    if b.len() < ID_LEN {
        return Err(invalid("frame too short for a channel id"));
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut job = [0u8; 16];
    job.copy_from_slice(&b[..16]);
    let mut attempt = [0u8; 8];
    attempt.copy_from_slice(&b[16..24]);
    Ok(ChannelId {
        job: u128::from_le_bytes(job),
        attempt: u64::from_le_bytes(attempt),
        edge: u32_at(24),
        producer: u32_at(28),
        consumer: u32_at(32),
    })
}

/// The head of a frame whose body (`body_len` bytes after the head) follows separately.
pub(crate) fn head(kind: u8, id: Option<&ChannelId>, extra: &[u8], body_len: usize) -> Vec<u8> {
    let id_len = if id.is_some() { ID_LEN } else { 0 };
    let len = 1 + id_len + extra.len() + body_len;
    let mut out = Vec::with_capacity(4 + 1 + id_len + extra.len());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.push(kind);
    if let Some(id) = id {
        encode_id(id, &mut out);
    }
    out.extend_from_slice(extra);
    out
}

/// Reads one frame of at most `max` bytes into `buf` (kind and body); `Ok(false)` on a clean
/// end of stream.
pub(crate) fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>, max: usize) -> io::Result<bool> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > max {
        return Err(invalid(&format!(
            "frame length {len} outside 1..={max} bytes (one network segment, \
             taskmanager.memory.segment-size, plus headers): not an Eddy data connection, or a \
             corrupt stream"
        )));
    }
    buf.clear();
    if len <= buf.capacity() {
        // The steady state: the buffer of earlier frames holds this one.
        buf.resize(len, 0);
        r.read_exact(buf)?;
    } else {
        // A larger frame than before: grow with what arrives (at most doubling what was read),
        // so a length alone never allocates.
        while buf.len() < len {
            let start = buf.len();
            let step = (len - start).min(start.max(64 << 10));
            buf.resize(start + step, 0);
            r.read_exact(&mut buf[start..])?;
        }
    }
    Ok(true)
}

pub(crate) fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}
