//! The JobResultStore (Flink's): the terminal result of every job — FINISHED, CANCELED or
//! FAILED, with its id, its (logical) name and when it ended — written durably *before* the
//! job's checkpoints are cleaned up, so that a restart of the same logical job finds it and
//! does nothing instead of replaying older checkpoints a second time.
//!
//! Layout as Flink's `FileSystemJobResultStore`: one JSON file per job in the store's
//! directory, `<job-id>_DIRTY.json` while the job's cleanup is pending, renamed to
//! `<job-id>.json` once it is done. The directory is `job-result-store.storage-path`, else
//! `job-result-store/` in the job's checkpoint directory (`state.checkpoints.dir`); a job
//! checkpointing to the jobmanager's memory has no store (nothing of it survives the process).
//! Entries are kept (Flink's `delete-on-commit` would let a finished job be replayed).

use crate::jobmanager::job_master::JobStatus;
use eddy_core::config::ExecutionConfig;
use eddy_core::JobId;
use eddy_runtime::checkpoint::storage::{path_of_url, sync_dir, write_json_durably};
use eddy_runtime::checkpoint::StorageError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format version of an entry.
pub const JOB_RESULT_VERSION: u32 = 1;

const DIRTY_SUFFIX: &str = "_DIRTY.json";
const CLEAN_SUFFIX: &str = ".json";

/// A job's terminal result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// The entry's format version.
    pub version: u32,
    /// The job's id.
    pub job_id: JobId,
    /// The job's name: the logical job that `--restore latest` resumes.
    pub job_name: String,
    /// FINISHED, CANCELED or FAILED.
    pub state: JobStatus,
    /// When the job ended (ms since the epoch).
    pub end_time_ms: i64,
    /// Why it failed, for FAILED.
    #[serde(default)]
    pub error: Option<String>,
}

/// A directory of job results.
#[derive(Clone, Debug)]
pub struct FileJobResultStore {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl FileJobResultStore {
    /// A store in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileJobResultStore { dir: dir.into() }
    }

    /// The store a job's results go to; `None` when it has no durable place (no
    /// `job-result-store.storage-path` and no checkpoint directory).
    pub fn for_job(config: &ExecutionConfig) -> Result<Option<Self>, StorageError> {
        if let Some(p) = &config.job_result_store_path {
            return Ok(Some(Self::new(path_of_url(p)?)));
        }
        match &config.checkpoint.storage {
            Some(url) => Ok(Some(Self::in_checkpoint_dir(&path_of_url(url)?))),
            None => Ok(None),
        }
    }

    /// The default store of a checkpoint directory.
    pub fn in_checkpoint_dir(root: &Path) -> Self {
        Self::new(root.join("job-result-store"))
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, job: JobId, suffix: &str) -> PathBuf {
        self.dir.join(format!("{job}{suffix}"))
    }

    /// Records a result whose cleanup is still to come (`<job-id>_DIRTY.json`), durably: the
    /// file and its directory entry are on the disk when this returns.
    pub fn create_dirty(&self, result: &JobResult) -> Result<(), StorageError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        write_json_durably(
            &self.dir,
            &format!("{}{DIRTY_SUFFIX}", result.job_id),
            result,
        )
    }

    /// The job's cleanup is done: its entry becomes `<job-id>.json`.
    pub fn mark_clean(&self, job: JobId) -> Result<(), StorageError> {
        let (dirty, clean) = (self.path(job, DIRTY_SUFFIX), self.path(job, CLEAN_SUFFIX));
        std::fs::rename(&dirty, &clean).map_err(io(&dirty))?;
        sync_dir(&self.dir)
    }

    fn read(path: &Path) -> Result<JobResult, StorageError> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let r: JobResult = serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
            path: path.display().to_string(),
            reason: format!("not a job result: {e}"),
        })?;
        if r.version != JOB_RESULT_VERSION {
            return Err(StorageError::Corrupt {
                path: path.display().to_string(),
                reason: format!(
                    "job result format version {} is not supported (this Eddy reads \
                     {JOB_RESULT_VERSION})",
                    r.version
                ),
            });
        }
        Ok(r)
    }

    /// Every recorded result (dirty ones too: the job ended, only its cleanup may be
    /// unfinished), and the entries that could not be read.
    pub fn results(&self) -> (Vec<JobResult>, Vec<StorageError>) {
        let (mut found, mut errors) = (Vec::new(), Vec::new());
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (found, errors),
            Err(e) => {
                errors.push(io(&self.dir)(e));
                return (found, errors);
            }
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || !name.ends_with(CLEAN_SUFFIX) {
                continue;
            }
            match Self::read(&e.path()) {
                Ok(r) => found.push(r),
                Err(err) => errors.push(err),
            }
        }
        found.sort_by_key(|r| (r.end_time_ms, r.job_id.0));
        (found, errors)
    }

    /// The recorded result of a job.
    pub fn get(&self, job: JobId) -> Result<Option<JobResult>, StorageError> {
        for suffix in [CLEAN_SUFFIX, DIRTY_SUFFIX] {
            let p = self.path(job, suffix);
            if p.exists() {
                return Self::read(&p).map(Some);
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(job: u128, name: &str, end: i64) -> JobResult {
        JobResult {
            version: JOB_RESULT_VERSION,
            job_id: JobId(job),
            job_name: name.into(),
            state: JobStatus::Finished,
            end_time_ms: end,
            error: None,
        }
    }

    #[test]
    fn dirty_then_clean_and_unreadable_entries_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileJobResultStore::new(dir.path().join("jrs"));
        assert!(s.results().0.is_empty() && s.results().1.is_empty());
        s.create_dirty(&result(1, "a", 20)).unwrap();
        assert!(s.dir().join(format!("{}_DIRTY.json", JobId(1))).is_file());
        assert_eq!(s.get(JobId(1)).unwrap(), Some(result(1, "a", 20)));
        s.mark_clean(JobId(1)).unwrap();
        assert!(s.dir().join(format!("{}.json", JobId(1))).is_file());
        s.create_dirty(&result(2, "b", 10)).unwrap();
        let (found, errors) = s.results();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(found, vec![result(2, "b", 10), result(1, "a", 20)]);
        std::fs::write(s.dir().join(format!("{}.json", JobId(3))), b"{").unwrap();
        let (found, errors) = s.results();
        assert_eq!(found.len(), 2);
        assert!(
            errors[0].to_string().contains("not a job result"),
            "{errors:?}"
        );
        assert_eq!(s.get(JobId(4)).unwrap(), None);
    }
}
