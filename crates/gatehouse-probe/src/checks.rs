//! The checks, their stable ids and severities. `docs/probe.md` documents each one; the
//! SARIF rules are generated from [`Check::describe`].

use serde::Serialize;

/// How bad a finding is. Medium and above fail the run (exit status 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Whether a finding of this severity fails the run.
    pub fn fails(self) -> bool {
        self >= Self::Medium
    }
}

/// One check. The `id` strings are stable: CI configurations and SARIF baselines key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    AnonymousNot401,
    ChallengeMissing,
    ChallengeMalformed,
    BearerErrorOnMissing,
    InvalidCredentialsNot401,
    TokenAcceptedUnsigned,
    TokenAcceptedTampered,
    ForbiddenNot403,
    AccessControlBypass,
    AllowedRefused,
    ChallengeOn403,
    PreflightChallenged,
    ExistenceLeak,
    RedirectForApi,
    NoThrottling,
    EndpointMissing,
    ResourceNotFound,
    ServerError,
    InvalidTokenNoError,
    InternalsLeaked,
    VersionDisclosed,
}

/// What the documentation and SARIF say about a check.
pub struct Description {
    pub title: &'static str,
    pub reason: &'static str,
    pub fix: &'static str,
}

impl Check {
    pub const ALL: [Check; 21] = [
        Self::AnonymousNot401,
        Self::ChallengeMissing,
        Self::ChallengeMalformed,
        Self::BearerErrorOnMissing,
        Self::InvalidCredentialsNot401,
        Self::TokenAcceptedUnsigned,
        Self::TokenAcceptedTampered,
        Self::ForbiddenNot403,
        Self::AccessControlBypass,
        Self::AllowedRefused,
        Self::ChallengeOn403,
        Self::PreflightChallenged,
        Self::ExistenceLeak,
        Self::RedirectForApi,
        Self::NoThrottling,
        Self::EndpointMissing,
        Self::ResourceNotFound,
        Self::ServerError,
        Self::InvalidTokenNoError,
        Self::InternalsLeaked,
        Self::VersionDisclosed,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::AnonymousNot401 => "anonymous-not-401",
            Self::ChallengeMissing => "challenge-missing",
            Self::ChallengeMalformed => "challenge-malformed",
            Self::BearerErrorOnMissing => "bearer-error-on-missing",
            Self::InvalidCredentialsNot401 => "invalid-credentials-not-401",
            Self::TokenAcceptedUnsigned => "token-accepted-unsigned",
            Self::TokenAcceptedTampered => "token-accepted-tampered",
            Self::ForbiddenNot403 => "forbidden-not-403",
            Self::AccessControlBypass => "access-control-bypass",
            Self::AllowedRefused => "allowed-refused",
            Self::ChallengeOn403 => "challenge-on-403",
            Self::PreflightChallenged => "preflight-challenged",
            Self::ExistenceLeak => "existence-leak",
            Self::RedirectForApi => "redirect-for-api",
            Self::NoThrottling => "no-throttling",
            Self::EndpointMissing => "endpoint-missing",
            Self::ResourceNotFound => "resource-not-found",
            Self::ServerError => "server-error",
            Self::InvalidTokenNoError => "invalid-token-no-error",
            Self::InternalsLeaked => "internals-leaked",
            Self::VersionDisclosed => "version-disclosed",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Self::TokenAcceptedUnsigned
            | Self::TokenAcceptedTampered
            | Self::AccessControlBypass => Severity::Critical,
            Self::AllowedRefused | Self::InvalidCredentialsNot401 | Self::EndpointMissing => {
                Severity::High
            }
            Self::AnonymousNot401
            | Self::ChallengeMissing
            | Self::ChallengeMalformed
            | Self::PreflightChallenged
            | Self::RedirectForApi
            | Self::NoThrottling
            | Self::ServerError
            | Self::InternalsLeaked => Severity::Medium,
            Self::BearerErrorOnMissing
            | Self::ForbiddenNot403
            | Self::ChallengeOn403
            | Self::InvalidTokenNoError
            | Self::ResourceNotFound
            | Self::VersionDisclosed => Severity::Low,
            Self::ExistenceLeak => Severity::Info,
        }
    }

    pub fn describe(self) -> Description {
        let (title, reason, fix) = match self {
            Self::AnonymousNot401 => (
                "A request without credentials was not answered 401",
                "RFC 9110 §15.5.2: a request that lacks credentials gets 401 with a challenge; 403 (§15.5.4) means that credentials would not help, and a redirect tells an API client nothing it can act on.",
                "Answer 401 with a `WWW-Authenticate` challenge for every scheme the endpoint accepts.",
            ),
            Self::ChallengeMissing => (
                "401 without `WWW-Authenticate`",
                "RFC 9110 §15.5.2: the server generating a 401 MUST send a `WWW-Authenticate` field with at least one challenge.",
                "Send one challenge per accepted scheme, e.g. `Bearer realm=\"api\"`.",
            ),
            Self::ChallengeMalformed => (
                "`WWW-Authenticate` does not parse",
                "RFC 9110 §11.6.1 and §11.2: a challenge is an auth-scheme followed by a token68 or comma-separated `name=value` parameters whose values are tokens or quoted-strings; RFC 7617 §2 requires `realm` on Basic.",
                "Quote parameter values (`realm=\"my api\"`), separate parameters with commas, do not repeat a parameter.",
            ),
            Self::BearerErrorOnMissing => (
                "Bearer challenge carries `error` although no token was sent",
                "RFC 6750 §3.1: if the request lacks any authentication information the resource server SHOULD NOT include an error code.",
                "Send `Bearer realm=\"…\"` alone when there was no token; keep `error=\"invalid_token\"` for bad tokens.",
            ),
            Self::InvalidCredentialsNot401 => (
                "Invalid credentials were not answered 401",
                "RFC 9110 §15.5.2: 401 means the credentials were refused; RFC 6750 §3.1 `invalid_token` uses 401. A 403 says the identity was accepted, 422/500 say the server broke.",
                "Verify credentials before authorization and answer every failure with 401 and a challenge (Bearer: `error=\"invalid_token\"`).",
            ),
            Self::TokenAcceptedUnsigned => (
                "A token with `alg: none` and no signature was accepted",
                "RFC 8725 §3.1 and §2.1: a verifier must only accept algorithms it expects; an unsecured JWT (RFC 7519 §6) proves nothing.",
                "Pin the accepted algorithms per issuer and reject `none`; use a maintained JWT library's verifying decoder.",
            ),
            Self::TokenAcceptedTampered => (
                "A token with a changed payload and the original signature was accepted",
                "RFC 7515 §5.2: the signature must be validated over the header and payload; a changed payload must fail.",
                "Verify the signature before reading any claim; never decode without verifying.",
            ),
            Self::ForbiddenNot403 => (
                "A known persona outside `allow` got 401",
                "RFC 9110 §15.5.4: valid credentials that lack permission call for 403, so the client stops retrying. §15.5.2 permits 401 here, which is why this is only a warning: clients will re-authenticate in a loop.",
                "Answer 403 once the identity is established; keep 401 for missing or failed authentication.",
            ),
            Self::AccessControlBypass => (
                "A persona that must be refused got a 2xx",
                "OWASP ASVS V4.1: access control must deny by default and be enforced on every request (broken access control, OWASP Top 10 A01).",
                "Enforce the permission check on this endpoint for every method; deny by default.",
            ),
            Self::AllowedRefused => (
                "A persona in `allow` was refused",
                "The spec says this persona must get through; a 401/403 means the spec or the access rules are wrong.",
                "Fix the access rule, or the persona's credentials, or the `allow` list.",
            ),
            Self::ChallengeOn403 => (
                "403 with a challenge",
                "RFC 9110 §15.5.4: re-authenticating will not help after a 403, so a challenge misleads the client; RFC 6750 §3.1 only uses `error=\"insufficient_scope\"` with 403.",
                "Drop `WWW-Authenticate` from 403 responses, except a Bearer `insufficient_scope` challenge.",
            ),
            Self::PreflightChallenged => (
                "CORS preflight refused with 401/403",
                "Fetch standard (CORS protocol): a preflight never carries credentials, so a protected endpoint must answer it without authentication.",
                "Answer `OPTIONS` with `Access-Control-Request-Method` before the authentication step.",
            ),
            Self::ExistenceLeak => (
                "403 for an existing resource, 404 for a missing sibling",
                "RFC 9110 §15.5.4: a server that wishes to hide a forbidden resource MAY answer 404; answering 403 and 404 differently tells an outsider which resources exist.",
                "If existence is sensitive, answer forbidden and missing resources alike (404, or 403 for both).",
            ),
            Self::RedirectForApi => (
                "A redirect to a login page for an API client",
                "RFC 9110 §15.5.2: an API client asking for `application/json` needs 401 with a challenge; a 302/303 to an HTML login page breaks it (and a 403 turned into a sign-in redirect loops).",
                "Redirect only when `Accept` prefers `text/html`; answer 401/403 otherwise.",
            ),
            Self::NoThrottling => (
                "Repeated failed authentications were never throttled",
                "OWASP ASVS V2.2.1: anti-automation against credential stuffing and brute force; RFC 6585 §4 gives 429 with `Retry-After`.",
                "Count failed attempts per client and per account; answer 429 with `Retry-After` past a limit.",
            ),
            Self::EndpointMissing => (
                "An endpoint that must answer was not found",
                "A persona in `allow` (or anyone, on a public endpoint) got 404, 405, 410 or a permanent redirect: the method and path of the spec are not an endpoint of the target, so every other answer for it proves nothing.",
                "Fix the path, method or base URL in the probe file (or the OpenAPI document).",
            ),
            Self::ResourceNotFound => (
                "A persona in `allow` was let through to a resource that does not exist",
                "On a path where other personas were refused (401/403), the persona in `allow` got 404 or 410: the path is guarded, so the request was authenticated and let through, and the answer is about the resource its path names (RFC 9110 §15.5.5). That is correct for a missing resource, but access to an existing one was not shown; on a server that authenticates every path first, it can also be a misspelled path.",
                "Give the path (or the OpenAPI parameter's `example`) a resource that exists, or check the path's spelling.",
            ),
            Self::ServerError => (
                "A 5xx where the request should have been answered",
                "RFC 9110 §15.6: 5xx means the server failed; an authorization layer that fails instead of deciding can neither be trusted to allow nor to refuse.",
                "Find the error in the server's log (the request is in the evidence) and handle it.",
            ),
            Self::InvalidTokenNoError => (
                "A refused Bearer token without `error=\"invalid_token\"`",
                "RFC 6750 §3.1: when the access token is expired, revoked, malformed or invalid, the resource server SHOULD answer 401 with `error=\"invalid_token\"`, so the client knows to get a new token.",
                "Add `error=\"invalid_token\"` (and an `error_description`) to the Bearer challenge of a 401 for a bad token.",
            ),
            Self::InternalsLeaked => (
                "An answer shows internals: a stack trace or a library's error",
                "OWASP ASVS V7.4.1: error messages must not carry stack traces, class names or library text; they tell an attacker which library and version to aim at (CWE-209).",
                "Answer with a generic problem body (RFC 9457) and log the details server-side with a request id.",
            ),
            Self::VersionDisclosed => (
                "A product version in `Server`, `X-Powered-By` or an error page",
                "RFC 9110 §10.2.4: an origin server SHOULD NOT generate a `Server` field with needlessly fine-grained detail, which makes known flaws easier to target.",
                "Drop the version (nginx `server_tokens off;`, Apache `ServerTokens Prod`, remove `X-Powered-By`).",
            ),
        };
        Description { title, reason, fix }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let mut ids: Vec<&str> = Check::ALL.iter().map(|c| c.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Check::ALL.len());
        assert!(ids.iter().all(|i| {
            i.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }));
    }

    #[test]
    fn critical_checks_fail_info_does_not() {
        assert!(Check::AccessControlBypass.severity().fails());
        assert!(!Check::ExistenceLeak.severity().fails());
        assert!(!Check::ForbiddenNot403.severity().fails());
    }
}
