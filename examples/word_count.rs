//! Streaming word count, Flink's hello world.
//!
//! ```text
//! cargo run --release --example word_count -- --input <file or dir> --output <dir> [--parallelism N]
//! ```
//! Splits lines on whitespace, lowercases, strips ASCII punctuation at both ends of each word,
//! skips words left empty, counts per word with a keyed `reduce`, and writes every update as a
//! line `word count` with `write_as_text` (one file per sink subtask). The last line for a word
//! is its final count. Without `--input` it counts a built-in text and prints the counts.
//!
//! The same job is built into the `eddy` binary (`eddy run word_count --input F --output D -p 4`
//! runs it on a cluster), and this program is itself an application-mode binary:
//! `word_count jobmanager`, `word_count taskmanager`, `word_count run word_count …`.

use eddy::prelude::*;
use eddy_cli::JobDefinition;
use std::path::PathBuf;
use std::process::ExitCode;

/// The job, as the `eddy` binary and application mode know it.
pub const JOB: JobDefinition = JobDefinition {
    name: "word_count",
    about: "streaming word count of text files (or a built-in text)",
    usage: "[--input <file or dir>] [--output <dir>] [--parallelism N]",
    build,
};

const DEMO_TEXT: &[&str] = &[
    "To be, or not to be, that is the question:",
    "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune,",
    "Or to take arms against a sea of troubles",
    "And by opposing end them. To die—to sleep,",
];

struct Args {
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    parallelism: Option<usize>,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        input: None,
        output: None,
        parallelism: None,
    };
    let mut it = argv.iter().cloned();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--input" => args.input = Some(value("--input")?.into()),
            "--output" => args.output = Some(value("--output")?.into()),
            "--parallelism" | "-p" => {
                let v = value("--parallelism")?;
                args.parallelism = Some(v.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                    format!("--parallelism must be a positive integer, got '{v}'")
                })?);
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(args)
}

/// Lowercases and strips ASCII punctuation at both ends; `None` if nothing is left.
fn normalize(word: &str) -> Option<String> {
    let w = word.trim_matches(|c: char| c.is_ascii_punctuation());
    (!w.is_empty()).then(|| w.to_lowercase())
}

/// Builds the job's pipeline on `env`; returns the job's name.
pub fn build(env: &StreamExecutionEnvironment, argv: &[String]) -> Result<String, String> {
    let args = parse_args(argv)?;
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    let text = match &args.input {
        Some(path) => env.read_text_file(path.clone()),
        None => env.from_collection(DEMO_TEXT.iter().map(|s| s.to_string()).collect()),
    };
    let counts = text
        .flat_map(|line: String, out: &mut Collector<'_, (String, i64)>| {
            for w in line.split_whitespace().filter_map(normalize) {
                out.collect((w, 1));
            }
        })
        .name("Tokenizer")
        .key_by_ref(|t: &(String, i64)| &t.0)
        .reduce(|a: (String, i64), b: (String, i64)| (a.0, a.1 + b.1))
        .name("Count");
    match &args.output {
        Some(dir) => {
            counts
                .map(|(w, c): (String, i64)| format!("{w} {c}"))
                .write_as_text_with_mode(dir.clone(), WriteMode::Overwrite);
        }
        None => {
            counts.print();
        }
    }
    Ok("Streaming WordCount".into())
}

fn main() -> ExitCode {
    eddy_cli::example_main(&JOB)
}
