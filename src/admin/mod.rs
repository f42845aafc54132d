//! The admin API (DESIGN §2, §4c): one request type for every admin verb
//! that needs the store, and one dispatcher that runs the same CLI handler
//! whether the CLI opened the store itself (daemon stopped) or the daemon
//! runs it for a CLI that asked over the Unix socket (daemon running).
//! Requests and answers travel as JSON lines.

pub mod client;
mod refusals;
pub mod server;
pub mod trust;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cli::{self, Ctx, Failure};

/// An admin verb and its arguments. File paths are absolute (the client
/// resolves them against its own working directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    SchoolsImport {
        file: PathBuf,
    },
    SchoolsList {
        json: bool,
    },
    RollImport {
        file: PathBuf,
    },
    RollStats {
        json: bool,
    },
    ReviewList {
        json: bool,
        #[serde(default)]
        reveal: bool,
    },
    ReviewAssign {
        receipt: String,
        index: u32,
        urn: String,
    },
    ReviewDismiss {
        receipt: String,
        index: u32,
        reason: String,
    },
    Status {
        receipt: String,
        reveal: bool,
        json: bool,
    },
    AuditList {
        since: Option<String>,
        receipt: Option<String>,
        school: Option<String>,
        json: bool,
    },
    AuditVerify,
    AuditExport {
        out: PathBuf,
    },
}

/// The file a request needs, which the CLI opens with its user's rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileUse<'a> {
    /// An import: opened for reading.
    Read(&'a std::path::Path),
    /// An export: created (never over an existing file) for writing.
    Create(&'a std::path::Path),
}

impl Request {
    /// The file this request reads or writes, if any.
    pub fn file_use(&self) -> Option<FileUse<'_>> {
        match self {
            Self::SchoolsImport { file } | Self::RollImport { file } => Some(FileUse::Read(file)),
            Self::AuditExport { out } => Some(FileUse::Create(out)),
            _ => None,
        }
    }

    /// The verb's name for logs and the audit (never its arguments).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::SchoolsImport { .. } => "schools_import",
            Self::SchoolsList { .. } => "schools_list",
            Self::RollImport { .. } => "roll_import",
            Self::RollStats { .. } => "roll_stats",
            Self::ReviewList { .. } => "review_list",
            Self::ReviewAssign { .. } => "review_assign",
            Self::ReviewDismiss { .. } => "review_dismiss",
            Self::Status { .. } => "status",
            Self::AuditList { .. } => "audit_list",
            Self::AuditVerify => "audit_verify",
            Self::AuditExport { .. } => "audit_export",
        }
    }
}

/// The answer: what the CLI prints on stdout, and on failure the exit code
/// and the message for stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub code: u8,
    pub stdout: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Runs `req` with `ctx` (the same handlers for both ways in).
pub fn dispatch(ctx: &mut Ctx<'_>, req: &Request) -> Result<(), Failure> {
    match req {
        Request::SchoolsImport { file } => cli::roll::schools_import(ctx, file),
        Request::SchoolsList { json } => cli::roll::schools_list(ctx, *json),
        Request::RollImport { file } => cli::roll::roll_import(ctx, file),
        Request::RollStats { json } => cli::roll::roll_stats(ctx, *json),
        Request::ReviewList { json, reveal } => cli::review::list(ctx, *json, *reveal),
        Request::ReviewAssign {
            receipt,
            index,
            urn,
        } => cli::review::assign(ctx, receipt, *index, urn),
        Request::ReviewDismiss {
            receipt,
            index,
            reason,
        } => cli::review::dismiss(ctx, receipt, *index, reason),
        Request::Status {
            receipt,
            reveal,
            json,
        } => cli::status::main(ctx, receipt, *reveal, *json),
        Request::AuditList {
            since,
            receipt,
            school,
            json,
        } => cli::audit::list(
            ctx,
            &cli::audit::Filter {
                since: since.clone(),
                receipt: receipt.clone(),
                school: school.clone(),
                json: *json,
            },
        ),
        Request::AuditVerify => cli::audit::verify(ctx),
        Request::AuditExport { out } => cli::audit::export(ctx, out),
    }
}

/// Runs `req` and packs the outcome as an [`Answer`].
pub fn answer(ctx: &mut Ctx<'_>, req: &Request) -> Answer {
    let res = dispatch(ctx, req);
    let stdout = std::mem::take(&mut ctx.out);
    match res {
        Ok(()) => Answer {
            code: 0,
            stdout,
            error: String::new(),
        },
        Err(f) => Answer {
            code: f.code,
            stdout,
            error: crate::cli::describe(&f.error),
        },
    }
}
