//! `kim backup` and `kim restore`: their clap arguments and manual text
//! (the work is `admin::verbs::backup` and `crate::backup::restore`).

use std::path::PathBuf;

pub const BACKUP_ABOUT: &str =
    "Copy the store into DIR (created 0700, or an existing empty folder; never \
over anything) at a consistent point: every notification acknowledged before it is in the copy. \
With the daemon running this goes through the admin socket: the daemon holds new notifications in \
the accept journal, lets the applier apply what is journaled, locks out every writer, flushes, \
copies and lets go (police are answered meanwhile). With the daemon stopped, the store is opened \
here (its journal replayed) and copied.\n\n\
DIR/store/ holds every file of [store] path except the accept journal (sled's files, the roll \
files, keys/ and anything else), DIR/checkpoint_file.jsonl the audit checkpoint file, and \
DIR/MANIFEST.json the kim version and commit, the store's format version, the time, the audit \
head (sequence and hash) and each file's size, mode, owner and SHA-256. Everything sealed stays \
sealed: a backup opens only with the master key, which it does not hold. Audited as `backup` \
(file count, bytes, audit sequence).";

pub const RESTORE_ABOUT: &str =
    "Restore the backup in DIR into PATH (the daemon stopped; PATH must not \
exist or be an empty folder). Every file is checked against the manifest's SHA-256 first (a \
damaged file is refused by name, nothing restored); the store is put together in a folder beside \
PATH, opened with the master key, its audit chain recomputed and its signed checkpoints checked, \
and the restore recorded in its chain as `restored` (the backup's sequence and time, and how far \
the [audit] checkpoint_file reaches) before it is renamed into place. Files keep their modes (and, \
run as root, their owners). On a host without a checkpoint file the backup's copy becomes it.\n\n\
Prints the window the store lacks: ask the forces to re-send the notifications received between \
the backup's time and now (their receipts are unknown to the restored store; a re-send is \
accepted as new). `kim audit verify` then warns (exit 0) that events after the backup are not \
in this store, where an unrecorded copy-back fails (exit 1).";

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The backup folder: must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A folder written by `kim backup`.
    pub dir: PathBuf,
    /// Where the store goes (usually [store] path).
    #[arg(long, value_name = "PATH")]
    pub to: PathBuf,
}
