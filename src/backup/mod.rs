//! Backups of the store (`kim backup --out DIR`) and their manifest: which
//! files a backup holds (every regular file under the store folder except
//! the accept journal's segments, plus the audit checkpoint file), with
//! their size, mode, owner and SHA-256, the kim and store format that wrote
//! them, the time and the audit head. The copy writes relative to a folder
//! the CLI opened (the daemon never opens an admin's path) and never over
//! anything. Restoring is `restore`.

pub mod restore;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::audit::Head;
use crate::store::backup::Quiet;

/// The manifest's file name in a backup folder.
pub const MANIFEST: &str = "MANIFEST.json";
/// Where the store's files go in a backup folder.
pub const STORE_DIR: &str = "store";
/// The copy of `[audit] checkpoint_file` in a backup folder.
pub const CHECKPOINT_COPY: &str = "checkpoint_file.jsonl";
/// The store's folder that a backup leaves out (notifications there are
/// after the backup's point).
const JOURNAL_DIR: &str = "journal";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} is not empty; kim never writes a backup over anything")]
    NotEmpty(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path} in the backup folder: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the backup's manifest {path}: {why}")]
    Manifest { path: String, why: String },
    #[error("the backup file {path} does not match the manifest ({why}); nothing was restored")]
    Corrupt { path: String, why: String },
}

/// One file in a backup, by its path relative to the backup folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    /// Permission bits (e.g. 0o600), restored as they were.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// `MANIFEST.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The kim that wrote the backup: version and git commit.
    pub kim_version: String,
    /// The store format this kim writes (`store::format::FORMAT_VERSION`).
    pub kim_format_version: u32,
    /// The format version the store records.
    pub store_format_version: u32,
    /// When the consistent point was taken.
    pub created_at: jiff::Timestamp,
    /// The audit chain's head in the backup.
    pub audit_head: Head,
    /// Where the store was (for the reader; restore goes where it is told).
    pub store_path: PathBuf,
    /// The checkpoint file's path then, if it was copied.
    #[serde(default)]
    pub checkpoint_file: Option<PathBuf>,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// SHA-256 of what `input` yields, hex, and its length, copied to `out`.
fn copy_hashing(
    input: &mut impl Read,
    mut out: Option<&mut File>,
) -> std::io::Result<(String, u64)> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        ctx.update(&buf[..n]);
        if let Some(o) = out.as_deref_mut() {
            o.write_all(&buf[..n])?;
        }
        total += n as u64;
    }
    Ok((crate::audit::hex(ctx.finish().as_ref()), total))
}

/// SHA-256 (hex) and length of the file at `path`.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    copy_hashing(&mut File::open(path)?, None)
}

/// Every regular file under `root` (relative paths, sorted), leaving out
/// the top-level `journal/` folder.
fn store_files(root: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let rd = std::fs::read_dir(&dir).map_err(|source| BackupError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        for e in rd {
            let e = e.map_err(|source| BackupError::Read {
                path: dir.display().to_string(),
                source,
            })?;
            let name = rel.join(e.file_name());
            let ty = e.file_type().map_err(|source| BackupError::Read {
                path: root.join(&name).display().to_string(),
                source,
            })?;
            if ty.is_dir() {
                if name.as_os_str() != JOURNAL_DIR {
                    stack.push(name);
                }
            } else if ty.is_file() {
                out.push(name);
            } else {
                tracing::warn!(path = %root.join(&name).display(), "backup: not a regular file; left out");
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Creates `rel` (and the folders before it) under `dir` with `mode`,
/// never over an existing file.
fn create_at(dir: &File, rel: &Path, mode: u32) -> Result<File, BackupError> {
    let werr = |source: std::io::Error| BackupError::Write {
        path: rel.display().to_string(),
        source,
    };
    let mut so_far = PathBuf::new();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            so_far.push(c);
            match rustix::fs::mkdirat(dir.as_fd(), &so_far, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(werr(e.into())),
            }
        }
    }
    let fd = rustix::fs::openat(
        dir.as_fd(),
        rel,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| werr(e.into()))?;
    let f = File::from(fd);
    // The mode as it was, whatever the umask.
    rustix::fs::fchmod(&f, Mode::from_raw_mode(mode & 0o7777)).map_err(|e| werr(e.into()))?;
    Ok(f)
}

/// Copies `src` into the backup folder as `rel`: its entry.
fn copy_one(dir: &File, src: &Path, rel: &Path) -> Result<FileEntry, BackupError> {
    let rerr = |source: std::io::Error| BackupError::Read {
        path: src.display().to_string(),
        source,
    };
    let mut input = File::open(src).map_err(rerr)?;
    let meta = input.metadata().map_err(rerr)?;
    let mut out = create_at(dir, rel, meta.mode())?;
    let (sha256, bytes) =
        copy_hashing(&mut input, Some(&mut out)).map_err(|source| BackupError::Write {
            path: rel.display().to_string(),
            source,
        })?;
    out.sync_all().map_err(|source| BackupError::Write {
        path: rel.display().to_string(),
        source,
    })?;
    Ok(FileEntry {
        path: rel.display().to_string(),
        bytes,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        sha256,
    })
}

/// Whether the folder open as `dir` is empty.
fn is_empty(dir: &File) -> Result<bool, BackupError> {
    let rerr = |e: rustix::io::Errno| BackupError::Read {
        path: "the backup folder".into(),
        source: e.into(),
    };
    for entry in rustix::fs::Dir::read_from(dir.as_fd()).map_err(rerr)? {
        let name = entry.map_err(rerr)?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Copies the store at `store_dir` (held still by `quiet`) and the
/// checkpoint file into the empty folder `dir`, then writes the manifest.
pub fn copy_store(
    store_dir: &Path,
    checkpoint_file: Option<&Path>,
    dir: &File,
    quiet: &Quiet<'_>,
) -> Result<Manifest, BackupError> {
    if !is_empty(dir)? {
        return Err(BackupError::NotEmpty("the backup folder".into()));
    }
    let mut files = Vec::new();
    for rel in store_files(store_dir)? {
        files.push(copy_one(
            dir,
            &store_dir.join(&rel),
            &Path::new(STORE_DIR).join(&rel),
        )?);
    }
    let mut copied_checkpoints = None;
    if let Some(cp) = checkpoint_file {
        if cp.exists() {
            files.push(copy_one(dir, cp, Path::new(CHECKPOINT_COPY))?);
            copied_checkpoints = Some(cp.to_owned());
        }
    }
    let manifest = Manifest {
        kim_version: crate::cli::VERSION.to_owned(),
        kim_format_version: crate::store::format::FORMAT_VERSION,
        store_format_version: quiet.format_version,
        created_at: jiff::Timestamp::now(),
        audit_head: quiet.head.clone(),
        store_path: store_dir.to_owned(),
        checkpoint_file: copied_checkpoints,
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Manifest {
        path: MANIFEST.into(),
        why: e.to_string(),
    })?;
    let mut f = create_at(dir, Path::new(MANIFEST), 0o600)?;
    f.write_all(&text)
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(|source| BackupError::Write {
            path: MANIFEST.into(),
            source,
        })?;
    sync_dirs(dir, &manifest)?;
    Ok(manifest)
}

/// fsyncs every folder of the backup, so the names are durable too.
fn sync_dirs(dir: &File, manifest: &Manifest) -> Result<(), BackupError> {
    let mut dirs: Vec<PathBuf> = manifest
        .files
        .iter()
        .filter_map(|f| Path::new(&f.path).parent().map(Path::to_owned))
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        let fd = rustix::fs::openat(
            dir.as_fd(),
            &d,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| BackupError::Write {
            path: d.display().to_string(),
            source: e.into(),
        })?;
        rustix::fs::fsync(fd).map_err(|e| BackupError::Write {
            path: d.display().to_string(),
            source: e.into(),
        })?;
    }
    dir.sync_all().map_err(|source| BackupError::Write {
        path: ".".into(),
        source,
    })
}

/// Reads and parses `DIR/MANIFEST.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(|source| BackupError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|e| BackupError::Manifest {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

/// Checks every file of the backup at `dir` against `manifest` (size and
/// SHA-256), naming the first that differs or is missing, and refuses a
/// path that would leave the backup folder.
pub fn check_files(dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    for f in &manifest.files {
        let rel = Path::new(&f.path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(BackupError::Manifest {
                path: dir.join(MANIFEST).display().to_string(),
                why: format!("{} is not a path inside the backup", f.path),
            });
        }
        let path = dir.join(rel);
        let (sha, bytes) = hash_file(&path).map_err(|e| BackupError::Corrupt {
            path: path.display().to_string(),
            why: format!("cannot read it: {e}"),
        })?;
        if bytes != f.bytes || sha != f.sha256 {
            return Err(BackupError::Corrupt {
                path: path.display().to_string(),
                why: "SHA-256 differs".into(),
            });
        }
    }
    Ok(())
}
