//! A self-contained HTML report: inline CSS, no scripts, no external resources.

use std::fmt::Write as _;

use super::{Outcome, Report, evidence_lines, xml_escape as esc};

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d1d1f}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}\
pre{margin:.3rem 0 0;white-space:pre-wrap;font-size:12px;color:#444}\
.sev{font-weight:600;border-radius:4px;padding:0 .4rem}\
.critical{background:#7f1d1d;color:#fff}.high{background:#dc2626;color:#fff}.medium{background:#f59e0b}\
.low{background:#fde68a}.info{background:#e5e7eb}.pass{color:#15803d}.fail{color:#b91c1c}";

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gatehouse probe: {}</title><style>{STYLE}</style></head><body>\n",
        esc(&r.target)
    );
    let _ = writeln!(
        s,
        "<h1>gatehouse probe</h1><p>Target <code>{}</code></p>",
        esc(&r.target)
    );
    let counts: Vec<String> = r
        .by_severity()
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let _ = writeln!(
        s,
        "<p class=\"{}\"><strong>{}</strong> — {} endpoint(s) ({} incomplete), {} persona(s), {} request(s), {} finding(s): {}</p>",
        if r.failed() { "fail" } else { "pass" },
        esc(r.verdict()),
        r.endpoints.len(),
        r.incomplete(),
        r.personas.len(),
        r.requests,
        r.findings.len(),
        esc(&counts.join(", "))
    );
    s.push_str("<table><thead><tr><th>Endpoint</th><th>Severity</th><th>Check</th><th>Persona</th><th>Finding and evidence</th></tr></thead><tbody>\n");
    for ep in &r.endpoints {
        let found: Vec<_> = r.findings.iter().filter(|f| &f.endpoint == ep).collect();
        if let Some(res) = r.results.iter().find(|x| &x.endpoint == ep)
            && res.outcome == Outcome::Incomplete
        {
            let _ = writeln!(
                s,
                "<tr><td><code>{}</code></td><td class=\"fail\">incomplete</td><td></td><td></td><td>{} of {} planned request(s) not answered (or throttled): not fully tested</td></tr>",
                esc(ep),
                res.unanswered,
                res.planned
            );
        } else if found.is_empty() {
            let _ = writeln!(
                s,
                "<tr><td><code>{}</code></td><td class=\"pass\">ok</td><td></td><td></td><td></td></tr>",
                esc(ep)
            );
        }
        for f in found {
            let _ = writeln!(
                s,
                "<tr><td><code>{}</code></td><td><span class=\"sev {sev}\">{sev}</span></td><td><a href=\"#{id}\">{id}</a></td><td>{}</td><td>{}<pre>{}</pre></td></tr>",
                esc(ep),
                esc(&f.personas().join(", ")),
                esc(&f.message),
                esc(&f
                    .all_evidence()
                    .into_iter()
                    .map(|e| evidence_lines(e).join("\n"))
                    .collect::<Vec<_>>()
                    .join("\n--\n")),
                sev = f.severity.as_str(),
                id = f.check.id(),
            );
        }
    }
    s.push_str("</tbody></table>\n<h2>Checks</h2><dl>\n");
    for c in &r.checks {
        let d = c.describe();
        let _ = writeln!(
            s,
            "<dt id=\"{id}\"><code>{id}</code> ({})</dt><dd>{}. {} <em>Fix:</em> {}</dd>",
            c.severity().as_str(),
            esc(d.title),
            esc(d.reason),
            esc(d.fix),
            id = c.id()
        );
    }
    s.push_str("</dl>\n");
    for f in &r.failures {
        let _ = writeln!(
            s,
            "<p class=\"fail\">No answer: {} as {}: {}</p>",
            esc(&f.endpoint),
            esc(&f.persona),
            esc(&f.error)
        );
    }
    s.push_str("</body></html>\n");
    s
}
