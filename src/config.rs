//! The TOML configuration (DESIGN §4b): types, loading, and validation.
//! Unknown keys are errors, relative paths resolve against the config file's
//! folder, and every error names the file and the key at fault.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub mod forces;
mod load;
pub mod placeholders;
mod types;
mod validate;

pub use types::*;

/// A problem with the configuration. Each variant names the file; `Invalid`
/// also names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: still holds CHANGE-ME placeholders, fill them in first: {keys}")]
    Placeholders { path: PathBuf, keys: String },
    #[error("{path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A duration written as `"90s"`, `"30m"`, `"24h"`, `"7d"` or `"500ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m, h or d)"))?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration like \"90s\", \"30m\", \"24h\""))?;
        let secs = match unit {
            "ms" => return Ok(Self(Duration::from_millis(n))),
            "s" => n,
            "m" => n.saturating_mul(60),
            "h" => n.saturating_mul(3600),
            "d" => n.saturating_mul(86_400),
            _ => return Err(format!("`{s}` has an unknown unit (use ms, s, m, h or d)")),
        };
        Ok(Self(Duration::from_secs(secs)))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
pub(crate) mod tests;
