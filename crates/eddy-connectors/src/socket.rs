//! `socket_text_stream(host, port)`: a non-parallel source of the lines read from a TCP
//! server; it ends when the server closes the connection (Flink's `SocketTextStreamFunction`
//! with no retries).
//!
//! A line longer than [`DEFAULT_MAX_LINE_BYTES`] (or the reader's own bound) fails the source
//! with an error naming the socket, instead of buffering a peer's endless line until memory
//! runs out.

use eddy_core::StreamRecord;
use eddy_runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy_runtime::OperatorError;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::TcpStream;
use std::time::Duration;

/// How long one poll may block on the socket, so timers and cancellation are not delayed.
const POLL_TIMEOUT: Duration = Duration::from_millis(50);

/// The longest line a socket source accepts by default.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// Reads lines from `host:port`.
pub struct SocketReader {
    host: String,
    port: u16,
    reader: Option<BufReader<TcpStream>>,
    partial: Vec<u8>,
    ended: bool,
    max_line: usize,
}

impl SocketReader {
    /// A reader connecting to `host:port` when opened.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        SocketReader {
            host: host.into(),
            port,
            reader: None,
            partial: Vec::new(),
            ended: false,
            max_line: DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// Bounds the length of a line (its bytes without the `\n`; a `\r` before it counts).
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.max_line = max.max(1);
        self
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn emit(&mut self, out: &mut Vec<StreamRecord<String>>) -> Result<(), OperatorError> {
        let mut bytes = &self.partial[..];
        if let Some(b) = bytes.strip_suffix(b"\n") {
            bytes = b;
        }
        if let Some(b) = bytes.strip_suffix(b"\r") {
            bytes = b;
        }
        let line = std::str::from_utf8(bytes).map_err(|_| {
            OperatorError::BadInput(format!(
                "invalid UTF-8 in a line from socket {}",
                self.addr()
            ))
        })?;
        out.push(StreamRecord::new(line.to_string()));
        self.partial.clear();
        Ok(())
    }
}

impl SourceReader for SocketReader {
    type Out = String;

    fn open(&mut self, _ctx: &SourceContext) -> Result<(), OperatorError> {
        let addr = self.addr();
        let s = TcpStream::connect(&addr)
            .map_err(|e| OperatorError::io(format!("connecting to socket {addr}"), e))?;
        s.set_read_timeout(Some(POLL_TIMEOUT))
            .map_err(|e| OperatorError::io(format!("configuring socket {addr}"), e))?;
        self.reader = Some(BufReader::new(s));
        Ok(())
    }

    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<String>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        if self.ended {
            return Ok(InputStatus::EndOfInput);
        }
        let mut produced = 0;
        while produced < max {
            let Some(r) = self.reader.as_mut() else {
                return Err(OperatorError::Internal("socket source not open".into()));
            };
            // On a timeout, read_until keeps the bytes read so far in `partial`. At most one
            // byte past the bound (the newline ending a line of exactly the bound) is read.
            let room = self
                .max_line
                .saturating_add(1)
                .saturating_sub(self.partial.len()) as u64;
            let res = r.by_ref().take(room).read_until(b'\n', &mut self.partial);
            if !self.partial.ends_with(b"\n") && self.partial.len() > self.max_line {
                return Err(OperatorError::BadInput(format!(
                    "a line from socket {} is longer than {} bytes without a newline",
                    self.addr(),
                    self.max_line
                )));
            }
            match res {
                Ok(0) => {
                    if !self.partial.is_empty() {
                        self.emit(out)?;
                    }
                    self.ended = true;
                    return Ok(if out.is_empty() {
                        InputStatus::EndOfInput
                    } else {
                        InputStatus::MoreAvailable
                    });
                }
                Ok(_) => {
                    if self.partial.ends_with(b"\n") {
                        self.emit(out)?;
                        produced += 1;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(if produced > 0 {
                        InputStatus::MoreAvailable
                    } else {
                        InputStatus::NothingAvailable
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(OperatorError::io(
                        format!("reading socket {}", self.addr()),
                        e,
                    ))
                }
            }
        }
        Ok(InputStatus::MoreAvailable)
    }

    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        // A socket cannot be rewound: like Flink's socket source, it is not replayable.
        Ok(Vec::new())
    }

    fn restore_position(&mut self, _position: &[u8]) -> Result<(), OperatorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// Serves `bytes` to one client, then closes.
    fn serve(bytes: Vec<u8>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let _ = s.write_all(&bytes);
            }
        });
        port
    }

    fn read(port: u16, max_line: usize) -> Result<Vec<String>, OperatorError> {
        let mut r = SocketReader::new("127.0.0.1", port).with_max_line_bytes(max_line);
        r.open(&SourceContext {
            subtask: 0,
            parallelism: 1,
        })?;
        let mut out = Vec::new();
        while r.poll_next(&mut out, 100)? != InputStatus::EndOfInput {}
        Ok(out.into_iter().map(|r| r.value).collect())
    }

    #[test]
    fn an_endless_line_is_an_error_naming_the_socket_not_exhausted_memory() {
        let port = serve(b"ab\r\n0123456789\nxyz".to_vec());
        assert_eq!(read(port, 10).unwrap(), vec!["ab", "0123456789", "xyz"]);
        // 64 MiB without a newline against a 1 MiB bound: fails after reading ~1 MiB.
        let port = serve(vec![b'x'; 64 << 20]);
        let err = read(port, 1 << 20).unwrap_err().to_string();
        assert!(
            err.contains(&format!("127.0.0.1:{port}")) && err.contains("longer than 1048576"),
            "{err}"
        );
    }
}
