//! `read_text_file(path)`: a parallel source of the lines of a file or of every file in a
//! directory (sorted by name, not recursive).
//!
//! Files are cut into byte-range splits, like Flink's `FileInputFormat`; a line belongs to the
//! split in which it starts, so every line is read exactly once whatever the parallelism.
//! Split `j` goes to subtask `j % p`. A trailing `\r` is removed, as Flink's `TextInputFormat`
//! does. Invalid UTF-8 is an error naming the file and line.

use crate::{decode_position, encode_position};
use eddy_core::StreamRecord;
use eddy_runtime::source::{InputStatus, SourceContext, SourceReader};
use eddy_runtime::OperatorError;
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

/// Reads this subtask's splits line by line.
pub struct TextFileReader {
    path: PathBuf,
    splits: Vec<FileSplit>,
    current: usize,
    reader: Option<BufReader<File>>,
    pos: u64,
    restore: Option<(usize, u64)>,
    line: Vec<u8>,
}

impl TextFileReader {
    /// A reader of `path` (file or directory).
    pub fn new(path: PathBuf) -> Self {
        TextFileReader {
            path,
            splits: Vec::new(),
            current: 0,
            reader: None,
            pos: 0,
            restore: None,
            line: Vec::new(),
        }
    }

    fn open_split(&mut self, resume_at: Option<u64>) -> Result<(), OperatorError> {
        let s = &self.splits[self.current];
        let ctx = || format!("reading {}", s.path.display());
        let mut f = File::open(&s.path).map_err(|e| OperatorError::io(ctx(), e))?;
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
        let all = create_splits(&self.path, ctx.parallelism)?;
        self.splits = all
            .into_iter()
            .enumerate()
            .filter(|(j, _)| j % ctx.parallelism.max(1) == ctx.subtask)
            .map(|(_, s)| s)
            .collect();
        if let Some((split, offset)) = self.restore.take() {
            self.current = split;
            if self.current < self.splits.len() {
                self.open_split(Some(offset))?;
            }
        }
        Ok(())
    }

    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<String>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError> {
        let mut produced = 0;
        while produced < max {
            if self.current >= self.splits.len() {
                return Ok(InputStatus::EndOfInput);
            }
            if self.reader.is_none() {
                self.open_split(None)?;
            }
            let split_end = self.splits[self.current].end;
            let path = &self.splits[self.current].path;
            let Some(r) = self.reader.as_mut() else {
                return Err(OperatorError::Internal("file split not open".into()));
            };
            if self.pos >= split_end {
                self.reader = None;
                self.current += 1;
                continue;
            }
            self.line.clear();
            let n = r
                .read_until(b'\n', &mut self.line)
                .map_err(|e| OperatorError::io(format!("reading {}", path.display()), e))?;
            if n == 0 {
                self.reader = None;
                self.current += 1;
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

    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(encode_position(&[self.current as u64, self.pos]))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        let v = decode_position(position, 2)?;
        self.restore = Some((v[0] as usize, v[1]));
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
                r.splits = vec![FileSplit {
                    path: f.clone(),
                    start,
                    end,
                }];
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
}
