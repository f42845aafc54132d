//! Tests of the parent module, kept in their own file.

use super::*;

const SH: &str = "urn,name,dsl_name,dsl_email,deputy_email,phone\n";
const RH: &str = "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n";

fn today() -> Date {
    Date::new(2025, 6, 1).unwrap()
}

fn urns() -> HashSet<String> {
    ["100001", "1000002"]
        .into_iter()
        .map(String::from)
        .collect()
}

fn roll(body: &str) -> Result<Vec<Pupil>, ImportError> {
    parse_roll(format!("{RH}{body}").as_bytes(), &urns(), today())
}

fn schools(body: &str) -> Result<Vec<School>, ImportError> {
    parse_schools(format!("{SH}{body}").as_bytes())
}

fn rejected<T: fmt::Debug>(r: Result<T, ImportError>) -> Vec<RowError> {
    match r {
        Err(ImportError::Rejected(list)) => list,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// The problems as `line: column: why` strings.
fn lines<T: fmt::Debug>(r: Result<T, ImportError>) -> Vec<String> {
    rejected(r).iter().map(ToString::to_string).collect()
}

fn only<T: fmt::Debug>(r: Result<T, ImportError>) -> RowError {
    let list = rejected(r);
    assert_eq!(list.len(), 1, "{list:?}");
    list.into_iter().next().unwrap()
}

fn at(e: &RowError) -> (u64, &str) {
    (e.line, e.column.as_str())
}

const GOOD_PUPIL: &str = "P1,Ann,Lee,,2015-03-04,AB1 2CD,100001\n";

#[test]
fn valid_school_file_parses() {
    let data = "\u{feff}urn,name,dsl_name,dsl_email,deputy_email,phone\r\n\
                100001,\"St Mary's, \"\"Upper\"\" School\",Jo Bloggs,jo@stmarys.sch.uk,,\r\n\
                1000002,Oak Academy,  Sam  Smith ,s.smith+dsl@oak.example.org,deputy@oak.example.org,+44 (0)20 7946-0000\r\n";
    let got = parse_schools(data.as_bytes()).unwrap();
    assert_eq!(
        got,
        vec![
            School {
                urn: "100001".into(),
                name: "St Mary's, \"Upper\" School".into(),
                dsl_name: "Jo Bloggs".into(),
                dsl_email: "jo@stmarys.sch.uk".into(),
                deputy_email: None,
                phone: None,
            },
            School {
                urn: "1000002".into(),
                name: "Oak Academy".into(),
                dsl_name: "Sam  Smith".into(),
                dsl_email: "s.smith+dsl@oak.example.org".into(),
                deputy_email: Some("deputy@oak.example.org".into()),
                phone: Some("+44 (0)20 7946-0000".into()),
            },
        ]
    );
}

#[test]
fn valid_roll_parses() {
    let data =
        "\u{feff}pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\r\n\
                A-1_b.2,\"Smith, Jr\",\"O\"\"Brien\",\"Amy; Mia ;\",2015-03-04,AB1 2CD,100001\r\n\
                X9,Ζωή,王,Иван; Łucja,2025-06-01,,1000002\r\n";
    let got = parse_roll(data.as_bytes(), &urns(), today()).unwrap();
    assert_eq!(
        got,
        vec![
            Pupil {
                pupil_id: "A-1_b.2".into(),
                given_name: "Smith, Jr".into(),
                family_name: "O\"Brien".into(),
                other_names: vec!["Amy".into(), "Mia".into()],
                date_of_birth: Date::new(2015, 3, 4).unwrap(),
                postcode: Some("AB1 2CD".into()),
                school_urn: "100001".into(),
            },
            Pupil {
                pupil_id: "X9".into(),
                given_name: "Ζωή".into(),
                family_name: "王".into(),
                other_names: vec!["Иван".into(), "Łucja".into()],
                date_of_birth: today(),
                postcode: None,
                school_urn: "1000002".into(),
            },
        ]
    );
}

#[test]
fn wrong_header_is_rejected() {
    let e = only(parse_schools(
        "urn,name,dsl_email\n100001,A,b@c.de\n".as_bytes(),
    ));
    assert_eq!(
        e.to_string(),
        r#"line 1: header: expected "urn,name,dsl_name,dsl_email,deputy_email,phone""#
    );
    let e = only(parse_roll(SH.as_bytes(), &urns(), today()));
    assert_eq!(
        e.to_string(),
        r#"line 1: header: expected "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn""#
    );
    // Case and order matter.
    let e = only(parse_schools(
        "URN,name,dsl_name,dsl_email,deputy_email,phone\n".as_bytes(),
    ));
    assert_eq!(at(&e), (1, "header"));
}

#[test]
fn wrong_column_count_is_rejected() {
    let e = only(roll(&format!("{GOOD_PUPIL}P2,Ann,Lee,,2015-03-04\n")));
    assert_eq!(e.to_string(), "line 3: row: expected 7 columns, found 5");
    let e = only(schools("100001,A,B,c@d.ef,,,extra\n"));
    assert_eq!(e.to_string(), "line 2: row: expected 6 columns, found 7");
}

#[test]
fn non_utf8_is_rejected() {
    let mut data = format!("{RH}{GOOD_PUPIL}").into_bytes();
    data.extend_from_slice(b"P2,An\xffn,Lee,,2015-03-04,,100001\n");
    let e = only(parse_roll(&data[..], &urns(), today()));
    assert_eq!(e.to_string(), "line 3: row: not valid UTF-8");

    // A non-UTF-8 header is a wrong header.
    let e = only(parse_schools(
        &b"urn\xff,name,dsl_name,dsl_email,deputy_email,phone\n"[..],
    ));
    assert_eq!(at(&e), (1, "header"));
}

#[test]
fn other_columns_of_a_non_utf8_row_are_still_checked() {
    let data = [RH.as_bytes(), b"P1,\xff,Lee,,2015-02-30,,100001\n"].concat();
    assert_eq!(
        lines(parse_roll(&data[..], &urns(), today())),
        [
            "line 2: row: not valid UTF-8",
            "line 2: date_of_birth: impossible date (must be YYYY-MM-DD)"
        ]
    );
}

#[test]
fn bad_email_is_rejected() {
    let e = only(schools("100001,A,B,not-an-email,,\n"));
    assert_eq!(
        e.to_string(),
        "line 2: dsl_email: not a valid email address"
    );
    let e = only(schools("100001,A,B,a@b.cd,x@y,\n"));
    assert_eq!(
        e.to_string(),
        "line 2: deputy_email: not a valid email address"
    );
    let long = format!("{}@example.org", "a".repeat(250));
    let e = only(schools(&format!("100001,A,B,{long},,\n")));
    assert_eq!(
        e.to_string(),
        "line 2: dsl_email: too long (at most 254 characters)"
    );
}

#[test]
fn missing_email_is_rejected() {
    let e = only(schools("100001,A,B,,,\n"));
    assert_eq!(e.to_string(), "line 2: dsl_email: required, but empty");
}

#[test]
fn email_rules() {
    for good in [
        "a@b.cd",
        "first.last+tag@sub.example.co.uk",
        "x_y-z@a-b.org",
        "o'neil@school.sch.uk",
    ] {
        assert!(is_valid_email(good), "{good}");
    }
    for bad in [
        "",
        "a",
        "@b.cd",
        "a@",
        "a@b",
        "a@@b.cd",
        "a@b@c.de",
        "a b@c.de",
        "a@b .cd",
        "a@.b.cd",
        "a@b..cd",
        "a@b.cd.",
        ".a@b.cd",
        "a..b@c.de",
        "a@-b.cd",
        "a@b-.cd",
        "a,b@c.de",
        "<a@b.cd>",
        "a@b_c.de",
        "ä@b.cd",
        "a@b\u{a0}.cd",
    ] {
        assert!(!is_valid_email(bad), "{bad}");
    }
}

#[test]
fn unknown_school_urn_is_rejected() {
    let e = only(roll("P1,Ann,Lee,,2015-03-04,,999999\n"));
    assert_eq!(
        e.to_string(),
        "line 2: school_urn: no school with this urn in the school directory"
    );
    let e = only(roll("P1,Ann,Lee,,2015-03-04,,12345\n"));
    assert_eq!(
        e.to_string(),
        "line 2: school_urn: must be 6 or 7 digits (a DfE URN)"
    );
}

#[test]
fn impossible_date_is_rejected() {
    let e = only(roll(
        "P1,Ann,Lee,,2015-03-04,,100001\nP2,Ann,Lee,,2014-02-30,,100001\n",
    ));
    assert_eq!(
        e.to_string(),
        "line 3: date_of_birth: impossible date (must be YYYY-MM-DD)"
    );
    for bad in ["2015-13-01", "2015-00-10", "2015-04-31", "2015-01-00"] {
        let e = only(roll(&format!("P1,Ann,Lee,,{bad},,100001\n")));
        assert_eq!(
            e.to_string(),
            "line 2: date_of_birth: impossible date (must be YYYY-MM-DD)",
            "{bad}"
        );
    }
    for bad in [
        "2015-3-4",
        "04/03/2015",
        "2015-03-04T00:00",
        "2015_03_04",
        " 2015-03-04",
        "２０１５-03-04",
    ] {
        let e = only(roll(&format!("P1,Ann,Lee,,{bad},,100001\n")));
        assert_eq!(
            e.to_string(),
            "line 2: date_of_birth: not a date in the form YYYY-MM-DD",
            "{bad}"
        );
    }
    // Leap day is real.
    assert!(roll("P1,Ann,Lee,,2016-02-29,,100001\n").is_ok());
}

#[test]
fn future_date_is_rejected() {
    let e = only(roll("P1,Ann,Lee,,2025-06-02,,100001\n"));
    assert_eq!(e.to_string(), "line 2: date_of_birth: in the future");
}

#[test]
fn duplicate_pupil_id_is_rejected() {
    let e = only(roll(
        "P1,Ann,Lee,,2015-03-04,,100001\nP2,Bob,Lee,,2015-03-04,,100001\nP1,Cat,Lee,,2015-03-04,,100001\n",
    ));
    assert_eq!(
        e.to_string(),
        "line 4: pupil_id: duplicate (first on line 2)"
    );
    // Case-sensitive: p1 is a different key.
    assert!(roll("P1,Ann,Lee,,2015-03-04,,100001\np1,Bob,Lee,,2015-03-04,,100001\n").is_ok());
}

#[test]
fn duplicate_urn_is_rejected() {
    let e = only(schools(
        "100001,A,B,a@b.cd,,\n100002,A,B,a@b.cd,,\n100001,C,D,c@d.ef,,\n",
    ));
    assert_eq!(e.to_string(), "line 4: urn: duplicate urn, first on line 2");
}

#[test]
fn empty_required_fields_are_rejected() {
    assert_eq!(
        lines(roll(",,   ,,,,\n")),
        [
            "line 2: pupil_id: required, but empty",
            "line 2: given_name: required, but empty",
            "line 2: family_name: only whitespace",
            "line 2: date_of_birth: required, but empty",
            "line 2: school_urn: required, but empty",
        ]
    );
    assert_eq!(
        lines(schools(",,,,,\n")),
        [
            "line 2: urn: required, but empty",
            "line 2: name: required, but empty",
            "line 2: dsl_name: required, but empty",
            "line 2: dsl_email: required, but empty",
        ]
    );
}

#[test]
fn empty_file_is_rejected() {
    for data in ["", "\u{feff}", "\n\r\n"] {
        let e = only(parse_schools(data.as_bytes()));
        assert_eq!(e.to_string(), "line 1: file: empty (no header row)");
        let e = only(parse_roll(data.as_bytes(), &urns(), today()));
        assert_eq!(e.to_string(), "line 1: file: empty (no header row)");
    }
}

#[test]
fn header_without_rows_is_rejected() {
    let e = only(parse_roll(format!("{RH}\n").as_bytes(), &urns(), today()));
    assert_eq!(e.to_string(), "line 1: file: no rows");
    let e = only(parse_schools(SH.trim_end().as_bytes()));
    assert_eq!(e.to_string(), "line 1: file: no rows");
}

#[test]
fn multi_line_quoted_field_shifts_line_numbers() {
    let body = "P1,\"Ann\nMarie\",Lee,,2015-03-04,,100001\n\
                P2,\"Bob\",\"Lee\",\"a;\nb;\nc\",2015-03-04,,100001\n\
                P3,Cat,Lee,,2015-02-30,,100001\n";
    assert_eq!(
        lines(roll(body)),
        [
            "line 2: given_name: contains a control character",
            "line 4: other_names: contains a control character",
            "line 7: date_of_birth: impossible date (must be YYYY-MM-DD)",
        ]
    );
}

#[test]
fn line_numbers_survive_crlf_cr_and_blank_lines() {
    let bad = "P9,Ann,Lee,,2015-02-30,,100001";
    let bad2 = "P8,Ann,Lee,,2015-02-30,,100001";
    let good = "P1,Ann,Lee,,2015-03-04,,100001";
    let data = format!("{}\r\n{good}\r\n\r\n{bad}\r\n\n\n{bad2}\r\n", RH.trim_end());
    let got: Vec<_> = rejected(parse_roll(data.as_bytes(), &urns(), today()))
        .iter()
        .map(|e| e.line)
        .collect();
    assert_eq!(got, [4, 7]);

    // Leading blank lines move the header too.
    let data = format!("\n\n{RH}{bad}\n");
    let got: Vec<_> = rejected(parse_roll(data.as_bytes(), &urns(), today()))
        .iter()
        .map(|e| e.line)
        .collect();
    assert_eq!(got, [4]);

    // Last row without a final newline.
    let data = format!("{RH}{good}\n{bad}");
    assert_eq!(
        rejected(parse_roll(data.as_bytes(), &urns(), today()))[0].line,
        3
    );

    // Old Mac line ends: a lone CR ends a line too.
    let data = format!("{}\r{good}\r\r{bad}\r{bad2}", RH.trim_end());
    let got: Vec<_> = rejected(parse_roll(data.as_bytes(), &urns(), today()))
        .iter()
        .map(|e| e.line)
        .collect();
    assert_eq!(got, [4, 5]);
}

/// Hands out one byte per read: the line tracker and BOM handling must not
/// depend on how the input is chunked.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn chunking_does_not_matter() {
    let data = format!(
        "\u{feff}{}\r\n\r\nP1,\"A\r\nB\",Lee,,2015-03-04,,100001\r\nP2,Ann,Lee,,2015-02-30,,100001\r\n",
        RH.trim_end()
    );
    let want = lines(parse_roll(data.as_bytes(), &urns(), today()));
    assert_eq!(
        want,
        [
            "line 3: given_name: contains a control character",
            "line 5: date_of_birth: impossible date (must be YYYY-MM-DD)"
        ]
    );
    assert_eq!(
        lines(parse_roll(Trickle(data.as_bytes()), &urns(), today())),
        want
    );
}

#[test]
fn many_bad_rows_are_all_reported() {
    let mut body = String::new();
    for i in 0..50 {
        body.push_str(GOOD_PUPIL.replace("P1", &format!("G{i}")).as_str());
        body.push_str(&format!("B{i},,Lee,,2015-02-30,AB1 2CD,999999\n"));
    }
    let list = rejected(roll(&body));
    assert_eq!(list.len(), 150);
    for (i, row) in list.chunks(3).enumerate() {
        let line = 3 + 2 * i as u64;
        assert_eq!(
            row.iter().map(at).collect::<Vec<_>>(),
            [
                (line, "given_name"),
                (line, "date_of_birth"),
                (line, "school_urn")
            ]
        );
    }
}

#[test]
fn one_problem_per_column_per_row() {
    // A pupil_id that is both malformed and repeated gets one problem.
    let e = rejected(roll(
        "P!,Ann,Lee,,2015-03-04,,100001\nP!,Ann,Lee,,2015-03-04,,100001\n",
    ));
    assert_eq!(
        e.iter().map(at).collect::<Vec<_>>(),
        [(2, "pupil_id"), (3, "pupil_id")]
    );
}

#[test]
fn repeats_are_listed_in_line_order() {
    // Repeats are found after the read and merged in: after a row's
    // `row` problem, before its other columns.
    let mut data = format!("{RH}P1,Ann,Lee,,2015-03-04,,100001\n").into_bytes();
    data.extend_from_slice(b"P1,A\xffn,Lee,,2015-02-30,,100001\n");
    data.extend_from_slice(b"P2,Ann,,,2015-03-04,,100001\n");
    data.extend_from_slice(b"P1,Ann,Lee,,2015-03-04,,100001\n");
    data.extend_from_slice(b"P2,Ann,Lee,,2015-03-04,,100001\n");
    assert_eq!(
        lines(parse_roll(&data[..], &urns(), today())),
        [
            "line 3: row: not valid UTF-8",
            "line 3: pupil_id: duplicate (first on line 2)",
            "line 3: date_of_birth: impossible date (must be YYYY-MM-DD)",
            "line 4: family_name: required, but empty",
            "line 5: pupil_id: duplicate (first on line 2)",
            "line 6: pupil_id: duplicate (first on line 4)",
        ]
    );
}

#[test]
fn capped_list_with_repeats_keeps_the_first_problems() {
    // 1,200 rows with one pupil_id and an impossible date: 1,199 repeats
    // + 1,200 dates; the first 1,000 by line are listed.
    let body = "P1,Ann,Lee,,2015-02-30,,100001\n".repeat(1200);
    let list = rejected(roll(&body));
    assert_eq!(list.len(), MAX_REPORTED_PROBLEMS + 1);
    assert_eq!(
        list[..4].iter().map(at).collect::<Vec<_>>(),
        [
            (2, "date_of_birth"),
            (3, "pupil_id"),
            (3, "date_of_birth"),
            (4, "pupil_id")
        ]
    );
    assert_eq!(at(&list[999]), (502, "pupil_id"));
    assert_eq!(list[1000].to_string(), "… and 1399 more");
}

#[test]
fn problem_list_is_capped() {
    let body = "P1,Ann,Lee,,2015-02-30,,100001\n"
        .repeat(1500)
        .replace("P1,", ",");
    let list = rejected(roll(&body));
    // Each row: pupil_id required + impossible date = 3000 problems.
    assert_eq!(list.len(), MAX_REPORTED_PROBLEMS + 1);
    assert_eq!(list[999].line, 501);
    assert_eq!(
        list[1000],
        RowError {
            line: 0,
            column: String::new(),
            why: "… and 2000 more".into()
        }
    );
    let shown = ImportError::Rejected(list).to_string();
    assert!(shown.ends_with("\n  … and 2000 more"), "{shown}");
}

#[test]
fn other_field_rules() {
    let row = |f: &str| roll(&format!("{f}\n"));
    let one = |f: &str| only(row(f)).to_string();
    assert_eq!(
        one("P1,Ann,Lee,a;b;c;d;e;f;g;h;i;j;k,2015-03-04,,100001"),
        "line 2: other_names: too many names (at most 10)"
    );
    assert!(row("P1,Ann,Lee,a;b;c;d;e;f;g;h;i;j;;  ;,2015-03-04,,100001").is_ok());
    let long = "x".repeat(101);
    assert_eq!(
        one(&format!("P1,Ann,Lee,a;{long},2015-03-04,,100001")),
        "line 2: other_names: a name is too long (at most 100 characters each)"
    );
    assert_eq!(
        one(&format!("P1,{long},Lee,,2015-03-04,,100001")),
        "line 2: given_name: too long (at most 100 characters)"
    );
    assert!(row(&format!("P1,{},Lee,,2015-03-04,,100001", "é".repeat(100))).is_ok());
    assert_eq!(
        one("P1,Ann,Lee,,2015-03-04,AB1-2CD,100001"),
        "line 2: postcode: may contain only letters, digits and spaces"
    );
    assert_eq!(
        one("P1,Ann,Lee,,2015-03-04,AB12 3CDEFG,100001"),
        "line 2: postcode: too long (at most 10 characters)"
    );
    assert_eq!(
        one("P 1,Ann,Lee,,2015-03-04,,100001"),
        "line 2: pupil_id: may contain only A-Z a-z 0-9 - _ ."
    );
    assert_eq!(
        one(&format!("{},Ann,Lee,,2015-03-04,,100001", "p".repeat(65))),
        "line 2: pupil_id: too long (at most 64 characters)"
    );
    assert_eq!(
        one("P1,Ann\u{202e},Lee,,2015-03-04,,100001"),
        "line 2: given_name: contains a control character"
    );
    assert_eq!(
        one("P1,Ann\tB,Lee,,2015-03-04,,100001"),
        "line 2: given_name: contains a control character"
    );

    let one = |f: &str| only(schools(&format!("{f}\n"))).to_string();
    assert_eq!(
        one("10001,A,B,a@b.cd,,"),
        "line 2: urn: must be 6 or 7 digits (a DfE URN)"
    );
    assert_eq!(
        one("10000001,A,B,a@b.cd,,"),
        "line 2: urn: must be 6 or 7 digits (a DfE URN)"
    );
    assert_eq!(
        one(&format!("100001,{},B,a@b.cd,,", "n".repeat(201))),
        "line 2: name: too long (at most 200 characters)"
    );
    assert_eq!(
        one("100001,A,B,a@b.cd,,01234 x"),
        "line 2: phone: may contain only digits, spaces, + ( ) -"
    );
    assert_eq!(
        one(&format!("100001,A,B,a@b.cd,,{}", "1".repeat(31))),
        "line 2: phone: too long (at most 30 characters)"
    );
    assert_eq!(
        one("100001,A,B,a@b.cd,,()"),
        "line 2: phone: must contain at least one digit"
    );
    assert_eq!(
        one("100001,A\u{7},B,a@b.cd,,"),
        "line 2: name: contains a control character"
    );
    // Whitespace-only optional fields are empty, but control characters
    // are refused even there.
    assert_eq!(schools("100001,A,B,a@b.cd, , \n").unwrap()[0].phone, None);
    assert_eq!(
        one("100001,A,B,a@b.cd,\t,"),
        "line 2: deputy_email: contains a control character"
    );
    assert_eq!(
        only(roll("P1,Ann,Lee,,2015-03-04,\t,100001\n")).to_string(),
        "line 2: postcode: contains a control character"
    );
}

#[test]
fn rows_round_trip_through_serde() {
    let pupils = roll("P1,Ann,Lee,Amy;Mia,2015-03-04,AB1 2CD,100001\n").unwrap();
    let json = serde_json::to_string(&pupils).unwrap();
    assert!(json.contains(r#""date_of_birth":"2015-03-04""#), "{json}");
    assert_eq!(serde_json::from_str::<Vec<Pupil>>(&json).unwrap(), pupils);
    let schools = schools("100001,A,B,a@b.cd,,\n").unwrap();
    let json = serde_json::to_string(&schools).unwrap();
    assert_eq!(serde_json::from_str::<Vec<School>>(&json).unwrap(), schools);
}

#[test]
fn errors_never_quote_personal_data() {
    let data = "pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn\n\
                PID-SECRET-1,Zebediah,Quixotic-Marsh,Zebediah,2031-02-30,QX9 7ZZ,100001\n\
                PID-SECRET-1,Zebediah\u{1},Quixotic-Marsh\u{1},Zebediah\u{1},2031-02-28,QX9 7ZZ!,QX9 7ZZ\n\
                PID-SECRET-1!,Zebediah,Quixotic-Marsh,Zebediah,2031-2-1,QX9 7ZZ QX9,999999\n\
                PID-SECRET-1,Zebediah,Quixotic-Marsh\n";
    let roll_err = parse_roll(data.as_bytes(), &urns(), today()).unwrap_err();
    let schools_err = parse_schools(
        "urn,name,dsl_name,dsl_email,deputy_email,phone\n\
         100001,Quixotic School,Zebediah Quixotic-Marsh,zeb@@x,zeb@@x,QX9 7ZZ\n\
         100001,Quixotic School,Zebediah Quixotic-Marsh,zeb@x.org,zeb@,2031\u{1}\n"
            .as_bytes(),
    )
    .unwrap_err();
    let header_err = parse_roll(
        "Zebediah,Quixotic,2031,QX9,zeb@,PID-SECRET\n".as_bytes(),
        &urns(),
        today(),
    )
    .unwrap_err();
    let mut reported = 0;
    for err in [roll_err, schools_err, header_err] {
        if let ImportError::Rejected(list) = &err {
            reported += list.len();
        }
        for shown in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
            for secret in ["Zebediah", "Quixotic", "2031", "QX9", "zeb@", "PID-SECRET"] {
                assert!(!shown.contains(secret), "{secret} leaked into {shown}");
            }
        }
    }
    assert_eq!(reported, 20);
}

#[test]
fn debug_shows_no_personal_data() {
    let pupil = Pupil {
        pupil_id: "PID-SECRET-1".into(),
        given_name: "Zebediah".into(),
        family_name: "Quixotic-Marsh".into(),
        other_names: vec!["Zebediah".into()],
        date_of_birth: Date::new(2015, 3, 4).unwrap(),
        postcode: Some("QX9 7ZZ".into()),
        school_urn: "100001".into(),
    };
    assert_eq!(
        format!("{pupil:?}"),
        r#"Pupil { school_urn: "100001", .. }"#
    );
    let school = School {
        urn: "100001".into(),
        name: "Oak Academy".into(),
        dsl_name: "Zebediah".into(),
        dsl_email: "zeb@x.org".into(),
        deputy_email: Some("zeb@y.org".into()),
        phone: Some("0123".into()),
    };
    assert_eq!(
        format!("{school:?}"),
        r#"School { urn: "100001", name: "Oak Academy", .. }"#
    );
}

#[test]
fn read_errors_are_io_errors() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
        }
    }
    assert!(
        matches!(parse_schools(Broken), Err(ImportError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe)
    );
    let e = parse_roll(Broken, &urns(), today()).unwrap_err();
    assert_eq!(e.to_string(), "cannot read the file: gone");
}

#[test]
fn rejection_message_lists_every_problem() {
    let err = roll("P1,,Lee,,2015-03-04,,100001\nP2,Ann,Lee,,2015-03-04,,1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the file was rejected (2 problem(s)); nothing was imported:\n  \
         line 2: given_name: required, but empty\n  \
         line 3: school_urn: must be 6 or 7 digits (a DfE URN)"
    );
}

/// Every key of one length hashes alike: collisions on demand.
#[derive(Default)]
struct LenHasher(u64);

impl std::hash::Hasher for LenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 += bytes.len() as u64;
    }
}

fn colliding_log(ids: &[&str]) -> KeyLog<std::hash::BuildHasherDefault<LenHasher>> {
    let mut keys = KeyLog::<std::hash::BuildHasherDefault<LenHasher>>::default();
    for (i, id) in ids.iter().enumerate() {
        keys.push(id, i as u64 + 2);
    }
    keys
}

fn roll_of(ids: &[&str]) -> Vec<u8> {
    let mut data = RH.to_owned();
    for id in ids {
        data.push_str(&format!("{id},Ann,Lee,,2015-03-04,,100001\n"));
    }
    data.into_bytes()
}

#[test]
fn colliding_hashes_are_compared_exactly() {
    // AA, BB and CC share a hash; only real repeats are reported, each
    // with the line its key first appeared on.
    let ids = ["AA", "BB", "AA", "CC", "BB", "AA", "DDD", "DDD"];
    let repeats = colliding_log(&ids)
        .repeats(io::Cursor::new(roll_of(&ids)), &ROLL_HEADER)
        .unwrap();
    assert_eq!(repeats, [(4, 2), (6, 3), (7, 2), (9, 8)]);

    // No collision at all: the file is not read again.
    let repeats = colliding_log(&["A", "BB", "CCC"])
        .repeats(io::Cursor::new(Vec::new()), &ROLL_HEADER)
        .unwrap();
    assert!(repeats.is_empty());
}

#[test]
fn a_file_that_changes_between_the_passes_is_an_io_error() {
    let ids = ["AA", "BB", "AA"];
    for changed in [&["AA", "BBB", "AA"][..], &["AA", "BB"], &["AA", "BB", "A"]] {
        let err = colliding_log(&ids)
            .repeats(io::Cursor::new(roll_of(changed)), &ROLL_HEADER)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read the file: the file changed while it was being imported"
        );
    }
}

#[derive(Debug)]
enum SinkError {
    Import(ImportError),
    Full,
}

impl From<ImportError> for SinkError {
    fn from(e: ImportError) -> Self {
        Self::Import(e)
    }
}

fn each(
    body: &str,
    mut sink: impl FnMut(Pupil) -> Result<(), SinkError>,
) -> Result<u64, SinkError> {
    let data = format!("{RH}{body}");
    parse_roll_each(
        io::Cursor::new(data.as_bytes()),
        &urns(),
        today(),
        &mut sink,
    )
}

#[test]
fn parse_roll_each_streams_pupils_in_file_order() {
    let mut seen = Vec::new();
    let body = "P1,Ann,Lee,,2015-03-04,,100001\nP2,Bo,Ng,,2015-03-04,,100001\nP3,Cy,Oh,,2015-03-04,,1000002\n";
    let n = each(body, |p| {
        seen.push(p.pupil_id);
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(seen, ["P1", "P2", "P3"]);

    // The sink's error ends the read and is handed back.
    let mut calls = 0;
    let r = each(body, |_| {
        calls += 1;
        if calls == 2 {
            Err(SinkError::Full)
        } else {
            Ok(())
        }
    });
    assert!(matches!(r, Err(SinkError::Full)), "{r:?}");
    assert_eq!(calls, 2);
}

#[test]
fn parse_roll_each_stops_feeding_at_the_first_problem_and_still_reports_all() {
    let mut seen = Vec::new();
    let body = "P1,Ann,Lee,,2015-03-04,,100001\nP2,Bo,Ng,,2015-02-30,,100001\nP3,Cy,Oh,,2015-03-04,,1\nP4,Di,Ma,,2015-03-04,,100001\n";
    let r = each(body, |p| {
        seen.push(p.pupil_id);
        Ok(())
    });
    assert_eq!(seen, ["P1"]);
    match r {
        Err(SinkError::Import(ImportError::Rejected(list))) => assert_eq!(
            list.iter().map(at).collect::<Vec<_>>(),
            [(3, "date_of_birth"), (4, "school_urn")]
        ),
        other => panic!("{other:?}"),
    }

    // A repeat is only known at the end: every row went to the sink,
    // and the file is still rejected.
    let mut seen = Vec::new();
    let body = "P1,Ann,Lee,,2015-03-04,,100001\nP2,Bo,Ng,,2015-03-04,,100001\nP1,Cy,Oh,,2015-03-04,,100001\n";
    let r = each(body, |p| {
        seen.push(p.pupil_id);
        Ok(())
    });
    assert_eq!(seen, ["P1", "P2", "P1"]);
    match r {
        Err(SinkError::Import(e)) => assert_eq!(
            lines::<()>(Err(e)),
            ["line 4: pupil_id: duplicate (first on line 2)"]
        ),
        other => panic!("{other:?}"),
    }
}

/// A generated roll of `rows` valid pupils across 2,000 schools.
fn generated_roll(rows: usize) -> (Vec<u8>, HashSet<String>) {
    let urns: HashSet<String> = (0..2000).map(|i| format!("{}", 100_000 + i)).collect();
    let mut data = RH.as_bytes().to_vec();
    for i in 0..rows {
        let line = format!(
            "LA{i:09},Given{},Family-{},\"Amy; Mia\",{:04}-{:02}-{:02},AB{} {}CD,{}\n",
            i % 997,
            i % 7919,
            2008 + i % 14,
            1 + i % 12,
            1 + i % 28,
            i % 99,
            i % 9,
            100_000 + i % 2000
        );
        data.extend_from_slice(line.as_bytes());
    }
    (data, urns)
}

#[test]
fn generated_roll_parses() {
    let (data, urns) = generated_roll(5_000);
    let pupils = parse_roll(&data[..], &urns, today()).unwrap();
    assert_eq!(pupils.len(), 5_000);
    assert_eq!(pupils[4_999].pupil_id, "LA000004999");
}

/// Throughput check, not a timed assertion:
/// `cargo test --release -- --ignored --nocapture roll_throughput`.
#[test]
#[ignore = "throughput report; run in release"]
fn roll_throughput() {
    let rows = 1_000_000;
    let (data, urns) = generated_roll(rows);
    let start = std::time::Instant::now();
    let pupils = parse_roll(&data[..], &urns, today()).unwrap();
    let took = start.elapsed().as_secs_f64();
    assert_eq!(pupils.len(), rows);
    eprintln!(
        "{rows} rows, {:.1} MB in {took:.3} s: {:.2} M rows/s, {:.0} MB/s",
        data.len() as f64 / 1e6,
        rows as f64 / took / 1e6,
        data.len() as f64 / took / 1e6
    );
}

/// 5,000 mutated rolls and directories: the importers never panic, and a
/// rejection's lines (`line N: column: why`) never quote the data.
#[test]
fn mutated_files_never_panic_and_rejections_never_quote_the_data() {
    use crate::mutation::{mutate, Rng};
    let roll_csv = format!(
        "{RH}KCC-0001,Zebulon,Quimby-Marsh,Zeb,2014-02-03,QX9 7ZZ,100001\n\
         KCC-0002,Xanthe,O'Quill,,2015-05-05,,1000002\n"
    );
    let schools_csv =
        format!("{SH}100001,Quimby Primary,Ms Dee,dsl@quimby.example,,01622 000000\n");
    let secrets = [
        "Zebulon",
        "Quimby",
        "Xanthe",
        "Quill",
        "2014-02-03",
        "QX9",
        "dsl@quimby",
    ];
    let mut rng = Rng(0x6b69_6d5f_6373_7666);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..5_000 {
        let base = if i % 2 == 0 { &roll_csv } else { &schools_csv };
        let mut body = base.as_bytes().to_vec();
        mutate(&mut rng, &mut body);
        let said = if i % 2 == 0 {
            parse_roll(body.as_slice(), &urns(), today()).map(drop)
        } else {
            parse_schools(body.as_slice()).map(drop)
        };
        match said {
            Ok(()) => ok += 1,
            Err(e) => {
                refused += 1;
                let text = e.to_string();
                for s in secrets {
                    assert!(!text.contains(s), "{s} quoted in {text:?}");
                }
            }
        }
    }
    assert!(ok > 100 && refused > 1000, "{ok} {refused}");
}

/// Issue 11: the imports and the police API refuse one set of characters
/// (`crate::fields`): controls, line separators, bidi controls and the
/// invisible characters that can disguise a name, in every text column.
#[test]
fn every_forbidden_character_class_is_refused_in_every_text_column() {
    use crate::fields::tests::FORBIDDEN_SAMPLES;
    for &(c, class) in FORBIDDEN_SAMPLES {
        let hex = format!("U+{:04X} ({class:?})", c as u32);
        let q = |s: &str| format!("\"{s}\"");
        let bad = |s: &str| q(&format!("{s}{c}x"));
        for (column, row) in [
            (
                "given_name",
                format!("P1,{},Lee,,2015-03-04,,100001", bad("Ann")),
            ),
            (
                "family_name",
                format!("P1,Ann,{},,2015-03-04,,100001", bad("Lee")),
            ),
            (
                "other_names",
                format!("P1,Ann,Lee,{},2015-03-04,,100001", bad("Amy;Nan")),
            ),
            (
                "postcode",
                format!("P1,Ann,Lee,,2015-03-04,{},100001", bad("AB1")),
            ),
        ] {
            let e = only(roll(&format!("{row}\n")));
            assert_eq!(
                e.to_string(),
                format!("line 2: {column}: contains a control character"),
                "{hex}"
            );
        }
        for (column, row) in [
            ("name", format!("100001,{},B,a@b.cd,,", bad("Oak"))),
            ("dsl_name", format!("100001,A,{},a@b.cd,,", bad("Ms"))),
            (
                "dsl_email",
                format!("100001,A,B,{},,", q(&format!("a{c}@b.cd"))),
            ),
            (
                "deputy_email",
                format!("100001,A,B,a@b.cd,{},", q(&format!("a@b.cd{c}"))),
            ),
            ("phone", format!("100001,A,B,a@b.cd,,{}", bad("01622"))),
        ] {
            let e = only(schools(&format!("{row}\n")));
            assert_eq!(
                e.to_string(),
                format!("line 2: {column}: contains a control character"),
                "{hex}"
            );
        }
    }
    // The joiners a script needs are still accepted in a name.
    assert!(roll("P1,\u{645}\u{6cc}\u{200c}\u{62e},Lee,,2015-03-04,,100001\n").is_ok());
}
