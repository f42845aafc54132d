//! Scoring the matching stage against the evaluation set's truth: outcomes
//! per kind of case, precision and recall, and the table the tests and the
//! benchmark print.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Case, CaseKind};
use crate::matching::decide::Decision;

/// Outcomes for one kind of case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindScore {
    pub cases: usize,
    /// Matched to the truth's school.
    pub matched_right: usize,
    /// Matched to any other school, or matched when no match is right.
    pub matched_wrong: usize,
    pub reviewed: usize,
    /// Review reasons and their counts.
    pub reasons: BTreeMap<&'static str, usize>,
}

impl KindScore {
    /// Right matches over all matches; 1.0 when nothing matched.
    pub fn precision(&self) -> f64 {
        let m = self.matched_right + self.matched_wrong;
        if m == 0 {
            1.0
        } else {
            self.matched_right as f64 / m as f64
        }
    }

    /// Right matches over all cases.
    pub fn recall(&self) -> f64 {
        if self.cases == 0 {
            0.0
        } else {
            self.matched_right as f64 / self.cases as f64
        }
    }

    fn add(&mut self, other: &KindScore) {
        self.cases += other.cases;
        self.matched_right += other.matched_right;
        self.matched_wrong += other.matched_wrong;
        self.reviewed += other.reviewed;
        for (r, n) in &other.reasons {
            *self.reasons.entry(r).or_default() += n;
        }
    }
}

/// Decisions scored against the truth, per kind.
#[derive(Debug, Clone, Default)]
pub struct Score {
    pub per_kind: BTreeMap<CaseKind, KindScore>,
}

impl Score {
    pub fn record(&mut self, case: &Case, decision: &Decision) {
        let s = self.per_kind.entry(case.kind).or_default();
        s.cases += 1;
        match decision {
            Decision::Matched { urn, .. } => {
                if case.truth.as_deref() == Some(urn.as_str()) {
                    s.matched_right += 1;
                } else {
                    s.matched_wrong += 1;
                }
            }
            Decision::NeedsReview(reason) => {
                s.reviewed += 1;
                *s.reasons.entry(reason.as_str()).or_default() += 1;
            }
        }
    }

    /// All kinds together.
    pub fn total(&self) -> KindScore {
        self.sum(|_| true)
    }

    /// The kinds whose right outcome is a match.
    pub fn match_expected(&self) -> KindScore {
        self.sum(|k| k.expects_match())
    }

    fn sum(&self, which: impl Fn(CaseKind) -> bool) -> KindScore {
        let mut t = KindScore::default();
        for (k, s) in &self.per_kind {
            if which(*k) {
                t.add(s);
            }
        }
        t
    }

    /// A table of counts, precision and recall per kind (no personal data).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<32} {:>6} {:>7} {:>7} {:>7} {:>9} {:>7}  review reasons",
            "kind", "cases", "right", "wrong", "review", "precision", "recall"
        );
        let row = |out: &mut String, name: &str, s: &KindScore, expect: &str| {
            let reasons: Vec<String> = s.reasons.iter().map(|(r, n)| format!("{r}={n}")).collect();
            let _ = writeln!(
                out,
                "{:<32} {:>6} {:>7} {:>7} {:>7} {:>9.4} {:>7}  {}",
                name,
                s.cases,
                s.matched_right,
                s.matched_wrong,
                s.reviewed,
                s.precision(),
                expect,
                reasons.join(" ")
            );
        };
        for (k, s) in &self.per_kind {
            let expect = if k.expects_match() {
                format!("{:.4}", s.recall())
            } else {
                "(review)".to_owned()
            };
            row(&mut out, k.as_str(), s, &expect);
        }
        let t = self.total();
        row(&mut out, "ALL", &t, "");
        let m = self.match_expected();
        row(
            &mut out,
            "ALL where a match is expected",
            &m,
            &format!("{:.4}", m.recall()),
        );
        out
    }
}
