//! Sinks: `print()`, `sink_to_discard()`, `write_as_text(path)` and collect-to-client.
//!
//! Records are written as text the way Flink's `toString` would show them: strings as they are,
//! everything else with its `Debug` form (so a tuple prints as `("hello", 3)`).

use crate::chain::{OneInputOperator, OperatorContext};
use crate::error::OperatorError;
use crate::output::Output;
use eddy_core::{Data, StreamRecord};
use parking_lot::Mutex;
use std::any::Any;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Appends the text form of a record to `buf`.
pub fn write_text<T: Data>(v: &T, buf: &mut String) {
    let any = v as &dyn Any;
    if let Some(s) = any.downcast_ref::<String>() {
        buf.push_str(s);
    } else if let Some(s) = any.downcast_ref::<&'static str>() {
        buf.push_str(s);
    } else {
        let _ = write!(buf, "{v:?}");
    }
}

/// `print()` / `print_to_err()`: one line per record, prefixed with `N> ` (1-based subtask) when
/// the sink runs with parallelism > 1, as Flink's `PrintSinkFunction`.
pub struct PrintSink<T> {
    to_stderr: bool,
    identifier: Option<String>,
    prefix: String,
    line: String,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T> PrintSink<T> {
    /// A print sink; `identifier` is Flink's `print(sinkIdentifier)` prefix.
    pub fn new(to_stderr: bool, identifier: Option<String>) -> Self {
        PrintSink {
            to_stderr,
            identifier,
            prefix: String::new(),
            line: String::new(),
            _t: std::marker::PhantomData,
        }
    }
}

impl<T: Data> OneInputOperator for PrintSink<T> {
    type In = T;
    type Out = ();

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        let p = ctx.env.parallelism;
        self.prefix = match (&self.identifier, p > 1) {
            (Some(id), true) => format!("{id}:{}> ", ctx.env.subtask + 1),
            (Some(id), false) => format!("{id}> "),
            (None, true) => format!("{}> ", ctx.env.subtask + 1),
            (None, false) => String::new(),
        };
        Ok(())
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        _out: &mut Output<()>,
    ) -> Result<(), OperatorError> {
        self.line.clear();
        for r in batch.drain(..) {
            self.line.push_str(&self.prefix);
            write_text(&r.value, &mut self.line);
            self.line.push('\n');
        }
        // One write per batch keeps lines of parallel subtasks from interleaving.
        let res = if self.to_stderr {
            std::io::stderr().lock().write_all(self.line.as_bytes())
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(self.line.as_bytes()).and_then(|_| o.flush())
        };
        res.map_err(|e| OperatorError::io("writing to standard output", e))
    }
}

/// `sink_to_discard()`: drops every record (for benchmarks).
pub struct DiscardSink<T>(std::marker::PhantomData<fn(T)>);

impl<T> Default for DiscardSink<T> {
    fn default() -> Self {
        DiscardSink(std::marker::PhantomData)
    }
}

impl<T: Data> OneInputOperator for DiscardSink<T> {
    type In = T;
    type Out = ();
    #[inline]
    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        _out: &mut Output<()>,
    ) -> Result<(), OperatorError> {
        batch.clear();
        Ok(())
    }
}

/// `write_as_text(dir)`: subtask `i` writes the file `dir/<i+1>`, one record per line.
pub struct TextFileSink<T> {
    dir: PathBuf,
    file: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    line: String,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T> TextFileSink<T> {
    /// A sink writing under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        TextFileSink {
            dir,
            file: None,
            line: String::new(),
            _t: std::marker::PhantomData,
        }
    }
}

impl<T: Data> OneInputOperator for TextFileSink<T> {
    type In = T;
    type Out = ();

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            OperatorError::io(
                format!("creating output directory {}", self.dir.display()),
                e,
            )
        })?;
        let path = self.dir.join((ctx.env.subtask + 1).to_string());
        let f = std::fs::File::create(&path)
            .map_err(|e| OperatorError::io(format!("creating {}", path.display()), e))?;
        self.file = Some((path, std::io::BufWriter::new(f)));
        Ok(())
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        _out: &mut Output<()>,
    ) -> Result<(), OperatorError> {
        let Some((path, w)) = self.file.as_mut() else {
            return Err(OperatorError::Internal("text sink used before open".into()));
        };
        self.line.clear();
        for r in batch.drain(..) {
            write_text(&r.value, &mut self.line);
            self.line.push('\n');
        }
        w.write_all(self.line.as_bytes())
            .map_err(|e| OperatorError::io(format!("writing {}", path.display()), e))
    }

    fn finish(&mut self, _out: &mut Output<()>) -> Result<(), OperatorError> {
        if let Some((path, w)) = self.file.as_mut() {
            w.flush()
                .map_err(|e| OperatorError::io(format!("writing {}", path.display()), e))?;
        }
        Ok(())
    }
}

/// Collects records into a shared vector the client reads after the job
/// (`execute_and_collect`).
pub struct CollectSink<T> {
    target: Arc<Mutex<Vec<T>>>,
}

impl<T> CollectSink<T> {
    /// A sink appending to `target`.
    pub fn new(target: Arc<Mutex<Vec<T>>>) -> Self {
        CollectSink { target }
    }
}

impl<T: Data> OneInputOperator for CollectSink<T> {
    type In = T;
    type Out = ();
    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        _out: &mut Output<()>,
    ) -> Result<(), OperatorError> {
        self.target.lock().extend(batch.drain(..).map(|r| r.value));
        Ok(())
    }
}
