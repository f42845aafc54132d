//! Placeholders a packaged `kim.toml` ships with (`CHANGE-ME`): found before
//! the typed parse, so an operator who has not filled the file in is told
//! every key still to fill, not the first value that fails to parse.

use std::path::Path;

use super::ConfigError;

/// The marker in the Debian package's `/etc/kim/kim.toml`.
pub const MARKER: &str = "CHANGE-ME";

/// Every key (`[table] key`, `[[forces]] key`) whose string value still
/// holds [`MARKER`].
pub fn find(doc: &toml::Table) -> Vec<String> {
    fn walk(v: &toml::Value, at: &str, out: &mut Vec<String>) {
        match v {
            toml::Value::String(s) if s.contains(MARKER) && !out.iter().any(|k| k == at) => {
                out.push(at.to_owned());
            }
            toml::Value::Array(items) => items.iter().for_each(|i| walk(i, at, out)),
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = match v {
                        toml::Value::Table(_) => format!("{at}.{k}"),
                        _ if at.is_empty() => k.clone(),
                        _ => format!("{at} {k}"),
                    };
                    walk(v, &key, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in doc {
        match v {
            toml::Value::Table(t) => {
                for (key, v) in t {
                    let at = match v {
                        toml::Value::Table(_) => format!("[{k}.{key}]"),
                        _ => format!("[{k}] {key}"),
                    };
                    walk(v, &at, &mut out);
                }
            }
            toml::Value::Array(items) => {
                for item in items {
                    if let toml::Value::Table(t) = item {
                        for (key, v) in t {
                            walk(v, &format!("[[{k}]] {key}"), &mut out);
                        }
                    }
                }
            }
            other => walk(other, k, &mut out),
        }
    }
    out
}

/// `Err` naming every key still holding a placeholder; `Ok` for a file
/// that is not TOML (the typed parse reports that).
pub fn check(text: &str, path: &Path) -> Result<(), ConfigError> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let keys = find(&doc);
    if keys.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Placeholders {
        path: path.to_owned(),
        keys: keys.join(", "),
    })
}

#[cfg(test)]
#[path = "placeholders_tests.rs"]
mod tests;
