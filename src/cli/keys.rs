//! `kim keys …`: making the master key and the audit signing key.

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

pub fn signing_init(out: &Path) -> CliResult {
    use crate::audit::checkpoint::{public_key_path, write_new_signing_key, SigningKeyError};
    let public = write_new_signing_key(out).map_err(|e| match e {
        SigningKeyError::Exists(_) => Failure::usage(e),
        other => Failure::failed(other),
    })?;
    println!(
        "wrote a new Ed25519 audit signing key to {} (mode 0400) and its public key to {}:\n  {public}\nSet [audit] signing_key_file to it; give the .pub file to whoever checks exports (`kim audit verify --file F --public-key {}`).",
        out.display(),
        public_key_path(out).display(),
        public_key_path(out).display()
    );
    Ok(())
}
