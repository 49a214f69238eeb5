//! JUnit XML: one test case per endpoint × check. Findings of severity medium and above
//! are failures; low and info findings pass with the finding in `system-out`.

use std::fmt::Write as _;

use super::{Report, evidence_lines, xml_escape};

pub fn render(r: &Report) -> String {
    let tests = r.endpoints.len() * r.checks.len();
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
        "<testsuites name=\"gatehouse probe\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">",
        xml_escape(&r.target)
    );
    for ep in &r.endpoints {
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
                    f.persona,
                    f.message
                );
                for l in evidence_lines(&f.evidence) {
                    let _ = writeln!(text, "  {l}");
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
