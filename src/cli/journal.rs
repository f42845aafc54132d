//! `kim journal salvage`: with the daemon stopped, opens a store whose
//! accept journal is damaged, applies every notification that still opens,
//! keeps the damaged segments in `journal/damaged/`, audits
//! `journal_damaged` and queues a notice to the admin mailbox naming what
//! each force must re-send. Identifiers only, never a child's details.

use std::path::Path;

use super::{CliResult, Failure};
use crate::audit::Actor;
use crate::store::{Store, StoreError};

pub fn salvage(config: &Path) -> CliResult {
    let cfg = crate::config::Config::load(config).map_err(Failure::usage)?;
    let key = cfg.master_key_path().map_err(Failure::usage)?;
    let master = crate::store::crypto::MasterKey::load(&key).map_err(Failure::usage)?;
    let (_store, replayed): (Store, _) =
        match Store::open_salvaging(&cfg.store.path, &master, &Actor::current_user()) {
            Ok(x) => x,
            Err(StoreError::Locked(_)) => {
                return Err(Failure::failed(anyhow::anyhow!(
                "the daemon is running, so its journal opened whole: there is nothing to salvage"
            )))
            }
            Err(e) => return Err(Failure::failed(e)),
        };
    drop(_store);
    // Run as root: the files made while salvaging stay the store owner's.
    if let Err(e) = crate::store::ownership::keep_store_owner(&cfg.store.path) {
        eprintln!("kim: warning: {e}");
    }
    println!(
        "applied {} notification(s) from the accept journal",
        replayed.applied
    );
    match replayed.loss {
        None => println!("the journal was whole: nothing was lost"),
        Some(loss) => {
            println!(
                "{} acknowledged notification(s) could not be read; recorded in the audit as journal_damaged",
                loss.lost
            );
            for ids in &loss.named {
                println!(
                    "  lost: force {} reference {} receipt {}",
                    ids.force, ids.police_reference, ids.receipt
                );
            }
            let unnamed = (loss.lost as usize).saturating_sub(loss.named.len());
            if unnamed > 0 {
                println!("  and {unnamed} that could not be identified");
            }
            for k in &loss.kept {
                println!("the damaged segment is kept at {k}");
            }
            println!(
                "a notice to {} (the admin mailbox) goes out when the daemon starts: ask each force to re-send what it names",
                cfg.mail.admin_email
            );
        }
    }
    Ok(())
}
