//! `kim retention run`: one retention run now ([`crate::retention::run`])
//! with the config's `[retention]`, or `--older-than`; prints counts and
//! receipts only.

use crate::admin::ctx::Ctx;
use crate::admin::outcome::{CliResult, Failure};
use crate::config::HumanDuration;
use crate::retention::{self, RunOptions};

pub fn run(ctx: &mut Ctx<'_>, dry_run: bool, older_than: Option<&str>, json: bool) -> CliResult {
    let older_than_secs = match older_than {
        None => None,
        Some(s) => Some(
            HumanDuration::parse(s)
                .map_err(|why| Failure::usage(anyhow::anyhow!("--older-than {s:?}: {why}")))?
                .0
                .as_secs(),
        ),
    };
    let opts = RunOptions {
        dry_run,
        older_than_secs,
    };
    let actor = ctx.actor.to_string();
    let report = retention::run(
        ctx.store,
        &ctx.cfg.retention,
        &opts,
        jiff::Timestamp::now(),
        &actor,
    )
    .map_err(|e| Failure::failed(anyhow::Error::from(e)))?;
    if json {
        ctx.say_json(&report)?;
    } else {
        let text = report.render();
        say_part!(ctx, "{text}");
    }
    Ok(())
}
