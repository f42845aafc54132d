//! Part 2, relay faults: under the police load the SMTP relay first
//! refuses every recipient with a 4xx, then is unreachable (connections
//! refused, open ones cut) for the outage, then comes back: every alert is
//! delivered exactly once, and the refusals are in the audit.

use std::time::{Duration, Instant};

use crate::check;
use crate::world::{Setup, World};
use crate::{promise, Knobs, Outcome};

pub fn run(knobs: &Knobs) -> Outcome {
    // Retries back off to at most retry_max: a quarter of the outage (so a
    // long outage is retried a few times, not hammered), at least 1 s.
    let retry_max = (knobs.outage.as_secs() / 4).clamp(1, 120);
    let mut w = World::new(Setup {
        extra: format!(
            "[delivery]\nretry_initial = \"1s\"\nretry_max = \"{retry_max}s\"\nsend_timeout = \"10s\"\n"
        ),
        ..Setup::default()
    });
    w.start()?;
    // About 400 notifications over the refusal and the outage, whatever
    // their length (a long outage need not pile up thousands).
    let refusing = (knobs.outage / 4).max(Duration::from_secs(2));
    let every = ((refusing + knobs.outage) * 2 / 400).max(Duration::from_millis(150));
    w.start_load(2, every);
    std::thread::sleep(Duration::from_secs(1));

    // Refusing: 451 to every recipient.
    w.smtp.shared.lock().unwrap().refuse_to.push((
        "@".into(),
        451,
        "4.3.2 System not accepting network messages".into(),
    ));
    eprintln!("relay refuses (451) for {refusing:?}");
    std::thread::sleep(refusing);

    // Unreachable.
    w.proxy.down();
    w.smtp.shared.lock().unwrap().refuse_to.clear();
    // (A message whose DATA ended just before the cut lands now.)
    std::thread::sleep(Duration::from_millis(200));
    let before_outage = w.smtp.received().len();
    eprintln!("relay unreachable for {:?}", knobs.outage);
    let down = Instant::now();
    while down.elapsed() < knobs.outage {
        std::thread::sleep(Duration::from_millis(200).min(knobs.outage));
    }
    let during_outage = w.smtp.received().len() - before_outage;
    let waiting = w.shared.accepted().iter().filter(|a| a.on_roll).count();
    w.proxy.up();
    eprintln!("relay back ({waiting} alerts so far)");
    std::thread::sleep(Duration::from_secs(1));
    w.stop_load();

    let settled = check::settle(&w, Duration::from_secs(retry_max * 2 + 60))?;
    let checked = check::receipts_answer(&w)?;
    let arrived = check::every_alert_arrived(&w)?;
    // No kill here: any second copy is a broken promise.
    let resends = check::no_doubles(&w)?;
    promise(resends == 0, "no alert delivered twice", || {
        format!("{resends} resends without a kill")
    })?;
    let messages: usize = check::dsl_messages(&w.received())
        .values()
        .map(Vec::len)
        .sum();
    promise(
        messages == arrived,
        "everything delivered exactly once",
        || format!("{messages} messages for {arrived} alerts"),
    )?;
    promise(
        during_outage == 0,
        "nothing passes an unreachable relay",
        || format!("{during_outage} messages arrived during the outage"),
    )?;
    check::audit_verifies(&w)?;
    let in_audit = check::audit_delivers_once(&w)?;
    check::no_unexpected_answers(&w)?;
    check::audit_matches_relay(&w, &in_audit)?;
    // The refusals were attempts, audited with their code.
    let (code, out, err) = w.kim_cli(&["audit", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let refused = out.matches("\"code\":451").count() + out.matches("\"code\": 451").count();
    promise(
        refused > 0,
        "every attempt is audited with the SMTP reply",
        || "no delivery_attempt with code 451 in the audit".into(),
    )?;
    eprintln!(
        "relay: {checked} receipts, {arrived} alerts delivered exactly once after {:?} refusing + {:?} unreachable, {refused} refusals audited, settled {:.1} s after the relay came back",
        refusing,
        knobs.outage,
        settled.as_secs_f64()
    );
    Ok(())
}
