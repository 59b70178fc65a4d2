//! The CLI's REST client: what `eddy run/list/cancel/stop/savepoint` ask the jobmanager.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::time::Duration;

/// A client of one jobmanager's REST endpoint.
pub struct RestClient {
    base: String,
    agent: ureq::Agent,
}

impl RestClient {
    /// A client of `host:port`.
    pub fn new(address: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        RestClient {
            base: format!("http://{address}"),
            agent,
        }
    }

    fn read(&self, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value> {
        let mut r = r.map_err(|e| anyhow!("cannot reach the jobmanager at {}: {e}", self.base))?;
        let status = r.status();
        let body: Option<Value> = r.body_mut().read_json().ok();
        if !status.is_success() {
            let msg = body
                .as_ref()
                .and_then(|b| b["errors"].as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_else(|| status.to_string());
            bail!("{msg}");
        }
        body.ok_or_else(|| {
            anyhow!(
                "the jobmanager at {} answered {status} without JSON",
                self.base
            )
        })
    }

    /// GET a path.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.read(self.agent.get(format!("{}{path}", self.base)).call())
    }

    /// POST JSON to a path.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.read(
            self.agent
                .post(format!("{}{path}", self.base))
                .send_json(body),
        )
    }

    /// PATCH a path.
    pub fn patch(&self, path: &str) -> Result<Value> {
        self.read(
            self.agent
                .patch(format!("{}{path}", self.base))
                .send_empty(),
        )
    }

    /// Polls a savepoint operation until it completes; returns the savepoint's path.
    pub fn await_savepoint(&self, job: &str, trigger: &str, timeout: Duration) -> Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let v = self.get(&format!("/jobs/{job}/savepoints/{trigger}"))?;
            if v["status"]["id"] == "COMPLETED" {
                if let Some(p) = v["operation"]["location"].as_str() {
                    return Ok(p.to_string());
                }
                bail!(
                    "{}",
                    v["operation"]["failure-cause"]["stack-trace"]
                        .as_str()
                        .unwrap_or("the savepoint failed")
                );
            }
            if std::time::Instant::now() > deadline {
                bail!("the savepoint did not complete within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
