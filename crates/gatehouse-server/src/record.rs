//! One answered request as the edge saw it: what observation (metrics, alerts, audit) and
//! the request's trace read.

use std::net::IpAddr;
use std::time::Duration;

use gatehouse_core::config::Scheme;
use gatehouse_core::deny::Deny;

/// How a request ended.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    /// Answered from a [`Deny`]; `hidden` when row 20 turned it into a 404.
    Refused { deny: &'a Deny, hidden: bool },
    /// Passed: `allowed`, `public`, `preflight`, or a token-service success
    /// (`signed_in`, `refreshed`, `signed_out`).
    Passed(&'static str),
}

/// One answered request, as the edge saw it. Borrowed: building it allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// Unix seconds.
    pub time: i64,
    pub request_id: &'a str,
    /// Route name; `None` for `[defaults]` (and requests refused before routing).
    pub route: Option<&'a str>,
    pub method: &'a str,
    /// Normalized path (the raw path when it could not be normalized); never the query.
    pub path: &'a str,
    pub client_ip: Option<IpAddr>,
    /// The proven subject, when verification succeeded.
    pub subject: Option<&'a str>,
    /// Scheme of the presented credential.
    pub scheme: Option<Scheme>,
    /// The status sent.
    pub status: u16,
    pub verdict: Verdict<'a>,
    /// Time from receiving the request to its decision.
    pub decision: Duration,
    /// Time the upstream took to answer with headers, when the request was forwarded.
    pub upstream: Option<Duration>,
}
