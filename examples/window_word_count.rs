//! Windowed word count in processing time, Flink's `SocketWindowWordCount`: counts words per
//! 5-second tumbling window of the wall clock and emits `word count` at the end of each window.
//!
//! ```text
//! cargo run --release --example window_word_count                       # generated text
//! nc -lk 9999 & cargo run --release --example window_word_count -- --port 9999
//! cargo run --release --example window_word_count -- --lines 2000 --rate 500 --window-ms 1000 --output out/
//! ```
//! Without `--port`, a built-in source emits `--lines` lines (default 600) of text at `--rate`
//! lines per second (default 50), then waits one window before it ends: processing-time
//! windows still open when a bounded input ends are not emitted (as in Flink), so the wait lets
//! the last window fire. With `--output`, results go to one file per sink subtask; otherwise
//! they are printed.

use eddy::core::StreamRecord;
use eddy::prelude::*;
use eddy::runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy::runtime::OperatorError;
use eddy_cli::JobDefinition;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const TEXT: &[&str] = &[
    "the quick brown fox jumps over the lazy dog",
    "a stream is a river of events",
    "windows cut the river into buckets",
    "the fox counts the buckets",
];

struct Args {
    host: String,
    port: Option<u16>,
    lines: u64,
    rate: u64,
    window_ms: u64,
    output: Option<PathBuf>,
    parallelism: usize,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: None,
        lines: 600,
        rate: 50,
        window_ms: 5000,
        output: None,
        parallelism: 2,
    };
    let mut it = argv.iter().cloned();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |what: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{what} must be a positive integer, got '{v}'"))
        };
        match flag.as_str() {
            "--host" => a.host = v.clone(),
            "--port" => a.port = Some(v.parse().map_err(|_| format!("bad --port '{v}'"))?),
            "--lines" => a.lines = num("--lines")?,
            "--rate" => a.rate = num("--rate")?,
            "--window-ms" => a.window_ms = num("--window-ms")?,
            "--parallelism" => a.parallelism = num("--parallelism")? as usize,
            "--output" => a.output = Some(PathBuf::from(v)),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(a)
}

/// Emits `lines` lines of [`TEXT`] at `rate` per second, then lingers `linger` before ending.
#[derive(Clone)]
struct PacedText {
    lines: u64,
    rate: u64,
    linger: Duration,
    emitted: u64,
    start: Option<Instant>,
}

impl SourceReader for PacedText {
    type Out = String;
    fn open(&mut self, _ctx: &SourceContext) -> Result<(), OperatorError> {
        self.start = Some(Instant::now());
        Ok(())
    }
    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<String>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        let elapsed = self.start.get_or_insert_with(Instant::now).elapsed();
        if self.emitted >= self.lines {
            let done_at =
                Duration::from_secs_f64(self.lines as f64 / self.rate as f64) + self.linger;
            return Ok(if elapsed >= done_at {
                InputStatus::EndOfInput
            } else {
                InputStatus::NothingAvailable
            });
        }
        let due = ((elapsed.as_secs_f64() * self.rate as f64) as u64 + 1).min(self.lines);
        while self.emitted < due && out.len() < max {
            let line = TEXT[(self.emitted % TEXT.len() as u64) as usize];
            out.push(StreamRecord::new(line.to_string()));
            self.emitted += 1;
        }
        Ok(InputStatus::NothingAvailable)
    }
    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(self.emitted.to_le_bytes().to_vec())
    }
    fn restore_position(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        let b: [u8; 8] = position
            .try_into()
            .map_err(|_| OperatorError::BadInput("bad position of the text generator".into()))?;
        self.emitted = u64::from_le_bytes(b);
        Ok(())
    }
}

/// The job, as the `eddy` binary and application mode know it.
pub const JOB: JobDefinition = JobDefinition {
    name: "window_word_count",
    about: "Flink's SocketWindowWordCount: 5 s processing-time windows over a socket or paced text",
    usage: "[--port P [--host H]] [--lines N] [--rate R] [--window-ms W] [--parallelism N] [--output DIR]",
    build,
};

/// Builds the job's pipeline on `env`; returns the job's name.
pub fn build(env: &StreamExecutionEnvironment, argv: &[String]) -> Result<String, String> {
    let args = parse_args(argv)?;
    env.set_parallelism(args.parallelism);
    let text = match args.port {
        Some(port) => env.socket_text_stream(&args.host, port).clone(),
        None => {
            let src = PacedText {
                lines: args.lines,
                rate: args.rate,
                linger: Duration::from_millis(args.window_ms + 500),
                emitted: 0,
                start: None,
            };
            env.add_source("Paced Text", move || src.clone())
                .set_parallelism(1)
                .clone()
        }
    };
    let counts = text
        .flat_map(|line: String, out: &mut Collector<'_, (String, u64)>| {
            for w in line.split_whitespace() {
                out.collect((w.to_lowercase(), 1));
            }
        })
        .name("Tokenizer")
        .key_by_ref(|t: &(String, u64)| &t.0)
        .window(TumblingProcessingTimeWindows::of(Duration::from_millis(
            args.window_ms,
        )))
        .reduce(|a: (String, u64), b: (String, u64)| (a.0, a.1 + b.1))
        .map(|(w, c): (String, u64)| format!("{w} {c}"));
    match &args.output {
        Some(dir) => {
            counts.write_as_text_with_mode(dir.clone(), WriteMode::Overwrite);
        }
        None => {
            counts.print();
        }
    }
    Ok("Window WordCount".into())
}

fn main() -> ExitCode {
    eddy_cli::example_main(&JOB)
}
