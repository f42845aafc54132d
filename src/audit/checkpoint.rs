//! Signed checkpoints of the audit chain: (sequence, head hash, time) signed
//! with an Ed25519 key (ring), so that a rewritten or truncated chain is
//! caught against checkpoints kept elsewhere. Owns the signing key file
//! (PKCS#8, mode 0400, plus a `.pub` file of the raw public key in hex), the
//! signed byte string, and the checks of one checkpoint.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{hex, Head};

/// One signed checkpoint: the chain had `seq` events ending in `hash` at `time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub time: jiff::Timestamp,
    /// The first 8 bytes (hex) of SHA-256 of the public key.
    pub key_id: String,
    /// Ed25519 over [`Checkpoint::signed_bytes`], hex.
    pub signature: String,
    /// On the first checkpoint signed by a new key: the last checkpoint
    /// signed by the key before it (covered by the signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Link>,
}

/// A key rotation's link: the previous key's last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub seq: u64,
    pub hash: String,
    pub key_id: String,
}

impl Link {
    pub fn to(cp: &Checkpoint) -> Self {
        Self {
            seq: cp.seq,
            hash: cp.hash.clone(),
            key_id: cp.key_id.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("{0} already exists; kim never overwrites a key")]
    Exists(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the signing key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is not an Ed25519 PKCS#8 key (make one with `kim keys signing-init`)")]
    Invalid(String),
    #[error(
        "{0} is not a public key (64 hex characters, the `.pub` file of `kim keys signing-init`)"
    )]
    InvalidPublic(String),
    #[error("the system random generator failed")]
    Random,
}

/// The daemon's signing key.
pub struct Signer {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.key_id)
    }
}

/// The key id of a raw Ed25519 public key.
pub fn key_id(public: &[u8]) -> String {
    hex(&ring::digest::digest(&ring::digest::SHA256, public).as_ref()[..8])
}

/// Makes a new signing key at `out` (0400) and its public half at `out.pub`.
/// Returns the public key in hex.
pub fn write_new_signing_key(out: &Path) -> Result<String, SigningKeyError> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| SigningKeyError::Random)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| SigningKeyError::Invalid(out.display().to_string()))?;
    let public = hex(pair.public_key().as_ref());
    let pub_path = out.with_extension(match out.extension() {
        Some(e) => format!("{}.pub", e.to_string_lossy()),
        None => "pub".into(),
    });
    for (path, bytes, mode) in [
        (out, pkcs8.as_ref().to_vec(), 0o400),
        (
            pub_path.as_path(),
            format!("{public}\n").into_bytes(),
            0o444,
        ),
    ] {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    SigningKeyError::Exists(path.display().to_string())
                } else {
                    SigningKeyError::Write {
                        path: path.display().to_string(),
                        source,
                    }
                }
            })?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(|source| SigningKeyError::Write {
                path: path.display().to_string(),
                source,
            })?;
    }
    Ok(public)
}

/// The public-key file of a signing key: `KEY.pub` beside it.
pub fn public_key_path(key: &Path) -> std::path::PathBuf {
    key.with_extension(match key.extension() {
        Some(e) => format!("{}.pub", e.to_string_lossy()),
        None => "pub".into(),
    })
}

/// Reads a public key file (hex, as `kim keys signing-init` writes it).
pub fn read_public_key(path: &Path) -> Result<Vec<u8>, SigningKeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| SigningKeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let t = text.trim();
    let bad = || SigningKeyError::InvalidPublic(path.display().to_string());
    if t.len() != 64 {
        return Err(bad());
    }
    (0..32)
        .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| bad()))
        .collect()
}

impl Signer {
    pub fn load(path: &Path) -> Result<Self, SigningKeyError> {
        let bytes =
            Zeroizing::new(std::fs::read(path).map_err(|source| SigningKeyError::Read {
                path: path.display().to_string(),
                source,
            })?);
        let pair = Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|_| SigningKeyError::Invalid(path.display().to_string()))?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(Self { pair, key_id })
    }

    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn sign(&self, head: &Head, time: jiff::Timestamp) -> Checkpoint {
        self.sign_linked(head, time, None)
    }

    /// Signs a checkpoint; `previous` links it to the last checkpoint of
    /// the key this one replaces (the first checkpoint after a rotation).
    pub fn sign_linked(
        &self,
        head: &Head,
        time: jiff::Timestamp,
        previous: Option<Link>,
    ) -> Checkpoint {
        let mut cp = Checkpoint {
            seq: head.seq,
            hash: head.hash.clone(),
            time,
            key_id: self.key_id.clone(),
            signature: String::new(),
            previous,
        };
        cp.signature = hex(self.pair.sign(&cp.signed_bytes()).as_ref());
        cp
    }
}

impl Checkpoint {
    /// What the signature covers (fixed text, so another implementation
    /// can check it): a domain line, then sequence, hash, time and key id.
    /// With a link to the previous key (v2), a last line names its last
    /// checkpoint.
    pub fn signed_bytes(&self) -> Vec<u8> {
        match &self.previous {
            None => format!(
                "kim audit checkpoint v1\n{}\n{}\n{}\n{}\n",
                self.seq, self.hash, self.time, self.key_id
            ),
            Some(p) => format!(
                "kim audit checkpoint v2\n{}\n{}\n{}\n{}\nprevious {} {} {}\n",
                self.seq, self.hash, self.time, self.key_id, p.seq, p.hash, p.key_id
            ),
        }
        .into_bytes()
    }

    /// Checks the signature against `public` (raw 32-byte Ed25519 key).
    pub fn verify_signature(&self, public: &[u8]) -> Result<(), String> {
        if self.key_id != key_id(public) {
            return Err(format!(
                "signed by key {}, not by the given key {}",
                self.key_id,
                key_id(public)
            ));
        }
        let sig = unhex(&self.signature).ok_or("the signature is not hex")?;
        UnparsedPublicKey::new(&ED25519, public)
            .verify(&self.signed_bytes(), &sig)
            .map_err(|_| "the signature does not verify (altered, or another key)".to_owned())
    }
}

/// The public keys whose checkpoints are believed: the signing key's own
/// and `[audit] trusted_keys` / `--public-key` (the keys of earlier years).
#[derive(Debug, Clone, Default)]
pub struct Trusted {
    keys: Vec<(String, Vec<u8>)>,
}

impl Trusted {
    /// One key.
    pub fn one(public: &[u8]) -> Self {
        let mut t = Self::default();
        t.add(public);
        t
    }

    /// Adds a raw 32-byte public key (once).
    pub fn add(&mut self, public: &[u8]) {
        let id = key_id(public);
        if !self.keys.iter().any(|(k, _)| *k == id) {
            self.keys.push((id, public.to_vec()));
        }
    }

    /// Adds the public key in `path` (as [`read_public_key`] reads it).
    pub fn add_file(&mut self, path: &Path) -> Result<(), SigningKeyError> {
        self.add(&read_public_key(path)?);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted keys' ids, comma-separated.
    pub fn ids(&self) -> String {
        self.keys
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The raw keys, hex (to send to the daemon).
    pub fn hex_keys(&self) -> Vec<String> {
        self.keys.iter().map(|(_, k)| hex(k)).collect()
    }

    /// Adds a key given as 64 hex characters.
    pub fn add_hex(&mut self, text: &str) -> Result<(), SigningKeyError> {
        match unhex(text.trim()).filter(|k| k.len() == 32) {
            Some(k) => {
                self.add(&k);
                Ok(())
            }
            None => Err(SigningKeyError::InvalidPublic(
                "a public key sent to the daemon".into(),
            )),
        }
    }

    /// Checks `cp`'s signature under the trusted key it names.
    pub fn verify(&self, cp: &Checkpoint) -> Result<(), String> {
        match self.keys.iter().find(|(id, _)| *id == cp.key_id) {
            Some((_, public)) => cp.verify_signature(public),
            None => Err(format!(
                "signed by key {}, which is not trusted (trusted: {}); if it is an earlier audit signing key, add its public key to [audit] trusted_keys or give --public-key for it",
                cp.key_id,
                if self.keys.is_empty() { "none".to_owned() } else { self.ids() }
            )),
        }
    }

    /// Checks that `cp`, following `before` in the same sequence of
    /// checkpoints, links to it when their keys differ: the first
    /// checkpoint under a new key names the old key's last one.
    pub fn check_link(before: Option<&Checkpoint>, cp: &Checkpoint) -> Result<(), String> {
        let Some(b) = before.filter(|b| b.key_id != cp.key_id) else {
            return Ok(());
        };
        match &cp.previous {
            Some(p) if *p == Link::to(b) => Ok(()),
            Some(p) => Err(format!(
                "signed by the new key {} with a link to checkpoint {} of key {}, but key {}'s last checkpoint is at event {}",
                cp.key_id, p.seq, p.key_id, b.key_id, b.seq
            )),
            None => Err(format!(
                "signed by key {} after key {}'s checkpoint at event {}, with no link to it (a key change must be linked)",
                cp.key_id, b.key_id, b.seq
            )),
        }
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
