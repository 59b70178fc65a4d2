//! `read_text_file(path)`: a parallel source of the lines of a file or of every file in a
//! directory (sorted by name, not recursive).
//!
//! Files are cut into byte-range splits, like Flink's `FileInputFormat`; a line belongs to the
//! split in which it starts, so every line is read exactly once whatever the parallelism.
//! Split `j` goes to subtask `j % p`. A trailing `\r` is removed, as Flink's `TextInputFormat`
//! does. Invalid UTF-8 is an error naming the file and line.
//!
//! A checkpoint holds the splits themselves (path, byte range, offset reached), as Flink's
//! `FileSource` does, never indices into a listing: files added or grown after the checkpoint
//! do not shift what a restore reads, and the splits are handed out again on a restore at
//! another parallelism. A file that shrank below a split's end is an error naming it.

use crate::split::{decode_all, SplitWriter};
use eddy_core::StreamRecord;
use eddy_runtime::source::{InputStatus, Rescale, SourceContext, SourceReader};
use eddy_runtime::OperatorError;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Splits smaller than this are not cut further.
const MIN_SPLIT_BYTES: u64 = 1 << 20;

/// One byte range of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSplit {
    /// The file.
    pub path: PathBuf,
    /// First byte (inclusive).
    pub start: u64,
    /// Last byte (exclusive); lines starting before it belong to the split.
    pub end: u64,
}

/// The files under `path`: the file itself, or a directory's regular files sorted by name.
pub fn list_files(path: &Path) -> Result<Vec<PathBuf>, OperatorError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| OperatorError::io(format!("reading input path {}", path.display()), e))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let rd = std::fs::read_dir(path)
        .map_err(|e| OperatorError::io(format!("listing directory {}", path.display()), e))?;
    for entry in rd {
        let entry = entry
            .map_err(|e| OperatorError::io(format!("listing directory {}", path.display()), e))?;
        let p = entry.path();
        let name = entry.file_name();
        let hidden = name.to_string_lossy().starts_with(['.', '_']);
        if p.is_file() && !hidden {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Cuts the files into splits, about `parallelism` per file when files are large.
pub fn create_splits(path: &Path, parallelism: usize) -> Result<Vec<FileSplit>, OperatorError> {
    let mut splits = Vec::new();
    for f in list_files(path)? {
        let len = std::fs::metadata(&f)
            .map_err(|e| OperatorError::io(format!("reading {}", f.display()), e))?
            .len();
        let size = (len / parallelism.max(1) as u64 + 1).max(MIN_SPLIT_BYTES);
        let mut start = 0;
        while start < len {
            let end = (start + size).min(len);
            splits.push(FileSplit {
                path: f.clone(),
                start,
                end,
            });
            start = end;
        }
    }
    Ok(splits)
}

const KIND: &[u8; 4] = b"TXT\0";

/// A path as the bytes the operating system names it by.
fn path_bytes(p: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        p.to_string_lossy().into_owned().into_bytes()
    }
}

fn path_from_bytes(b: &[u8]) -> Result<PathBuf, OperatorError> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(b)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(b).map(PathBuf::from).map_err(|_| {
            OperatorError::BadInput(
                "the text file source's checkpointed split names a path that is not UTF-8".into(),
            )
        })
    }
}

/// A split and how far it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SplitProgress {
    split: FileSplit,
    /// The offset of the next line to read, once reading started.
    resume_at: Option<u64>,
}

/// Reads this subtask's splits line by line.
pub struct TextFileReader {
    path: PathBuf,
    /// Splits still to read, the current one first.
    splits: VecDeque<SplitProgress>,
    reader: Option<BufReader<File>>,
    pos: u64,
    restored: bool,
    line: Vec<u8>,
}

impl TextFileReader {
    /// A reader of `path` (file or directory).
    pub fn new(path: PathBuf) -> Self {
        TextFileReader {
            path,
            splits: VecDeque::new(),
            reader: None,
            pos: 0,
            restored: false,
            line: Vec::new(),
        }
    }

    fn open_split(&mut self) -> Result<(), OperatorError> {
        let Some(SplitProgress {
            split: s,
            resume_at,
        }) = self.splits.front()
        else {
            return Err(OperatorError::Internal("no file split to open".into()));
        };
        let ctx = || format!("reading {}", s.path.display());
        let mut f = File::open(&s.path).map_err(|e| OperatorError::io(ctx(), e))?;
        let len = f.metadata().map_err(|e| OperatorError::io(ctx(), e))?.len();
        if len < s.end {
            return Err(OperatorError::BadInput(format!(
                "{} is {len} bytes, shorter than when its split [{}, {}) was made: the file was \
                 truncated or replaced while the job was reading it",
                s.path.display(),
                s.start,
                s.end
            )));
        }
        let mut pos = resume_at.unwrap_or(s.start);
        let at_line_start = resume_at.is_some() || s.start == 0;
        f.seek(SeekFrom::Start(if at_line_start { pos } else { pos - 1 }))
            .map_err(|e| OperatorError::io(ctx(), e))?;
        let mut r = BufReader::with_capacity(64 * 1024, f);
        if !at_line_start {
            // The line under the split start belongs to the previous split: skip through its end.
            let mut skip = Vec::new();
            let n = r
                .read_until(b'\n', &mut skip)
                .map_err(|e| OperatorError::io(ctx(), e))?;
            pos = pos - 1 + n as u64;
        }
        self.reader = Some(r);
        self.pos = pos;
        Ok(())
    }

    fn next_split(&mut self) {
        self.reader = None;
        self.splits.pop_front();
    }

    fn line_number(path: &Path, offset: u64) -> usize {
        let Ok(f) = File::open(path) else { return 0 };
        let mut n = 1;
        for b in BufReader::new(f).take(offset).bytes() {
            if matches!(b, Ok(b'\n')) {
                n += 1;
            }
        }
        n
    }
}

impl SourceReader for TextFileReader {
    type Out = String;

    fn open(&mut self, ctx: &SourceContext) -> Result<(), OperatorError> {
        if self.restored {
            return Ok(());
        }
        let all = create_splits(&self.path, ctx.parallelism)?;
        self.splits = all
            .into_iter()
            .enumerate()
            .filter(|(j, _)| j % ctx.parallelism.max(1) == ctx.subtask)
            .map(|(_, split)| SplitProgress {
                split,
                resume_at: None,
            })
            .collect();
        Ok(())
    }

    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<String>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        let mut produced = 0;
        while produced < max {
            let Some(current) = self.splits.front() else {
                return Ok(InputStatus::EndOfInput);
            };
            let split_end = current.split.end;
            if self.reader.is_none() {
                self.open_split()?;
            }
            let Some(current) = self.splits.front() else {
                return Err(OperatorError::Internal("file split vanished".into()));
            };
            let path = &current.split.path;
            let Some(r) = self.reader.as_mut() else {
                return Err(OperatorError::Internal("file split not open".into()));
            };
            if self.pos >= split_end {
                self.next_split();
                continue;
            }
            self.line.clear();
            let n = r
                .read_until(b'\n', &mut self.line)
                .map_err(|e| OperatorError::io(format!("reading {}", path.display()), e))?;
            if n == 0 {
                if self.pos < split_end {
                    return Err(OperatorError::BadInput(format!(
                        "{} ended at byte {} inside its split [{}, {}): the file was truncated \
                         while the job was reading it",
                        path.display(),
                        self.pos,
                        current.split.start,
                        split_end
                    )));
                }
                self.next_split();
                continue;
            }
            let line_start = self.pos;
            self.pos += n as u64;
            let mut bytes = &self.line[..];
            if let Some(b) = bytes.strip_suffix(b"\n") {
                bytes = b;
            }
            if let Some(b) = bytes.strip_suffix(b"\r") {
                bytes = b;
            }
            match std::str::from_utf8(bytes) {
                Ok(s) => out.push(StreamRecord::new(s.to_string())),
                Err(e) => {
                    return Err(OperatorError::BadInput(format!(
                        "{}:{}: invalid UTF-8 at byte {} of the line",
                        path.display(),
                        Self::line_number(path, line_start),
                        e.valid_up_to()
                    )))
                }
            }
            produced += 1;
        }
        Ok(InputStatus::MoreAvailable)
    }

    fn snapshot_splits(&mut self) -> Result<Vec<Vec<u8>>, OperatorError> {
        let open = self.reader.is_some();
        let pos = self.pos;
        Ok(self
            .splits
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let resume_at = if i == 0 && open {
                    Some(pos)
                } else {
                    p.resume_at
                };
                SplitWriter::new(KIND)
                    .bytes(&path_bytes(&p.split.path))
                    .u64(p.split.start)
                    .u64(p.split.end)
                    // u64::MAX: not started (a split's offset is always below it).
                    .u64(resume_at.unwrap_or(u64::MAX))
                    .finish()
            })
            .collect())
    }

    fn restore_splits(
        &mut self,
        splits: Vec<Vec<u8>>,
        _rescale: Option<Rescale>,
    ) -> Result<(), OperatorError> {
        let progress = decode_all(&splits, KIND, "text file", |r| {
            let path = path_from_bytes(r.bytes("path")?)?;
            let start = r.u64("start")?;
            let end = r.u64("end")?;
            let resume = r.u64("offset")?;
            Ok(SplitProgress {
                split: FileSplit { path, start, end },
                resume_at: (resume != u64::MAX).then_some(resume),
            })
        })?;
        self.splits = progress.into();
        self.restored = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path, p: usize, split_bytes_override: bool) -> Vec<String> {
        let _ = split_bytes_override;
        let mut lines = Vec::new();
        for i in 0..p {
            let mut r = TextFileReader::new(path.to_path_buf());
            r.open(&SourceContext {
                subtask: i,
                parallelism: p,
            })
            .unwrap();
            let mut out = Vec::new();
            while r.poll_next(&mut out, 7).unwrap() != InputStatus::EndOfInput {}
            lines.extend(out.into_iter().map(|r| r.value));
        }
        lines.sort();
        lines
    }

    #[test]
    fn every_line_once_at_any_parallelism_and_split_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!("line {i} {}\r\n", "x".repeat(i % 300)));
        }
        std::fs::write(dir.path().join("a.txt"), &text).unwrap();
        std::fs::write(dir.path().join("b.txt"), "last\nno newline").unwrap();
        let mut expected: Vec<String> = text.lines().map(str::to_string).collect();
        expected.push("last".into());
        expected.push("no newline".into());
        expected.sort();
        for p in [1, 2, 3, 4] {
            assert_eq!(read_all(dir.path(), p, false), expected, "p={p}");
        }
        // Small splits: cut a file at arbitrary byte positions.
        let f = dir.path().join("a.txt");
        let len = std::fs::metadata(&f).unwrap().len();
        for cut in [1u64, 17, 1000, len - 1] {
            let mut got = Vec::new();
            for (start, end) in [(0, cut), (cut, len)] {
                let mut r = TextFileReader::new(f.clone());
                r.splits = VecDeque::from([SplitProgress {
                    split: FileSplit {
                        path: f.clone(),
                        start,
                        end,
                    },
                    resume_at: None,
                }]);
                let mut out = Vec::new();
                while r.poll_next(&mut out, 100).unwrap() != InputStatus::EndOfInput {}
                got.extend(out.into_iter().map(|r| r.value));
            }
            let want: Vec<String> = text.lines().map(str::to_string).collect();
            assert_eq!(got, want, "cut at {cut}");
        }
    }

    #[test]
    fn invalid_utf8_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.txt");
        std::fs::write(&f, b"ok\nfine\nbad \xff here\n").unwrap();
        let mut r = TextFileReader::new(f);
        r.open(&SourceContext {
            subtask: 0,
            parallelism: 1,
        })
        .unwrap();
        let mut out = Vec::new();
        let err = r.poll_next(&mut out, 100).unwrap_err().to_string();
        assert!(err.contains("bad.txt:3"), "{err}");
    }

    #[test]
    fn restore_reads_the_checkpointed_splits_whatever_the_directory_became() {
        let dir = tempfile::tempdir().unwrap();
        let lines = |prefix: &str, n: usize| -> String {
            (0..n).map(|i| format!("{prefix} {i}\n")).collect()
        };
        std::fs::write(dir.path().join("b.txt"), lines("b", 300)).unwrap();
        std::fs::write(dir.path().join("c.txt"), lines("c", 300)).unwrap();
        let ctx = SourceContext {
            subtask: 0,
            parallelism: 1,
        };
        let mut r = TextFileReader::new(dir.path().to_path_buf());
        r.open(&ctx).unwrap();
        let mut out = Vec::new();
        r.poll_next(&mut out, 100).unwrap();
        let splits = r.snapshot_splits().unwrap();
        // Between checkpoint and restore: a file sorting first appears, b.txt grows.
        std::fs::write(dir.path().join("a.txt"), lines("a", 50)).unwrap();
        let mut b = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("b.txt"))
            .unwrap();
        std::io::Write::write_all(&mut b, b"b appended\n").unwrap();
        let mut r = TextFileReader::new(dir.path().to_path_buf());
        r.restore_splits(splits.clone(), None).unwrap();
        r.open(&ctx).unwrap();
        while r.poll_next(&mut out, 64).unwrap() != InputStatus::EndOfInput {}
        let got: Vec<String> = out.into_iter().map(|r| r.value).collect();
        let want: Vec<String> = format!("{}{}", lines("b", 300), lines("c", 300))
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(got, want);
        // A file that shrank is named, not half read.
        std::fs::write(dir.path().join("b.txt"), "short\n").unwrap();
        let mut r = TextFileReader::new(dir.path().to_path_buf());
        r.restore_splits(splits, None).unwrap();
        r.open(&ctx).unwrap();
        let err = r.poll_next(&mut Vec::new(), 64).unwrap_err().to_string();
        assert!(err.contains("b.txt") && err.contains("shorter"), "{err}");
    }
}
