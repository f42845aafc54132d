//! `kim keys …`: making the master key.

use std::path::Path;

use super::{CliResult, Failure};
use crate::store::crypto::{write_new_key, CryptoError};

pub fn init(out: &Path) -> CliResult {
    write_new_key(out).map_err(|e| match e {
        CryptoError::KeyExists(_) => Failure::usage(e),
        other => Failure::failed(other),
    })?;
    println!(
        "wrote a new 32-byte master key to {} (mode 0400). Keep a copy offline: without it the store cannot be read.",
        out.display()
    );
    Ok(())
}
