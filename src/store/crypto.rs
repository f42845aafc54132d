//! Key material and sealing: the master key, HKDF subkeys, AES-256-GCM
//! seal/open bound to (tree, record key) by AAD, per-record data keys and
//! HMAC blind indexes. Key bytes are zeroized on drop and never printed.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use zeroize::{Zeroize, Zeroizing};

/// The sealed-value format version (first byte of every sealed value).
const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// What sealing adds to a plaintext: format, key id, nonce, tag.
pub(crate) const SEAL_OVERHEAD: usize = HEADER_LEN + 16;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("cannot read the master key {path}: {source}")]
    KeyRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the master key {path} must be exactly 32 bytes (it has {len}); make one with `kim keys init`")]
    KeyLength { path: String, len: usize },
    #[error("the master key {path} is readable by group or others (mode {mode:o}); chmod 0400 it")]
    KeyMode { path: String, mode: u32 },
    #[error("{0} already exists; refusing to overwrite a key")]
    KeyExists(String),
    #[error("cannot write the key {path}: {source}")]
    KeyWrite {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the system random number generator failed")]
    Random,
    #[error("a sealed value is malformed")]
    Malformed,
    #[error("a sealed value was made with key {0:08x}, which this keyring does not hold")]
    UnknownKey(u32),
    #[error("a sealed value failed authentication (wrong key, or moved or altered)")]
    Open,
}

fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let mut b = Zeroizing::new([0u8; N]);
    SystemRandom::new()
        .fill(b.as_mut())
        .map_err(|_| CryptoError::Random)?;
    Ok(b)
}

/// Fresh random bytes for identifiers (receipt ids and the like).
pub fn random_id_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| CryptoError::Random)?;
    Ok(b)
}

/// A 4-byte identifier of a key, derived from the key itself, carried in
/// every sealed value so re-sealing under a new key can tell old from new.
fn key_id(key: &[u8]) -> u32 {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), b"kim key id v1");
    u32::from_be_bytes(tag.as_ref()[..4].try_into().expect("4 bytes"))
}

/// `kim keys init`: write 32 random bytes to `path`, mode 0400, never
/// overwriting.
pub fn write_new_key(path: &Path) -> Result<(), CryptoError> {
    let key = random_bytes::<KEY_LEN>()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                CryptoError::KeyExists(path.display().to_string())
            } else {
                CryptoError::KeyWrite {
                    path: path.display().to_string(),
                    source,
                }
            }
        })?;
    f.write_all(key.as_ref())
        .and_then(|_| f.sync_all())
        .map_err(|source| CryptoError::KeyWrite {
            path: path.display().to_string(),
            source,
        })
}

/// The 256-bit master key. Only HKDF ever reads it.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(***)")
    }
}

impl MasterKey {
    /// Reads a key file: exactly 32 bytes, not readable by group or others.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| CryptoError::KeyRead {
            path: shown.clone(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CryptoError::KeyMode { path: shown, mode });
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| CryptoError::KeyRead {
            path: shown.clone(),
            source,
        })?);
        let arr: [u8; KEY_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| CryptoError::KeyLength {
                    path: shown,
                    len: bytes.len(),
                })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    fn derive(&self, info: &'static [u8]) -> Zeroizing<[u8; KEY_LEN]> {
        struct Len;
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                KEY_LEN
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"kim master v1").extract(self.0.as_ref());
        let info = [info];
        let okm = prk.expand(&info, Len).expect("HKDF output of 32 bytes");
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        okm.fill(out.as_mut()).expect("HKDF fill of 32 bytes");
        out
    }
}

/// An AES-256-GCM key that seals values bound to a (tree, record key) pair.
pub struct SealKey {
    key: LessSafeKey,
    id: u32,
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealKey({:08x}, ***)", self.id)
    }
}

fn aad(tree: &str, record: &[u8], key_id: u32) -> Vec<u8> {
    let mut a = Vec::with_capacity(tree.len() + record.len() + 10);
    a.push(FORMAT_V1);
    a.extend_from_slice(&key_id.to_be_bytes());
    a.extend_from_slice(tree.as_bytes());
    a.push(0);
    a.extend_from_slice(record);
    a
}

impl SealKey {
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES key");
        Self {
            key: LessSafeKey::new(unbound),
            id: key_id(bytes),
        }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// Seals `plaintext` for record `record` of tree `tree`: version, key id,
    /// a fresh random nonce, then ciphertext and tag.
    pub fn seal(
        &self,
        tree: &str,
        record: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes = random_id_bytes::<NONCE_LEN>()?;
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&nonce_bytes);
        let mut body = plaintext.to_vec();
        let res = self.key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad(tree, record, self.id)),
            &mut body,
        );
        if res.is_err() {
            body.zeroize();
            return Err(CryptoError::Malformed);
        }
        out.extend_from_slice(&body);
        body.zeroize();
        Ok(out)
    }

    /// Opens a value sealed by `seal` for the same tree and record.
    pub fn open(
        &self,
        tree: &str,
        record: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let id = sealed_key_id(sealed)?;
        if id != self.id {
            return Err(CryptoError::UnknownKey(id));
        }
        let nonce: [u8; NONCE_LEN] = sealed[5..HEADER_LEN].try_into().expect("12 bytes");
        let mut body = Zeroizing::new(sealed[HEADER_LEN..].to_vec());
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(tree, record, id)),
                body.as_mut_slice(),
            )
            .map_err(|_| CryptoError::Open)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// The key id a sealed value names.
pub fn sealed_key_id(sealed: &[u8]) -> Result<u32, CryptoError> {
    if sealed.len() < HEADER_LEN + AES_256_GCM.tag_len() || sealed[0] != FORMAT_V1 {
        return Err(CryptoError::Malformed);
    }
    Ok(u32::from_be_bytes(
        sealed[1..5].try_into().expect("4 bytes"),
    ))
}

/// A per-notification data key: random, sealed by the master-derived key,
/// destroyed by retention to shred the notification.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(***)")
    }
}

impl DataKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(random_bytes::<KEY_LEN>()?))
    }

    pub fn from_slice(b: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = b.try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(Self(Zeroizing::new(arr)))
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub fn seal_key(&self) -> SealKey {
        SealKey::from_bytes(&self.0)
    }
}

/// The key that wraps the per-day keys (`super::kek`): derived from the
/// master key apart from every other key.
pub fn day_key_wrap(master: &MasterKey) -> SealKey {
    SealKey::from_bytes(&master.derive(b"kim day key wrap v1"))
}

/// The keys kim works with, all derived from the master key by HKDF.
pub struct Keyring {
    seal: SealKey,
    index: hmac::Key,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring(seal {:08x}, ***)", self.seal.id)
    }
}

impl Keyring {
    pub fn new(master: &MasterKey) -> Self {
        let seal = master.derive(b"kim seal v1");
        let index = master.derive(b"kim blind index v1");
        Self {
            seal: SealKey::from_bytes(&seal),
            index: hmac::Key::new(hmac::HMAC_SHA256, index.as_ref()),
        }
    }

    /// The key that seals store values directly (data keys, the roll…).
    pub fn seal_key(&self) -> &SealKey {
        &self.seal
    }

    /// HMAC-SHA256 under the blind-index key over `domain` and `parts`, each
    /// length-prefixed so ("ab","c") and ("a","bc") differ.
    pub fn blind_index(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.index);
        for p in std::iter::once(domain.as_bytes()).chain(parts.iter().copied()) {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        ctx.sign().as_ref().try_into().expect("32-byte HMAC-SHA256")
    }
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
