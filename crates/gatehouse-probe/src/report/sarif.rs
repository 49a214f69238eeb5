//! SARIF 2.1.0 (OASIS): one rule per check with its metadata, one result per finding.

use serde_json::{Value, json};

use super::{Outcome, Report};
use crate::checks::{Check, Severity};

const HELP_URI: &str = "https://example.invalid/gatehouse/docs/probe.md";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning reads `security-severity` (a CVSS-like score) from rule properties.
fn score(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

pub fn render(r: &Report) -> Value {
    let rules: Vec<Value> = Check::ALL
        .iter()
        .map(|c| {
            let d = c.describe();
            json!({
                "id": c.id(),
                "name": c.id(),
                "shortDescription": {"text": d.title},
                "fullDescription": {"text": d.reason},
                "help": {"text": d.fix},
                "helpUri": format!("{HELP_URI}#{}", c.id()),
                "defaultConfiguration": {"level": level(c.severity())},
                "properties": {
                    "severity": c.severity().as_str(),
                    "security-severity": score(c.severity()),
                    "tags": ["security", "authentication", "authorization"],
                },
            })
        })
        .collect();
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let index = Check::ALL.iter().position(|c| *c == f.check).unwrap_or(0);
            let mut location = json!({
                "physicalLocation": {
                    "artifactLocation": {"uri": r.spec_uri.clone().unwrap_or_else(|| "probe.toml".to_owned())},
                },
                "logicalLocations": [{"name": f.endpoint, "kind": "resource"}],
            });
            if let Some(line) = f.line {
                location["physicalLocation"]["region"] = json!({"startLine": line});
            }
            json!({
                "ruleId": f.check.id(),
                "ruleIndex": index,
                "level": level(f.severity),
                "message": {"text": format!("{} as {}: {}", f.endpoint, f.personas().join(", "), f.message)},
                "locations": [location],
                "partialFingerprints": {"endpointCheckPersona": format!("{}|{}|{}", f.endpoint, f.check.id(), f.persona)},
                "properties": {"endpoint": f.endpoint, "persona": f.persona, "personas": f.personas(), "evidence": f.evidence, "more_evidence": f.more.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gatehouse-probe",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": HELP_URI,
                "rules": rules,
            }},
            "results": results,
            // An incomplete endpoint is a failed part of the run, not a finding (SARIF
            // §3.20.14 `executionSuccessful`, §3.58 notifications).
            "invocations": [{
                "executionSuccessful": r.incomplete() == 0,
                "toolExecutionNotifications": r.results.iter().filter(|x| x.outcome == Outcome::Incomplete).map(|x| json!({
                    "level": "error",
                    "message": {"text": format!("{}: incomplete: {} of {} planned request(s) not answered (or throttled)", x.endpoint, x.unanswered, x.planned)},
                })).collect::<Vec<_>>(),
            }],
            "properties": {
                "target": r.target,
                "requests": r.requests,
                "results": r.results.iter().map(|x| json!({"endpoint": x.endpoint, "result": x.outcome.as_str()})).collect::<Vec<_>>(),
            },
        }],
    })
}
