//! Word count over lines read from a TCP socket, Flink's `SocketWindowWordCount` without the
//! window: prints the running count of every word as it arrives.
//!
//! ```text
//! nc -lk 9999 &            # a text server
//! cargo run --release --example socket_word_count -- --host 127.0.0.1 --port 9999
//! ```
//! The job ends when the server closes the connection.

use eddy::prelude::*;
use eddy_cli::JobDefinition;
use std::process::ExitCode;

/// The job, as the `eddy` binary and application mode know it.
pub const JOB: JobDefinition = JobDefinition {
    name: "socket_word_count",
    about: "word count of the lines a TCP server sends",
    usage: "[--host H] --port P",
    build,
};

/// Builds the job's pipeline on `env`; returns the job's name.
pub fn build(env: &StreamExecutionEnvironment, argv: &[String]) -> Result<String, String> {
    let mut host = "127.0.0.1".to_string();
    let mut port: Option<u16> = None;
    let mut args = argv.iter().cloned();
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--host", Some(h)) => host = h,
            ("--port", Some(p)) => {
                port = Some(
                    p.parse()
                        .map_err(|_| format!("--port must be a number 0-65535, got '{p}'"))?,
                )
            }
            (other, _) => return Err(format!("unknown or incomplete argument '{other}'")),
        }
    }
    let port = port.ok_or("--port is required")?;
    env.set_parallelism(2);
    env.socket_text_stream(&host, port)
        .flat_map(|line: String, out: &mut Collector<'_, (String, i64)>| {
            for w in line.split_whitespace() {
                out.collect((w.to_lowercase(), 1));
            }
        })
        .key_by_ref(|t: &(String, i64)| &t.0)
        .sum(|t: &mut (String, i64)| &mut t.1)
        .map(|(w, c): (String, i64)| format!("{w} {c}"))
        .print()
        .set_parallelism(1);
    Ok("Socket WordCount".into())
}

fn main() -> ExitCode {
    eddy_cli::example_main(&JOB)
}
