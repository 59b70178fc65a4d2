//! `env.execute_with(LocalExecutor::with_rest(..))`: a job run from a program on the embedded
//! MiniCluster is watched and steered over the same REST API a jobmanager serves (Flink's
//! `createLocalEnvironmentWithWebUI`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use eddy_testing::{get_json, patch, request, request_raw};
use serde_json::Value;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

mod common;
use std::time::{Duration, Instant};

/// A job that runs until it is cancelled: a record a millisecond on each of 2 subtasks.
fn endless(taskmanagers: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(2);
    env.set_config(
        eddy::core::config::MINICLUSTER_TASKMANAGERS,
        &taskmanagers.to_string(),
    )
    .unwrap();
    env.from_sequence(0, i64::MAX)
        .map(|v: i64| {
            std::thread::sleep(Duration::from_millis(1));
            v
        })
        .rebalance()
        .map(|v: i64| v + 1)
        .sink_to_discard();
    env
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_program_on_the_minicluster_is_watched_and_cancelled_over_rest() {
    let executor = LocalExecutor::default().with_rest("127.0.0.1:0").unwrap();
    let base = format!("http://{}", executor.rest_address().unwrap());
    for (run, taskmanagers) in [(1, 2), (2, 1)] {
        let env = endless(taskmanagers);
        let mut client = env.execute_with(&executor, "watched").unwrap();
        let id = client.job_id().to_string();
        wait_for(&format!("run {run}: job {id} RUNNING over REST"), || {
            get_json(&format!("{base}/jobs/{id}"))["state"] == "RUNNING"
        });
        let jobs = get_json(&format!("{base}/jobs"));
        assert!(jobs.to_string().contains(&id), "run {run}: {jobs}");
        let tms = get_json(&format!("{base}/taskmanagers"));
        assert_eq!(
            tms["taskmanagers"].as_array().map(Vec::len),
            Some(taskmanagers),
            "run {run}: {tms}"
        );
        let overview = get_json(&format!("{base}/overview"));
        assert_eq!(overview["jobs-running"], 1, "run {run}: {overview}");
        assert_eq!(patch(&format!("{base}/jobs/{id}?mode=cancel")), 202);
        let err = client.wait().unwrap_err();
        assert!(err.to_string().contains("cancelled"), "run {run}: {err}");
        wait_for(&format!("run {run}: job {id} CANCELED over REST"), || {
            get_json(&format!("{base}/jobs/{id}"))["state"] == "CANCELED"
        });
    }
}

#[test]
fn a_rest_port_in_use_fails_before_any_job_runs() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let err = LocalExecutor::default().with_rest(&bind).err().unwrap();
    let text = err.to_string();
    assert!(text.contains(&bind) && text.contains("rest.port"), "{text}");
}

/// Checks `value` against the OpenAPI `schema` (resolving `$ref`s in `doc`): objects have
/// every required property and no undocumented one, arrays' items and nested objects match,
/// enums hold a listed value. Returns what does not match, with its JSON path.
fn mismatches(doc: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        let resolved = &doc["components"]["schemas"][name];
        assert!(!resolved.is_null(), "{path}: unresolved schema {r}");
        return mismatches(doc, resolved, value, path, out);
    }
    if let Some(alternatives) = schema["oneOf"].as_array() {
        // `Option<T>` of a documented type: null or T.
        let fits = alternatives.iter().any(|s| {
            let mut m = Vec::new();
            if s["type"] == "null" {
                return value.is_null();
            }
            mismatches(doc, s, value, path, &mut m);
            m.is_empty()
        });
        if !fits {
            out.push(format!("{path}: {value} fits none of {schema}"));
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            out.push(format!("{path}: {value} not one of {allowed:?}"));
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if value.is_null() {
        if !types.is_empty() && !types.contains(&"null") {
            out.push(format!("{path}: null where {types:?} is documented"));
        }
        return;
    }
    if types.contains(&"object") {
        let Some(obj) = value.as_object() else {
            return out.push(format!("{path}: {value} is not an object"));
        };
        let props = schema["properties"].as_object();
        for req in schema["required"].as_array().into_iter().flatten() {
            let k = req.as_str().unwrap_or_default();
            if !obj.contains_key(k) {
                out.push(format!("{path}: required '{k}' missing"));
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => mismatches(doc, s, v, &format!("{path}.{k}"), out),
                None if schema["additionalProperties"].is_object() => mismatches(
                    doc,
                    &schema["additionalProperties"],
                    v,
                    &format!("{path}.{k}"),
                    out,
                ),
                None if props.is_none() => {} // a free-form object (the plan)
                None => out.push(format!("{path}: '{k}' is not documented")),
            }
        }
    } else if types.contains(&"array") {
        let Some(items) = value.as_array() else {
            return out.push(format!("{path}: {value} is not an array"));
        };
        for (i, v) in items.iter().enumerate() {
            mismatches(doc, &schema["items"], v, &format!("{path}[{i}]"), out);
        }
    } else if types.contains(&"integer") && !value.is_i64() && !value.is_u64() {
        out.push(format!("{path}: {value} is not an integer"));
    } else if types.contains(&"string") && !value.is_string() {
        out.push(format!("{path}: {value} is not a string"));
    } else if types.contains(&"boolean") && !value.is_boolean() {
        out.push(format!("{path}: {value} is not a boolean"));
    }
}

/// The documented schema of `method path`'s answer with `status`.
fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let s = &doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(
        !s.is_null(),
        "{method} {path} documents no JSON answer for {status}"
    );
    s
}

/// `method url` answers `want` with a body matching what `/openapi.json` (`doc`) documents
/// for `template`; returns the body.
fn check_answer(
    doc: &Value,
    base: &str,
    method: &str,
    template: &str,
    url: &str,
    body: Option<&Value>,
    want: u16,
) -> Value {
    let (status, answer) = request(method, &format!("{base}{url}"), body);
    assert_eq!(status, want, "{method} {url}: {answer}");
    let schema = response_schema(doc, template, &method.to_lowercase(), want);
    let mut m = Vec::new();
    mismatches(doc, schema, &answer, url, &mut m);
    assert!(
        m.is_empty(),
        "{method} {url} does not match its schema:\n{m:#?}\n{answer}"
    );
    answer
}

/// Every GET of the API answers with exactly what `/openapi.json` documents for it (names,
/// types, required fields), and errors with the documented status and `{"errors": [..]}`
/// body: 400 malformed, 404 unknown, 409 not allowed in the job's state.
#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let executor = LocalExecutor::default().with_rest("127.0.0.1:0").unwrap();
    let base = format!("http://{}", executor.rest_address().unwrap());
    let env = endless(2);
    let mut client = env.execute_with(&executor, "contract").unwrap();
    let id = client.job_id().to_string();
    wait_for("job RUNNING", || {
        client.details().map(|d| d.state) == Some(JobStatus::Running)
    });
    let (status, doc) = request("GET", &format!("{base}/openapi.json"), None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0", "{doc}");
    let documented: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for p in [
        "/overview",
        "/taskmanagers",
        "/jobs",
        "/jobs/overview",
        "/jobs/{id}",
        "/jobs/{id}/plan",
        "/jobs/{id}/checkpoints",
        "/jobs/{id}/checkpoints/config",
        "/jobs/{id}/exceptions",
        "/jobs/{id}/savepoints",
        "/jobs/{id}/stop",
        "/jobs/{id}/savepoints/{trigger}",
        "/openapi.json",
    ] {
        assert!(documented.contains(&&p.to_string()), "{p} not documented");
    }
    let check = |method: &str, template: &str, url: String, body: Option<&Value>, want: u16| {
        check_answer(&doc, &base, method, template, &url, body, want)
    };
    for p in ["/overview", "/taskmanagers", "/jobs", "/jobs/overview"] {
        check("GET", p, p.to_string(), None, 200);
    }
    let details = check("GET", "/jobs/{id}", format!("/jobs/{id}"), None, 200);
    // The local JobClient reads the same view.
    assert_eq!(details["jid"], id);
    assert_eq!(
        client.details().unwrap().vertices.len(),
        details["vertices"].as_array().unwrap().len()
    );
    check(
        "GET",
        "/jobs/{id}/plan",
        format!("/jobs/{id}/plan"),
        None,
        200,
    );
    // No savepoint directory: the trigger is accepted, the operation fails, typed.
    let t = check(
        "POST",
        "/jobs/{id}/savepoints",
        format!("/jobs/{id}/savepoints"),
        Some(&serde_json::json!({"cancel-job": false})),
        202,
    );
    let trigger = t["request-id"].as_str().unwrap().to_string();
    wait_for("the savepoint operation completed", || {
        get_json(&format!("{base}/jobs/{id}/savepoints/{trigger}"))["status"]["id"] == "COMPLETED"
    });
    let op = check(
        "GET",
        "/jobs/{id}/savepoints/{trigger}",
        format!("/jobs/{id}/savepoints/{trigger}"),
        None,
        200,
    );
    assert_eq!(
        op["operation"]["failure-cause"]["class"], "NoTargetDirectory",
        "{op}"
    );
    // Errors, each with its documented status.
    check("GET", "/jobs/{id}", "/jobs/not-a-job-id".into(), None, 400);
    let unknown = "0123456789abcdef0123456789abcdef";
    check("GET", "/jobs/{id}", format!("/jobs/{unknown}"), None, 404);
    check(
        "GET",
        "/jobs/{id}/plan",
        format!("/jobs/{unknown}/plan"),
        None,
        404,
    );
    check(
        "GET",
        "/jobs/{id}/savepoints/{trigger}",
        format!("/jobs/{id}/savepoints/nothing"),
        None,
        404,
    );
    check(
        "PATCH",
        "/jobs/{id}",
        format!("/jobs/{id}?mode=stop"),
        None,
        400,
    );
    check("PATCH", "/jobs/{id}", format!("/jobs/{unknown}"), None, 404);
    // A MiniCluster's registry holds only handed-over programs: a submission is the user's
    // mistake.
    check(
        "POST",
        "/jobs",
        "/jobs".into(),
        Some(&serde_json::json!({"entry": "word_count"})),
        400,
    );
    // Malformed bodies and query strings: 400 with the API's error body, naming what is wrong.
    for (method, url, body, names) in [
        (
            "POST",
            "/jobs".to_string(),
            Some("not json"),
            "request body",
        ),
        (
            "POST",
            "/jobs".to_string(),
            Some("{\"x\": 1}"),
            "missing field `entry`",
        ),
        (
            "POST",
            format!("/jobs/{id}/savepoints"),
            Some("{\"cancel-job\": \"yes\"}"),
            "expected a boolean",
        ),
        ("PATCH", format!("/jobs/{id}?mode=a&mode=b"), None, "query"),
    ] {
        let (status, answer) = request_raw(method, &format!("{base}{url}"), body);
        assert_eq!(status, 400, "{method} {url}: {answer}");
        let errors = answer["errors"].to_string();
        assert!(errors.contains(names), "{method} {url}: {answer}");
    }
    assert_eq!(patch(&format!("{base}/jobs/{id}")), 202);
    client.wait().unwrap_err();
    check("PATCH", "/jobs/{id}", format!("/jobs/{id}"), None, 409);
    check(
        "POST",
        "/jobs/{id}/stop",
        format!("/jobs/{id}/stop"),
        Some(&serde_json::json!({"drain": true})),
        409,
    );
}

/// A checkpointed job that fails once and recovers shows it over REST as Flink's dashboard
/// reads it: completed checkpoints with their paths in the history and the summary, the
/// restore, the failure in the exception history with the checkpoint it restored, and the
/// checkpoint configuration — each answer as `/openapi.json` documents it.
#[test]
fn checkpoints_and_failures_are_served_as_flink_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let executor = LocalExecutor::default().with_rest("127.0.0.1:0").unwrap();
    let base = format!("http://{}", executor.rest_address().unwrap());
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(20));
    let root = dir.path().display().to_string();
    env.configure_checkpointing(|c| c.storage = Some(root.clone()));
    env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
        attempts: 3,
        delay_ms: 0,
    });
    let failed = Arc::new(AtomicBool::new(false));
    env.add_source("Slow Sequence", || {
        common::SlowSequence::new(u64::MAX, 5, 2)
    })
    .set_parallelism(1)
    .map(common::fail_once(300, failed.clone()))
    .key_by(|v: &u64| v % 5)
    .reduce(|a: u64, b: u64| a + b)
    .sink_to_discard();
    let mut client = env.execute_with(&executor, "checkpointed").unwrap();
    let id = client.job_id().to_string();
    let (_, doc) = request("GET", &format!("{base}/openapi.json"), None);
    wait_for("a restore and two completed checkpoints after it", || {
        let s = get_json(&format!("{base}/jobs/{id}/checkpoints"));
        s["counts"]["restored"].as_u64() >= Some(1)
            && s["latest"]["completed"]["id"].as_u64()
                > s["latest"]["restored"]["id"].as_u64().map(|r| r + 1)
    });
    let s = check_answer(
        &doc,
        &base,
        "GET",
        "/jobs/{id}/checkpoints",
        &format!("/jobs/{id}/checkpoints"),
        None,
        200,
    );
    let completed = &s["latest"]["completed"];
    assert_eq!(completed["status"], "COMPLETED", "{s}");
    assert_eq!(completed["checkpoint_type"], "CHECKPOINT", "{s}");
    assert!(
        completed["external_path"]
            .as_str()
            .is_some_and(|p| p.starts_with(&root)),
        "{s}"
    );
    assert!(s["summary"]["state_size"]["max"].as_u64() > Some(0), "{s}");
    assert!(
        s["history"].as_array().is_some_and(|h| !h.is_empty()),
        "{s}"
    );
    let restored = s["latest"]["restored"]["id"].as_u64().unwrap();
    let e = check_answer(
        &doc,
        &base,
        "GET",
        "/jobs/{id}/exceptions",
        &format!("/jobs/{id}/exceptions"),
        None,
        200,
    );
    let entries = e["exceptionHistory"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{e}");
    assert!(
        entries[0]["stacktrace"]
            .as_str()
            .is_some_and(|t| t.contains("injected failure at record 300")),
        "{e}"
    );
    assert_eq!(entries[0]["restarted"], true, "{e}");
    assert_eq!(
        entries[0]["restoredCheckpoint"].as_u64(),
        Some(restored),
        "{e}"
    );
    assert_eq!(e["root-exception"], entries[0]["stacktrace"], "{e}");
    let c = check_answer(
        &doc,
        &base,
        "GET",
        "/jobs/{id}/checkpoints/config",
        &format!("/jobs/{id}/checkpoints/config"),
        None,
        200,
    );
    assert_eq!(c["mode"], "EXACTLY_ONCE", "{c}");
    assert_eq!(c["interval"], 20, "{c}");
    assert_eq!(c["checkpoint_storage"], root.as_str(), "{c}");
    client.cancel();
    client.wait().unwrap_err();
}
