//! Holds kim's answers to `docs/openapi.yaml`: every answer a test's police
//! client receives is checked here (status documented for the route and
//! method, media type, required headers, body against the response schema,
//! JSON Schema 2020-12 with formats). A mismatch panics with what differed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use hyper::Method;
use kim::police_client::{Answer, Observer};
use serde_json::Value;

/// docs/openapi.yaml, as JSON.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml");
        let text = std::fs::read_to_string(path).expect("read docs/openapi.yaml");
        serde_norway::from_str(&text).expect("docs/openapi.yaml is YAML")
    })
}

/// The observer the test clients carry.
pub fn observer() -> Observer {
    Arc::new(|method: &Method, path: &str, answer: &Answer| check(method, path, answer))
}

/// `~` and `/` escaped for a JSON pointer segment.
fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The document's path template a request path matches (`{x}` = one segment).
pub fn template_for(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let paths = document()["paths"].as_object()?;
    paths
        .keys()
        .find(|t| {
            let parts: Vec<&str> = t.trim_matches('/').split('/').collect();
            parts.len() == segs.len()
                && parts
                    .iter()
                    .zip(&segs)
                    .all(|(p, s)| p.starts_with('{') || p == s)
        })
        .cloned()
}

/// Follows a local `$ref` (`#/components/…`) once, if the value is one.
fn deref(v: &Value) -> (&Value, Option<String>) {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.trim_start_matches('#');
            (
                document()
                    .pointer(ptr)
                    .unwrap_or_else(|| panic!("dangling $ref {r}")),
                Some(ptr.to_owned()),
            )
        }
        None => (v, None),
    }
}

/// Validates `instance` against the schema at `pointer` in the document,
/// the document itself being the root (so its `$ref`s resolve).
pub fn validate_at(pointer: &str, instance: &Value) -> Result<(), String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let validator = {
        let mut c = cache.lock().unwrap();
        c.entry(pointer.to_owned())
            .or_insert_with(|| {
                let mut root = document().clone();
                // A URI fragment: braces of path templates percent-encoded.
                let fragment = pointer
                    .replace('%', "%25")
                    .replace('{', "%7B")
                    .replace('}', "%7D");
                root["$ref"] = Value::String(format!("#{fragment}"));
                Arc::new(
                    jsonschema::draft202012::options()
                        .should_validate_formats(true)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("schema at {pointer} does not compile: {e}")),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Checks one answer against the document; panics naming the mismatch.
pub fn check(method: &Method, path: &str, answer: &Answer) {
    if let Err(e) = conforms(method, path, answer) {
        panic!(
            "{method} {path} answered {} which does not match docs/openapi.yaml: {e}\nbody: {}",
            answer.status,
            answer.text()
        );
    }
}

/// `Ok` when the answer is what the document says kim answers.
pub fn conforms(method: &Method, path: &str, answer: &Answer) -> Result<(), String> {
    let Some(template) = template_for(path) else {
        // A path the API does not have: kim's plain 404 problem.
        if answer.status != 404 {
            return Err(format!("undocumented path answered {}", answer.status));
        }
        return body_against(
            answer,
            "application/problem+json",
            "/components/schemas/Problem",
        );
    };
    let op_ptr = format!(
        "/paths/{}/{}",
        esc(&template),
        method.as_str().to_lowercase()
    );
    let Some(op) = document().pointer(&op_ptr) else {
        // A method the route does not have: 405 naming the one it has.
        if answer.status != 405 || !answer.headers.contains_key("allow") {
            return Err(format!(
                "undocumented method answered {} (expected 405 with Allow)",
                answer.status
            ));
        }
        return body_against(
            answer,
            "application/problem+json",
            "/components/schemas/Problem",
        );
    };
    let status = answer.status.to_string();
    let Some(resp) = op["responses"].get(&status) else {
        return Err(format!(
            "status {status} is not documented for {method} {template}"
        ));
    };
    let (resp, ref_ptr) = deref(resp);
    let resp_ptr = ref_ptr.unwrap_or_else(|| format!("{op_ptr}/responses/{status}"));
    if let Some(headers) = resp.get("headers").and_then(Value::as_object) {
        for (name, h) in headers {
            let (h, h_ptr) = deref(h);
            let h_ptr = h_ptr.unwrap_or_else(|| format!("{resp_ptr}/headers/{}", esc(name)));
            match answer.headers.get(name.as_str()) {
                None if h["required"] == Value::Bool(true) => {
                    return Err(format!("required header {name} missing"))
                }
                None => {}
                Some(v) => {
                    let v = v
                        .to_str()
                        .map_err(|_| format!("header {name} is not text"))?;
                    validate_at(&format!("{h_ptr}/schema"), &Value::String(v.to_owned()))
                        .map_err(|e| format!("header {name}: {e}"))?;
                }
            }
        }
    }
    let Some(content) = resp.get("content").and_then(Value::as_object) else {
        return if answer.body.is_empty() {
            Ok(())
        } else {
            Err("a body where the document has none".into())
        };
    };
    let media = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_owned();
    if !content.contains_key(&media) {
        return Err(format!(
            "content type {media:?} is not documented (documented: {:?})",
            content.keys().collect::<Vec<_>>()
        ));
    }
    body_against(
        answer,
        &media,
        &format!("{resp_ptr}/content/{}/schema", esc(&media)),
    )
}

fn body_against(answer: &Answer, media: &str, schema_ptr: &str) -> Result<(), String> {
    let got = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !got.starts_with(media) {
        return Err(format!("content type {got:?}, the document says {media}"));
    }
    let body: Value =
        serde_json::from_slice(&answer.body).map_err(|e| format!("body is not JSON: {e}"))?;
    validate_at(schema_ptr, &body)
}
