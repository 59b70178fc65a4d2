//! Checkpoint storage (Flink's `CheckpointStorage`): where state files and `_metadata` go.
//!
//! A URL picks the implementation: `file:///dir` or a plain path gives [`FileCheckpointStorage`]
//! with Flink's layout `<dir>/<job-id>/chk-<n>/` (state files plus `_metadata`); no URL gives
//! [`MemoryCheckpointStorage`] (Flink's JobManager storage: lost with the process). Object
//! stores come with the storage issue. Savepoints always go to a directory
//! (`<target>/savepoint-<job-id prefix>-<random>`), in the same self-contained format: state
//! handles are relative to the checkpoint directory, so it can be moved.
//!
//! Durability (files): a state file is fsynced before its handle is returned (so before the
//! task acknowledges); a new checkpoint or savepoint directory is made durable in its parent;
//! `_metadata` is written to a temporary file, fsynced, the directory fsynced (the state files'
//! entries), the file renamed into place and the directory fsynced again. A power loss
//! therefore never leaves a `_metadata` over state files that did not reach the disk.

use super::metadata::{CheckpointMetadata, StateHandle, METADATA_VERSION};
use super::CheckpointId;
use eddy_core::JobId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// The metadata file's name, as Flink's.
pub const METADATA_FILE: &str = "_metadata";

/// Storage failures, naming the file.
#[derive(Debug, Error)]
pub enum StorageError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A state or metadata file does not hold what was written.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A storage URL or restore path that cannot be used.
    #[error("invalid checkpoint location '{url}': {reason}")]
    BadLocation {
        /// The URL or path.
        url: String,
        /// Why.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One checkpoint's or savepoint's directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointLocation {
    /// The directory (a path for files, `memory:<job>/chk-<n>` in memory).
    pub dir: String,
}

impl std::fmt::Display for CheckpointLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dir)
    }
}

/// Where checkpoints are stored. Calls block on I/O: the coordinator side calls them off the
/// decision logic, tasks call `write_state` from their upload thread.
pub trait CheckpointStorage: Send + Sync {
    /// The storage's URL, for messages.
    fn url(&self) -> String;
    /// Creates the directory of checkpoint `id` of `job`.
    fn checkpoint_location(
        &self,
        job: JobId,
        id: CheckpointId,
    ) -> Result<CheckpointLocation, StorageError>;
    /// Stores one state file; returns its handle.
    fn write_state(
        &self,
        loc: &CheckpointLocation,
        name: &str,
        bytes: &[u8],
    ) -> Result<StateHandle, StorageError>;
    /// Stores one state file that `write` streams out, so a large snapshot is not first copied
    /// into one buffer; returns its handle. The default collects the bytes for
    /// [`write_state`](Self::write_state).
    fn write_state_with(
        &self,
        loc: &CheckpointLocation,
        name: &str,
        write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<StateHandle, StorageError> {
        let mut bytes = Vec::new();
        write(&mut bytes).map_err(|source| StorageError::Io {
            path: format!("{}/{name}", loc.dir),
            source,
        })?;
        self.write_state(loc, name, &bytes)
    }
    /// Reads a state file back, checking its size and CRC.
    fn read_state(
        &self,
        loc: &CheckpointLocation,
        handle: &StateHandle,
    ) -> Result<Vec<u8>, StorageError>;
    /// Writes `_metadata` atomically: the checkpoint is complete once this returns.
    fn write_metadata(
        &self,
        loc: &CheckpointLocation,
        meta: &CheckpointMetadata,
    ) -> Result<(), StorageError>;
    /// Reads `_metadata`.
    fn read_metadata(&self, loc: &CheckpointLocation) -> Result<CheckpointMetadata, StorageError>;
    /// Deletes a checkpoint (subsumed, failed, or the job ended).
    fn discard(&self, loc: &CheckpointLocation) -> Result<(), StorageError>;
    /// Deletes the job's checkpoint directory if nothing is left in it.
    fn discard_job_dir_if_empty(&self, job: JobId);
}

/// The storage holding the checkpoint or savepoint directory `dir` (a resolved location, e.g.
/// a savepoint's target or a path to restore from). The one place that picks a storage for a
/// location; file systems only for now.
pub fn storage_for_location(dir: &str) -> Arc<dyn CheckpointStorage> {
    Arc::new(FileCheckpointStorage::new(dir))
}

/// Creates a fresh savepoint directory under `target` (a savepoint's target directory) in
/// the storage that holds it; write into it through [`storage_for_location`].
pub fn savepoint_location(target: &Path, job: JobId) -> Result<CheckpointLocation, StorageError> {
    FileCheckpointStorage::savepoint_location(target, job)
}

/// The storage for a `state.checkpoints.dir` value: `None` keeps checkpoints in memory.
pub fn storage_for_url(url: Option<&str>) -> Result<Arc<dyn CheckpointStorage>, StorageError> {
    match url {
        None => Ok(Arc::new(MemoryCheckpointStorage::default())),
        Some(u) => Ok(Arc::new(FileCheckpointStorage::new(path_of_url(u)?))),
    }
}

/// A local path from `file:///x`, `file:/x` or a plain path.
pub fn path_of_url(url: &str) -> Result<PathBuf, StorageError> {
    let bad = |reason: &str| StorageError::BadLocation {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let p = if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(bad("a file URL needs an absolute path: file:///dir"));
        }
        rest
    } else if let Some(rest) = url.strip_prefix("file:") {
        rest
    } else if url.contains("://") {
        return Err(bad(
            "only file:// is supported for now (object stores come with the storage issue)",
        ));
    } else {
        url
    };
    if p.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(PathBuf::from(p))
}

/// Writes `value` as JSON to `dir/name` so that after a crash or power loss the file is either
/// absent or complete: a temporary file is written and fsynced, `dir` and its parent are
/// fsynced (so what `dir` holds, and `dir` itself, are durable), the file is renamed into place
/// and `dir` fsynced again.
pub fn write_json_durably<T: serde::Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.inprogress"));
    let path = dir.join(name);
    let json = serde_json::to_vec_pretty(value).map_err(|e| StorageError::Corrupt {
        path: path.display().to_string(),
        reason: format!("cannot encode: {e}"),
    })?;
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&json).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    sync_dir(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir)
}

/// fsyncs a directory, so the entries created in it survive a power loss.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Creates `dir` and the missing directories above it, each made durable in its parent.
fn create_dir_durably(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durably(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        // Another upload thread made it meanwhile; its entry is made durable here too.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(dir)(e)),
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Counts and checksums what passes through to the file, for the state handle.
struct ChecksummedWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
    size: u64,
}

impl<W: Write> Write for ChecksummedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or(buf);
        self.crc.update(written);
        self.size += written.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn check_handle(path: &str, handle: &StateHandle, bytes: &[u8]) -> Result<(), StorageError> {
    if bytes.len() as u64 != handle.size {
        return Err(StorageError::Corrupt {
            path: path.to_string(),
            reason: format!(
                "expected {} bytes, found {} (truncated or overwritten)",
                handle.size,
                bytes.len()
            ),
        });
    }
    if crc32(bytes) != handle.crc32 {
        return Err(StorageError::Corrupt {
            path: path.to_string(),
            reason: "checksum mismatch".into(),
        });
    }
    Ok(())
}

fn parse_metadata(path: &str, bytes: &[u8]) -> Result<CheckpointMetadata, StorageError> {
    let corrupt = |reason: String| StorageError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not valid JSON: {e}")))?;
    match v.get("version").and_then(|v| v.as_u64()) {
        Some(n) if n == METADATA_VERSION as u64 => {}
        Some(n) => {
            return Err(corrupt(format!(
                "metadata format version {n} is not supported (this Eddy reads {METADATA_VERSION})"
            )))
        }
        None => return Err(corrupt("no format version".into())),
    }
    serde_json::from_value(v).map_err(|e| corrupt(format!("unexpected contents: {e}")))
}

/// Checkpoints as files under a root directory.
#[derive(Clone, Debug)]
pub struct FileCheckpointStorage {
    root: PathBuf,
}

impl FileCheckpointStorage {
    /// Storage rooted at `root` (created on the first checkpoint).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileCheckpointStorage { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a fresh savepoint directory under `target`.
    pub fn savepoint_location(
        target: &Path,
        job: JobId,
    ) -> Result<CheckpointLocation, StorageError> {
        create_dir_durably(target)?;
        let job_hex = job.to_string();
        for attempt in 0..16u64 {
            let r = eddy_core::keygroup::fmix64(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
                    ^ (attempt << 48)
                    ^ u64::from(std::process::id()),
            );
            let dir = target.join(format!(
                "savepoint-{}-{:012x}",
                &job_hex[..6],
                r & 0xffff_ffff_ffff
            ));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    sync_dir(target)?;
                    return Ok(CheckpointLocation {
                        dir: dir.display().to_string(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io(&dir)(e)),
            }
        }
        Err(StorageError::BadLocation {
            url: target.display().to_string(),
            reason: "could not create a unique savepoint directory".into(),
        })
    }

    fn job_dir(&self, job: JobId) -> PathBuf {
        self.root.join(job.to_string())
    }
}

impl CheckpointStorage for FileCheckpointStorage {
    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn checkpoint_location(
        &self,
        job: JobId,
        id: CheckpointId,
    ) -> Result<CheckpointLocation, StorageError> {
        let dir = self.job_dir(job).join(format!("chk-{id}"));
        create_dir_durably(&dir)?;
        Ok(CheckpointLocation {
            dir: dir.display().to_string(),
        })
    }

    fn write_state(
        &self,
        loc: &CheckpointLocation,
        name: &str,
        bytes: &[u8],
    ) -> Result<StateHandle, StorageError> {
        self.write_state_with(loc, name, &mut |w| w.write_all(bytes))
    }

    fn write_state_with(
        &self,
        loc: &CheckpointLocation,
        name: &str,
        write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<StateHandle, StorageError> {
        let path = Path::new(&loc.dir).join(name);
        let file = std::fs::File::create(&path).map_err(io(&path))?;
        let mut out = std::io::BufWriter::with_capacity(
            1 << 16,
            ChecksummedWriter {
                inner: file,
                crc: crc32fast::Hasher::new(),
                size: 0,
            },
        );
        write(&mut out).map_err(io(&path))?;
        let written = out.into_inner().map_err(|e| io(&path)(e.into_error()))?;
        // On the disk before the task acknowledges: `_metadata` may name it right after.
        written.inner.sync_all().map_err(io(&path))?;
        Ok(StateHandle {
            file: name.to_string(),
            size: written.size,
            crc32: written.crc.finalize(),
        })
    }

    fn read_state(
        &self,
        loc: &CheckpointLocation,
        handle: &StateHandle,
    ) -> Result<Vec<u8>, StorageError> {
        let path = Path::new(&loc.dir).join(&handle.file);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        check_handle(&path.display().to_string(), handle, &bytes)?;
        Ok(bytes)
    }

    fn write_metadata(
        &self,
        loc: &CheckpointLocation,
        meta: &CheckpointMetadata,
    ) -> Result<(), StorageError> {
        // The rename makes the checkpoint complete: it must not reach the disk before the data
        // (the state files were fsynced by their writers; their entries are made durable here,
        // with the checkpoint directory's own entry, made by whichever upload came first).
        write_json_durably(Path::new(&loc.dir), METADATA_FILE, meta)
    }

    fn read_metadata(&self, loc: &CheckpointLocation) -> Result<CheckpointMetadata, StorageError> {
        let path = Path::new(&loc.dir).join(METADATA_FILE);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        parse_metadata(&path.display().to_string(), &bytes)
    }

    fn discard(&self, loc: &CheckpointLocation) -> Result<(), StorageError> {
        let dir = Path::new(&loc.dir);
        match std::fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(dir)(e)),
        }
    }

    fn discard_job_dir_if_empty(&self, job: JobId) {
        // Fails (harmlessly) when checkpoints are retained in it.
        let _ = std::fs::remove_dir(self.job_dir(job));
    }
}

/// Resolves a restore path (`--restore`, `execution.savepoint.path`): a `chk-<n>` or savepoint
/// directory, its `_metadata` file, or a `file://` URL of either.
pub fn resolve_restore_path(path: &str) -> Result<CheckpointLocation, StorageError> {
    let p = path_of_url(path)?;
    let dir = if p.file_name().is_some_and(|n| n == METADATA_FILE) {
        p.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        p
    };
    if !dir.is_dir() {
        return Err(StorageError::BadLocation {
            url: path.to_string(),
            reason: "no such checkpoint or savepoint directory".into(),
        });
    }
    if !dir.join(METADATA_FILE).is_file() {
        return Err(StorageError::BadLocation {
            url: path.to_string(),
            reason: format!(
                "{} has no {METADATA_FILE} file: not a completed checkpoint or savepoint",
                dir.display()
            ),
        });
    }
    Ok(CheckpointLocation {
        dir: dir.display().to_string(),
    })
}

/// Every completed checkpoint of jobs named `job_name` under a checkpoint root
/// (`<root>/<job-id>/chk-<n>/_metadata`), newest first (by completion time, then id).
/// Directories whose `_metadata` cannot be read are skipped and returned as warnings.
pub fn list_completed_checkpoints(
    root: &Path,
    job_name: &str,
) -> (
    Vec<(CheckpointLocation, CheckpointMetadata)>,
    Vec<StorageError>,
) {
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    let Ok(jobs) = std::fs::read_dir(root) else {
        return (found, warnings);
    };
    let storage = FileCheckpointStorage::new(root);
    for job in jobs.flatten() {
        let Ok(chks) = std::fs::read_dir(job.path()) else {
            continue;
        };
        for chk in chks.flatten() {
            let name = chk.file_name();
            let Some(n) = name.to_str().and_then(|s| s.strip_prefix("chk-")) else {
                continue;
            };
            if n.parse::<u64>().is_err() || !chk.path().join(METADATA_FILE).exists() {
                continue;
            }
            let loc = CheckpointLocation {
                dir: chk.path().display().to_string(),
            };
            match storage.read_metadata(&loc) {
                Ok(m) if m.job_name == job_name => found.push((loc, m)),
                Ok(_) => {}
                Err(e) => warnings.push(e),
            }
        }
    }
    found.sort_by(|a, b| {
        (b.1.completion_timestamp, b.1.checkpoint_id)
            .cmp(&(a.1.completion_timestamp, a.1.checkpoint_id))
    });
    (found, warnings)
}

/// Checkpoints kept in the JobManager's memory (no `state.checkpoints.dir`): fine for tests and
/// for recovering from task failures; lost with the process.
#[derive(Default)]
pub struct MemoryCheckpointStorage {
    files: Mutex<HashMap<String, HashMap<String, Vec<u8>>>>,
}

impl CheckpointStorage for MemoryCheckpointStorage {
    fn url(&self) -> String {
        "jobmanager (memory)".into()
    }

    fn checkpoint_location(
        &self,
        job: JobId,
        id: CheckpointId,
    ) -> Result<CheckpointLocation, StorageError> {
        let dir = format!("memory:{job}/chk-{id}");
        self.files.lock().entry(dir.clone()).or_default();
        Ok(CheckpointLocation { dir })
    }

    fn write_state(
        &self,
        loc: &CheckpointLocation,
        name: &str,
        bytes: &[u8],
    ) -> Result<StateHandle, StorageError> {
        self.files
            .lock()
            .entry(loc.dir.clone())
            .or_default()
            .insert(name.to_string(), bytes.to_vec());
        Ok(StateHandle {
            file: name.to_string(),
            size: bytes.len() as u64,
            crc32: crc32(bytes),
        })
    }

    fn read_state(
        &self,
        loc: &CheckpointLocation,
        handle: &StateHandle,
    ) -> Result<Vec<u8>, StorageError> {
        let path = format!("{}/{}", loc.dir, handle.file);
        let bytes = self
            .files
            .lock()
            .get(&loc.dir)
            .and_then(|d| d.get(&handle.file))
            .cloned()
            .ok_or_else(|| StorageError::Io {
                path: path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?;
        check_handle(&path, handle, &bytes)?;
        Ok(bytes)
    }

    fn write_metadata(
        &self,
        loc: &CheckpointLocation,
        meta: &CheckpointMetadata,
    ) -> Result<(), StorageError> {
        let json = serde_json::to_vec(meta).map_err(|e| StorageError::Corrupt {
            path: loc.dir.clone(),
            reason: format!("cannot encode: {e}"),
        })?;
        self.files
            .lock()
            .entry(loc.dir.clone())
            .or_default()
            .insert(METADATA_FILE.into(), json);
        Ok(())
    }

    fn read_metadata(&self, loc: &CheckpointLocation) -> Result<CheckpointMetadata, StorageError> {
        let path = format!("{}/{METADATA_FILE}", loc.dir);
        let bytes = self
            .files
            .lock()
            .get(&loc.dir)
            .and_then(|d| d.get(METADATA_FILE))
            .cloned()
            .ok_or_else(|| StorageError::Io {
                path: path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?;
        parse_metadata(&path, &bytes)
    }

    fn discard(&self, loc: &CheckpointLocation) -> Result<(), StorageError> {
        self.files.lock().remove(&loc.dir);
        Ok(())
    }

    fn discard_job_dir_if_empty(&self, _job: JobId) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::SnapshotKind;

    fn meta(job: JobId, id: u64, name: &str, done: i64) -> CheckpointMetadata {
        CheckpointMetadata {
            version: METADATA_VERSION,
            job_id: job,
            job_name: name.into(),
            checkpoint_id: id,
            kind: SnapshotKind::Checkpoint,
            trigger_timestamp: done - 1,
            completion_timestamp: done,
            operators: vec![],
        }
    }

    #[test]
    fn file_layout_roundtrip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileCheckpointStorage::new(dir.path());
        let job = JobId(0xabc);
        let loc = s.checkpoint_location(job, 3).unwrap();
        assert!(loc.dir.ends_with(&format!("{job}/chk-3")), "{}", loc.dir);
        let h = s.write_state(&loc, "op-1-0", b"hello").unwrap();
        assert_eq!(s.read_state(&loc, &h).unwrap(), b"hello");
        s.write_metadata(&loc, &meta(job, 3, "j", 10)).unwrap();
        assert_eq!(s.read_metadata(&loc).unwrap().checkpoint_id, 3);
        std::fs::write(Path::new(&loc.dir).join("op-1-0"), b"hellp").unwrap();
        let e = s.read_state(&loc, &h).unwrap_err().to_string();
        assert!(e.contains("op-1-0") && e.contains("checksum"), "{e}");
        std::fs::write(Path::new(&loc.dir).join("op-1-0"), b"hel").unwrap();
        assert!(s
            .read_state(&loc, &h)
            .unwrap_err()
            .to_string()
            .contains("truncated"));
        std::fs::write(Path::new(&loc.dir).join(METADATA_FILE), b"{\"version\":99}").unwrap();
        let e = s.read_metadata(&loc).unwrap_err().to_string();
        assert!(e.contains("version 99"), "{e}");
        assert!(resolve_restore_path(&format!("file://{}", loc.dir)).is_ok());
        assert!(resolve_restore_path(&format!("{}/_metadata", loc.dir)).is_ok());
        let e = resolve_restore_path(dir.path().to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("_metadata"), "{e}");
    }

    #[test]
    fn streamed_state_files_match_written_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = FileCheckpointStorage::new(dir.path());
        let memory = MemoryCheckpointStorage::default();
        // Larger than the write buffer, written in pieces of changing size.
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for s in [&file as &dyn CheckpointStorage, &memory] {
            let loc = s.checkpoint_location(JobId(7), 1).unwrap();
            let whole = s.write_state(&loc, "whole", &bytes).unwrap();
            let streamed = s
                .write_state_with(&loc, "streamed", &mut |out| {
                    for piece in bytes.chunks(3_000).chain(bytes.chunks(70_000)).take(67) {
                        out.write_all(piece)?;
                    }
                    Ok(())
                })
                .unwrap();
            assert_eq!((streamed.size, streamed.crc32), (whole.size, whole.crc32));
            assert_eq!(s.read_state(&loc, &streamed).unwrap(), bytes);
            let failed = s
                .write_state_with(&loc, "failed", &mut |_| {
                    Err(std::io::Error::other("the encoder gave up"))
                })
                .unwrap_err()
                .to_string();
            assert!(
                failed.contains("failed") && failed.contains("the encoder gave up"),
                "{failed}"
            );
        }
    }

    #[test]
    fn latest_is_newest_completed_of_the_job_name() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileCheckpointStorage::new(dir.path());
        let (a, b) = (JobId(1), JobId(2));
        for (job, id, name, t) in [
            (a, 1, "x", 10),
            (a, 2, "x", 20),
            (b, 1, "x", 30),
            (b, 5, "y", 99),
        ] {
            let loc = s.checkpoint_location(job, id).unwrap();
            s.write_metadata(&loc, &meta(job, id, name, t)).unwrap();
        }
        // An in-progress checkpoint (no metadata) is not a candidate.
        s.checkpoint_location(a, 7).unwrap();
        let (found, warnings) = list_completed_checkpoints(dir.path(), "x");
        assert!(warnings.is_empty());
        let ids: Vec<_> = found
            .iter()
            .map(|(_, m)| (m.job_id, m.checkpoint_id))
            .collect();
        assert_eq!(ids, vec![(b, 1), (a, 2), (a, 1)]);
    }

    #[test]
    fn urls() {
        assert_eq!(
            path_of_url("file:///tmp/x").unwrap(),
            PathBuf::from("/tmp/x")
        );
        assert_eq!(path_of_url("/tmp/x").unwrap(), PathBuf::from("/tmp/x"));
        assert!(path_of_url("s3://b/x")
            .unwrap_err()
            .to_string()
            .contains("only file://"));
    }
}
