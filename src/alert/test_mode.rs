//! Test mode's marking of a rendered message (issue 16, item 5): "TEST"
//! first in the subject and, first in the body, a line saying whom and
//! which school (URN and name) it would have gone to. Addressing it to
//! `[mail] test_recipient` instead is `crate::deliver`'s job.

use lettre::message::Mailbox;

use super::{escape_html, one_line, Rendered};

/// Where a message in test mode would have gone.
#[derive(Debug)]
pub struct WouldBe<'a> {
    pub to: &'a Mailbox,
    pub extra_to: &'a [Mailbox],
    /// Empty for a notice about no school (e.g. a review notice).
    pub school_urn: &'a str,
    /// `None` if the school is not (or no longer) in the directory.
    pub school_name: Option<&'a str>,
}

/// The subject's prefix in test mode.
pub const TEST_PREFIX: &str = "TEST: ";

impl WouldBe<'_> {
    /// The line the body opens with.
    pub fn line(&self) -> String {
        let whom: Vec<String> = std::iter::once(self.to)
            .chain(self.extra_to)
            .map(|m| one_line(&m.to_string()))
            .collect();
        let school = match (self.school_urn, self.school_name) {
            ("", _) => String::new(),
            (urn, Some(name)) => format!(" for school URN {urn} ({})", one_line(name)),
            (urn, None) => format!(" for school URN {urn} (not in the directory)"),
        };
        format!(
            "TEST: a police force in test mode sent this. Nothing went to the school. \
             It would have gone to {}{school}.",
            whom.join(", ")
        )
    }
}

/// `r` marked as a test message that would have gone to `w`.
pub fn mark_test(r: Rendered, w: &WouldBe<'_>) -> Rendered {
    let line = w.line();
    let html_line = format!("<p><strong>{}</strong></p>\n", escape_html(&line));
    let html = match r.html.find("<body>\n") {
        Some(i) => {
            let at = i + "<body>\n".len();
            format!("{}{html_line}{}", &r.html[..at], &r.html[at..])
        }
        None => format!("{html_line}{}", r.html),
    };
    Rendered {
        subject: format!("{TEST_PREFIX}{}", r.subject),
        text: format!("{line}\n\n{}", r.text),
        html,
    }
}
