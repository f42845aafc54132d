//! The pupil roll CSV (`kim roll import`), against a fixed directory of
//! three schools. Accepted: written back as CSV it parses to the same
//! pupils, and the streaming reader agrees. Refused: the problems never
//! quote the file (names, dates of birth, postcodes).
#![no_main]

use std::collections::HashSet;
use std::io::Cursor;

use kim::import::{parse_roll, parse_roll_each, ImportError, Pupil};
use libfuzzer_sys::fuzz_target;

fn urns() -> HashSet<String> {
    ["118765", "118766", "1234567"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

fn write(pupils: &[Pupil]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "pupil_id",
        "given_name",
        "family_name",
        "other_names",
        "date_of_birth",
        "postcode",
        "school_urn",
    ])
    .unwrap();
    for p in pupils {
        w.write_record([
            p.pupil_id.as_str(),
            &p.given_name,
            &p.family_name,
            &p.other_names.join(";"),
            &p.date_of_birth.to_string(),
            p.postcode.as_deref().unwrap_or(""),
            &p.school_urn,
        ])
        .unwrap();
    }
    w.into_inner().unwrap()
}

fn refusal(data: &[u8]) -> Option<String> {
    parse_roll(data, &urns(), kim_fuzz::today())
        .err()
        .map(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let urns = urns();
    let whole = parse_roll(data, &urns, kim_fuzz::today());
    let mut streamed = Vec::new();
    let each = parse_roll_each(Cursor::new(data), &urns, kim_fuzz::today(), |p| {
        streamed.push(p);
        Ok::<_, ImportError>(())
    });
    assert_eq!(whole.is_ok(), each.is_ok(), "the two readers disagree");
    match whole {
        Ok(pupils) => {
            assert!(pupils == streamed, "the streaming reader read other pupils");
            assert_eq!(each.unwrap(), pupils.len() as u64);
            let again = parse_roll(&write(&pupils)[..], &urns, kim_fuzz::today())
                .expect("written back, the roll parses");
            assert!(again == pupils, "parse -> write -> parse changed the roll");
        }
        Err(e) => {
            let text = e.to_string();
            if let Ok(input) = std::str::from_utf8(data) {
                kim_fuzz::assert_quotes_nothing(input, &text, |s| refusal(s.as_bytes()));
            }
        }
    }
});
