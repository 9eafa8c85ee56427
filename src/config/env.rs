//! `BEACON_*` environment variables laid over the file: each names one key
//! (`BEACON_<SECTION>_<KEY>`), typed like the key's default; one that names no key is an error.

use std::collections::BTreeMap;

use super::error::{ConfigError, Origin};
use super::Config;

/// Variables that start with `BEACON_` but are not settings (besides `BEACON_TEST_*`, which
/// belong to the test environment).
pub(super) const IGNORED_VARS: &[&str] = &["BEACON_CONFIG", "BEACON_LOG"];

/// Writes each `BEACON_*` variable into the table. Returns key path → variable name.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut shape = serde_json::to_value(Config::default()).unwrap_or(serde_json::Value::Null);
    // Optional sections are absent by default; their variables are found in their defaults.
    if let Some(top) = shape.as_object_mut() {
        let web = serde_json::to_value(crate::web::WebConfig::default());
        top.insert("web".into(), web.unwrap_or(serde_json::Value::Null));
    }
    let mut overridden = BTreeMap::new();
    for (var, value) in env {
        let Some(name) = var.strip_prefix("BEACON_") else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        let (section, key, default) = locate(&shape, &name)
            .ok_or_else(|| ConfigError::UnknownVariable { var: var.clone() })?;
        let typed = typed_env_value(value, default);
        match section {
            None => {
                table.insert(key.clone(), typed);
                overridden.insert(key, var.clone());
            }
            Some(section) => {
                let entry = table
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let toml::Value::Table(inner) = entry else {
                    return Err(ConfigError::Invalid {
                        origin: Origin::Env(var.clone()),
                        key: section,
                        reason: "the file sets this section to a value, not a table".into(),
                    });
                };
                inner.insert(key.clone(), typed);
                overridden.insert(format!("{section}.{key}"), var.clone());
            }
        }
    }
    Ok(overridden)
}

/// Finds `name` (lower case, without the prefix) as a top-level key or `<section>_<key>`.
fn locate<'a>(
    shape: &'a serde_json::Value,
    name: &str,
) -> Option<(Option<String>, String, &'a serde_json::Value)> {
    let top = shape.as_object()?;
    if let Some(default) = top.get(name) {
        if !default.is_object() {
            return Some((None, name.to_string(), default));
        }
    }
    top.iter().find_map(|(section, inner)| {
        let key = name.strip_prefix(section.as_str())?.strip_prefix('_')?;
        let default = inner.as_object()?.get(key)?;
        Some((Some(section.clone()), key.to_string(), default))
    })
}

/// Converts an environment string to the type the default has (strings when unknown).
fn typed_env_value(value: &str, default: &serde_json::Value) -> toml::Value {
    use serde_json::Value as J;
    match default {
        J::Bool(_) => match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => toml::Value::String(value.to_string()),
        },
        J::Number(n) if n.is_f64() => value
            .parse::<f64>()
            .map(toml::Value::Float)
            .unwrap_or_else(|_| toml::Value::String(value.to_string())),
        J::Number(_) => value
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(value.to_string())),
        J::Array(_) => toml::Value::Array(
            value
                .split(',')
                .map(|s| toml::Value::String(s.trim().to_string()))
                .collect(),
        ),
        _ => toml::Value::String(value.to_string()),
    }
}
