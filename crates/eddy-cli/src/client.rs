//! The CLI's REST client: what `eddy run/list/cancel/stop/savepoint` ask the jobmanager. Bodies
//! are the typed messages of `eddy::cluster::rest_api`, the ones the server answers with.

use anyhow::{anyhow, bail, Result};
use eddy::cluster::rest_api::{ErrorResponse, QueueStatusId, SavepointStatusResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
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

    fn read<T: DeserializeOwned>(
        &self,
        path: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T> {
        let mut r = r.map_err(|e| anyhow!("cannot reach the jobmanager at {}: {e}", self.base))?;
        let status = r.status();
        let text = r
            .body_mut()
            .read_to_string()
            .map_err(|e| anyhow!("reading the answer of {}{path}: {e}", self.base))?;
        if !status.is_success() {
            match serde_json::from_str::<ErrorResponse>(&text) {
                Ok(e) => bail!("{}", e.errors.join("; ")),
                Err(_) => bail!("{status} from {}{path}", self.base),
            }
        }
        serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "the jobmanager at {} answered {path} with an unexpected body ({e}): {text}",
                self.base
            )
        })
    }

    /// GET a path.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.read(path, self.agent.get(format!("{}{path}", self.base)).call())
    }

    /// POST JSON to a path.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.read(
            path,
            self.agent
                .post(format!("{}{path}", self.base))
                .send_json(body),
        )
    }

    /// PATCH a path (its answer is an empty object).
    pub fn patch(&self, path: &str) -> Result<()> {
        let _: serde_json::Map<String, serde_json::Value> = self.read(
            path,
            self.agent
                .patch(format!("{}{path}", self.base))
                .send_empty(),
        )?;
        Ok(())
    }

    /// Polls a savepoint operation until it completes; returns the savepoint's path.
    pub fn await_savepoint(&self, job: &str, trigger: &str, timeout: Duration) -> Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let v: SavepointStatusResponse =
                self.get(&format!("/jobs/{job}/savepoints/{trigger}"))?;
            if v.status.id == QueueStatusId::Completed {
                let op = v
                    .operation
                    .unwrap_or(eddy::cluster::rest_api::SavepointInfo {
                        location: None,
                        failure_cause: None,
                    });
                if let Some(p) = op.location {
                    return Ok(p);
                }
                bail!(
                    "{}",
                    op.failure_cause
                        .map(|c| c.stack_trace)
                        .unwrap_or_else(|| "the savepoint failed".to_string())
                );
            }
            if std::time::Instant::now() > deadline {
                bail!("the savepoint did not complete within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
