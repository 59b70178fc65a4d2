//! The jobs a binary carries (DESIGN §1, application mode): each a name and a function that
//! builds the job's pipeline on a `StreamExecutionEnvironment` from its arguments. The same
//! function runs in the client (plan, local runs), in the jobmanager and in every taskmanager,
//! so it must be deterministic for the same arguments.

use eddy::cluster::deployment::{JobSubmission, ProgramBuildError, ProgramBuilder};
use eddy::core::config::ExecutionConfig;
use eddy::datastream::StreamExecutionEnvironment;
use eddy::runtime::factory::JobProgram;

/// Builds a job's pipeline from its arguments; returns the job's name (what `execute` would
/// get) or a message saying what is wrong with the arguments.
pub type BuildFn = fn(&StreamExecutionEnvironment, &[String]) -> Result<String, String>;

/// One job of a binary.
#[derive(Clone, Copy, Debug)]
pub struct JobDefinition {
    /// The name `eddy run` takes (e.g. `word_count`).
    pub name: &'static str,
    /// One line on what it does.
    pub about: &'static str,
    /// Its arguments, for usage messages.
    pub usage: &'static str,
    /// The builder.
    pub build: BuildFn,
}

/// The jobs of a binary.
#[derive(Clone, Debug, Default)]
pub struct JobRegistry {
    jobs: Vec<JobDefinition>,
}

impl JobRegistry {
    /// A registry of these jobs.
    pub fn new(jobs: &[JobDefinition]) -> Self {
        JobRegistry {
            jobs: jobs.to_vec(),
        }
    }

    /// Adds a job.
    pub fn register(mut self, job: JobDefinition) -> Self {
        self.jobs.push(job);
        self
    }

    /// The job called `name`.
    pub fn get(&self, name: &str) -> Result<&JobDefinition, ProgramBuildError> {
        self.jobs
            .iter()
            .find(|j| j.name == name)
            .ok_or_else(|| ProgramBuildError::UnknownJob {
                entry: name.to_string(),
                known: self.names(),
            })
    }

    /// Every job.
    pub fn jobs(&self) -> &[JobDefinition] {
        &self.jobs
    }

    fn names(&self) -> Vec<String> {
        self.jobs.iter().map(|j| j.name.to_string()).collect()
    }

    /// An environment with `settings` applied and the job's pipeline built on it; returns the
    /// environment and the job's name.
    pub fn build_env(
        &self,
        entry: &str,
        args: &[String],
        settings: &std::collections::BTreeMap<String, String>,
    ) -> Result<(StreamExecutionEnvironment, String), ProgramBuildError> {
        let def = self.get(entry)?;
        let mut config = ExecutionConfig::default();
        config
            .apply(settings)
            .map_err(ProgramBuildError::InvalidSettings)?;
        let env = StreamExecutionEnvironment::with_config(config);
        let name = (def.build)(&env, args).map_err(|message| ProgramBuildError::BadArguments {
            entry: entry.to_string(),
            message,
            usage: def.usage.to_string(),
        })?;
        Ok((env, name))
    }
}

impl ProgramBuilder for JobRegistry {
    fn build(&self, s: &JobSubmission) -> Result<JobProgram, ProgramBuildError> {
        let (env, name) = self.build_env(&s.entry, &s.args, &s.settings)?;
        env.get_program(&name)
            .map_err(ProgramBuildError::InvalidJob)
    }

    fn job_names(&self) -> Vec<String> {
        self.names()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy::cluster::deployment::build_checked;
    use eddy::core::JobId;

    fn job(env: &StreamExecutionEnvironment, args: &[String]) -> Result<String, String> {
        let n: i64 = args
            .first()
            .and_then(|a| a.parse().ok())
            .ok_or("give a number")?;
        env.from_sequence(1, n).map(|x: i64| x + 1).print();
        Ok("test".into())
    }

    fn submission(args: &[&str], fingerprint: &str) -> JobSubmission {
        JobSubmission {
            job_id: JobId(7),
            entry: "t".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            settings: [("parallelism.default".to_string(), "2".to_string())].into(),
            fingerprint: fingerprint.into(),
        }
    }

    fn ok(r: &JobRegistry, s: &JobSubmission) -> JobProgram {
        match build_checked(r, s) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn err(r: &JobRegistry, s: &JobSubmission) -> String {
        match build_checked(r, s) {
            Ok(_) => panic!("should fail"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_fingerprint_catches_a_different_graph_and_names_both() {
        let r = JobRegistry::new(&[JobDefinition {
            name: "t",
            about: "",
            usage: "N",
            build: job,
        }]);
        let fp = ok(&r, &submission(&["5"], "")).fingerprint();
        // The same submission builds the same graph, with the dispatcher's job id.
        assert_eq!(ok(&r, &submission(&["5"], &fp)).job_graph.job_id, JobId(7));
        // A different parallelism is a different graph.
        let mut other = submission(&["5"], &fp);
        other
            .settings
            .insert("parallelism.default".into(), "3".into());
        let e = err(&r, &other);
        assert!(e.contains("fingerprint mismatch") && e.contains(&fp), "{e}");
        // Unknown jobs and bad arguments say what is wrong.
        let mut unknown = submission(&["5"], "");
        unknown.entry = "nope".into();
        assert!(err(&r, &unknown).contains("unknown job 'nope'; this binary has: t"));
        assert!(err(&r, &submission(&[], "")).contains("give a number"));
        // Each is its own kind, so the REST API can answer with the right status.
        assert!(matches!(
            build_checked(&r, &unknown),
            Err(ProgramBuildError::UnknownJob { .. })
        ));
        assert!(matches!(
            build_checked(&r, &other),
            Err(ProgramBuildError::FingerprintMismatch { .. })
        ));
        assert!(matches!(
            build_checked(&r, &submission(&[], "")),
            Err(ProgramBuildError::BadArguments { .. })
        ));
    }
}
