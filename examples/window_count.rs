//! Event-time windows over a CSV of `key,timestamp_ms,value` lines, with out-of-order input,
//! allowed lateness and a late-data side output: the project's window contract.
//!
//! ```text
//! cargo run --release --example window_count -- --input events.csv --output out/ --size-ms 1000
//!     [--slide-ms L] [--gap-ms G (instead of --size-ms)] [--lateness-ms A]
//!     [--out-of-orderness-ms O] [--parallelism N]
//!     [--checkpoint-dir DIR --checkpoint-interval-ms I] [--restore PATH|latest]
//!     [--records-per-second R] [--restart-attempts N] [--rolling]
//! ```
//! Windows per key are tumbling (`--size-ms`), sliding (`--size-ms` + `--slide-ms`) or
//! session (`--gap-ms`). Every window firing writes `key,window_start,window_end,count,sum`
//! (one file per sink subtask, named `1..N`); a late firing (allowed lateness) writes the
//! window again with its updated count and sum. Records too late for every window are written
//! to `<output>/late/` in the input's line format.
//!
//! **Keyed state instead of windows.** With `--rolling` (and no window flags) the job keeps a
//! running count and sum per key in keyed `ValueState` (a `KeyedProcessFunction`) and writes
//! `key,count,sum` for every record; the job is then named "Running Totals".
//!
//! The watermark is `max timestamp seen - O - 1`, emitted right after each record (a
//! punctuated generator), and the file is read in order by one source subtask, so which
//! records are late does not depend on timing or parallelism. Without `--input`, a small
//! built-in sample with one late record is used and results are printed.
//!
//! **Exactly-once mode.** With `--checkpoint-dir`, the job checkpoints every `I` ms
//! (exactly-once, checkpoints retained on cancellation, under `DIR/<job-id>/chk-<n>/`) and
//! writes through the exactly-once file sink: finished part files `part-<subtask>-<n>` appear
//! when the checkpoint covering them completes; in-progress and pending files are hidden
//! (`.part-…`). `--restore latest` resumes from the newest completed checkpoint of this job
//! under `DIR` (or starts afresh if it never completed one), `--restore PATH` from a given `chk-<n>` or
//! savepoint directory. Kill the process at any moment and start it again with
//! `--restore latest` until it finishes: the finished files hold exactly the lines of a run that
//! never failed. Once a run finished, `--restore latest` finds its result in the job result
//! store (`DIR/job-result-store/`) and does nothing; if checkpoints exist but none can be read,
//! it fails naming each instead of starting over. `--records-per-second` throttles the source so a run can be made to last;
//! `--restart-attempts` (default 2, 500 ms apart) bounds how often one run restarts itself. The
//! source's position (byte offset and line number) is checkpointed, so error messages keep
//! naming the right line after a restore.

use eddy::core::StreamRecord;
use eddy::prelude::*;
use eddy::runtime::OperatorError;
use eddy_cli::JobDefinition;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Event {
    key: String,
    ts: i64,
    value: i64,
}

#[derive(Clone, Copy)]
enum Windows {
    Tumbling(u64),
    Sliding(u64, u64),
    Session(u64),
    /// No windows: running totals per key in keyed state.
    Rolling,
}

struct Args {
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    windows: Windows,
    lateness_ms: u64,
    out_of_orderness_ms: i64,
    parallelism: usize,
    checkpoint_dir: Option<PathBuf>,
    checkpoint_interval_ms: u64,
    restore: Option<String>,
    records_per_second: Option<u64>,
    restart_attempts: u32,
}

/// The job's name: `--restore latest` looks for checkpoints of jobs with this name.
const JOB_NAME: &str = "Window Count";
/// The job's name with `--rolling`.
const ROLLING_JOB_NAME: &str = "Running Totals";

/// The job, as the `eddy` binary and application mode know it.
pub const JOB: JobDefinition = JobDefinition {
    name: "window_count",
    about: "event-time windows over a CSV of key,timestamp_ms,value (exactly-once with --checkpoint-dir)",
    usage: ARGS_USAGE,
    build,
};

const ARGS_USAGE: &str = "--input <csv> --output <dir> (--size-ms S [--slide-ms L] | --gap-ms G | --rolling) [--lateness-ms A] [--out-of-orderness-ms O] [--parallelism N] [--checkpoint-dir DIR --checkpoint-interval-ms I] [--restore PATH|latest] [--records-per-second R] [--restart-attempts N]";

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let (mut input, mut output, mut size, mut slide, mut gap) = (None, None, None, None, None);
    let (mut lateness, mut ooo, mut p) = (0u64, 0u64, 1usize);
    let (mut checkpoint_dir, mut interval, mut restore, mut rps) = (None, None, None, None);
    let (mut rolling, mut attempts) = (false, 2u32);
    let mut it = argv.iter().cloned();
    while let Some(flag) = it.next() {
        if flag == "--rolling" {
            rolling = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let int = |min: u64| -> Result<u64, String> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n >= min)
                .ok_or_else(|| format!("{flag} must be an integer >= {min}, got '{v}'"))
        };
        match flag.as_str() {
            "--input" => input = Some(PathBuf::from(&v)),
            "--output" => output = Some(PathBuf::from(&v)),
            "--size-ms" => size = Some(int(1)?),
            "--slide-ms" => slide = Some(int(1)?),
            "--gap-ms" => gap = Some(int(1)?),
            "--lateness-ms" => lateness = int(0)?,
            "--out-of-orderness-ms" => ooo = int(0)?,
            "--parallelism" => p = int(1)? as usize,
            "--checkpoint-dir" => checkpoint_dir = Some(PathBuf::from(&v)),
            "--checkpoint-interval-ms" => interval = Some(int(1)?),
            "--restore" => restore = Some(v.clone()),
            "--records-per-second" => rps = Some(int(1)?),
            "--restart-attempts" => {
                attempts = u32::try_from(int(0)?).map_err(|_| "--restart-attempts is too large")?
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let windows = match (size, slide, gap) {
        (None, None, None) if rolling => Windows::Rolling,
        _ if rolling => return Err("--rolling takes no window flags".into()),
        (Some(s), None, None) => Windows::Tumbling(s),
        (Some(s), Some(l), None) => Windows::Sliding(s, l),
        (None, None, Some(g)) => Windows::Session(g),
        (None, Some(_), _) => return Err("--slide-ms needs --size-ms".into()),
        (Some(_), _, Some(_)) => return Err("give either --size-ms or --gap-ms, not both".into()),
        (None, None, None) => {
            return Err(
                "give --size-ms (tumbling/sliding), --gap-ms (session) or --rolling (keyed state)"
                    .into(),
            )
        }
    };
    if interval.is_some() && checkpoint_dir.is_none() {
        return Err("--checkpoint-interval-ms needs --checkpoint-dir".into());
    }
    if restore.as_deref() == Some("latest") && checkpoint_dir.is_none() {
        return Err("--restore latest needs --checkpoint-dir".into());
    }
    if checkpoint_dir.is_some() && output.is_none() {
        return Err("--checkpoint-dir needs --output (the exactly-once file sink)".into());
    }
    Ok(Args {
        input,
        output,
        windows,
        checkpoint_dir,
        checkpoint_interval_ms: interval.unwrap_or(1000),
        restore,
        records_per_second: rps,
        restart_attempts: attempts,
        lateness_ms: lateness,
        out_of_orderness_ms: i64::try_from(ooo)
            .map_err(|_| "--out-of-orderness-ms is too large")?,
        parallelism: p,
    })
}

/// Reads a file's lines with their line numbers, optionally throttled; its checkpointed
/// position is the byte offset and line number of the next line.
struct NumberedLines {
    path: PathBuf,
    records_per_second: Option<u64>,
    reader: Option<BufReader<std::fs::File>>,
    offset: u64,
    line_no: u64,
    started: Option<Instant>,
    emitted: u64,
    buf: Vec<u8>,
}

impl NumberedLines {
    fn new(path: PathBuf, records_per_second: Option<u64>) -> Self {
        NumberedLines {
            path,
            records_per_second,
            reader: None,
            offset: 0,
            line_no: 0,
            started: None,
            emitted: 0,
            buf: Vec::new(),
        }
    }

    fn io(&self, e: std::io::Error) -> OperatorError {
        OperatorError::io(self.path.display().to_string(), e)
    }
}

impl SourceReader for NumberedLines {
    type Out = (u64, String);

    fn open(&mut self, _ctx: &SourceContext) -> Result<(), OperatorError> {
        let mut f = std::fs::File::open(&self.path).map_err(|e| self.io(e))?;
        f.seek(SeekFrom::Start(self.offset))
            .map_err(|e| self.io(e))?;
        self.reader = Some(BufReader::new(f));
        Ok(())
    }

    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<(u64, String)>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        let mut budget = max as u64;
        if let Some(rps) = self.records_per_second {
            let started = *self.started.get_or_insert_with(Instant::now);
            let allowed = (started.elapsed().as_secs_f64() * rps as f64) as u64;
            budget = budget.min(allowed.saturating_sub(self.emitted));
            if budget == 0 {
                return Ok(InputStatus::NothingAvailable);
            }
        }
        for _ in 0..budget {
            self.buf.clear();
            let Some(r) = self.reader.as_mut() else {
                return Err(OperatorError::Internal("source not open".into()));
            };
            let n = r.read_until(b'\n', &mut self.buf).map_err(|e| self.io(e))?;
            if n == 0 {
                return Ok(InputStatus::EndOfInput);
            }
            self.offset += n as u64;
            self.line_no += 1;
            self.emitted += 1;
            let line = std::str::from_utf8(&self.buf).map_err(|e| {
                OperatorError::BadInput(format!(
                    "{}:{}: invalid UTF-8 at byte {} of the line",
                    self.path.display(),
                    self.line_no,
                    e.valid_up_to()
                ))
            })?;
            let line = line.trim_end_matches(['\n', '\r']).to_string();
            out.push(StreamRecord::new((self.line_no, line)));
        }
        Ok(InputStatus::MoreAvailable)
    }

    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        let mut p = self.offset.to_le_bytes().to_vec();
        p.extend_from_slice(&self.line_no.to_le_bytes());
        Ok(p)
    }

    fn restore_position(&mut self, p: &[u8]) -> Result<(), OperatorError> {
        let bad = || OperatorError::Internal("malformed source position".into());
        let offset: [u8; 8] = p.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
        let line: [u8; 8] = p
            .get(8..16)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        self.offset = u64::from_le_bytes(offset);
        self.line_no = u64::from_le_bytes(line);
        Ok(())
    }
}

/// Bounded out-of-orderness, emitted after every record instead of periodically.
struct PerRecordBoundedOutOfOrderness {
    bound: i64,
    max: i64,
}

impl WatermarkGenerator<Event> for PerRecordBoundedOutOfOrderness {
    fn on_event(&mut self, _e: &Event, ts: i64, out: &mut WatermarkOutput<'_>) {
        if ts > self.max {
            self.max = ts;
            out.emit_watermark(Watermark::new(
                ts.saturating_sub(self.bound).saturating_sub(1),
            ));
        }
    }
    fn on_periodic_emit(&mut self, _out: &mut WatermarkOutput<'_>) {}
}

/// `(count, sum)` per window, one accumulator each.
#[derive(Clone)]
struct CountSum;

impl AggregateFunction<Event, (u64, i64), (u64, i64)> for CountSum {
    fn create_accumulator(&self) -> (u64, i64) {
        (0, 0)
    }
    fn add(&self, e: Event, acc: &mut (u64, i64)) {
        acc.0 += 1;
        acc.1 = acc.1.wrapping_add(e.value);
    }
    fn get_result(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
    fn merge(&self, a: (u64, i64), b: (u64, i64)) -> (u64, i64) {
        (a.0 + b.0, a.1.wrapping_add(b.1))
    }
}

/// Formats a window result line.
#[derive(Clone)]
struct Line;

impl ProcessWindowFunction<(u64, i64), String, String, TimeWindow> for Line {
    fn process(
        &mut self,
        key: &String,
        ctx: &mut WindowContext<'_, String, TimeWindow>,
        results: Vec<(u64, i64)>,
        out: &mut Collector<'_, String>,
    ) -> FunctionResult {
        let w = *ctx.window();
        for (count, sum) in results {
            out.collect(format!("{key},{},{},{count},{sum}", w.start, w.end));
        }
        Ok(())
    }
}

/// Parses `key,timestamp_ms,value`; the key may itself contain commas.
fn parse(line: &str) -> Result<Event, String> {
    let mut parts = line.rsplitn(3, ',');
    let (Some(value), Some(ts), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected 'key,timestamp_ms,value'".into());
    };
    let ts = ts
        .trim()
        .parse()
        .map_err(|_| format!("timestamp_ms '{ts}' is not an integer"))?;
    let value = value
        .trim()
        .parse()
        .map_err(|_| format!("value '{value}' is not an integer"))?;
    Ok(Event {
        key: key.to_string(),
        ts,
        value,
    })
}

const SAMPLE: &[&str] = &[
    "alice,1000,1",
    "bob,1500,2",
    "alice,2500,3",
    "alice,1200,4",
    "bob,4100,5",
    "alice,6000,6",
    // Late: after alice,2500 the watermark (2499) has passed the end of [1000, 2000).
    "alice,1100,7",
    "bob,6100,8",
];

fn run<A>(
    events: &DataStream<Event>,
    assigner: A,
    args: &Args,
) -> (SingleOutputStreamOperator<String>, DataStream<String>)
where
    A: WindowAssigner<Event, W = TimeWindow>,
{
    let late = OutputTag::<Event>::new("late-data");
    let results = events
        .key_by_ref(|e: &Event| &e.key)
        .window(assigner)
        .allowed_lateness(Duration::from_millis(args.lateness_ms))
        .side_output_late_data(&late)
        .aggregate_with(CountSum, Line)
        .name("Window Count")
        .uid("windows");
    let late = results
        .get_side_output(&late)
        .map(|e: Event| format!("{},{},{}", e.key, e.ts, e.value));
    (results, (*late).clone())
}

/// Builds the job's pipeline on `env`; returns the job's name.
pub fn build(env: &StreamExecutionEnvironment, argv: &[String]) -> Result<String, String> {
    let args = parse_args(argv)?;
    env.set_parallelism(args.parallelism);
    if let Some(dir) = &args.checkpoint_dir {
        env.enable_checkpointing(Duration::from_millis(args.checkpoint_interval_ms));
        env.configure_checkpointing(|c| {
            c.storage = Some(dir.display().to_string());
            c.retention = ExternalizedCheckpointRetention::RetainOnCancellation;
        });
        // Bad input fails for good after two retries instead of restarting forever.
        env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
            attempts: args.restart_attempts,
            delay_ms: 500,
        });
    }
    if let Some(spec) = &args.restore {
        // `latest` is resolved when the job starts (`execution.savepoint.path: latest`); the
        // resumed run owns the checkpoints it resumes from, so a finished run leaves none.
        env.restore_from(spec.clone(), false);
        if spec == "latest" {
            env.set_claim_mode(RecoveryClaimMode::Claim);
        }
    }
    let (lines, source_name) = match &args.input {
        Some(path) => {
            let (p, rps) = (path.clone(), args.records_per_second);
            (
                env.add_source("Numbered Lines", move || NumberedLines::new(p.clone(), rps))
                    .uid("source"),
                path.display().to_string(),
            )
        }
        None => (
            env.from_collection(
                SAMPLE
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i as u64 + 1, s.to_string()))
                    .collect(),
            ),
            "built-in sample".to_string(),
        ),
    };
    let bound = args.out_of_orderness_ms;
    let events = lines
        // One reader keeps the file's order, which the per-record watermark relies on.
        .set_parallelism(1)
        .process_fn(
            move |(line_no, line): (u64, String),
                  _ctx: &mut ProcessContext<'_>,
                  out: &mut Collector<'_, Event>| {
                if line.trim().is_empty() {
                    return Ok(());
                }
                match parse(&line) {
                    Ok(e) => {
                        out.collect(e);
                        Ok(())
                    }
                    Err(_)
                        if line_no == 1
                            && line.trim().eq_ignore_ascii_case("key,timestamp_ms,value") =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(format!("{source_name}:{line_no}: {e}: '{line}'").into()),
                }
            },
        )
        .name("Parse CSV")
        .uid("parse")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_generator(move || PerRecordBoundedOutOfOrderness {
                bound,
                max: i64::MIN,
            })
            .with_timestamp_assigner(|e: &Event, _| e.ts),
        )
        .set_parallelism(1)
        .uid("timestamps");
    let (results, late) = match args.windows {
        Windows::Tumbling(s) => run(
            &events,
            TumblingEventTimeWindows::of(Duration::from_millis(s)),
            &args,
        ),
        Windows::Sliding(s, l) => run(
            &events,
            SlidingEventTimeWindows::of(Duration::from_millis(s), Duration::from_millis(l)),
            &args,
        ),
        Windows::Session(g) => run(
            &events,
            EventTimeSessionWindows::with_gap(Duration::from_millis(g)),
            &args,
        ),
        Windows::Rolling => {
            let totals = events
                .key_by_ref(|e: &Event| &e.key)
                .process(RunningTotals::default())
                .name("Running Totals")
                .uid("totals");
            // No lateness without windows: the late output stays empty.
            let none = totals.filter(|_: &String| false).name("No Late Data");
            (totals, (*none).clone())
        }
    };
    match &args.output {
        Some(dir) if args.checkpoint_dir.is_some() => {
            results.sink_to_file(dir.clone()).uid("results-sink");
            late.sink_to_file(dir.join("late")).uid("late-sink");
        }
        Some(dir) => {
            results.write_as_text_with_mode(dir.clone(), WriteMode::Overwrite);
            late.write_as_text_with_mode(dir.join("late"), WriteMode::Overwrite);
        }
        None => {
            results.print();
            late.print_with_identifier("late");
        }
    }
    Ok(match args.windows {
        Windows::Rolling => ROLLING_JOB_NAME,
        _ => JOB_NAME,
    }
    .to_string())
}

/// Running count and sum per key in keyed state; writes `key,count,sum` for every record.
#[derive(Clone, Default)]
struct RunningTotals {
    totals: Option<ValueState<(u64, i64)>>,
}

impl KeyedProcessFunction<String, Event, String> for RunningTotals {
    fn open(&mut self, ctx: &mut RuntimeContext<'_, String>) -> FunctionResult {
        self.totals = Some(ctx.get_state(&ValueStateDescriptor::new("totals"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        e: Event,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<'_, String>,
    ) -> FunctionResult {
        let totals = self.totals.ok_or("state not opened")?;
        let (count, sum) = totals.value(ctx)?.unwrap_or((0, 0));
        let next = (count + 1, sum + e.value);
        totals.update(ctx, next)?;
        out.collect(format!("{},{},{}", e.key, next.0, next.1));
        Ok(())
    }
}

fn main() -> ExitCode {
    eddy_cli::example_main(&JOB)
}
