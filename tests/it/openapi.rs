//! docs/openapi.yaml against itself, the OpenAPI 3.1 schema, the router and
//! the real daemon: every answer the integration tests receive is checked
//! against it by the harness (support::openapi); these tests check the
//! document and walk every documented status kim can be made to answer.

use hyper::Method;
use serde_json::Value;

use crate::support::openapi::{conforms, document, validate_at};
use crate::support::{rt, simple, Env};
use kim::police_client::{Answer, PoliceClient};

#[test]
fn document_is_valid_openapi_3_1_and_every_schema_compiles() {
    let meta: Value = serde_json::from_str(include_str!("../fixtures/openapi-3.1-schema.json"))
        .expect("the OpenAPI 3.1 schema is JSON");
    let v = jsonschema::draft202012::options()
        .build(&meta)
        .expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = v
        .iter_errors(document())
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "docs/openapi.yaml: {errors:#?}");
    assert_eq!(document()["openapi"], "3.1.0");
    // Each component schema is a JSON Schema 2020-12 that compiles (with
    // the document as its root, so $refs resolve).
    for name in document()["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
    {
        validate_at(&format!("/components/schemas/{name}"), &Value::Null).ok();
    }
    // The example notification is a valid one.
    validate_at(
        "/components/schemas/Notification",
        &document()["components"]["examples"]["Notification"]["value"],
    )
    .unwrap();
}

/// kim serves docs/openapi.json (compiled in); it must be the YAML, as JSON.
/// `KIM_UPDATE_OPENAPI=1 cargo test openapi` rewrites it from the YAML.
#[test]
fn served_json_is_the_yaml() {
    let served: Value = serde_json::from_str(kim::ingest::http::OPENAPI_JSON).unwrap();
    if &served != document() {
        if std::env::var_os("KIM_UPDATE_OPENAPI").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
            let text = serde_json::to_string_pretty(document()).unwrap() + "\n";
            std::fs::write(path, text).unwrap();
        } else {
            panic!(
                "docs/openapi.json differs from docs/openapi.yaml: run \
                 KIM_UPDATE_OPENAPI=1 cargo test --test it openapi, then rebuild"
            );
        }
    }
}

/// The router's routes and the document's operations are the same set.
#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in document()["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    let mut routed: Vec<(String, String)> = kim::ingest::http::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(
        routed, documented,
        "router (left) vs docs/openapi.yaml (right)"
    );
}

/// The checker can fail: answers that differ from the document are caught.
#[test]
fn the_checker_catches_what_the_document_does_not_say() {
    let answer = |status: u16, ct: &str, body: &str, location: Option<&str>| {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("content-type", ct.parse().unwrap());
        if let Some(l) = location {
            headers.insert("location", l.parse().unwrap());
        }
        Answer {
            status,
            headers,
            body: bytes::Bytes::from(body.to_owned()),
        }
    };
    let post = |a: &Answer| conforms(&Method::POST, "/v1/notifications", a);
    let loc = Some("/v1/notifications/1KQ8-2ZC7-M4T9-XB3D");
    let good = r#"{"receipt_id":"1KQ8-2ZC7-M4T9-XB3D","status":"accepted","children":1}"#;
    assert_eq!(post(&answer(202, "application/json", good, loc)), Ok(()));
    // A field too many, a wrong receipt format, no Location, a status the
    // document does not list, the wrong media type.
    let extra =
        r#"{"receipt_id":"1KQ8-2ZC7-M4T9-XB3D","status":"accepted","children":1,"name":"x"}"#;
    assert!(post(&answer(202, "application/json", extra, loc)).is_err());
    let bad_id = r#"{"receipt_id":"ILOU-2ZC7-M4T9-XB3D","status":"accepted","children":1}"#;
    assert!(post(&answer(202, "application/json", bad_id, loc)).is_err());
    assert!(post(&answer(202, "application/json", good, None)).is_err());
    assert!(post(&answer(418, "application/json", good, loc)).is_err());
    assert!(post(&answer(202, "text/plain", good, loc)).is_err());
    let problem = r#"{"type":"https://kim.invalid/problems/x","title":"t","status":422,"detail":"d","errors":[{"pointer":"/a"}]}"#;
    assert!(post(&answer(422, "application/problem+json", problem, None)).is_err());
}

/// Every documented status kim can be made to answer here, each checked by
/// the harness's observer, and the served document is the YAML.
#[test]
fn a_tour_of_the_api_matches_the_document() {
    let env = Env::new();
    let kim = env.start();
    let rt = rt();
    let kent = env.kent();
    let a = kim.addr;
    let send = |c: &PoliceClient, m: Method, p: &str, b: Option<&[u8]>| {
        rt.block_on(c.once(a, m, p, b)).unwrap()
    };

    let doc = send(&kent, Method::GET, "/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    assert_eq!(
        &doc.json(),
        document(),
        "served document is docs/openapi.yaml"
    );

    let body = simple("KNT/OA/1");
    let first = send(&kent, Method::POST, "/v1/notifications", Some(&body));
    assert_eq!(first.status, 202);
    let receipt = first.json()["receipt_id"].as_str().unwrap().to_owned();
    assert_eq!(
        send(&kent, Method::POST, "/v1/notifications", Some(&body)).status,
        200
    );
    let mut changed: Value = serde_json::from_slice(&body).unwrap();
    changed["children"][0]["involvement"] = "witnessed".into();
    let changed = serde_json::to_vec(&changed).unwrap();
    assert_eq!(
        send(&kent, Method::POST, "/v1/notifications", Some(&changed)).status,
        409
    );
    assert_eq!(
        send(&kent, Method::POST, "/v1/notifications", Some(b"{")).status,
        400
    );
    assert_eq!(
        send(&kent, Method::POST, "/v1/notifications", Some(b"{}")).status,
        422
    );
    let big = vec![b' '; 600 * 1024];
    assert_eq!(
        send(&kent, Method::POST, "/v1/notifications", Some(&big)).status,
        413
    );
    let plain = rt
        .block_on(async {
            let mut c = kent.connect(a).await?;
            c.send_with_type(Method::POST, "/v1/notifications", Some(&body), "text/plain")
                .await
        })
        .unwrap();
    assert_eq!(plain.status, 415);
    assert_eq!(
        send(&kent, Method::DELETE, "/v1/notifications", None).status,
        405
    );

    let status_path = format!("/v1/notifications/{receipt}");
    assert_eq!(send(&kent, Method::GET, &status_path, None).status, 200);
    assert_eq!(
        send(&env.met(), Method::GET, &status_path, None).status,
        404
    );
    assert_eq!(
        send(
            &kent,
            Method::GET,
            "/v1/notifications/0000-0000-0000-0000",
            None
        )
        .status,
        404
    );
    assert_eq!(
        send(&kent, Method::GET, "/v1/nothing-here", None).status,
        404
    );

    let withdraw = format!("{status_path}/withdraw");
    assert_eq!(
        send(&kent, Method::POST, &withdraw, Some(b"{}")).status,
        422
    );
    assert_eq!(send(&kent, Method::GET, &withdraw, None).status, 405);
    assert_eq!(
        send(
            &kent,
            Method::POST,
            &withdraw,
            Some(br#"{"reason":"Sent in error."}"#)
        )
        .status,
        200
    );

    assert_eq!(send(&kent, Method::GET, "/healthz", None).status, 200);
    assert_eq!(send(&kent, Method::GET, "/readyz", None).status, 200);
    assert_eq!(
        send(&kent, Method::POST, "/readyz", Some(b"{}")).status,
        405
    );

    let unlisted = env.client((&env.fx.unlisted_client.0, &env.fx.unlisted_client.1));
    assert_eq!(
        send(&unlisted, Method::GET, "/v1/openapi.json", None).status,
        403
    );
    assert_eq!(
        send(&unlisted, Method::POST, "/v1/notifications", Some(&body)).status,
        403
    );
}
