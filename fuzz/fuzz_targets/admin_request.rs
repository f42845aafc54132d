//! One admin-socket request line (JSON). Accepted: serialised again it
//! reads back the same, and its verb and file use are defined.
#![no_main]

use kim::admin::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<Request>(data) else {
        return;
    };
    let line = serde_json::to_vec(&req).expect("a request serialises");
    let again: Request = serde_json::from_slice(&line).expect("a serialised request reads back");
    assert_eq!(again, req);
    assert!(!req.verb().is_empty());
    let _ = req.file_use();
});
