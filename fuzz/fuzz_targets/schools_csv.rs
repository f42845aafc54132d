//! The school directory CSV (`kim schools import`). Accepted: written back
//! as CSV it parses to the same schools. Refused: the list of problems
//! never quotes the file.
#![no_main]

use kim::import::{parse_schools, School};
use libfuzzer_sys::fuzz_target;

fn write(schools: &[School]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "urn",
        "name",
        "dsl_name",
        "dsl_email",
        "deputy_email",
        "phone",
    ])
    .unwrap();
    for s in schools {
        w.write_record([
            s.urn.as_str(),
            &s.name,
            &s.dsl_name,
            &s.dsl_email,
            s.deputy_email.as_deref().unwrap_or(""),
            s.phone.as_deref().unwrap_or(""),
        ])
        .unwrap();
    }
    w.into_inner().unwrap()
}

fn refusal(data: &[u8]) -> Option<String> {
    parse_schools(data).err().map(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| match parse_schools(data) {
    Ok(schools) => {
        let again =
            parse_schools(&write(&schools)[..]).expect("written back, the directory parses");
        assert!(
            again == schools,
            "parse -> write -> parse changed the directory"
        );
    }
    Err(e) => {
        let text = e.to_string();
        if let Ok(input) = std::str::from_utf8(data) {
            kim_fuzz::assert_quotes_nothing(input, &text, |s| refusal(s.as_bytes()));
        }
    }
});
