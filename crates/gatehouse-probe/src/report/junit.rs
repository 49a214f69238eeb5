//! JUnit XML: one test case per endpoint × check. Findings of severity medium and above
//! are failures; low and info findings pass with the finding in `system-out`.

use std::fmt::Write as _;

use super::{Outcome, Report, evidence_lines, xml_escape};

pub fn render(r: &Report) -> String {
    // One more case per endpoint: `answered`, an error when the endpoint is incomplete.
    let tests = r.endpoints.len() * (r.checks.len() + 1);
    let errors = r.incomplete();
    let failures = r
        .endpoints
        .iter()
        .flat_map(|ep| r.checks.iter().map(move |c| (ep, c)))
        .filter(|(ep, c)| {
            r.findings
                .iter()
                .any(|f| &f.endpoint == *ep && f.check == **c && f.severity.fails())
        })
        .count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"gatehouse probe\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">",
        xml_escape(&r.target)
    );
    for ep in &r.endpoints {
        let _ = write!(
            s,
            "    <testcase classname=\"{}\" name=\"answered\"",
            xml_escape(ep)
        );
        match r.results.iter().find(|x| &x.endpoint == ep) {
            Some(res) if res.outcome == Outcome::Incomplete => {
                let _ = writeln!(
                    s,
                    ">\n      <error message=\"incomplete: {} of {} planned request(s) not answered (or throttled)\" type=\"incomplete\"/>\n    </testcase>",
                    res.unanswered, res.planned
                );
            }
            _ => s.push_str("/>\n"),
        }
        for c in &r.checks {
            let found: Vec<_> = r
                .findings
                .iter()
                .filter(|f| &f.endpoint == ep && f.check == *c)
                .collect();
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml_escape(ep),
                c.id()
            );
            if found.is_empty() {
                s.push_str("/>\n");
                continue;
            }
            s.push_str(">\n");
            let mut text = String::new();
            for f in &found {
                let _ = writeln!(
                    text,
                    "[{}] {} as {}: {}",
                    f.severity.as_str(),
                    f.check.id(),
                    f.personas().join(", "),
                    f.message
                );
                for e in f.all_evidence() {
                    for l in evidence_lines(e) {
                        let _ = writeln!(text, "  {l}");
                    }
                }
            }
            if found.iter().any(|f| f.severity.fails()) {
                let _ = writeln!(
                    s,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    xml_escape(&found[0].message),
                    found[0].severity.as_str(),
                    xml_escape(&text)
                );
            } else {
                let _ = writeln!(s, "      <system-out>{}</system-out>", xml_escape(&text));
            }
            s.push_str("    </testcase>\n");
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
