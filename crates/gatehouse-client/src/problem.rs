//! Problem details (RFC 9457) as the gateway sends them, with its `error` extension member.

use serde::{Deserialize, Serialize};

/// An `application/problem+json` body (RFC 9457 §3).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Problem {
    /// A URI reference naming the problem type; absent means `about:blank` (RFC 9457 §3.1.1).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Extension members (RFC 9457 §3.2), e.g. the gateway's `error` code.
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// One unmet requirement of a 403 `requirement_not_met` (row 25): what the user must do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Requirement {
    /// The stable code to act on (`payment_method_required`).
    pub code: String,
    /// Text to show the user; absent with the gateway's `disclosure = "minimal"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the user can fix it (a path of the site, or an `https://` URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy_url: Option<String>,
}

impl Problem {
    /// The unmet requirements of a 403 `requirement_not_met` (row 25), so an app can show
    /// "Add a payment method" with its link; empty for every other problem.
    pub fn requirements(&self) -> Vec<Requirement> {
        self.extensions
            .get("requirements")
            .and_then(|v| serde_json::from_value::<Vec<Requirement>>(v.clone()).ok())
            .unwrap_or_default()
    }

    /// The problem type, `about:blank` when absent (RFC 9457 §3.1.1).
    pub fn problem_type(&self) -> &str {
        self.problem_type.as_deref().unwrap_or("about:blank")
    }

    /// The machine-readable `error` code (`token_expired`, `insufficient_scope`, ...).
    pub fn error(&self) -> Option<&str> {
        self.extensions.get("error").and_then(|v| v.as_str())
    }

    /// Parses a body; a body that is not a JSON object gives a problem with only `status`
    /// (RFC 9457 §3.1.1: the status alone is then all that is known).
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let mut p = serde_json::from_slice::<Problem>(body).unwrap_or_default();
        // RFC 9457 §3.1.2: the status member is advisory; the response status wins.
        p.status = Some(status);
        p
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.title, &self.detail) {
            (Some(t), Some(d)) => write!(f, "{t}: {d}"),
            (Some(t), None) => f.write_str(t),
            (None, Some(d)) => f.write_str(d),
            (None, None) => write!(f, "status {}", self.status.unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_members_and_extensions() {
        let p = Problem::from_body(
            403,
            br#"{"type":"https://gatehouse.dev/problems/insufficient-scope","title":"Insufficient scope","status":403,"detail":"Needs posts:write.","error":"insufficient_scope","required":["posts:write"]}"#,
        );
        assert_eq!(p.error(), Some("insufficient_scope"));
        assert_eq!(p.status, Some(403));
        assert_eq!(p.extensions["required"][0], "posts:write");
        assert_eq!(p.to_string(), "Insufficient scope: Needs posts:write.");
    }

    #[test]
    fn requirements_of_a_row_25_refusal() {
        let p = Problem::from_body(
            403,
            br#"{"status":403,"error":"requirement_not_met","requirements":[{"code":"email_unverified","message":"Verify your email.","remedy_url":"/account/email"},{"code":"payment_method_required"}]}"#,
        );
        let r = p.requirements();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].code, "email_unverified");
        assert_eq!(r[0].remedy_url.as_deref(), Some("/account/email"));
        assert_eq!(r[1].message, None);
        assert!(
            Problem::from_body(403, br#"{"error":"insufficient_role"}"#)
                .requirements()
                .is_empty()
        );
    }

    #[test]
    fn non_json_bodies_keep_the_status() {
        let p = Problem::from_body(503, b"<html>busy</html>");
        assert_eq!(p.status, Some(503));
        assert_eq!(p.problem_type(), "about:blank");
        assert_eq!(p.error(), None);
    }
}
