//! `kim send` against the real daemon with real certificates: accepted,
//! re-sent, conflicting, status, withdraw, `--wait` ending on delivered and
//! on review, a JSON-lines batch at a rate — and each TLS failure a force
//! meets on its first day with its own message and exit code.

use std::path::Path;
use std::process::Command;

use crate::admin::{ROLL, SCHOOLS};
use crate::support::{notification, simple, Env, Options, KIM};

/// `kim send ARGS --url … --cert CERT --key KEY --ca CA`: (code, stdout, stderr).
fn send(
    env: &Env,
    addr: std::net::SocketAddr,
    client: (&Path, &Path),
    ca: &Path,
    args: &[&str],
) -> (i32, String, String) {
    let out = Command::new(KIM)
        .arg("send")
        .args(args)
        .arg("--url")
        .arg(format!("https://localhost:{}", addr.port()))
        .arg("--cert")
        .arg(client.0)
        .arg("--key")
        .arg(client.1)
        .arg("--ca")
        .arg(ca)
        .env_remove("KIM_CONFIG")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kent(env: &Env) -> (&Path, &Path) {
    (&env.certs.client_cert, &env.certs.client_key)
}

#[test]
fn send_posts_resends_conflicts_follows_and_withdraws() {
    let env = Env::new();
    env.import(SCHOOLS, ROLL);
    let kim = env.start();
    let ca = env.certs.ca_cert.clone();
    // Zebediah is on the roll once: matched and delivered (file transport).
    let file = env.path("zeb.json");
    std::fs::write(
        &file,
        notification(
            "KNT/S/1",
            "Zebediah",
            "Quixotic-Marsh",
            "2013-05-17",
            "QX9 7ZZ",
        ),
    )
    .unwrap();
    let (code, out, err) = send(
        &env,
        kim.addr,
        kent(&env),
        &ca,
        &["--wait", "--wait-timeout", "20s", file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    // Kent is live: the integrator is warned that this reaches real schools.
    assert!(err.contains("not in test mode"), "{err}");
    let receipt = out
        .split_whitespace()
        .find(|w| w.len() == 19 && w.matches('-').count() == 3)
        .unwrap()
        .to_owned();
    assert!(out.contains(": 202 "), "{out}");
    assert!(
        out.contains(&format!("{receipt}: 200 {receipt} delivered")),
        "{out}"
    );

    // The same again: 200 and the same receipt. Changed: 409, exit 1.
    let (code, out, _) = send(&env, kim.addr, kent(&env), &ca, &[file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!(": 200 {receipt}")), "{out}");
    let changed = env.path("changed.json");
    std::fs::write(
        &changed,
        notification(
            "KNT/S/1",
            "Zebediah",
            "Quixotic-Marsh",
            "2013-05-17",
            "QX9 7ZY",
        ),
    )
    .unwrap();
    let (code, out, err) = send(
        &env,
        kim.addr,
        kent(&env),
        &ca,
        &[changed.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(": 409 Conflict"), "{out}");

    // Jack Smith has a namesake at another school: --wait ends on review.
    // Sent as JSON lines at a rate, with --json output.
    let batch = env.path("batch.jsonl");
    let mut lines = Vec::new();
    for n in ["KNT/S/2", "KNT/S/3"] {
        // No school hint: the namesakes are at two schools.
        let mut b: serde_json::Value =
            serde_json::from_slice(&notification(n, "Jack", "Smith", "2015-05-05", "ME9 9ZZ"))
                .unwrap();
        b["children"][0]
            .as_object_mut()
            .unwrap()
            .remove("school_urn");
        lines.push(b.to_string());
    }
    std::fs::write(&batch, lines.join("\n") + "\n").unwrap();
    let (code, out, err) = send(
        &env,
        kim.addr,
        kent(&env),
        &ca,
        &[
            "--rate",
            "20/s",
            "--wait",
            "--wait-timeout",
            "20s",
            "--json",
            batch.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let answers: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 4, "{out}");
    assert_eq!(answers[0]["status"], 202);
    assert!(answers[1]["request"]
        .as_str()
        .unwrap()
        .ends_with("batch.jsonl:2"));
    assert_eq!(answers[3]["body"]["children"][0]["state"], "needs_review");
    let review_receipt = answers[0]["body"]["receipt_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // status and withdraw.
    let (code, out, _) = send(&env, kim.addr, kent(&env), &ca, &["status", &receipt]);
    assert_eq!(code, 0);
    assert!(out.contains("delivered"), "{out}");
    let (code, out, err) = send(
        &env,
        kim.addr,
        kent(&env),
        &ca,
        &["withdraw", &review_receipt, "--reason", "Sent in error."],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("withdrawn"), "{out}");
    let (code, out, _) = send(
        &env,
        kim.addr,
        kent(&env),
        &ca,
        &["withdraw", &review_receipt, "--reason", ""],
    );
    assert_eq!(code, 1);
    assert!(out.contains("422") && out.contains("/reason"), "{out}");
    let (code, _, _) = send(
        &env,
        kim.addr,
        kent(&env),
        &ca,
        &["status", "0000-0000-0000-0000"],
    );
    assert_eq!(code, 1);

    // Nothing the police sent is printed back.
    let (_, out, _) = send(&env, kim.addr, kent(&env), &ca, &["status", &receipt]);
    assert!(
        !out.contains("Zebediah") && !out.contains("2013-05-17"),
        "{out}"
    );
}

#[test]
fn each_first_day_tls_failure_has_its_own_message_and_exit_code() {
    let env = Env::new();
    env.write_config(&Options {
        crls: vec![env.fx.crl.clone()],
        ..Options::default()
    });
    let kim = env.start();
    let body = env.path("n.json");
    std::fs::write(&body, simple("KNT/S/TLS")).unwrap();
    let f = body.to_str().unwrap();
    let ca = env.certs.ca_cert.clone();
    let fx = &env.fx;

    // kim's certificate not trusted by the CA we were given.
    let (code, _, err) = send(&env, kim.addr, kent(&env), &fx.other_ca, &[f]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("not trusted by --ca") && err.contains(&fx.other_ca.display().to_string()),
        "{err}"
    );

    // Our certificate from another CA; expired; revoked.
    let (code, _, err) = send(
        &env,
        kim.addr,
        (&fx.other_ca_client.0, &fx.other_ca_client.1),
        &ca,
        &[f],
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("refused our client certificate") && err.contains("subject"),
        "{err}"
    );
    let (code, _, err) = send(
        &env,
        kim.addr,
        (&fx.expired_client.0, &fx.expired_client.1),
        &ca,
        &[f],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("expired"), "{err}");
    let (code, _, err) = send(
        &env,
        kim.addr,
        (&fx.revoked_client.0, &fx.revoked_client.1),
        &ca,
        &[f],
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("revoked") && err.contains("SAN"), "{err}");

    // Trusted but listed for no force: 403, naming the certificate's SAN.
    let (code, _, err) = send(
        &env,
        kim.addr,
        (&fx.unlisted_client.0, &fx.unlisted_client.1),
        &ca,
        &[f],
    );
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("listed for no force") && err.contains("SAN DNS:"),
        "{err}"
    );

    // Nothing listening; a key file that is not a key.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, _, err) = send(&env, closed, kent(&env), &ca, &[f]);
    assert_eq!(code, 7, "{err}");
    let (code, _, err) = send(&env, kim.addr, (&env.certs.client_cert, &body), &ca, &[f]);
    assert_eq!(code, 2, "{err}");

    // And the right certificate still works.
    let (code, out, err) = send(&env, kim.addr, kent(&env), &ca, &[f]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn send_warns_only_when_the_force_is_not_in_test_mode() {
    let env = Env::new();
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, crate::test_mode::test_mode_config(&text, true)).unwrap();
    let kim = env.start();
    let file = env.path("n.json");
    std::fs::write(&file, simple("MET/S/1")).unwrap();
    let met = (env.fx.met_client.0.as_path(), env.fx.met_client.1.as_path());
    let (code, out, err) = send(
        &env,
        kim.addr,
        met,
        &env.certs.ca_cert,
        &[file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("not in test mode"), "{err}");
    std::fs::write(&file, simple("KNT/S/9")).unwrap();
    let (code, _, err) = send(
        &env,
        kim.addr,
        kent(&env),
        &env.certs.ca_cert,
        &[file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("not in test mode"), "{err}");
}
