//! The configuration file: `config.yaml` in `EDDY_CONF_DIR` (or `--conf-dir`, or `./conf`),
//! with Flink's key names, nested or flat (`rest: {port: 8081}` is `rest.port: 8081`); then the
//! `EDDY_PROPERTIES` environment variable (YAML, one `key: value` per line, as Flink's
//! `FLINK_PROPERTIES` in containers); then `-D key=value` overrides. Everything is checked
//! when a command starts.

use anyhow::{anyhow, bail, Context, Result};
use eddy::core::cluster_config::{ClusterConfig, Configuration};
use eddy::core::config::ExecutionConfig;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// The configuration directory: the flag, else `EDDY_CONF_DIR`, else `./conf`.
pub fn conf_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("EDDY_CONF_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("conf"))
}

/// The environment variable with configuration overrides.
pub const PROPERTIES_ENV: &str = "EDDY_PROPERTIES";

/// Reads `config.yaml` of `dir` (a missing file is an empty configuration), then applies
/// `EDDY_PROPERTIES` and the `-D` overrides.
pub fn load(dir: &Path, defines: &[String]) -> Result<Configuration> {
    load_with(dir, std::env::var(PROPERTIES_ENV).ok().as_deref(), defines)
}

/// [`load`] with the environment's properties given.
pub fn load_with(
    dir: &Path,
    properties: Option<&str>,
    defines: &[String],
) -> Result<Configuration> {
    let mut c = Configuration::default();
    let file = dir.join("config.yaml");
    if file.exists() {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for (k, v) in parse_yaml(&text).with_context(|| format!("in {}", file.display()))? {
            c.set(&k, &v);
        }
    }
    if let Some(text) = properties {
        for (k, v) in parse_yaml(text).with_context(|| format!("in ${PROPERTIES_ENV}"))? {
            c.set(&k, &v);
        }
    }
    for d in defines {
        c.set_pair(d).map_err(|e| anyhow!("-D {d}: {e}"))?;
    }
    Ok(c)
}

/// Parses and checks; the error names the file's key or the `-D` flag.
pub fn resolve(c: &Configuration, dir: &Path) -> Result<(ClusterConfig, ExecutionConfig)> {
    c.resolve().map_err(|e| {
        anyhow!(
            "invalid configuration ({}/config.yaml and -D flags): {e}",
            dir.display()
        )
    })
}

/// Flattens a YAML document into `dotted.key → value` pairs.
pub fn parse_yaml(text: &str) -> Result<Vec<(String, String)>> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| anyhow!("invalid YAML: {e}"))?;
    let mut out = Vec::new();
    for doc in &docs {
        match doc {
            Yaml::Hash(_) => flatten("", doc, &mut out)?,
            Yaml::Null => {}
            _ => bail!("the configuration must be a map of keys to values"),
        }
    }
    Ok(out)
}

fn flatten(prefix: &str, y: &Yaml, out: &mut Vec<(String, String)>) -> Result<()> {
    match y {
        Yaml::Hash(h) => {
            for (k, v) in h {
                let k = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => bail!("key {other:?} under '{prefix}' is not a string"),
                };
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
        }
        Yaml::String(s) => out.push((prefix.to_string(), s.clone())),
        Yaml::Integer(i) => out.push((prefix.to_string(), i.to_string())),
        Yaml::Real(r) => out.push((prefix.to_string(), r.clone())),
        Yaml::Boolean(b) => out.push((prefix.to_string(), b.to_string())),
        Yaml::Null => {}
        _ => bail!("'{prefix}': expected a single value, not a list"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_keys_flatten_alike() {
        let kv = parse_yaml(
            "rest:\n  port: 8082\ntaskmanager.numberOfTaskSlots: 2\nexecution:\n  checkpointing:\n    interval: 10s\n",
        )
        .unwrap();
        assert!(kv.contains(&("rest.port".into(), "8082".into())));
        assert!(kv.contains(&("taskmanager.numberOfTaskSlots".into(), "2".into())));
        assert!(kv.contains(&("execution.checkpointing.interval".into(), "10s".into())));
        assert!(parse_yaml("a: [1, 2]")
            .unwrap_err()
            .to_string()
            .contains("'a'"));
    }

    #[test]
    fn file_then_environment_then_defines() {
        let dir = std::env::temp_dir().join(format!("eddy-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.yaml"),
            "rest.port: 1\nparallelism.default: 1\n",
        )
        .unwrap();
        let c = load_with(
            &dir,
            Some("rest.port: 2\ntaskmanager.numberOfTaskSlots: 3\n"),
            &["rest.port=4".to_string()],
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.settings["rest.port"], "4");
        assert_eq!(c.settings["taskmanager.numberOfTaskSlots"], "3");
        assert_eq!(c.settings["parallelism.default"], "1");
        let bad = load_with(Path::new("/nonexistent"), Some("a: [1]"), &[]).unwrap_err();
        assert!(format!("{bad:#}").contains("EDDY_PROPERTIES"), "{bad:#}");
    }
}
