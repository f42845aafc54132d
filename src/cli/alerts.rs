//! `kim alerts …`: the clap definitions of the delivery-queue verbs (issue
//! 18) and their mapping to admin requests; the verbs themselves are in
//! `crate::admin::verbs::alerts`.

use std::path::Path;

use clap::Subcommand;

use super::CliResult;
use crate::admin::Request;

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// The delivery queue, newest first: one row per message (DSL alert,
    /// deputy copy, withdrawal notice, admin notice — marked by KIND).
    #[command(
        long_about = "The delivery queue, newest first: one row per message kim owes someone (the DSL \
alert, its deputy copy, a withdrawal notice, an admin notice — marked in the KIND column): alert id, \
receipt, child index, school URN and name, state, attempts, the last SMTP reply code and text (addresses \
replaced by [address]), the next attempt, the school-day deadline and whether it was met. Never a \
child's name, date of birth or postcode. Read from the outbox's records and its time index, never from \
the sealed notifications. At most 100 rows unless --limit says otherwise."
    )]
    List {
        /// Only messages in this state: queued, sending, retry_wait, delivered, failed, withdrawn.
        #[arg(long)]
        state: Option<String>,
        /// Only messages queued within this long, e.g. 24h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// Only messages about children at this school URN.
        #[arg(long)]
        school: Option<String>,
        /// Only messages about this receipt.
        #[arg(long)]
        receipt: Option<String>,
        /// Only DSL alerts delivered after their deadline, or still waiting (or failed) past it.
        #[arg(long)]
        late: bool,
        /// At most N rows (default 100; 0 for all).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// One alert: its state, its whole history from the audit, and the
    /// recipient's address from the current directory (audited as `admin_access`).
    Show {
        alert_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Put failed alerts back in the queue, addressed from the current
    /// school directory, with the same Message-ID (audited `requeued`).
    #[command(
        long_about = "Put failed alerts back in the queue: each goes back to `queued`, due now, and is \
addressed from the current school directory when it is sent (so a DSL address corrected by `kim schools \
import` is used), with the same Message-ID. Each is audited as `requeued` with the admin's OS user and \
the hashes of the old and new addresses (never the addresses). Name alert ids, or use --failed to \
re-queue every failed message (optionally only for one school or only recent ones)."
    )]
    Retry {
        /// The alerts to re-queue (as `kim alerts list` shows them).
        #[arg(
            value_name = "ALERT_ID",
            required_unless_present = "failed",
            conflicts_with = "failed"
        )]
        ids: Vec<String>,
        /// Every failed message.
        #[arg(long)]
        failed: bool,
        /// With --failed: only messages about children at this school URN.
        #[arg(long, requires = "failed")]
        school: Option<String>,
        /// With --failed: only messages queued within this long, e.g. 7d.
        #[arg(long, requires = "failed")]
        since: Option<String>,
    },
    /// Send every alert waiting for a retry (`retry_wait`) now (each audited `flushed`).
    Flush,
}

/// Runs `cmd` through the daemon's socket, or on the store.
pub fn run(config: &Path, cmd: AlertsCommand) -> CliResult {
    let req = match cmd {
        AlertsCommand::List {
            state,
            since,
            school,
            receipt,
            late,
            limit,
            json,
        } => Request::AlertsList {
            state,
            since,
            school,
            receipt,
            late,
            limit,
            json,
        },
        AlertsCommand::Show { alert_id, json } => Request::AlertsShow { id: alert_id, json },
        AlertsCommand::Retry {
            ids,
            failed,
            school,
            since,
        } => Request::AlertsRetry {
            ids,
            failed,
            school,
            since,
        },
        AlertsCommand::Flush => Request::AlertsFlush,
    };
    crate::admin::client::run(config, req)
}
