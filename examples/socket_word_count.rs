//! Word count over lines read from a TCP socket, Flink's `SocketWindowWordCount` without the
//! window: prints the running count of every word as it arrives.
//!
//! ```text
//! nc -lk 9999 &            # a text server
//! cargo run --release --example socket_word_count -- --host 127.0.0.1 --port 9999
//! ```
//! The job ends when the server closes the connection.

use eddy::prelude::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut host = "127.0.0.1".to_string();
    let mut port: Option<u16> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--host", Some(h)) => host = h,
            ("--port", Some(p)) => match p.parse() {
                Ok(p) => port = Some(p),
                Err(_) => {
                    eprintln!("socket_word_count: --port must be a number 0-65535, got '{p}'");
                    return ExitCode::from(2);
                }
            },
            (other, _) => {
                eprintln!("socket_word_count: unknown or incomplete argument '{other}'\nusage: socket_word_count [--host H] --port P");
                return ExitCode::from(2);
            }
        }
    }
    let Some(port) = port else {
        eprintln!("usage: socket_word_count [--host H] --port P");
        return ExitCode::from(2);
    };

    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(2);
    env.socket_text_stream(&host, port)
        .flat_map(|line: String, out: &mut Collector<'_, (String, i64)>| {
            for w in line.split_whitespace() {
                out.collect((w.to_lowercase(), 1));
            }
        })
        .key_by(|t: &(String, i64)| t.0.clone())
        .sum(|t: &mut (String, i64)| &mut t.1)
        .map(|(w, c): (String, i64)| format!("{w} {c}"))
        .print()
        .set_parallelism(1);
    match env.execute("Socket WordCount") {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("socket_word_count: {e}");
            ExitCode::FAILURE
        }
    }
}
