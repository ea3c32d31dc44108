//! The verdicts as JUnit XML, which every CI shows: one test case per step, its failed expectations in
//! words as the failure's message.

use super::StepVerdict;

/// The report of a run of the scenario `name`.
pub fn write(name: &str, verdicts: &[StepVerdict]) -> String {
    let failures = verdicts.iter().filter(|v| !v.held()).count();
    let seconds: f64 = verdicts.iter().map(|v| v.seconds).sum();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{seconds:.3}\">\n",
        escape(name),
        verdicts.len()
    );
    for (i, verdict) in verdicts.iter().enumerate() {
        xml.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"step {}: {}\" time=\"{:.3}\">\n",
            escape(name),
            i + 1,
            escape(&verdict.step.words()),
            verdict.seconds
        ));
        let failed: Vec<&str> = verdict
            .checks
            .iter()
            .filter(|c| c.held != Some(true))
            .map(|c| c.text.as_str())
            .collect();
        if !failed.is_empty() {
            let message = failed.join("; ");
            xml.push_str(&format!(
                "    <failure message=\"{}\">{}</failure>\n",
                escape(&message),
                escape(&message)
            ));
        }
        let all: Vec<&str> = verdict.checks.iter().map(|c| c.text.as_str()).collect();
        xml.push_str(&format!(
            "    <system-out>{}</system-out>\n  </testcase>\n",
            escape(&all.join("\n"))
        ));
    }
    xml.push_str("</testsuite>\n");
    xml
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::file::{Expect, Step};
    use crate::scenario::judge::Check;

    #[test]
    fn a_failed_step_carries_its_words_escaped() {
        let step = Step {
            fault: Some("idle_timeout".into()),
            network: None,
            channel: None,
            delay_ms: None,
            idle_ms: Some(1200),
            for_s: 6.0,
            expect: Expect::default(),
        };
        let verdicts = [StepVerdict {
            step,
            checks: vec![Check {
                held: Some(false),
                text: "the lab cut your phone call (/socket.io/) 2 times ✗ (= 0 expected) & <more>"
                    .into(),
            }],
            seconds: 6.5,
        }];
        let xml = write("chat \"as a test\"", &verdicts);
        assert!(
            xml.contains(
                "<testsuite name=\"chat &quot;as a test&quot;\" tests=\"1\" failures=\"1\""
            ),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"step 1: idle_timeout 6.0 s (idle 1200 ms)\""),
            "{xml}"
        );
        assert!(
            xml.contains("(= 0 expected) &amp; &lt;more&gt;</failure>"),
            "{xml}"
        );
    }
}
