//! The evaluation set's case generator: notified children of every
//! [`CaseKind`], each with its known truth, refused when the truth would be
//! ambiguous.

use super::*;

// Case generation.

/// A pupil's names folded, for the generator's ambiguity check.
pub(super) struct Folded {
    given_forms: Vec<String>,
    family: String,
}

pub(super) fn folded(given: &str, family: &str, other: &[String]) -> Folded {
    let mut given_forms = vec![fold(given)];
    given_forms.extend(other.iter().map(|o| fold(o)));
    Folded {
        given_forms,
        family: fold(family),
    }
}

pub(super) fn close(a: &str, b: &str) -> bool {
    !a.is_empty() && !b.is_empty() && (a == b || strsim::jaro_winkler(a, b) >= LOOKALIKE)
}

/// Whether a child (folded) and a pupil (folded) could be taken for the same
/// person, in either name order, by any known-as form: deliberately looser
/// than the matcher.
pub(super) fn lookalike(child: &Folded, pupil: &Folded) -> bool {
    let cg = &child.given_forms[0];
    let cf = &child.family;
    let alt = &child.given_forms[1..];
    let direct = close(cf, &pupil.family)
        && std::iter::once(cg)
            .chain(alt)
            .any(|g| pupil.given_forms.iter().any(|p| close(g, p)));
    let swapped = close(cg, &pupil.family)
        && std::iter::once(cf)
            .chain(alt)
            .any(|g| pupil.given_forms.iter().any(|p| close(g, p)));
    direct || swapped
}

pub(super) struct Gen<'a> {
    pub(super) rng: Rng,
    pub(super) schools: &'a [School],
    pub(super) pupils: &'a [Pupil],
    pub(super) folded: Vec<Folded>,
    pub(super) by_dob: HashMap<Date, Vec<u32>>,
    pub(super) twins: &'a [(usize, usize)],
    pub(super) namesakes: &'a [(usize, usize)],
    pub(super) near: &'a [(usize, usize)],
    /// Namesakes and near namesakes: sources for their own kinds only.
    pub(super) reserved: HashSet<usize>,
    pub(super) used: HashSet<usize>,
}

impl Gen<'_> {
    /// True when no pupil with the child's date of birth looks like the
    /// child, other than pupils at `truth`'s school and `allowed`.
    fn unambiguous(&self, child: &Child, truth: Option<&str>, allowed: &[usize]) -> bool {
        let c = folded(&child.given_name, &child.family_name, &child.other_names);
        let Some(same_day) = self.by_dob.get(&child.date_of_birth) else {
            return true;
        };
        same_day.iter().all(|&q| {
            let q = q as usize;
            allowed.contains(&q)
                || truth == Some(self.pupils[q].school_urn.as_str())
                || !lookalike(&c, &self.folded[q])
        })
    }

    /// A random pupil, not a namesake, not used yet, passing `filter`.
    fn source(&mut self, filter: impl Fn(&Pupil) -> bool) -> Option<usize> {
        for attempt in 0..20_000 {
            let i = self.rng.below(self.pupils.len());
            if self.reserved.contains(&i) || (attempt < 10_000 && self.used.contains(&i)) {
                continue;
            }
            if filter(&self.pupils[i]) {
                return Some(i);
            }
        }
        None
    }

    fn child_of(&mut self, p: &Pupil) -> Child {
        Child {
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            other_names: Vec::new(),
            date_of_birth: p.date_of_birth,
            school_urn: None,
            postcode: None,
            involvement: *self.rng.pick(INVOLVEMENTS),
            voice_of_child: None,
        }
    }

    /// What police usually also send: sometimes the right school, sometimes
    /// the home postcode.
    fn decorate(&mut self, child: &mut Child, p: &Pupil) {
        if self.rng.chance(0.3) {
            child.school_urn = Some(p.school_urn.clone());
        }
        if self.rng.chance(0.4) {
            child.postcode = p.postcode.clone();
        }
    }

    fn other_school(&mut self, urn: &str) -> String {
        loop {
            let s = self.rng.pick(self.schools);
            if s.urn != urn {
                return s.urn.clone();
            }
        }
    }

    fn finish(
        &mut self,
        kind: CaseKind,
        src: usize,
        child: Child,
        truth: Option<String>,
        allowed: &[usize],
    ) -> Option<Case> {
        if !self.unambiguous(&child, truth.as_deref(), allowed) {
            return None;
        }
        self.used.insert(src);
        Some(Case { kind, child, truth })
    }

    /// A plain source: the child is this pupil, matched on their own.
    fn plain(
        &mut self,
        kind: CaseKind,
        filter: impl Fn(&Pupil) -> bool,
        change: impl Fn(&mut Rng, &Pupil, &mut Child) -> bool,
    ) -> Option<Case> {
        let i = self.source(filter)?;
        let pupils = self.pupils;
        let p = &pupils[i];
        let mut child = self.child_of(p);
        if !change(&mut self.rng, p, &mut child) {
            return None;
        }
        self.decorate(&mut child, p);
        self.finish(kind, i, child, Some(p.school_urn.clone()), &[])
    }

    pub(super) fn make(&mut self, kind: CaseKind) -> Option<Case> {
        let pupils = self.pupils;
        match kind {
            CaseKind::Exact => self.plain(kind, |_| true, |_, _, _| true),
            CaseKind::CaseChanged => self.plain(
                kind,
                |_| true,
                |rng, p, c| {
                    if rng.chance(0.5) {
                        c.given_name = p.given_name.to_uppercase();
                        c.family_name = p.family_name.to_uppercase();
                    } else {
                        c.given_name = p.given_name.to_lowercase();
                        c.family_name = p.family_name.to_lowercase();
                    }
                    true
                },
            ),
            CaseKind::DiacriticsDropped => self.plain(
                kind,
                |p| has_diacritics(&p.given_name) || has_diacritics(&p.family_name),
                |_, p, c| {
                    c.given_name = strip_diacritics(&p.given_name);
                    c.family_name = strip_diacritics(&p.family_name);
                    true
                },
            ),
            CaseKind::PunctuationChanged => self.plain(
                kind,
                |p| has_separator(&p.family_name) || has_separator(&p.given_name),
                |rng, p, c| {
                    let vary = |rng: &mut Rng, s: &str| -> String {
                        match rng.below(4) {
                            0 => s.replace(['-', '\'', ' ', '.', '’'], ""),
                            1 => s.replace(['-', '\'', '.'], " "),
                            2 => s.replace(' ', "-").replace('\'', "’"),
                            _ => s.replace(['\'', '.'], "").replace('-', " - "),
                        }
                    };
                    c.family_name = vary(rng, &p.family_name);
                    c.given_name = vary(rng, &p.given_name);
                    c.family_name != p.family_name || c.given_name != p.given_name
                },
            ),
            CaseKind::NamesSwapped => self.plain(
                kind,
                |_| true,
                |_, p, c| {
                    c.given_name = p.family_name.clone();
                    c.family_name = p.given_name.clone();
                    true
                },
            ),
            CaseKind::KnownAs => self.plain(
                kind,
                |p| !p.other_names.is_empty(),
                |_, p, c| {
                    c.given_name = p.other_names[0].clone();
                    true
                },
            ),
            CaseKind::KnownAsPoliceSide => self.plain(
                kind,
                |p| !known_as_of(&p.given_name).is_empty(),
                |rng, p, c| {
                    c.given_name = (*rng.pick(known_as_of(&p.given_name))).to_owned();
                    c.other_names = vec![p.given_name.clone()];
                    true
                },
            ),
            CaseKind::TypoOneLetter => self.plain(
                kind,
                |_| true,
                |rng, p, c| {
                    if rng.chance(0.5) {
                        typo(rng, &p.given_name).map(|t| c.given_name = t).is_some()
                    } else {
                        typo(rng, &p.family_name)
                            .map(|t| c.family_name = t)
                            .is_some()
                    }
                },
            ),
            CaseKind::TypoBoth => self.plain(
                kind,
                |_| true,
                |rng, p, c| match (typo(rng, &p.given_name), typo(rng, &p.family_name)) {
                    (Some(g), Some(f)) => {
                        c.given_name = g;
                        c.family_name = f;
                        true
                    }
                    _ => false,
                },
            ),
            CaseKind::ParticleSurnameVariants => self.plain(
                kind,
                |p| is_particle_surname(&p.family_name),
                |rng, p, c| {
                    let f = &p.family_name;
                    c.family_name = match rng.below(5) {
                        0 => title_words(f),
                        1 => f.to_lowercase().replace([' ', '\''], ""),
                        2 => f.to_uppercase(),
                        3 => f.replace(' ', "-"),
                        _ => {
                            // Split a prefix: "Mc Donald", "O Brien", "De La Cruz".
                            let mut out = String::new();
                            for (k, ch) in f.chars().enumerate() {
                                if k > 0 && ch.is_uppercase() && !out.ends_with(' ') {
                                    out.push(' ');
                                }
                                if ch != '\'' {
                                    out.push(ch);
                                }
                            }
                            title_words(&out.replace("  ", " "))
                        }
                    };
                    c.family_name != *f
                },
            ),
            CaseKind::WrongDob => {
                let i = self.source(|_| true)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                let d = p.date_of_birth;
                let wrong = match self.rng.below(5) {
                    0 => d.checked_add(1.day()).ok(),
                    1 => d.checked_sub(1.day()).ok(),
                    2 if d.day() <= 12 && d.day() != d.month() => {
                        Date::new(d.year(), d.day(), d.month()).ok()
                    }
                    3 => Date::new(d.year() + 1, d.month(), d.day()).ok(),
                    _ => Date::new(d.year() - 1, d.month(), d.day()).ok(),
                }?;
                child.date_of_birth = wrong;
                // The police often know the school: it must not rescue a
                // wrong date of birth.
                if self.rng.chance(0.5) {
                    child.school_urn = Some(p.school_urn.clone());
                }
                self.finish(kind, i, child, None, &[])
            }
            CaseKind::NotOnRoll | CaseKind::HintOnly => {
                let i = self.source(|_| true)?;
                let p = self.pupils[i].clone();
                let mut child = self.child_of(&p);
                let culture = pick_culture(&mut self.rng);
                let girl = self.rng.chance(0.5);
                let given = *self
                    .rng
                    .pick_common(if girl { culture.girls } else { culture.boys });
                child.given_name = given.to_owned();
                match self.rng.below(3) {
                    // A stranger: new names, a random date of birth.
                    0 => {
                        child.family_name = (*self.rng.pick_common(culture.families)).to_owned();
                        child.date_of_birth = random_dob(&mut self.rng);
                    }
                    // A sibling not on the roll (another school out of the
                    // area, or twin of a pupil): same family, same or another
                    // date of birth, another given name.
                    1 => {
                        if self.rng.chance(0.5) {
                            child.date_of_birth = child
                                .date_of_birth
                                .checked_add((400 + self.rng.below(900) as i64).days())
                                .ok()?;
                        }
                    }
                    // A namesake born on another day.
                    _ => {
                        child.given_name = p.given_name.clone();
                        child.date_of_birth = child
                            .date_of_birth
                            .checked_sub((30 + self.rng.below(700) as i64).days())
                            .ok()?;
                    }
                }
                if self.rng.chance(0.3) {
                    child.postcode = p.postcode.clone();
                }
                if kind == CaseKind::HintOnly {
                    // The hint is the school of the pupil the child is
                    // related to, or any school.
                    child.school_urn = Some(if self.rng.chance(0.6) {
                        p.school_urn.clone()
                    } else {
                        self.rng.pick(self.schools).urn.clone()
                    });
                }
                self.finish(kind, i, child, None, &[])
            }
            CaseKind::HintConflict => {
                let i = self.source(|_| true)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                if self.rng.chance(0.5) {
                    child.postcode = p.postcode.clone();
                }
                let urn = p.school_urn.clone();
                child.school_urn = Some(self.other_school(&urn));
                self.finish(kind, i, child, Some(urn), &[])
            }
            CaseKind::Twin => {
                let &(a, b) = self.rng.pick(self.twins);
                let (i, sibling) = if self.rng.chance(0.5) { (a, b) } else { (b, a) };
                // Each twin once, while unused ones are easy to find.
                if self.used.contains(&i) && self.rng.chance(0.95) {
                    return None;
                }
                let p = &pupils[i];
                let mut child = self.child_of(p);
                self.decorate(&mut child, p);
                let urn = p.school_urn.clone();
                self.finish(kind, i, child, Some(urn), &[sibling])
            }
            CaseKind::NearNamesakeElsewhere => {
                let &(i, other) = self.rng.pick(self.near);
                if self.used.contains(&i) && self.rng.chance(0.95) {
                    return None;
                }
                let p = &pupils[i];
                let mut child = self.child_of(p);
                self.decorate(&mut child, p);
                let urn = p.school_urn.clone();
                self.finish(kind, i, child, Some(urn), &[other])
            }
            CaseKind::NearMissDayMonthSwapped
            | CaseKind::NearMissOneDay
            | CaseKind::NearMissOneMonth
            | CaseKind::NearMissOneYear
            | CaseKind::NearMissOneDigit => {
                let i = self.source(|_| true)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                let want = CaseKind::NEAR_MISSES
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .map(|(_, r)| *r)?;
                let variants = dob_variants(p.date_of_birth);
                let fitting: Vec<Date> = variants
                    .into_iter()
                    .filter(|d| compare_dob(*d, p.date_of_birth) == want)
                    .collect();
                if fitting.is_empty() {
                    return None;
                }
                child.date_of_birth = *self.rng.pick(&fitting);
                // The right school as a hint must not rescue it either.
                if self.rng.chance(0.5) {
                    child.school_urn = Some(p.school_urn.clone());
                }
                self.decorate(&mut child, p);
                self.finish(kind, i, child, None, &[])
            }
            CaseKind::NearMissFamilyName => {
                let i = self.source(|p| p.family_name.chars().count() >= 5)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                child.family_name = near_miss(&mut self.rng, &p.family_name, &[&p.family_name])?;
                self.decorate(&mut child, p);
                self.finish(kind, i, child, None, &[i])
            }
            CaseKind::WeakName => {
                let i = self.source(|p| p.given_name.chars().count() >= 4)?;
                let p = &pupils[i];
                let mut child = self.child_of(p);
                let forms: Vec<&str> = std::iter::once(p.given_name.as_str())
                    .chain(p.other_names.iter().map(String::as_str))
                    .collect();
                child.given_name = near_miss(&mut self.rng, &p.given_name, &forms)?;
                // Neither the right school nor the home postcode may rescue
                // a weak name.
                self.decorate(&mut child, p);
                self.finish(kind, i, child, None, &[i])
            }
            CaseKind::SameNameTwoSchoolsNoHint
            | CaseKind::SameNameTwoSchoolsWithHint
            | CaseKind::SameNameTwoSchoolsPostcode => {
                let k = self.rng.below(self.namesakes.len());
                let (a, b) = self.namesakes[k];
                let (i, other) = if self.rng.chance(0.5) { (a, b) } else { (b, a) };
                if self.used.contains(&i) && self.rng.chance(0.95) {
                    return None;
                }
                let p = &pupils[i];
                let mut child = self.child_of(p);
                match kind {
                    CaseKind::SameNameTwoSchoolsWithHint => {
                        child.school_urn = Some(p.school_urn.clone());
                    }
                    CaseKind::SameNameTwoSchoolsPostcode => {
                        child.postcode = p.postcode.clone();
                    }
                    _ => {}
                }
                let urn = p.school_urn.clone();
                let case = self.finish(kind, i, child, Some(urn), &[a, b]);
                if case.is_some() {
                    self.used.insert(other);
                }
                case
            }
        }
    }
}
