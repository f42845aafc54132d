//! `kim retention …`: the clap definition of the retention verb (issue 14)
//! and its mapping to an admin request; the verb itself is in
//! `crate::admin::verbs::retention`.

use std::path::Path;

use clap::Subcommand;

use super::CliResult;
use crate::admin::Request;

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Purge now what retention would purge at `[retention] run_at`.
    #[command(
        long_about = "Purges now what the daemon purges every day at `[retention] run_at`: each \
notification whose every child reached a final state (delivered, failed or dismissed, withdrawn) at \
least `[retention] notification_days` ago loses its details (sealed payload and data key, review \
candidates, dismissal notes, withdrawal reason); its receipt, force, reference, states, times and \
school URNs stay, `kim status` and the police status show `purged_at`, and `purged` is audited. A \
notification with a child still waiting (queued, in review, retrying) is never purged, whatever its \
age. Finished alert records older than `[retention] alert_days` are deleted. When every notification \
received on a day (UTC) is purged, that day's key file under `<store>/keys/` is destroyed: nothing \
left in the store, with the master key, opens them again (crypto-shredding).\n\n\
Prints counts and receipts only. Runs through the daemon when it is up, on the store otherwise."
    )]
    Run {
        /// List what would be purged; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Purge what settled longer ago than this (e.g. `7d`, `12h`, `0s`)
        /// instead of `[retention] notification_days` / `alert_days`.
        #[arg(long, value_name = "DURATION")]
        older_than: Option<String>,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &Path, cmd: RetentionCommand) -> CliResult {
    let req = match cmd {
        RetentionCommand::Run {
            dry_run,
            older_than,
            json,
        } => Request::RetentionRun {
            dry_run,
            older_than,
            json,
        },
    };
    crate::admin::client::run(config, req)
}
