//! The terminal table: findings grouped by endpoint, evidence under each, then a summary.

use std::fmt::Write as _;

use super::{Outcome, Report, evidence_lines};

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
        if let Some(res) = r.results.iter().find(|x| &x.endpoint == ep)
            && res.outcome == Outcome::Incomplete
        {
            let _ = writeln!(s, "{:<10} {:<28} {:<22} {ep}", "incomplete", "-", "-");
            let _ = writeln!(
                s,
                "{:>11}{} of {} planned request(s) not answered (or throttled): this endpoint was not fully tested",
                "", res.unanswered, res.planned
            );
        } else if found.is_empty() {
            let _ = writeln!(s, "{:<10} {:<28} {:<22} {ep}", "ok", "-", "-");
            continue;
        }
        for f in found {
            let _ = writeln!(
                s,
                "{:<10} {:<28} {:<22} {ep}",
                f.severity.as_str(),
                f.check.id(),
                f.personas().join(", ")
            );
            let _ = writeln!(s, "{:>11}{}", "", f.message);
            for (i, e) in f.all_evidence().into_iter().enumerate() {
                if i > 0 {
                    let _ = writeln!(s, "{:>13}--", "");
                }
                for line in evidence_lines(e) {
                    let _ = writeln!(s, "{:>13}{line}", "");
                }
            }
        }
    }
    let _ = writeln!(s);
    let by = r.by_severity();
    let counts: Vec<String> = by.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(
        s,
        "{} endpoint(s) ({} incomplete), {} persona(s), {} request(s), {} finding(s): {}",
        r.endpoints.len(),
        r.incomplete(),
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
    let _ = writeln!(s, "{}", r.verdict());
    s
}
