//! The evaluation set's synthetic roll: schools, pupils, twins, namesakes
//! at two schools and near namesakes.

use super::*;

// The roll.

pub(super) const INVOLVEMENTS: &[Involvement] = &[
    Involvement::Present,
    Involvement::Witnessed,
    Involvement::NotPresent,
    Involvement::Unknown,
];

pub(super) fn first_dob() -> Date {
    jiff::civil::date(2008, 9, 1)
}

/// Days in the range of dates of birth (school years R to 13, roughly).
pub(super) const DOB_DAYS: i64 = 5112;

pub(super) fn random_dob(rng: &mut Rng) -> Date {
    first_dob()
        .checked_add((rng.below(DOB_DAYS as usize) as i64).days())
        .expect("in range")
}

pub(super) fn in_range(d: Date) -> bool {
    d >= first_dob() && d <= first_dob().checked_add(DOB_DAYS.days()).expect("in range")
}

pub(super) fn postcode(rng: &mut Rng, school: usize) -> String {
    let area = POSTCODE_AREAS[school % POSTCODE_AREAS.len()];
    let district = 1 + (school / POSTCODE_AREAS.len()) % 99;
    let letters = b"ABDEFGHJLNPQRSTUWXYZ";
    format!(
        "{area}{district} {}{}{}",
        rng.below(10),
        letters[rng.below(letters.len())] as char,
        letters[rng.below(letters.len())] as char
    )
}

pub(super) fn pick_culture(rng: &mut Rng) -> &'static Culture {
    let total: u32 = CULTURES.iter().map(|c| c.weight).sum();
    let mut r = rng.below(total as usize) as u32;
    for c in CULTURES {
        if r < c.weight {
            return c;
        }
        r -= c.weight;
    }
    &CULTURES[0]
}

pub(super) struct RollBuilder {
    pub(super) pupils: Vec<Pupil>,
    /// Indexes of twin pairs (same family, date of birth, school).
    pub(super) twins: Vec<(usize, usize)>,
    /// Indexes of namesakes: same names and date of birth, two schools.
    pub(super) namesakes: Vec<(usize, usize)>,
    /// Indexes of near namesakes: same family name and date of birth, a
    /// given name near but below the threshold, two schools.
    pub(super) near: Vec<(usize, usize)>,
}

impl RollBuilder {
    fn push(
        &mut self,
        given: &str,
        family: &str,
        other_names: Vec<String>,
        dob: Date,
        postcode: &str,
        urn: &str,
    ) -> usize {
        let i = self.pupils.len();
        self.pupils.push(Pupil {
            pupil_id: format!("EV{i:08}"),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            other_names,
            date_of_birth: dob,
            postcode: Some(postcode.to_owned()),
            school_urn: urn.to_owned(),
        });
        i
    }
}

pub(super) fn known_as_for_roll(rng: &mut Rng, given: &str) -> Vec<String> {
    let k = known_as_of(given);
    if !k.is_empty() && rng.chance(0.35) {
        vec![(*rng.pick(k)).to_owned()]
    } else {
        Vec::new()
    }
}

pub(super) fn build_roll(
    rng: &mut Rng,
    pupils: usize,
    schools: &[School],
    namesakes: usize,
    near: usize,
) -> RollBuilder {
    let mut b = RollBuilder {
        pupils: Vec::with_capacity(pupils),
        twins: Vec::new(),
        namesakes: Vec::new(),
        near: Vec::new(),
    };
    let base = pupils - namesakes - near;
    while b.pupils.len() < base {
        let culture = pick_culture(rng);
        let mut family = (*rng.pick_common(culture.families)).to_owned();
        if rng.chance(culture.double_barrelled) {
            let other = rng.pick(culture.families);
            if *other != family && !family.contains(['-', ' ']) && !other.contains(['-', ' ']) {
                family = format!("{family}-{other}");
            }
        }
        let school = rng.below(schools.len());
        let home = postcode(rng, school);
        let kids = 1 + usize::from(rng.chance(0.45)) + usize::from(rng.chance(0.15));
        let eldest = random_dob(rng);
        let mut taken: Vec<String> = Vec::new();
        if rng.chance(0.03) && b.pupils.len() + 2 <= base {
            // Twins: same family, date of birth and school.
            let (a, c) = if rng.chance(0.5) {
                let pair = rng.pick(TWIN_NAMES);
                (pair[0], pair[1])
            } else {
                let girl_a = rng.chance(0.5);
                let girl_c = rng.chance(0.5);
                let pool = |g: bool| if g { culture.girls } else { culture.boys };
                let a = *rng.pick(pool(girl_a));
                let mut c = *rng.pick(pool(girl_c));
                while fold(c) == fold(a) {
                    c = *rng.pick(pool(girl_c));
                }
                ((a, girl_a), (c, girl_c))
            };
            let urn = &schools[school].urn;
            let mut idx = [0; 2];
            for (k, (given, girl)) in [a, c].into_iter().enumerate() {
                let fam = if girl && culture.gendered_family {
                    feminine(&family)
                } else {
                    family.clone()
                };
                let other = known_as_for_roll(rng, given);
                idx[k] = b.push(given, &fam, other, eldest, &home, urn);
            }
            b.twins.push((idx[0], idx[1]));
            continue;
        }
        for k in 0..kids {
            if b.pupils.len() >= base {
                break;
            }
            let dob = if k == 0 {
                eldest
            } else {
                let gap = 320 + rng.below(1500) as i64;
                match eldest.checked_add(gap.days()) {
                    Ok(d) if in_range(d) => d,
                    _ => break,
                }
            };
            let girl = rng.chance(0.5);
            let given = loop {
                let g = *rng.pick_common(if girl { culture.girls } else { culture.boys });
                if !taken.contains(&fold(g)) {
                    break g;
                }
            };
            taken.push(fold(given));
            let fam = if girl && culture.gendered_family {
                feminine(&family)
            } else {
                family.clone()
            };
            // Mostly at the same school as the eldest; sometimes elsewhere.
            let s = if rng.chance(0.75) {
                school
            } else {
                rng.below(schools.len())
            };
            let other = known_as_for_roll(rng, given);
            b.push(given, &fam, other, dob, &home, &schools[s].urn);
        }
    }
    // Namesakes: a different child with the same full name and date of
    // birth at another school (common names recur).
    let twin_members: HashSet<usize> = b.twins.iter().flat_map(|&(x, y)| [x, y]).collect();
    let mut used: HashSet<usize> = HashSet::new();
    while b.namesakes.len() < namesakes || b.near.len() < near {
        let i = rng.below(base);
        if twin_members.contains(&i) || used.contains(&i) {
            continue;
        }
        let orig = b.pupils[i].clone();
        let is_near = b.namesakes.len() >= namesakes;
        let given = if is_near {
            let Some(g) = near_miss(rng, &orig.given_name, &[&orig.given_name]) else {
                continue;
            };
            g
        } else {
            orig.given_name.clone()
        };
        used.insert(i);
        let s = loop {
            let s = rng.below(schools.len());
            if schools[s].urn != orig.school_urn {
                break s;
            }
        };
        let home = loop {
            let h = postcode(rng, s);
            if Some(&h) != orig.postcode.as_ref() {
                break h;
            }
        };
        let j = b.push(
            &given,
            &orig.family_name,
            Vec::new(),
            orig.date_of_birth,
            &home,
            &schools[s].urn,
        );
        if is_near {
            b.near.push((i, j));
        } else {
            b.namesakes.push((i, j));
        }
    }
    b
}
