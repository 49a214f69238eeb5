//! Findings and the report formats: table, JSON, JUnit XML, SARIF 2.1.0, HTML.

mod html;
mod junit;
mod sarif;
mod table;

use std::str::FromStr;

use serde_json::{Value, json};

use crate::checks::{Check, Severity};
use crate::spec::{Endpoint, Spec, Target};

/// One finding: a check that fired for an endpoint and a persona, with its evidence.
#[derive(Debug, Clone)]
pub struct Finding {
    pub check: Check,
    pub severity: Severity,
    /// `METHOD /path`.
    pub endpoint: String,
    pub persona: String,
    pub message: String,
    /// `{request: {method, url, headers}, status, headers, error, message}`; credentials
    /// redacted.
    pub evidence: Value,
    /// The same root cause seen for further personas: (persona, evidence).
    pub more: Vec<(String, Value)>,
    /// The endpoint's line in the probe file, when it came from one.
    pub line: Option<usize>,
}

impl Finding {
    pub fn new(
        check: Check,
        ep: &Endpoint,
        persona: &str,
        message: String,
        evidence: Value,
    ) -> Self {
        Self {
            check,
            severity: check.severity(),
            endpoint: ep.label(),
            persona: persona.to_owned(),
            message,
            evidence,
            more: Vec::new(),
            line: ep.line,
        }
    }

    /// Every persona this finding was seen for, the first first.
    pub fn personas(&self) -> Vec<&str> {
        std::iter::once(self.persona.as_str())
            .chain(self.more.iter().map(|(p, _)| p.as_str()))
            .collect()
    }

    /// Every piece of evidence, the first first.
    pub fn all_evidence(&self) -> Vec<&Value> {
        std::iter::once(&self.evidence)
            .chain(self.more.iter().map(|(_, e)| e))
            .collect()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "check": self.check.id(),
            "severity": self.severity.as_str(),
            "endpoint": self.endpoint,
            "persona": self.persona,
            "personas": self.personas(),
            "message": self.message,
            "evidence": self.evidence,
            "more_evidence": self.more.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        })
    }
}

/// A request that got no answer (timeout, connection refused, budget spent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub endpoint: String,
    pub persona: String,
    pub error: String,
}

/// How one endpoint came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every planned request was answered and judged; nothing found.
    Ok,
    /// Every planned request was answered; at least one finding.
    Finding,
    /// Not every planned request got an answer the checks could judge (no answer, a
    /// timeout, the budget, a 429, a failed sign-in): the probe cannot vouch for it.
    Incomplete,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Finding => "finding",
            Self::Incomplete => "incomplete",
        }
    }
}

/// One endpoint's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointResult {
    pub endpoint: String,
    pub outcome: Outcome,
    /// Requests planned for it, and how many of them came back unjudged.
    pub planned: usize,
    pub unanswered: usize,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: String,
    pub endpoints: Vec<String>,
    pub personas: Vec<String>,
    pub checks: Vec<Check>,
    pub findings: Vec<Finding>,
    pub failures: Vec<Failure>,
    /// Per endpoint, in spec order.
    pub results: Vec<EndpointResult>,
    pub requests: usize,
    /// Answers that were 429: checks on those requests were skipped.
    pub throttled: usize,
    /// Where the spec came from (for SARIF locations); set by the caller.
    pub spec_uri: Option<String>,
}

impl Report {
    #[expect(
        clippy::too_many_arguments,
        reason = "one constructor, called once by the run"
    )]
    pub(crate) fn new(
        target: &Target,
        spec: &Spec,
        findings: Vec<Finding>,
        failures: Vec<Failure>,
        results: Vec<EndpointResult>,
        requests: usize,
        throttled: usize,
        checks: Vec<Check>,
    ) -> Self {
        Self {
            target: format!("{}{}", target.origin(), target.base_path),
            endpoints: spec.endpoints.iter().map(Endpoint::label).collect(),
            personas: std::iter::once(crate::spec::ANONYMOUS.to_owned())
                .chain(spec.personas.iter().map(|p| p.name.clone()))
                .collect(),
            checks,
            findings,
            failures,
            results,
            requests,
            throttled,
            spec_uri: None,
        }
    }

    /// Whether a finding of severity medium or above is present, or an endpoint is
    /// incomplete (exit status 1): a run passes only on what it actually saw.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.severity.fails()) || self.incomplete() > 0
    }

    /// Endpoints whose planned requests were not all answered.
    pub fn incomplete(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Incomplete)
            .count()
    }

    /// The result of one endpoint (by its label).
    pub fn outcome(&self, endpoint: &str) -> Option<Outcome> {
        self.results
            .iter()
            .find(|r| r.endpoint == endpoint)
            .map(|r| r.outcome)
    }

    /// The verdict line of every format.
    pub fn verdict(&self) -> &'static str {
        if self.findings.iter().any(|f| f.severity.fails()) {
            "FAIL: findings of severity medium or above"
        } else if self.incomplete() > 0 {
            "FAIL: incomplete: not every planned request was answered"
        } else {
            "PASS"
        }
    }

    /// Every request went unanswered: the target is unreachable.
    pub fn unreachable(&self) -> bool {
        self.requests > 0 && self.failures.len() >= self.requests
    }

    /// Finding counts per severity, most severe first.
    pub fn by_severity(&self) -> Vec<(&'static str, usize)> {
        [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ]
        .into_iter()
        .map(|s| {
            (
                s.as_str(),
                self.findings.iter().filter(|f| f.severity == s).count(),
            )
        })
        .collect()
    }

    pub fn summary_json(&self) -> Value {
        json!({
            "target": self.target,
            "endpoints": self.endpoints.len(),
            "personas": self.personas,
            "requests": self.requests,
            "throttled": self.throttled,
            "failed_requests": self.failures.iter().map(|f| json!({"endpoint": f.endpoint, "persona": f.persona, "error": f.error})).collect::<Vec<_>>(),
            "results": self.results.iter().map(|r| json!({"endpoint": r.endpoint, "result": r.outcome.as_str(), "planned": r.planned, "unanswered": r.unanswered})).collect::<Vec<_>>(),
            "incomplete": self.incomplete(),
            "findings": self.findings.len(),
            "by_severity": self.by_severity().into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "passed": !self.failed(),
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
            "summary": self.summary_json(),
        })
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => table::render(self),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Junit => junit::render(self),
            Format::Sarif => {
                let mut s = serde_json::to_string_pretty(&sarif::render(self)).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Html => html::render(self),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Junit,
    Sarif,
    Html,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "table" => Self::Table,
            "json" => Self::Json,
            "junit" => Self::Junit,
            "sarif" => Self::Sarif,
            "html" => Self::Html,
            _ => {
                return Err(format!(
                    "unknown format `{s}`; expected table, json, junit, sarif or html"
                ));
            }
        })
    }
}

pub(crate) use gatehouse_challenge::markup::escape as xml_escape;

/// Evidence as short lines: request, status, relevant headers, problem `error`.
pub(crate) fn evidence_lines(e: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let req = &e["request"];
    let mut r = format!(
        "{} {}",
        req["method"].as_str().unwrap_or(""),
        req["url"].as_str().unwrap_or("")
    );
    if let Some(h) = req["headers"].as_object() {
        for (k, v) in h {
            if k != "accept" {
                r.push_str(&format!(" | {k}: {}", v.as_str().unwrap_or("")));
            }
        }
    }
    lines.push(format!("request: {r}"));
    lines.push(format!("status: {}", e["status"]));
    if let Some(h) = e["headers"].as_object() {
        for (k, vals) in h {
            for v in vals.as_array().into_iter().flatten() {
                lines.push(format!("{k}: {}", v.as_str().unwrap_or("")));
            }
        }
    }
    if let Some(err) = e["error"].as_str() {
        lines.push(format!("problem error: {err}"));
    }
    if let Some(m) = e["message"].as_str()
        && e["error"].as_str() != Some(m)
    {
        lines.push(format!("message: {m}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            xml_escape("<a href=\"x\">&'\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\u{FFFD}"
        );
        assert_eq!("sarif".parse::<Format>(), Ok(Format::Sarif));
        assert!("xml".parse::<Format>().is_err());
    }
}
