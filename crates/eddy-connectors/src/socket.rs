//! `socket_text_stream(host, port)`: a non-parallel source of the lines read from a TCP
//! server; it ends when the server closes the connection (Flink's `SocketTextStreamFunction`
//! with no retries).

use eddy_core::StreamRecord;
use eddy_runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy_runtime::OperatorError;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::time::Duration;

/// How long one poll may block on the socket, so timers and cancellation are not delayed.
const POLL_TIMEOUT: Duration = Duration::from_millis(50);

/// Reads lines from `host:port`.
pub struct SocketReader {
    host: String,
    port: u16,
    reader: Option<BufReader<TcpStream>>,
    partial: Vec<u8>,
    ended: bool,
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
        }
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
            // On a timeout, read_until keeps the bytes read so far in `partial`.
            match r.read_until(b'\n', &mut self.partial) {
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
