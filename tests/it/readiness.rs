//! `/healthz` and `/readyz` on the metrics listener (no police certificate
//! needed), the same answers as on the police listener, and `/readyz`
//! naming a configured CRL that has expired (issue 13 items 3 and 6).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;

use crate::support::{rt, Env, Options};

/// `curl http://ADDR/PATH`: (HTTP status, body).
fn curl(addr: SocketAddr, path: &str) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[test]
fn healthz_and_readyz_answer_on_the_metrics_listener_as_on_the_police_one() {
    let env = Env::new();
    let kim = env.start();
    let metrics = kim.metrics.expect("the test config has a metrics listener");
    for path in ["/healthz", "/readyz"] {
        let (status, body) = curl(metrics, path);
        let police = rt()
            .block_on(env.kent().once(kim.addr, Method::GET, path, None))
            .unwrap();
        assert_eq!(status, 200, "{path} on the metrics listener: {body}");
        assert_eq!(
            (status, body.as_str()),
            (police.status, police.text().as_str()),
            "{path}: metrics and police listeners differ"
        );
    }
    let (status, _) = curl(metrics, "/nothing");
    assert_eq!(status, 404);
}

#[test]
fn readyz_answers_503_naming_an_expired_crl_until_a_fresh_one_is_in_place() {
    // The CRL file kim reads: the expired fixture, later replaced by the
    // fresh one (re-read within crl_refresh).
    let env = Env::new();
    let crl = env.path("police.crl");
    std::fs::copy(&env.fx.expired_crl, &crl).unwrap();
    env.write_config(&Options {
        crls: vec![crl.clone()],
        ..Options::default()
    });
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text.replacen("\n[[forces]]", "crl_refresh = \"1s\"\n\n[[forces]]", 1);
    std::fs::write(&env.config, text).unwrap();
    let kim = env.start();
    let metrics = kim.metrics.unwrap();

    let (status, body) = curl(metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&crl.display().to_string())
            && detail.contains("expired at")
            && detail.contains("no force can connect"),
        "{body}"
    );
    // Liveness is not readiness: /healthz still answers 200.
    assert_eq!(curl(metrics, "/healthz").0, 200);

    // A fresh CRL written over the file: ready again without a restart.
    std::fs::copy(&env.fx.crl, &crl).unwrap();
    let start = Instant::now();
    let mut last = (0, String::new());
    while start.elapsed() < Duration::from_secs(10) {
        last = curl(metrics, "/readyz");
        if last.0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(last.0, 200, "still not ready after a fresh CRL: {}", last.1);
}
