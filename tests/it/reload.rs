//! Live reload (issue 13): SIGHUP re-reads the config and its files, CRL
//! files are re-read when they change, bad material is refused with the
//! file named while kim keeps serving, and SIGHUP never stops kim.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::Method;
use kim::police_client::PoliceClient;

use crate::reload_pki::{renew_server_cert, version_1_crl, TestCa};
use crate::support::{rt, simple, Env, Kim, Options};

async fn try_post(client: &PoliceClient, addr: SocketAddr, reference: &str) -> Result<u16, String> {
    let mut conn = client.connect(addr).await.map_err(|e| e.to_string())?;
    conn.send(Method::POST, "/v1/notifications", Some(&simple(reference)))
        .await
        .map(|a| a.status)
        .map_err(|e| e.to_string())
}

pub(crate) fn post(
    client: &PoliceClient,
    addr: SocketAddr,
    reference: &str,
) -> Result<u16, String> {
    rt().block_on(try_post(client, addr, reference))
}

pub(crate) fn hup(kim: &Kim) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &kim.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Polls `check` every 20 ms for at most `limit`: how long until it held.
pub(crate) fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// How many times `needle` is in kim's log.
fn count_log(kim: &Kim, needle: &str) -> usize {
    kim.log_text().matches(needle).count()
}

/// Sends SIGHUP and waits for the reload's outcome line (ok or refused).
pub(crate) fn reload(kim: &Kim) -> bool {
    let before = count_log(kim, "config reloaded");
    let refused = count_log(kim, "reload refused");
    hup(kim);
    let done = wait_until(Duration::from_secs(5), || {
        count_log(kim, "config reloaded") > before || count_log(kim, "reload refused") > refused
    });
    assert!(
        done.is_some(),
        "no reload outcome logged:\n{}",
        kim.log_text()
    );
    count_log(kim, "config reloaded") > before
}

/// The config with `[server] crls` = `crls` and, if given, `crl_refresh`.
fn config_with_crls(env: &Env, crls: &[&Path], refresh: Option<&str>) {
    env.write_config(&Options {
        crls: crls.iter().map(|p| p.to_path_buf()).collect(),
        ..Options::default()
    });
    if let Some(refresh) = refresh {
        edit_config(env, |t| {
            t.replacen(
                "\n[[forces]]",
                &format!("crl_refresh = \"{refresh}\"\n\n[[forces]]"),
                1,
            )
        });
    }
}

pub(crate) fn edit_config(env: &Env, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, f(text)).unwrap();
}

pub(crate) fn revoked(env: &Env) -> PoliceClient {
    env.client((&env.fx.revoked_client.0, &env.fx.revoked_client.1))
}

fn copy(from: &Path, to: &Path) {
    std::fs::write(to, std::fs::read(from).unwrap()).unwrap();
}

fn audit_kinds(env: &Env) -> Vec<serde_json::Value> {
    let (code, out, err) = env.kim(&["audit", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn sighup_reloads_and_never_stops_kim() {
    let env = Env::new();
    let kim = env.start();
    for i in 0..3 {
        assert!(reload(&kim), "reload {i}:\n{}", kim.log_text());
    }
    assert_eq!(post(&env.kent(), kim.addr, "KNT/HUP/1"), Ok(202));
    let mut kim = kim;
    assert!(
        kim.child.try_wait().unwrap().is_none(),
        "kim exited on SIGHUP"
    );
    let metrics = metrics_text(kim.metrics.unwrap());
    assert!(
        metrics.contains("kim_config_reloads_total{result=\"ok\"} 3"),
        "{metrics}"
    );
    assert!(kim.terminate(Duration::from_secs(30)).success());
    let loaded: Vec<_> = audit_kinds(&env)
        .into_iter()
        .filter(|e| e["kind"] == "config_loaded")
        .collect();
    assert_eq!(loaded.len(), 4, "start + 3 reloads: {loaded:?}");
    let sha = &loaded[0]["detail"]["sha256"];
    assert!(loaded.iter().all(|e| &e["detail"]["sha256"] == sha));
}

pub(crate) fn metrics_text(addr: SocketAddr) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_crl_written_over_is_enforced_within_crl_refresh_without_sighup() {
    let env = Env::new();
    let crl = env.path("live-crl.pem");
    copy(&env.fx.empty_crl, &crl);
    config_with_crls(&env, &[&crl], Some("1s"));
    let kim = env.start();
    assert_eq!(post(&revoked(&env), kim.addr, "KNT/CRL/1"), Ok(202));

    copy(&env.fx.crl, &crl);
    let took = wait_until(Duration::from_secs(5), || {
        post(&revoked(&env), kim.addr, "KNT/CRL/2").is_err()
    });
    let took = took.expect("the new CRL was not enforced within 5 s");
    eprintln!("CRL change enforced after {} ms", took.as_millis());
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Another force's client keeps working, and no SIGHUP was sent.
    assert_eq!(post(&env.met(), kim.addr, "MET/CRL/1"), Ok(202));
    assert_eq!(post(&env.kent(), kim.addr, "KNT/CRL/3"), Ok(202));
    assert!(
        kim.log_text().contains("trigger=\"crl_refresh\"")
            || kim.log_text().contains("trigger=crl_refresh")
    );
    assert!(!kim.log_text().contains("SIGHUP"));
    let metrics = metrics_text(kim.metrics.unwrap());
    let gauge = format!(
        "kim_crl_next_update_seconds{{source=\"{}\"}} ",
        crl.display()
    );
    let left: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&gauge))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(left > 29 * 86_400, "the new CRL's nextUpdate: {left}");
}

#[test]
fn a_crl_written_over_is_enforced_at_once_with_sighup() {
    let env = Env::new();
    let crl = env.path("live-crl.pem");
    copy(&env.fx.empty_crl, &crl);
    config_with_crls(&env, &[&crl], Some("1h"));
    let kim = env.start();
    assert_eq!(post(&revoked(&env), kim.addr, "KNT/HUPCRL/1"), Ok(202));
    copy(&env.fx.crl, &crl);
    assert!(reload(&kim), "{}", kim.log_text());
    assert!(post(&revoked(&env), kim.addr, "KNT/HUPCRL/2").is_err());
    assert_eq!(post(&env.met(), kim.addr, "MET/HUPCRL/1"), Ok(202));
    // A reload that shortens crl_refresh: the next CRL change is picked up
    // within the new period (not after the old hour).
    edit_config(&env, |t| {
        t.replace("crl_refresh = \"1h\"", "crl_refresh = \"1s\"")
    });
    assert!(reload(&kim), "{}", kim.log_text());
    copy(&env.fx.empty_crl, &crl);
    let took = wait_until(Duration::from_secs(5), || {
        post(&revoked(&env), kim.addr, "KNT/HUPCRL/3") == Ok(202)
    });
    assert!(
        took.is_some(),
        "the CRL without the revocation was not picked up"
    );
}

/// The dev CRL as DER.
fn der_of(pem: &Path, out: &Path) {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateRevocationListDer::from_pem_file(pem).unwrap();
    std::fs::write(out, der.as_ref()).unwrap();
}

#[test]
fn a_der_crl_is_enforced() {
    let env = Env::new();
    let der = env.path("crl.der");
    der_of(&env.fx.crl, &der);
    config_with_crls(&env, &[&der], None);
    let kim = env.start();
    assert!(post(&revoked(&env), kim.addr, "KNT/DER/1").is_err());
    assert_eq!(post(&env.kent(), kim.addr, "KNT/DER/2"), Ok(202));
}

#[test]
fn a_pem_file_with_two_crls_from_two_cas_is_enforced() {
    let env = Env::new();
    // A second police CA in the bundle, with a client of its own revoked.
    let ca2 = TestCa::new("kim second police CA");
    let bundle = std::fs::read_to_string(&env.certs.police_ca).unwrap() + &ca2.cert.pem();
    std::fs::write(&env.certs.police_ca, bundle).unwrap();
    let dir = env.path("certs");
    let bad2 = ca2.client(
        &dir,
        "ca2-revoked",
        "relay.met-police.example",
        b"ca2-revoked-0001",
    );
    let good2 = ca2.client(
        &dir,
        "ca2-good",
        "relay.met-police.example",
        b"ca2-good-0000001",
    );
    let two = env.path("two-crls.pem");
    let pem = std::fs::read_to_string(&env.fx.crl).unwrap()
        + &ca2.crl(7, &[b"ca2-revoked-0001"]).pem().unwrap();
    std::fs::write(&two, pem).unwrap();
    config_with_crls(&env, &[&two], None);
    let kim = env.start();
    assert!(
        post(&revoked(&env), kim.addr, "KNT/TWO/1").is_err(),
        "CA 1's revoked client"
    );
    let bad2 = env.client((&bad2.0, &bad2.1));
    assert!(
        post(&bad2, kim.addr, "MET/TWO/1").is_err(),
        "CA 2's revoked client"
    );
    let good2 = env.client((&good2.0, &good2.1));
    assert_eq!(post(&good2, kim.addr, "MET/TWO/2"), Ok(202));
    assert_eq!(post(&env.kent(), kim.addr, "KNT/TWO/2"), Ok(202));
}

/// The bad CRL files and what the error must say about each.
fn bad_crls(env: &Env) -> Vec<(PathBuf, &'static str)> {
    let garbage = env.path("garbage-crl.pem");
    std::fs::write(&garbage, b"this is not a CRL at all\n").unwrap();
    // Named like the dev CA, but signed with another key.
    let impostor = env.path("impostor-crl.pem");
    let fake = TestCa::new("kim dev CA");
    std::fs::write(&impostor, fake.crl(9, &[]).pem().unwrap()).unwrap();
    // From a CA that is not in client_ca.
    let stranger = env.path("stranger-crl.pem");
    let other = TestCa::new("kim stranger CA");
    std::fs::write(&stranger, other.crl(9, &[]).pem().unwrap()).unwrap();
    let v1 = env.path("v1-crl.der");
    std::fs::write(&v1, version_1_crl(&env.fx.crl)).unwrap();
    vec![
        (v1, "version 1 CRL"),
        (garbage, "not a CRL"),
        (impostor, "bad signature"),
        (stranger, "not issued by a CA in client_ca"),
    ]
}

#[test]
fn a_bad_crl_is_named_at_start_with_exit_2() {
    let env = Env::new();
    for (file, why) in bad_crls(&env) {
        config_with_crls(&env, &[&file], None);
        let (code, _, err) = env.kim(&["serve"]);
        assert_eq!(code, 2, "{}: {err}", file.display());
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(err.contains(why), "{why}: {err}");
    }
}

#[test]
fn a_bad_crl_at_reload_keeps_the_old_config_serving() {
    let env = Env::new();
    let crl = env.path("live-crl.pem");
    copy(&env.fx.crl, &crl);
    config_with_crls(&env, &[&crl], Some("1h"));
    let mut kim = env.start();
    let bad = bad_crls(&env);
    for (i, (file, why)) in bad.iter().enumerate() {
        copy(file, &crl);
        assert!(!reload(&kim), "{}", kim.log_text());
        let log = kim.log_text();
        let line = log.lines().rfind(|l| l.contains("reload refused")).unwrap();
        assert!(
            line.contains(&crl.display().to_string()) && line.contains(why),
            "{line}"
        );
        // Still serving on the old material: the old CRL still refuses.
        assert_eq!(
            post(&env.kent(), kim.addr, &format!("KNT/BAD/{i}")),
            Ok(202)
        );
        assert!(post(&revoked(&env), kim.addr, "KNT/BAD/R").is_err());
    }
    assert!(kim.child.try_wait().unwrap().is_none());
    let metrics = metrics_text(kim.metrics.unwrap());
    assert!(
        metrics.contains("kim_config_reloads_total{result=\"failed\"} 4"),
        "{metrics}"
    );
    assert!(kim.terminate(Duration::from_secs(30)).success());
    let failed: Vec<_> = audit_kinds(&env)
        .into_iter()
        .filter(|e| e["kind"] == "config_reload_failed")
        .collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(failed[0]["detail"]["error"]
        .as_str()
        .unwrap()
        .contains(&crl.display().to_string()));
}

#[test]
fn a_renewed_server_certificate_is_used_by_new_connections_after_sighup() {
    let env = Env::new();
    let kim = env.start();
    let rt = rt();
    let kent = env.kent();
    let mut old = rt.block_on(kent.connect(kim.addr)).unwrap();
    let a = rt
        .block_on(old.send(
            Method::POST,
            "/v1/notifications",
            Some(&simple("KNT/SRV/1")),
        ))
        .unwrap();
    assert_eq!(a.status, 202);
    let presented = |rt: &tokio::runtime::Runtime| -> Vec<u8> {
        let tls = rt.block_on(kent.connect_tls(kim.addr)).unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };
    let before = presented(&rt);
    let renewed = renew_server_cert(&env);
    assert_ne!(before, renewed);
    assert!(reload(&kim), "{}", kim.log_text());
    assert_eq!(
        presented(&rt),
        renewed,
        "new connections get the renewed certificate"
    );
    // The keep-alive connection opened before goes on working.
    let a = rt
        .block_on(old.send(
            Method::POST,
            "/v1/notifications",
            Some(&simple("KNT/SRV/2")),
        ))
        .unwrap();
    assert_eq!(a.status, 202);
}

#[test]
fn forces_added_and_removed_by_reload() {
    let env = Env::new();
    let kim = env.start();
    let rt = rt();
    let unlisted = env.client((&env.fx.unlisted_client.0, &env.fx.unlisted_client.1));
    assert_eq!(post(&unlisted, kim.addr, "UNK/1"), Ok(403));
    let met = env.met();
    let mut met_conn = rt.block_on(met.connect(kim.addr)).unwrap();
    let a = rt
        .block_on(met_conn.send(Method::POST, "/v1/notifications", Some(&simple("MET/F/1"))))
        .unwrap();
    assert_eq!(a.status, 202);

    edit_config(&env, |t| {
        t.replace("relay.met-police.example", "relay.met-police-retired.example")
            + "\n[[forces]]\nid = \"newforce\"\nname = \"New Force\"\nclient_names = [\"relay.unknown.example\"]\n"
    });
    assert!(reload(&kim), "{}", kim.log_text());
    assert_eq!(
        post(&unlisted, kim.addr, "UNK/2"),
        Ok(202),
        "added force admitted"
    );
    assert_eq!(
        post(&met, kim.addr, "MET/F/2"),
        Ok(403),
        "removed force refused"
    );
    // Also on the connection it opened before the reload.
    let a = rt
        .block_on(met_conn.send(Method::POST, "/v1/notifications", Some(&simple("MET/F/3"))))
        .unwrap();
    assert_eq!(a.status, 403);
    assert_eq!(post(&env.kent(), kim.addr, "KNT/F/1"), Ok(202));
}

#[test]
fn changing_listen_by_reload_is_refused_with_the_reason() {
    let env = Env::new();
    let mut kim = env.start();
    let revoked_before = post(&revoked(&env), kim.addr, "KNT/L/0");
    assert_eq!(revoked_before, Ok(202));
    // Two changes in one reload: a CRL (could apply) and listen (cannot).
    let text = std::fs::read_to_string(&env.config).unwrap();
    let listen_line = text
        .lines()
        .find(|l| l.starts_with("listen = "))
        .unwrap()
        .to_owned();
    edit_config(&env, |t| {
        t.replacen(
            &listen_line,
            &format!(
                "listen = \"127.0.0.1:1\"\ncrls = [\"{}\"]",
                env.fx.crl.display()
            ),
            1,
        )
    });
    assert!(!reload(&kim));
    let log = kim.log_text();
    let line = log.lines().find(|l| l.contains("reload refused")).unwrap();
    assert!(
        line.contains("server.listen") && line.contains("cannot change while kim runs"),
        "{line}"
    );
    // Nothing of it applied: the CRL is not in force either.
    assert_eq!(post(&revoked(&env), kim.addr, "KNT/L/1"), Ok(202));
    assert!(kim.child.try_wait().unwrap().is_none());
}

#[test]
fn twenty_reloads_under_load_lose_no_request() {
    let env = Env::new();
    let kim = env.start();
    let rt = rt();
    let addr = kim.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let client = env.kent();
            let stop = stop.clone();
            rt.spawn(async move {
                let mut conn = client.connect(addr).await.unwrap();
                let (mut ok, mut bad) = (0u32, Vec::new());
                let started = Instant::now();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && started.elapsed() < Duration::from_secs(15)
                {
                    n += 1;
                    let body = simple(&format!("KNT/LOAD/{i}/{n}"));
                    match conn
                        .send(Method::POST, "/v1/notifications", Some(&body))
                        .await
                    {
                        Ok(a) if a.status == 202 => ok += 1,
                        Ok(a) => bad.push(format!("HTTP {}", a.status)),
                        Err(e) => bad.push(e.to_string()),
                    }
                }
                (ok, bad)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    for i in 0..20 {
        assert!(reload(&kim), "reload {i}");
    }
    let reloads = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        let (ok, bad) = rt.block_on(c).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert!(ok > 0);
        total += ok;
    }
    eprintln!(
        "20 reloads in {} ms under load; {total} requests, all 202",
        reloads.as_millis()
    );
    assert_eq!(count_log(&kim, "reload refused"), 0);
}

#[test]
fn check_config_reports_expiry_and_fails_on_an_expired_crl() {
    let env = Env::new();
    config_with_crls(&env, &[&env.fx.crl], None);
    let (code, out, err) = env.kim(&["check-config"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("server certificate") && out.contains("(in "),
        "{out}"
    );
    assert!(
        out.contains("police CA") && out.contains("kim dev CA"),
        "{out}"
    );
    let crl = env.fx.crl.display().to_string();
    assert!(out.contains(&format!("CRL {crl}: next update")), "{out}");

    config_with_crls(&env, &[&env.fx.expired_crl], None);
    let (code, out, err) = env.kim(&["check-config"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("(EXPIRED)"), "{out}");
    let expired = env.fx.expired_crl.display().to_string();
    assert!(err.contains(&expired) && err.contains("expired"), "{err}");

    // The problems a reload would refuse: exit 2, the file named.
    for (file, why) in bad_crls(&env) {
        config_with_crls(&env, &[&file], None);
        let (code, _, err) = env.kim(&["check-config"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(&file.display().to_string()) && err.contains(why),
            "{err}"
        );
    }
}

#[test]
fn check_config_takes_the_master_key_from_a_file_outside_systemd() {
    let env = Env::new();
    edit_config(&env, |t| {
        t.replace(
            "master_key_file = \"master.key\"",
            "master_key_credential = \"master.key\"",
        )
    });
    let (code, _, err) = env.kim(&["check-config"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CREDENTIALS_DIRECTORY"), "{err}");
    let key = env.path("master.key");
    let (code, out, err) = env.kim(&["check-config", "--master-key", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_server_key_others_can_read_is_refused_at_reload_as_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let kim = env.start();
    let key = &env.certs.server_key;
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(!reload(&kim));
    let log = kim.log_text();
    let line = log.lines().rfind(|l| l.contains("reload refused")).unwrap();
    assert!(line.contains(&key.display().to_string()), "{line}");
    assert_eq!(post(&env.kent(), kim.addr, "KNT/KEY/1"), Ok(202));
}
