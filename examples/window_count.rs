//! Event-time windows over a CSV of `key,timestamp_ms,value` lines, with out-of-order input,
//! allowed lateness and a late-data side output: the project's window contract.
//!
//! ```text
//! cargo run --release --example window_count -- --input events.csv --output out/ --size-ms 1000
//!     [--slide-ms L] [--gap-ms G (instead of --size-ms)] [--lateness-ms A]
//!     [--out-of-orderness-ms O] [--parallelism N]
//! ```
//! Windows per key are tumbling (`--size-ms`), sliding (`--size-ms` + `--slide-ms`) or
//! session (`--gap-ms`). Every window firing writes `key,window_start,window_end,count,sum`
//! (one file per sink subtask, named `1..N`); a late firing (allowed lateness) writes the
//! window again with its updated count and sum. Records too late for every window are written
//! to `<output>/late/` in the input's line format.
//!
//! The watermark is `max timestamp seen - O - 1`, emitted right after each record (a
//! punctuated generator), and the file is read in order by one source subtask, so which
//! records are late does not depend on timing or parallelism. Without `--input`, a small
//! built-in sample with one late record is used and results are printed.

use eddy::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
}

struct Args {
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    windows: Windows,
    lateness_ms: u64,
    out_of_orderness_ms: i64,
    parallelism: usize,
}

const USAGE: &str = "usage: window_count --input <csv> --output <dir> (--size-ms S [--slide-ms L] | --gap-ms G) [--lateness-ms A] [--out-of-orderness-ms O] [--parallelism N]";

fn parse_args() -> Result<Args, String> {
    let (mut input, mut output, mut size, mut slide, mut gap) = (None, None, None, None, None);
    let (mut lateness, mut ooo, mut p) = (0u64, 0u64, 1usize);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
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
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let windows = match (size, slide, gap) {
        (Some(s), None, None) => Windows::Tumbling(s),
        (Some(s), Some(l), None) => Windows::Sliding(s, l),
        (None, None, Some(g)) => Windows::Session(g),
        (None, Some(_), _) => return Err("--slide-ms needs --size-ms".into()),
        (Some(_), _, Some(_)) => return Err("give either --size-ms or --gap-ms, not both".into()),
        (None, None, None) => {
            return Err("give --size-ms (tumbling/sliding) or --gap-ms (session)".into())
        }
    };
    Ok(Args {
        input,
        output,
        windows,
        lateness_ms: lateness,
        out_of_orderness_ms: i64::try_from(ooo)
            .map_err(|_| "--out-of-orderness-ms is too large")?,
        parallelism: p,
    })
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
        .key_by(|e: &Event| e.key.clone())
        .window(assigner)
        .allowed_lateness(Duration::from_millis(args.lateness_ms))
        .side_output_late_data(&late)
        .aggregate_with(CountSum, Line)
        .name("Window Count");
    let late = results
        .get_side_output(&late)
        .map(|e: Event| format!("{},{},{}", e.key, e.ts, e.value));
    (results, (*late).clone())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("window_count: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(args.parallelism);
    let (lines, source_name) = match &args.input {
        Some(path) => (env.read_text_file(path.clone()), path.display().to_string()),
        None => (
            env.from_collection(SAMPLE.iter().map(|s| s.to_string()).collect()),
            "built-in sample".to_string(),
        ),
    };
    let mut line_no = 0u64;
    let bound = args.out_of_orderness_ms;
    let events = lines
        // One reader keeps the file's order, which the per-record watermark relies on.
        .set_parallelism(1)
        .process_fn(
            move |line: String, _ctx: &mut ProcessContext<'_>, out: &mut Collector<'_, Event>| {
                line_no += 1;
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
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_generator(move || PerRecordBoundedOutOfOrderness {
                bound,
                max: i64::MIN,
            })
            .with_timestamp_assigner(|e: &Event, _| e.ts),
        )
        .set_parallelism(1);
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
    };
    match &args.output {
        Some(dir) => {
            results.write_as_text_with_mode(dir.clone(), WriteMode::Overwrite);
            late.write_as_text_with_mode(dir.join("late"), WriteMode::Overwrite);
        }
        None => {
            results.print();
            late.print_with_identifier("late");
        }
    }
    match env.execute("Window Count") {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("window_count: {e}");
            ExitCode::FAILURE
        }
    }
}
