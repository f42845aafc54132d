//! The admin API (DESIGN §2, §4c): one request type for every admin verb
//! that needs the store, and one dispatcher that runs the same verb
//! whether the CLI opened the store itself (daemon stopped) or the daemon
//! runs it for a CLI that asked over the Unix socket (daemon running).
//! Requests and answers travel as JSON lines. The verbs themselves live in
//! `verbs/`, one file each; `ctx` and `outcome` are what they work with and
//! how they end.

#[macro_use]
pub mod ctx;
pub mod client;
pub mod outcome;
mod refusals;
pub mod server;
pub mod trust;
pub mod verbs;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use ctx::Ctx;
use outcome::{CliResult, Failure};

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
    /// `kim audit verify --public-key K…`: also trusting these public keys
    /// (hex, read by the CLI).
    AuditVerifyWith {
        public_keys: Vec<String>,
    },
    AuditExport {
        out: PathBuf,
    },
    AlertsList {
        #[serde(default)]
        state: Option<String>,
        #[serde(default)]
        since: Option<String>,
        #[serde(default)]
        school: Option<String>,
        #[serde(default)]
        receipt: Option<String>,
        #[serde(default)]
        late: bool,
        #[serde(default)]
        limit: Option<usize>,
        json: bool,
    },
    AlertsShow {
        id: String,
        json: bool,
    },
    AlertsRetry {
        #[serde(default)]
        ids: Vec<String>,
        #[serde(default)]
        failed: bool,
        #[serde(default)]
        school: Option<String>,
        #[serde(default)]
        since: Option<String>,
    },
    AlertsFlush,
    /// `kim review show RECEIPT INDEX` (issue 12).
    ReviewShow {
        receipt: String,
        index: u32,
        json: bool,
    },
    /// `kim review assign RECEIPT INDEX --pupil PUPIL_ID` (issue 12).
    ReviewAssignPupil {
        receipt: String,
        index: u32,
        pupil: String,
    },
    /// `kim roll find --family NAME [--given NAME] [--dob DATE]` (issue 12).
    RollFind {
        family: String,
        given: Option<String>,
        dob: Option<String>,
        json: bool,
    },
    /// `kim report` (issue 15): the period's figures, audit verified first.
    Report {
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        force: Option<String>,
        #[serde(default)]
        json: bool,
        #[serde(default)]
        csv: bool,
        /// `--html FILE`: the page, written into the file the CLI created.
        #[serde(default)]
        html: Option<PathBuf>,
    },
    /// `kim retention run` (issue 14).
    RetentionRun {
        #[serde(default)]
        dry_run: bool,
        #[serde(default)]
        older_than: Option<String>,
        #[serde(default)]
        json: bool,
    },
    /// `kim backup --out DIR` (issue 14 item 3): the store copied at a
    /// consistent point into DIR, which the CLI opened (empty).
    Backup {
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
    /// A backup: a folder, created (or found empty) for writing into.
    Dir(&'a std::path::Path),
}

impl Request {
    /// A report's arguments (`None`: not a report).
    pub fn report_args(&self) -> Option<verbs::report::Args<'_>> {
        let Self::Report {
            from,
            to,
            force,
            json,
            csv,
            html,
        } = self
        else {
            return None;
        };
        Some(verbs::report::Args {
            from: from.as_deref(),
            to: to.as_deref(),
            force: force.as_deref(),
            html: html.as_deref(),
            format: match (json, csv) {
                (true, _) => verbs::report::Format::Json,
                (_, true) => verbs::report::Format::Csv,
                _ => verbs::report::Format::Text,
            },
        })
    }

    /// The file this request reads or writes, if any.
    pub fn file_use(&self) -> Option<FileUse<'_>> {
        match self {
            Self::SchoolsImport { file } | Self::RollImport { file } => Some(FileUse::Read(file)),
            Self::AuditExport { out } => Some(FileUse::Create(out)),
            Self::Backup { out } => Some(FileUse::Dir(out)),
            Self::Report {
                html: Some(out), ..
            } => Some(FileUse::Create(out)),
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
            Self::AuditVerify | Self::AuditVerifyWith { .. } => "audit_verify",
            Self::AuditExport { .. } => "audit_export",
            Self::AlertsList { .. } => "alerts_list",
            Self::AlertsShow { .. } => "alerts_show",
            Self::AlertsRetry { .. } => "alerts_retry",
            Self::AlertsFlush => "alerts_flush",
            Self::ReviewShow { .. } => "review_show",
            Self::ReviewAssignPupil { .. } => "review_assign_pupil",
            Self::RollFind { .. } => "roll_find",
            Self::Report { .. } => "report",
            Self::RetentionRun { .. } => "retention_run",
            Self::Backup { .. } => "backup",
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
        Request::SchoolsImport { file } => verbs::schools::import(ctx, file),
        Request::SchoolsList { json } => verbs::schools::list(ctx, *json),
        Request::RollImport { file } => verbs::roll::import(ctx, file),
        Request::RollStats { json } => verbs::roll::stats(ctx, *json),
        Request::ReviewList { json, reveal } => verbs::review::list(ctx, *json, *reveal),
        Request::ReviewAssign {
            receipt,
            index,
            urn,
        } => verbs::review::assign(ctx, receipt, *index, urn),
        Request::ReviewDismiss {
            receipt,
            index,
            reason,
        } => verbs::review::dismiss(ctx, receipt, *index, reason),
        Request::Status {
            receipt,
            reveal,
            json,
        } => verbs::status::main(ctx, receipt, *reveal, *json),
        Request::AuditList {
            since,
            receipt,
            school,
            json,
        } => verbs::audit::list(
            ctx,
            &verbs::audit::Filter {
                since: since.clone(),
                receipt: receipt.clone(),
                school: school.clone(),
                json: *json,
            },
        ),
        Request::AuditVerify => verbs::audit::verify(ctx),
        Request::AuditVerifyWith { public_keys } => verbs::audit::verify_with(ctx, public_keys),
        Request::AuditExport { out } => verbs::audit::export(ctx, out),
        Request::AlertsList {
            state,
            since,
            school,
            receipt,
            late,
            limit,
            json,
        } => verbs::alerts::list(
            ctx,
            &verbs::alerts::ListFilter {
                state: state.clone(),
                since: since.clone(),
                school: school.clone(),
                receipt: receipt.clone(),
                late: *late,
                limit: *limit,
                json: *json,
            },
        ),
        Request::AlertsShow { id, json } => verbs::alerts::show(ctx, id, *json),
        Request::AlertsRetry {
            ids,
            failed,
            school,
            since,
        } => verbs::alerts::retry(
            ctx,
            &verbs::alerts::RetryFilter {
                ids: ids.clone(),
                failed: *failed,
                school: school.clone(),
                since: since.clone(),
            },
        ),
        Request::AlertsFlush => verbs::alerts::flush(ctx),
        Request::ReviewShow {
            receipt,
            index,
            json,
        } => verbs::review_show::show(ctx, receipt, *index, *json),
        Request::ReviewAssignPupil {
            receipt,
            index,
            pupil,
        } => verbs::review_show::assign_pupil(ctx, receipt, *index, pupil),
        Request::RollFind {
            family,
            given,
            dob,
            json,
        } => verbs::roll_find::find(ctx, family, given.as_deref(), dob.as_deref(), *json),
        Request::Report { .. } => req
            .report_args()
            .map_or(Ok(()), |a| verbs::report::main(ctx, &a)),
        Request::RetentionRun {
            dry_run,
            older_than,
            json,
        } => verbs::retention::run(ctx, *dry_run, older_than.as_deref(), *json),
        Request::Backup { out } => verbs::backup::backup(ctx, out),
    }
}

/// Runs `req` and packs the outcome as an [`Answer`].
pub fn answer(ctx: &mut Ctx<'_>, req: &Request) -> Answer {
    let res = dispatch(ctx, req);
    answer_of(std::mem::take(&mut ctx.out), res)
}

/// The answer of a verb that printed `stdout` and ended with `res`.
pub fn answer_of(stdout: String, res: CliResult) -> Answer {
    match res {
        Ok(()) => Answer {
            code: 0,
            stdout,
            error: String::new(),
        },
        Err(f) => Answer {
            code: f.code,
            stdout,
            error: outcome::describe(&f.error),
        },
    }
}
