//! The pupil roll import (`kim roll import`): its columns and row rules,
//! in memory for small rolls or streamed in two passes (repeats found by
//! [`super::keylog`]) for a national one.

use super::*;

/// Parses and validates a whole pupil roll
/// (`pupil_id,given_name,family_name,other_names,date_of_birth,postcode,school_urn`).
/// `known_urns` is the school directory; `today` bounds dates of birth.
///
/// For small rolls and tests: the file and every pupil are held in memory.
/// A national roll goes through [`parse_roll_each`], which this wraps.
///
/// # Errors
/// As [`parse_schools`].
pub fn parse_roll(
    input: impl Read,
    known_urns: &HashSet<String>,
    today: Date,
) -> Result<Vec<Pupil>, ImportError> {
    let mut pupils = Vec::new();
    parse_roll_each(in_memory(input)?, known_urns, today, |p| {
        pupils.push(p);
        Ok::<_, ImportError>(())
    })?;
    Ok(pupils)
}

/// Streams a pupil roll: validates every row and hands each valid pupil to
/// `sink` as soon as it is read, holding only about 16 bytes per row (to find
/// repeated `pupil_id`s). Returns the number of pupils read.
///
/// The contract is the caller's to keep: `Ok` means the WHOLE file is valid
/// and every pupil went to `sink`, once, in file order. Any `Err` means the
/// file must be rejected whole, and the pupils already handed over must be
/// thrown away: `sink` is called only while no problem has been found so
/// far, but a repeated `pupil_id` is only known once the whole file has
/// been read (both rows will have gone to `sink` by then).
///
/// Repeats are found from a keyed 64-bit hash of each `pupil_id` (random
/// per call, so a file cannot steer it) with its line. Rows whose hashes
/// collide are then compared exactly, on a second pass over `input` that
/// reads only those rows' ids again, so a repeat is never missed and two
/// different ids are never reported as one. That pass only happens when a
/// hash repeats: in practice, when the file really has a repeated id.
///
/// # Errors
/// `E::from(`[`ImportError::Rejected`]`)` listing every problem (as
/// [`parse_schools`]), `E::from(`[`ImportError::Io`]`)` if reading fails or
/// the file changed between the two passes, or the first error `sink`
/// returns (reading stops there).
pub fn parse_roll_each<E: From<ImportError>>(
    input: impl Read + Seek,
    known_urns: &HashSet<String>,
    today: Date,
    mut sink: impl FnMut(Pupil) -> Result<(), E>,
) -> Result<u64, E> {
    parse_file(
        input,
        &ROLL_HEADER,
        "pupil_id",
        |first| format!("duplicate (first on line {first})"),
        |line, fields, p, keys| {
            let [pupil_id, given_name, family_name, other_names, date_of_birth, postcode, school_urn] =
                *fields;
            let pupil_id = check(p, line, "pupil_id", pupil_id, valid_pupil_id);
            let given_name = check(p, line, "given_name", given_name, |s| required_text(s, 100));
            let family_name = check(p, line, "family_name", family_name, |s| {
                required_text(s, 100)
            });
            let other_names = check(p, line, "other_names", other_names, valid_other_names);
            let date_of_birth = check(p, line, "date_of_birth", date_of_birth, |s| {
                valid_date_of_birth(s, today)
            });
            let postcode = check(p, line, "postcode", postcode, optional_postcode);
            let school_urn = check(p, line, "school_urn", school_urn, |s| {
                let urn = valid_urn(s)?;
                if known_urns.contains(urn) {
                    Ok(urn)
                } else {
                    Err("no school with this urn in the school directory".into())
                }
            });

            if let Some(id) = pupil_id {
                keys.push(id, line);
            }

            if !p.is_empty() {
                return Ok(());
            }
            if let (
                Some(pupil_id),
                Some(given_name),
                Some(family_name),
                Some(other_names),
                Some(date_of_birth),
                Some(postcode),
                Some(school_urn),
            ) = (
                pupil_id,
                given_name,
                family_name,
                other_names,
                date_of_birth,
                postcode,
                school_urn,
            ) {
                sink(Pupil {
                    pupil_id: pupil_id.to_owned(),
                    given_name: given_name.to_owned(),
                    family_name: family_name.to_owned(),
                    other_names,
                    date_of_birth,
                    postcode: postcode.map(str::to_owned),
                    school_urn: school_urn.to_owned(),
                })?;
            }
            Ok(())
        },
    )
}
