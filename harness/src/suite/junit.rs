//! `junit.xml`: the suite as CI servers show test results natively (the
//! JUnit XML of Ant and Maven's Surefire, which Jenkins, GitLab and GitHub
//! reporters read). One `<testcase>` per run: an invalid run is a
//! `<failure>` whose message is the counterexample's explanation, a harness
//! error is an `<error>`, an unknown verdict or a run the suite did not get
//! to is `<skipped>` with the reason.

use std::fmt::Write;

use super::record::{Outcome, RunRecord, SuiteRecord};

/// The document for `record`.
pub fn render(record: &SuiteRecord) -> String {
    let c = &record.counts;
    let total = record.runs.len();
    let skipped = c.unknown + c.not_run;
    let time: f64 = record.runs.iter().map(|r| r.duration_s).sum();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"{}\" tests=\"{total}\" failures=\"{}\" errors=\"{}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        xml(&record.name),
        c.invalid,
        c.error
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{total}\" failures=\"{}\" errors=\"{}\" skipped=\"{skipped}\" time=\"{time:.3}\" timestamp=\"{}\">",
        xml(&record.name),
        c.invalid,
        c.error,
        xml(record.started.get(..19).unwrap_or(&record.started))
    );
    let _ = writeln!(
        o,
        "    <properties><property name=\"source\" value=\"{}\"/><property name=\"parallel\" value=\"{}\"/></properties>",
        xml(&record.source),
        record.parallel
    );
    for r in &record.runs {
        testcase(&mut o, &record.name, r);
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}

fn testcase(o: &mut String, suite: &str, r: &RunRecord) {
    let _ = write!(
        o,
        "    <testcase classname=\"{}.{}\" name=\"{}\" time=\"{:.3}\"",
        xml(suite),
        xml(&r.test),
        xml(&format!("{} seed {} (round {})", r.label, r.seed, r.round)),
        r.duration_s
    );
    let msg = r.message.as_deref().unwrap_or("");
    let body = || {
        let mut b = msg.to_string();
        if let Some(d) = &r.dir {
            b.push_str(&format!("\nrun folder: {d}"));
        }
        b.push_str(&format!("\nrun alone: {}", r.command.join(" ")));
        b
    };
    match r.outcome {
        Outcome::Valid => o.push_str("/>\n"),
        Outcome::Invalid => {
            let _ = writeln!(
                o,
                ">\n      <failure type=\"invalid\" message=\"{}\">{}</failure>\n    </testcase>",
                xml(msg),
                xml(&body())
            );
        }
        Outcome::Error => {
            let _ = writeln!(
                o,
                ">\n      <error type=\"harness-error\" message=\"{}\">{}</error>\n    </testcase>",
                xml(msg),
                xml(&body())
            );
        }
        Outcome::Unknown | Outcome::NotRun => {
            let why = if r.outcome == Outcome::Unknown {
                format!("unknown: {msg}")
            } else {
                format!("not run: {msg}")
            };
            let _ = writeln!(
                o,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                xml(&why)
            );
        }
    }
}

/// Escapes text and attribute values; drops the control characters XML
/// 1.0 cannot hold at all.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' => o.push_str("&#10;"),
            '\t' | '\r' => o.push(' '),
            c if (c as u32) < 0x20 => {}
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_cannot_break_the_document() {
        assert_eq!(
            xml("a<b & \"c\"\u{1}\nd"),
            "a&lt;b &amp; &quot;c&quot;&#10;d"
        );
    }
}
