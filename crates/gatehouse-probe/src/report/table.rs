//! The terminal table: findings grouped by endpoint, evidence under each, then a summary.

use std::fmt::Write as _;

use super::{Report, evidence_lines};

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "gatehouse probe: {}", r.target);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<10} {:<28} {:<22} ENDPOINT",
        "SEVERITY", "CHECK", "PERSONA"
    );
    for ep in &r.endpoints {
        let found: Vec<_> = r.findings.iter().filter(|f| &f.endpoint == ep).collect();
        if found.is_empty() {
            let _ = writeln!(s, "{:<10} {:<28} {:<22} {ep}", "ok", "-", "-");
            continue;
        }
        for f in found {
            let _ = writeln!(
                s,
                "{:<10} {:<28} {:<22} {ep}",
                f.severity.as_str(),
                f.check.id(),
                f.persona
            );
            let _ = writeln!(s, "{:>11}{}", "", f.message);
            for line in evidence_lines(&f.evidence) {
                let _ = writeln!(s, "{:>13}{line}", "");
            }
        }
    }
    let _ = writeln!(s);
    let by = r.by_severity();
    let counts: Vec<String> = by.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(
        s,
        "{} endpoint(s), {} persona(s), {} request(s), {} finding(s): {}",
        r.endpoints.len(),
        r.personas.len(),
        r.requests,
        r.findings.len(),
        counts.join(", ")
    );
    if r.throttled > 0 {
        let _ = writeln!(
            s,
            "{} answer(s) were 429: checks on those requests were skipped",
            r.throttled
        );
    }
    for f in &r.failures {
        let _ = writeln!(s, "no answer: {} as {}: {}", f.endpoint, f.persona, f.error);
    }
    let _ = writeln!(
        s,
        "{}",
        if r.failed() {
            "FAIL: findings of severity medium or above"
        } else {
            "PASS"
        }
    );
    s
}
