//! How an admin verb ends: a [`Failure`] carries the exit code it deserves
//! (0 success, 1 a check or the operation failed, 2 usage or configuration
//! error), and [`describe`] puts an error and its causes on one line, for
//! the CLI's stderr and the admin socket's answer alike.

/// An error and its causes on one line, each cause once: many errors
/// already quote their source ("cannot read F: No such file"), so the
/// chain would repeat it ("…: No such file: No such file").
pub fn describe(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

/// A failure with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 1,
            error: error.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::failed(error)
    }
}

pub type CliResult = Result<(), Failure>;

/// The exit code a store that will not open deserves: 2 when an admin must
/// act first (a damaged journal, a store of a newer format), 1 otherwise.
pub fn store_failure(e: crate::store::StoreError) -> Failure {
    match e {
        crate::store::StoreError::JournalDamaged { .. }
        | crate::store::StoreError::FormatTooNew { .. } => Failure::usage(e),
        other => Failure::failed(other),
    }
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
