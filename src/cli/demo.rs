//! `kim demo`: the whole path on this machine in a temporary folder — dev
//! certificates, a master key, a config, the daemon, and a police client
//! sending sample notifications over mutual TLS — narrated on stdout.

use std::path::Path;

use anyhow::Context;
use hyper::Method;
use serde_json::json;

use super::{check_config, CliResult, Failure};
use crate::audit::{verify_chain, Head};
use crate::police_client::{Answer, PoliceClient};

fn demo_config(dir: &Path) -> crate::dev::Options {
    crate::dev::Options {
        header: vec!["Written by `kim demo`. Relative paths are relative to this file.".into()],
        admin_socket: Some(dir.join("admin.sock")),
        extra: "[audit]\nsigning_key_file = \"audit.key\"\ncheckpoint_every = 10\ncheckpoint_file = \"checkpoints.jsonl\"\n[review]\ndigest_every = \"1s\"".into(),
        ..crate::dev::Options::loopback()
    }
}

/// Sample notifications: fictional children, a two-child household.
fn samples(now: jiff::Timestamp) -> Vec<serde_json::Value> {
    let last_night = now - jiff::SignedDuration::from_hours(10);
    vec![
        json!({
            "police_reference": "KNT/26/004512",
            "incident": {
                "occurred_at": last_night.to_string(),
                "category": "domestic_abuse",
                "summary_for_school": "Police attended a verbal argument at the home. No injuries."
            },
            "children": [{
                "given_name": "Amelia", "family_name": "Khan", "other_names": ["Amy"],
                "date_of_birth": "2014-03-09", "school_urn": "118765", "postcode": "ME14 1XX",
                "involvement": "present",
                "voice_of_child": "Spoken to by officers; said she was scared but is OK now."
            }],
            "officer": { "name": "PC 4411 Jones", "phone": "01622 000000", "email": "p.jones@police.example" }
        }),
        json!({
            "police_reference": "KNT/26/004513",
            "incident": { "occurred_at": last_night.to_string(), "category": "domestic_abuse" },
            "children": [
                { "given_name": "Oliwia", "family_name": "NOWAK", "other_names": ["Liwia"], "date_of_birth": "2012-07-21", "involvement": "witnessed" },
                { "given_name": "Tomasz", "family_name": "Nowak", "date_of_birth": "2017-01-30", "involvement": "not_present" }
            ]
        }),
    ]
}

const SCHOOLS_CSV: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone
118765,Maidstone Primary School,Ms A. Patel,dsl@maidstone-primary.example,deputy@maidstone-primary.example,01622 111111
118766,Oakwood Park Grammar School,Mr B. Okafor,dsl@oakwood.example,,01622 222222
118767,St Michael's CE Junior School,Mrs C. Byrne,dsl@stmichaels.example,,
";

const ROLL_CSV: &str =
    "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn
KCC-000101,Amelia,Khan,Amy,2014-03-09,ME14 1XX,118765
KCC-000102,Oliwia,Nowak,,2012-07-21,ME15 6AB,118766
KCC-000103,Tomasz,Nowak,Tom,2017-01-30,ME15 6AB,118767
KCC-000104,Tomasz,Nowak,,2017-01-30,CT1 2AA,118765
KCC-000105,Siobhán,O'Brien,,2013-11-02,ME16 8QQ,118767
";

/// The text/plain part of a message, quoted-printable decoded (for display).
fn plain_part(raw: &str) -> String {
    let Some(start) = raw.find("Content-Type: text/plain") else {
        return String::new();
    };
    let rest = &raw[start..];
    let body_start = rest.find("\r\n\r\n").map(|i| i + 4).unwrap_or(0);
    let body = &rest[body_start..];
    let body = &body[..body.find("\r\n--").unwrap_or(body.len())];
    let joined = body.replace("=\r\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let b = joined.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// The first `.eml` in `outbox` whose subject contains `subject`, waiting
/// up to `limit` for it: (file name, raw text).
async fn wait_for_mail(
    outbox: &Path,
    subject: &str,
    limit: std::time::Duration,
) -> Option<(String, String)> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        for e in std::fs::read_dir(outbox).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let found = text
                .lines()
                .any(|l| l.starts_with("Subject:") && l.contains(subject));
            if found {
                return Some((e.file_name().to_string_lossy().into_owned(), text));
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

fn show(label: &str, a: &Answer) {
    println!("  {label}: HTTP {}", a.status);
    let pretty = serde_json::to_string_pretty(&a.json()).unwrap_or_else(|_| a.text());
    for line in pretty.lines() {
        println!("      {line}");
    }
}

pub fn main(keep: bool) -> CliResult {
    let _log = super::init_logging(crate::config::LogFormat::Text, "warn");
    let tmp = tempfile::Builder::new()
        .prefix("kim-demo-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let dir = tmp.path().to_owned();
    println!(
        "kim demo — everything runs on this machine, in {}\n",
        dir.display()
    );

    println!("1. Development certificates (kim certs dev), a master key (kim keys init) and an audit signing key (kim keys signing-init)");
    let dev = crate::dev::install(&dir, &demo_config(&dir)).map_err(Failure::failed)?;
    let (certs, config_path) = (dev.certs, dev.config);
    crate::audit::checkpoint::write_new_signing_key(&dir.join("audit.key"))
        .map_err(Failure::failed)?;
    println!(
        "   dev CA, server cert for localhost, police client cert for relay.kent-police.example"
    );
    println!("   config: {}\n", config_path.display());

    println!("2. A school directory and a roll of children (kim schools import, kim roll import)");
    std::fs::write(dir.join("schools.csv"), SCHOOLS_CSV).context("cannot write schools.csv")?;
    std::fs::write(dir.join("roll.csv"), ROLL_CSV).context("cannot write roll.csv")?;
    {
        let (cfg, _, master) = check_config::load_checked(&config_path)?;
        let store = crate::store::Store::open(&cfg.store.path, &master).map_err(Failure::failed)?;
        let schools =
            crate::import::parse_schools(SCHOOLS_CSV.as_bytes()).map_err(Failure::failed)?;
        let urns = schools.iter().map(|s| s.urn.clone()).collect();
        let _ = store.replace_schools(&schools).map_err(Failure::failed)?;
        let pupils =
            crate::import::parse_roll(ROLL_CSV.as_bytes(), &urns, jiff::Zoned::now().date())
                .map_err(Failure::failed)?;
        store.replace_roll(&pupils).map_err(Failure::failed)?;
        println!(
            "   {} schools, {} pupils — sealed in the store, with blind indexes for matching\n",
            schools.len(),
            pupils.len()
        );
    }

    let (cfg, tls, master) = check_config::load_checked(&config_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::failed)?;
    rt.block_on(async move {
        println!("3. Starting the daemon (kim serve) with an encrypted store");
        let running = crate::daemon::start(cfg, tls, master).await?;
        let addr = running.addr;
        let store = running.store.clone();
        println!("   police API on https://{addr} (mutual TLS)\n");

        let police = PoliceClient::new(&certs.ca_cert, Some((&certs.client_cert, &certs.client_key)))?;
        let mut conn = police.connect(addr).await?;
        println!("4. Kent Police's system sends notifications over mutual TLS");
        let mut receipts = Vec::new();
        let sent = samples(jiff::Timestamp::now());
        for n in &sent {
            let body = serde_json::to_vec(&n)?;
            let a = conn.send(Method::POST, "/v1/notifications", Some(&body)).await?;
            show(&format!("POST /v1/notifications ({})", n["police_reference"].as_str().unwrap_or("")), &a);
            if let Some(r) = a.json()["receipt_id"].as_str() {
                receipts.push(r.to_owned());
            }
        }
        println!();

        println!("5. The same notification sent again is recognised (200, original receipt)");
        let again = serde_json::to_vec(&sent[0])?;
        let a = conn.send(Method::POST, "/v1/notifications", Some(&again)).await?;
        println!("  POST again: HTTP {} receipt {}\n", a.status, a.json()["receipt_id"]);

        println!("6. A notification that breaks the contract gets problem+json, with no personal data echoed");
        let bad = json!({
            "police_reference": "KNT/26/004514",
            "incident": { "occurred_at": "2026-11-22T21:40:00Z", "category": "domestic_abuse" },
            "children": [{ "given_name": "Amelia", "family_name": "Khan", "date_of_birth": "2001-13-40", "involvement": "asleep" }],
            "nickname": "x"
        });
        let a = conn.send(Method::POST, "/v1/notifications", Some(&serde_json::to_vec(&bad)?)).await?;
        show("POST invalid", &a);
        println!();

        println!("7. The matching stage finds each child's school; the force polls the status (no personal data)");
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(10)
            && (store.pending_match().next().is_some() || receipts.iter().any(|r| store.is_pending(r)))
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        for r in &receipts {
            let a = conn.send(Method::GET, &format!("/v1/notifications/{r}"), None).await?;
            show(&format!("GET /v1/notifications/{r}"), &a);
        }
        println!("   Amelia is on the roll at one school: matched. Tomasz has a namesake with the same date of");
        println!("   birth at another school, and the police gave no school: precision first, so a human decides.\n");

        println!("8. The review queue (kim review list) — identifiers and reasons, no names:");
        let queue = store.review_list()?;
        for i in &queue {
            println!("   {}  child {}  {}  ({} {})", i.receipt_id, i.index, i.reason.as_str(), i.force, i.police_reference);
        }
        let outbox = dir.join("outbox");
        let notice = wait_for_mail(&outbox, "need", std::time::Duration::from_secs(15)).await;
        if let Some((name, raw)) = &notice {
            println!("\n   The admin mailbox is told at once ([review] notify, one notice per digest_every; {name}):");
            for line in plain_part(raw).lines() {
                println!("   | {line}");
            }
        }
        if let Some(i) = queue.iter().find(|i| i.index == 1) {
            let (receipt, index) = (i.receipt_id.clone(), i.index);
            let ask = |req| {
                let config = config_path.clone();
                tokio::task::spawn_blocking(move || crate::admin::client::answer_text(&config, req))
            };
            println!("\n   $ kim review show {receipt} {index}     (through the admin socket; audited as admin_access)");
            let shown = ask(crate::admin::Request::ReviewShow { receipt: receipt.clone(), index, json: false })
                .await
                .map_err(anyhow::Error::from)?
                .map_err(|f| f.error)?;
            for line in shown.lines() {
                println!("   | {line}");
            }
            println!("\n   The admin checks with the council's records: the household lives in ME15, so KCC-000103.");
            println!("   $ kim review assign {receipt} {index} --pupil KCC-000103");
            let assigned = ask(crate::admin::Request::ReviewAssignPupil { receipt, index, pupil: "KCC-000103".into() })
                .await
                .map_err(anyhow::Error::from)?
                .map_err(|f| f.error)?;
            for line in assigned.lines() {
                println!("   | {line}");
            }
        }
        println!("   (`kim review dismiss RECEIPT CHILD --reason TEXT` closes a case kim should not send.)\n");

        println!("9. The delivery worker emails each school's DSL: one email per child per school");
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(20)
            && !store.active_alerts()?.is_empty()
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let mut files: Vec<_> = std::fs::read_dir(&outbox)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        println!("   mail.transport = \"file\": the messages are .eml files in {}", outbox.display());
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let header = |h: &str| {
                text.replace("\r\n ", " ")
                    .lines()
                    .find(|l| l.starts_with(h))
                    .map(|l| l[h.len()..].trim().to_owned())
                    .unwrap_or_default()
            };
            println!("   {}  to {}", f.file_name().unwrap_or_default().to_string_lossy(), header("To:"));
            println!("       subject: {}", header("Subject:"));
        }
        if let Some(first) = files.first() {
            let raw = std::fs::read_to_string(first).unwrap_or_default();
            println!("\n   What the DSL reads at 07:45 (the plain-text part of {}):", first.file_name().unwrap_or_default().to_string_lossy());
            for line in plain_part(&raw).lines() {
                println!("   | {line}");
            }
        }
        println!();
        for r in &receipts {
            let a = conn.send(Method::GET, &format!("/v1/notifications/{r}"), None).await?;
            show(&format!("GET /v1/notifications/{r} (after delivery)"), &a);
        }
        println!("   Each alert records the deadline — 08:00 UK time on the next school day — and whether it was met.\n");

        drop(conn);
        running.shutdown().await?;
        let events: Vec<_> = store.audit_events().collect::<Result<_, _>>()?;
        let head = verify_chain(&Head::default(), &events).map_err(anyhow::Error::from)?;
        println!("10. Stopped cleanly. The audit chain (kim audit list) holds {} events and verifies (head {}…):", head.seq, &head.hash[..16]);
        for ev in &events {
            println!(
                "   #{:<3} {:<16} {:<14} {} {}",
                ev.seq,
                serde_json::to_value(ev.kind)?.as_str().unwrap_or(""),
                ev.actor,
                ev.refs.alert_id.as_deref().or(ev.refs.receipt.as_deref()).unwrap_or(""),
                ev.detail.get("code").map(|c| format!("smtp {c}")).unwrap_or_default()
            );
        }
        println!("   Identifiers, URNs, states and SMTP codes only: no child's name, date of birth or postcode.");
        let cps = store.checkpoints()?;
        let signer = crate::audit::checkpoint::Signer::load(&dir.join("audit.key"))?;
        let n = crate::audit::export::verify_checkpoints(
            &cps,
            &crate::audit::checkpoint::Trusted::one(signer.public_key()),
            &head,
            |seq| events.get(seq as usize - 1).map(|e| e.hash.clone()),
            "store",
        )
        .map_err(anyhow::Error::from)?;
        println!(
            "   Signed checkpoints: {n} (Ed25519, every 10 events and at the stop; also in checkpoints.jsonl to ship elsewhere); they verify (kim audit verify)."
        );

        let page = dir.join("report.html");
        println!(
            "\n11. The partnership's report (kim report --html {}): figures from the verified audit and the school directory only",
            page.display()
        );
        let today = jiff::Timestamp::now().to_zoned(crate::calendar::school_tz()).date();
        let cfg = crate::config::Config::load(&config_path)?;
        let mut ctx = crate::admin::ctx::Ctx {
            store: &store,
            cfg: &cfg,
            actor: crate::audit::Actor::current_user(),
            out: String::new(),
            file: Some(crate::fsmode::create_new_private(&page)?),
        };
        let req = crate::admin::Request::Report {
            from: Some(today.yesterday()?.to_string()),
            to: Some(today.to_string()),
            force: None,
            json: false,
            csv: false,
            html: Some(page.clone()),
        };
        let a = crate::admin::answer(&mut ctx, &req);
        anyhow::ensure!(a.code == 0, "kim report: {}", a.error);
        for line in a.stdout.lines() {
            println!("   | {line}");
        }
        println!("   One page, no script and no link: it prints on A4 and reads on a phone (or --json, --csv, text).");
        Ok::<_, anyhow::Error>(())
    })
    .map_err(Failure::failed)?;

    if keep {
        let kept = tmp.keep();
        println!(
            "\nKept {} — run `kim --config {}/kim.toml serve` to start it again.",
            kept.display(),
            kept.display()
        );
    } else {
        println!("\nRemoved the demo folder. Run `kim demo --keep` to keep it and look around.");
    }
    Ok(())
}
