//! The morning summary's email (issue 18, item 4): counts and, for each
//! alert or review item that needs a human, its identifiers and the command
//! to act. Built from [`Summary`] alone, which holds no child's details.

use super::{escape_html, one_line, uk_time, Rendered};
use crate::store::summary::Summary;

pub fn render_summary(s: &Summary) -> Rendered {
    let day = s.day.map(|d| d.to_string()).unwrap_or_default();
    let n = s.needs_a_human.len();
    let subject = if n == 0 {
        format!("kim: morning summary {day}: nothing needs a human")
    } else {
        format!("kim: morning summary {day}: {n} item(s) need a human")
    };
    let when = |t: Option<jiff::Timestamp>| t.map(uk_time).unwrap_or_default();
    let mut text = format!(
        "Since {} (to {}):\n\n\
         notifications received   {}\n\
         children matched         {}\n\
         children sent to review  {}\n\
         children dismissed       {}\n\
         alerts delivered on time {}\n\
         alerts delivered late    {}\n\
         alerts failed            {}\n\n\
         Now: {} alert(s) still waiting, {} child(ren) in the review queue.\n\n",
        when(s.since),
        when(s.until),
        s.notifications_received,
        s.children_matched,
        s.children_to_review,
        s.children_dismissed,
        s.delivered_on_time,
        s.delivered_late,
        s.failed,
        s.waiting,
        s.in_review,
    );
    if n == 0 {
        text.push_str("Nothing needs a human now.\n");
    } else {
        text.push_str("Needs a human now:\n");
        for i in &s.needs_a_human {
            text.push_str(&format!(
                "- {} {}{}: {}\n  {}\n",
                one_line(&i.what),
                one_line(&i.id),
                i.school_urn
                    .as_deref()
                    .map(|u| format!(" (school {})", one_line(u)))
                    .unwrap_or_default(),
                one_line(&i.detail),
                one_line(&i.command),
            ));
        }
    }
    text.push_str(
        "\nThe same from the command line: `kim alerts list --late`, `kim alerts list --state failed`, \
         `kim review list`.\n",
    );
    Rendered {
        subject,
        html: format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kim</title></head>\n<body>\n<pre>{}</pre>\n</body></html>\n",
            escape_html(&text)
        ),
        text,
    }
}
