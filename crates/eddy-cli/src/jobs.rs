//! The jobs built into the generic `eddy` binary: every program of `examples/`, under the same
//! name and with the same arguments (`eddy run word_count --input F --output D -p 4`). The
//! example files are compiled in here as they are; their `main` functions are unused.

use crate::JobRegistry;

#[allow(dead_code)]
#[path = "../../../examples/backpressure.rs"]
mod backpressure;

#[allow(dead_code)]
#[path = "../../../examples/count_with_timeout.rs"]
mod count_with_timeout;

#[allow(dead_code)]
#[path = "../../../examples/fraud_detection.rs"]
mod fraud_detection;

#[allow(dead_code)]
#[path = "../../../examples/session_window.rs"]
mod session_window;

#[allow(dead_code)]
#[path = "../../../examples/socket_word_count.rs"]
mod socket_word_count;

#[allow(dead_code)]
#[path = "../../../examples/window_count.rs"]
mod window_count;

#[allow(dead_code)]
#[path = "../../../examples/window_word_count.rs"]
mod window_word_count;

#[allow(dead_code)]
#[path = "../../../examples/word_count.rs"]
mod word_count;

/// `nexmark`: one Nexmark query over the generator (`eddy run nexmark --query q5 --events N
/// -p 2`). Each process prints the checksum of the output its sink subtasks saw; `eddy bench
/// nexmark` is the checked, measured harness.
mod nexmark {
    use crate::JobDefinition;
    use eddy::connectors::nexmark::GeneratorConfig;
    use eddy::datastream::StreamExecutionEnvironment;
    use eddy_nexmark::{add_query, Query, Sink};

    pub const JOB: JobDefinition = JobDefinition {
        name: "nexmark",
        about: "one Nexmark query (q0 q1 q2 q3 q4 q5 q7 q8 q11) over the Nexmark generator",
        usage: "--query q5 [--events N] [--rate EVENTS_PER_S] [-p P]",
        build,
    };

    fn build(env: &StreamExecutionEnvironment, argv: &[String]) -> Result<String, String> {
        let mut query = Query::Q0;
        let mut config = GeneratorConfig::default();
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                v.replace('_', "")
                    .parse::<u64>()
                    .map_err(|e| format!("{flag} {v}: {e}"))
            };
            match flag.as_str() {
                "--query" => {
                    query = v
                        .parse()
                        .map_err(|e: eddy_nexmark::UnknownQuery| e.to_string())?
                }
                "--events" => config.events = number()?,
                "--rate" => config.events_per_second = number()?,
                "-p" | "--parallelism" => {
                    env.set_parallelism(number()?.max(1) as usize);
                }
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        let label = format!("nexmark {}", query.name());
        add_query(env, query, &config, &Sink::Report(label)).map_err(|e| e.to_string())?;
        Ok(format!("Nexmark {}", query.name()))
    }
}

/// The registry of built-in jobs.
pub fn builtin() -> JobRegistry {
    JobRegistry::new(&[
        backpressure::JOB,
        count_with_timeout::JOB,
        fraud_detection::JOB,
        nexmark::JOB,
        session_window::JOB,
        socket_word_count::JOB,
        window_count::JOB,
        window_word_count::JOB,
        word_count::JOB,
    ])
}
