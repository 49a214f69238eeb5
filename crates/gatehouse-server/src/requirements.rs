//! Row 25's facts (issue 13): what the requirements step of core's pipeline reads beyond the
//! principal — a local user's current attributes (the set every node refreshes each second
//! and updates on a cluster event, like suspensions) and, for `when` conditions, the
//! request's headers without its credentials.

use gatehouse_core::Scheme;
use gatehouse_core::pipeline::RequirementFacts;
use gatehouse_core::principal::Principal;
use http::HeaderMap;

use crate::suspended::SuspendedUsers;

/// Headers a condition never sees: they carry credentials.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// Whether the principal is a local account (its attributes live in the store): every
/// scheme but Bearer, and our own tokens.
pub fn is_local(p: &Principal) -> bool {
    p.scheme != Scheme::Bearer || p.issuer.as_deref() == Some(crate::tokens::OWN_ISSUER)
}

/// Answers core's `Need::Requirements`: local users' attributes come from `users` (the set
/// kept with the suspensions).
pub fn requirement_facts(
    users: &SuspendedUsers,
    principal: Option<&Principal>,
    conditions: bool,
    headers: &HeaderMap,
) -> RequirementFacts {
    let attributes = principal.filter(|p| is_local(p)).map(|p| {
        users
            .attributes(&p.subject)
            .unwrap_or_else(gatehouse_core::attributes::empty)
    });
    let headers = if conditions {
        headers
            .iter()
            .filter(|(k, _)| !SECRET_HEADERS.contains(&k.as_str()))
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect()
    } else {
        Vec::new()
    };
    RequirementFacts {
        attributes,
        headers,
        country: None,
    }
}
