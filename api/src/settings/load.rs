//! Loading: the declared defaults, overlaid by the TOML file (its flat keys of before the
//! nesting moved to their nested place), overlaid by the environment variables. figment merges
//! the layers and deserializes; an error names the environment variable, or the file and key,
//! that holds the bad value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::Settings;

/// Why settings could not be loaded; names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
}

const ENV_SOURCE: &str = "environment variable";
const FILE_SOURCE: &str = "settings file";

/// One layer of values, named for error messages.
struct Layer {
    name: &'static str,
    values: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// Sets `value` at the dotted `key` of `dict`, making the tables on the way.
fn insert(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// Whether the dotted `key` is set in `dict`.
fn contains(dict: &Dict, key: &str) -> bool {
    match key.split_once('.') {
        None => dict.contains_key(key),
        Some((head, rest)) => match dict.get(head) {
            Some(Value::Dict(_, inner)) => contains(inner, rest),
            _ => false,
        },
    }
}

/// The file's values, its flat keys (`sim_port`) moved to their nested place (`simulator.port`).
fn file_layer(path: &Path) -> Result<Dict, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file_error = |message: String| SettingsError::File {
        path: path.to_path_buf(),
        message,
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| file_error(e.message().into()))?;
    let value = Value::serialize(table).map_err(|e| file_error(e.to_string()))?;
    let Value::Dict(_, mut dict) = value else {
        return Err(file_error("not a table".into()));
    };
    for d in Settings::declarations() {
        if d.flat == d.key {
            continue;
        }
        if let Some(value) = dict.remove(d.flat) {
            if contains(&dict, &d.key) {
                return Err(file_error(format!(
                    "both `{}` and `{}` are set; keep one (`{}` is the older spelling)",
                    d.flat, d.key, d.flat
                )));
            }
            insert(&mut dict, &d.key, value);
        }
    }
    Ok(dict)
}

/// The environment's values (an empty variable counts as unset), as strings: figment reads a
/// number out of a string where the setting is a number.
fn env_layer(env: &HashMap<String, String>) -> Dict {
    let mut dict = Dict::new();
    for d in Settings::declarations() {
        if let Some(v) = env.get(d.env).filter(|v| !v.is_empty()) {
            insert(&mut dict, &d.key, Value::from(v.clone()));
        }
    }
    dict
}

impl Settings {
    /// Defaults, overlaid by the file (if given) and then by the environment map.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(Layer {
                name: FILE_SOURCE,
                values: file_layer(path)?,
            });
        }
        figment = figment.merge(Layer {
            name: ENV_SOURCE,
            values: env_layer(env),
        });
        // Lossy: "8090" from the environment reads as the number a port is.
        figment
            .extract_lossy::<Settings>()
            .map_err(|e| explain(e, file))
    }
}

/// The first error, naming the variable or the file's key it came from.
fn explain(error: figment::Error, file: Option<&Path>) -> SettingsError {
    let e = error
        .into_iter()
        .next()
        .expect("a figment error holds one error at least");
    let key = e.path.join(".");
    let from_env = e.metadata.as_ref().is_some_and(|m| m.name == ENV_SOURCE);
    match (from_env, file) {
        (true, _) | (false, None) => SettingsError::Env {
            name: Settings::name_of(&key),
            message: e.kind.to_string(),
        },
        (false, Some(path)) => SettingsError::File {
            path: path.to_path_buf(),
            message: if key.is_empty() {
                e.kind.to_string()
            } else {
                format!("`{key}`: {}", e.kind)
            },
        },
    }
}
