//! The school directory import (`kim schools import`): its columns and
//! row rules; reading and reporting are [`super::reader`]'s.

use super::*;

/// Parses and validates a whole school directory file
/// (`urn,name,dsl_name,dsl_email,deputy_email,phone`).
///
/// The file is read into memory first (a directory is small); see
/// [`parse_roll_each`] for how repeats are found.
///
/// # Errors
/// [`ImportError::Rejected`] listing every problem if any row (or the header,
/// or an empty file) breaks the contract; [`ImportError::Io`] if reading fails.
pub fn parse_schools(input: impl Read) -> Result<Vec<School>, ImportError> {
    let mut schools = Vec::new();
    parse_file(
        in_memory(input)?,
        &SCHOOL_HEADER,
        "urn",
        |first| format!("duplicate urn, first on line {first}"),
        |line, fields, p, keys| {
            let [urn, name, dsl_name, dsl_email, deputy_email, phone] = *fields;
            let urn = check(p, line, "urn", urn, valid_urn);
            let name = check(p, line, "name", name, |s| required_text(s, 200));
            let dsl_name = check(p, line, "dsl_name", dsl_name, |s| required_text(s, 100));
            let dsl_email = check(p, line, "dsl_email", dsl_email, required_email);
            let deputy_email = check(p, line, "deputy_email", deputy_email, optional_email);
            let phone = check(p, line, "phone", phone, optional_phone);

            if let Some(urn) = urn {
                keys.push(urn, line);
            }

            if !p.is_empty() {
                // The file is rejected: stop holding rows.
                if schools.capacity() > 0 {
                    schools = Vec::new();
                }
                return Ok::<_, ImportError>(());
            }
            if let (
                Some(urn),
                Some(name),
                Some(dsl_name),
                Some(dsl_email),
                Some(deputy_email),
                Some(phone),
            ) = (urn, name, dsl_name, dsl_email, deputy_email, phone)
            {
                schools.push(School {
                    urn: urn.to_owned(),
                    name: name.to_owned(),
                    dsl_name: dsl_name.to_owned(),
                    dsl_email: dsl_email.to_owned(),
                    deputy_email: deputy_email.map(str::to_owned),
                    phone: phone.map(str::to_owned),
                });
            }
            Ok(())
        },
    )?;
    Ok(schools)
}
