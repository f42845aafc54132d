//! Key-encryption keys per day of receipt (issue 14, DESIGN §8): every
//! notification's data key, and every other value that holds a child's
//! details (review candidates, dismissal notes, withdrawal reasons), is
//! sealed by the key of the UTC day its receipt was made on. Those keys live
//! outside sled, one file each, `<store>/keys/YYYY-MM-DD.kek` (mode 0600),
//! itself sealed by the master-derived key. When retention has purged every
//! notification of a day, the day's file is removed and the folder fsynced:
//! from then on nothing in the store folder — sled's old segments, the
//! journal — together with the master key opens that day's notifications.
//!
//! A day's key is made the first time a receipt of that day is sealed
//! (written and fsynced, then renamed into place and the folder fsynced,
//! before anything sealed by it can be acknowledged) and kept in memory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::civil::Date;
use zeroize::Zeroizing;

use super::crypto::{random_id_bytes, CryptoError, SealKey, KEY_LEN};

/// The folder of the day keys, inside the store folder.
pub const KEYS_DIR: &str = "keys";
/// The AAD domain of a sealed day key (not a tree).
const DOMAIN: &str = "kek";
const SUFFIX: &str = ".kek";

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("the day key {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the day key {path} does not open with this master key ({source})")]
    Open {
        path: String,
        #[source]
        source: CryptoError,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A day's key: the sealing key and its raw bytes (kept to re-wrap it under
/// a new master key).
struct DayKey {
    seal: Arc<SealKey>,
    raw: Zeroizing<[u8; KEY_LEN]>,
}

/// The day keys of one store.
pub struct DayKeys {
    dir: PathBuf,
    /// Wraps the day keys: the master-derived sealing key's bytes.
    wrap: SealKey,
    cache: Mutex<BTreeMap<Date, DayKey>>,
}

impl std::fmt::Debug for DayKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DayKeys({})", self.dir.display())
    }
}

/// The UTC day of a second since the epoch.
pub fn day_of_second(secs: i64) -> Date {
    jiff::Timestamp::from_second(secs)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KekError + '_ {
    move |source| KekError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl DayKeys {
    /// The day keys under `store_dir`, wrapped by `wrap`.
    pub fn new(store_dir: &Path, wrap: SealKey) -> Self {
        Self {
            dir: store_dir.join(KEYS_DIR),
            wrap,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    fn path(&self, day: Date) -> PathBuf {
        self.dir.join(format!("{day}{SUFFIX}"))
    }

    fn record(day: Date) -> String {
        day.to_string()
    }

    /// The key of `day`, made (durably) if it has none yet and `create`.
    /// `None` when the day has no key and `create` is false: never made, or
    /// destroyed by retention.
    pub fn get(&self, day: Date, create: bool) -> Result<Option<Arc<SealKey>>, KekError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cache.get(&day) {
            return Ok(Some(k.seal.clone()));
        }
        let path = self.path(day);
        let raw = match std::fs::read(&path) {
            Ok(sealed) => {
                let plain = self
                    .wrap
                    .open(DOMAIN, Self::record(day).as_bytes(), &sealed)
                    .map_err(|source| KekError::Open {
                        path: path.display().to_string(),
                        source,
                    })?;
                let arr: [u8; KEY_LEN] = plain
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::Malformed)?;
                Zeroizing::new(arr)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                let raw = Zeroizing::new(random_id_bytes::<KEY_LEN>()?);
                self.write(day, &raw)?;
                raw
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let seal = Arc::new(SealKey::from_bytes(&raw));
        cache.insert(
            day,
            DayKey {
                seal: seal.clone(),
                raw,
            },
        );
        Ok(Some(seal))
    }

    /// Writes `raw` as the key of `day`: a temporary file, fsynced, renamed
    /// into place, the folder fsynced.
    fn write(&self, day: Date, raw: &[u8; KEY_LEN]) -> Result<(), KekError> {
        crate::fsmode::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let sealed = self.wrap.seal(DOMAIN, Self::record(day).as_bytes(), raw)?;
        let path = self.path(day);
        let tmp = self.dir.join(format!("{day}{SUFFIX}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = crate::fsmode::create_new_private(&tmp).map_err(io(&tmp))?;
        f.write_all(&sealed)
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir)
    }

    /// Destroys the key of `day`: the file removed, the folder fsynced, the
    /// copy in memory dropped (and zeroized).
    pub fn destroy(&self, day: Date) -> Result<bool, KekError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.remove(&day);
        let path = self.path(day);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The days that have a key on disk, oldest first.
    pub fn days(&self) -> Result<Vec<Date>, KekError> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name();
            let Some(day) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|d| d.parse::<Date>().ok())
            else {
                continue;
            };
            out.push(day);
        }
        out.sort();
        Ok(out)
    }

    /// Writes every day key of this store into `other` (another store's,
    /// under another master key): `kim keys rotate`.
    pub fn rewrap_into(&self, other: &DayKeys) -> Result<u64, KekError> {
        let mut n = 0;
        for day in self.days()? {
            if self.get(day, false)?.is_none() {
                continue;
            }
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let raw = cache.get(&day).map(|k| k.raw.clone());
            drop(cache);
            if let Some(raw) = raw {
                other.write(day, &raw)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

fn sync_dir(dir: &Path) -> Result<(), KekError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

#[cfg(test)]
#[path = "kek_tests.rs"]
mod tests;
