//! Prepared refusals: the answer to a refusal that carries no facts of its own (a missing
//! credential, a revoked token, a `deny` route …) is the same on a route for every request
//! but for two members of its problem body, `timestamp` and `request_id`. It is rendered
//! once per route through core's one table ([`gatehouse_core::render`]), and each request
//! then copies it with those two values spliced in, instead of rendering the challenges, the
//! JSON body and parsing the header names again.
//!
//! A template is only used when it provably reproduces the table: it is built from one
//! rendering and checked against a second rendering with another request id, time and
//! request target (see [`Template::build`]); anything that varies otherwise (a Digest
//! challenge's fresh nonce, a member added to the table later) makes the slot fall back to
//! rendering every time. HTML pages (they carry the request target) are never prepared.

use std::sync::OnceLock;

use axum::body::Body;
use gatehouse_core::deny::Deny;
use gatehouse_core::render::{Rendered, rfc3339};
use http::{HeaderMap, Response, StatusCode};

use crate::rendered::{RenderArgs, rendered_headers};

/// The slot of a refusal that carries no facts of its own (its table entry's `fixed`).
fn kind(deny: &Deny) -> Option<usize> {
    deny.entry().fixed.map(usize::from)
}
const KINDS: usize = gatehouse_core::deny::FIXED;

/// One of each refusal [`kind`] prepares.
pub const PREPARED_KINDS: [Deny; KINDS] = [
    Deny::ForbiddenPath,
    Deny::IpBlocked,
    Deny::MissingCredentials,
    Deny::TokenRevoked,
    Deny::InvalidCredentials,
    Deny::TenantMismatch,
    Deny::NotOwner,
    Deny::ReadOnly,
    Deny::UpstreamUnavailable,
    Deny::UpstreamTimeout,
    Deny::PayloadTooLarge,
    Deny::NotFound,
    Deny::CsrfRejected,
];

/// The prepared refusals of one runtime (routes change with the config, so it lives
/// there): one slot per route (and `[defaults]`), kind and `hidden`, filled on first use.
pub struct Prepared {
    slots: Box<[OnceLock<Option<Template>>]>,
}

impl Prepared {
    pub fn new(routes: usize) -> Self {
        Self {
            slots: (0..(routes + 1) * KINDS * 2)
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    /// The answer `render` (the rendering of `deny`, `hidden` on the runtime's routes) gives
    /// for `args`, when it can be prepared; `None`: render it (HTML pages and sign-in form
    /// posts never are).
    pub fn answer(
        &self,
        args: &RenderArgs<'_>,
        deny: &Deny,
        hidden: bool,
        render: impl Fn(&RenderArgs<'_>) -> Rendered,
    ) -> Option<Response<Body>> {
        if args.html || args.form_post || args.grpc {
            return None;
        }
        let k = kind(deny)?;
        let r = args.route.map_or(0, |i| i + 1);
        let slot = self.slots.get((r * KINDS + k) * 2 + usize::from(hidden))?;
        let template = slot
            .get_or_init(|| Template::build(&render, args.route))
            .as_ref()?;
        template.fill(args.request_id, args.now)
    }
}

/// One prepared answer: status and headers as sent, and the body in pieces around the two
/// per-request members.
struct Template {
    status: StatusCode,
    headers: HeaderMap,
    /// Body text, split where the values go.
    parts: [Box<str>; 3],
    /// The request id comes before the timestamp in the body.
    id_first: bool,
}

/// Values of the first rendering; each must occur exactly once in the body.
const PROBE_ID: &str = "0prepared0refusal0probe0a";
const PROBE_NOW: i64 = 1_000_000_007;
/// Values of the checking rendering.
const CHECK_ID: &str = "1prepared1refusal1probe1b";
const CHECK_NOW: i64 = 1_999_999_993;

impl Template {
    fn build(render: &impl Fn(&RenderArgs<'_>) -> Rendered, route: Option<usize>) -> Option<Self> {
        let render = |request_id: &str, now: i64, return_to: &str| {
            render(&RenderArgs {
                route,
                html: false,
                form_post: false,
                grpc: false,
                request_id,
                now,
                return_to,
            })
        };
        let probe = render(PROBE_ID, PROBE_NOW, "/");
        let check = render(CHECK_ID, CHECK_NOW, "/prepared/check?x=1");
        let template = Self::from_rendered(probe)?;
        // The second rendering must be exactly the template filled with its values.
        let expected = template.fill_body(CHECK_ID, &rfc3339(CHECK_NOW));
        let same_headers =
            rendered_headers(&check).is_some_and(|h| headers_equal(&h, &template.headers));
        (check.body == expected
            && same_headers
            && StatusCode::from_u16(check.status).ok() == Some(template.status))
        .then_some(template)
    }

    fn from_rendered(r: Rendered) -> Option<Self> {
        let headers = rendered_headers(&r)?;
        let status = StatusCode::from_u16(r.status).ok()?;
        let stamp = rfc3339(PROBE_NOW);
        let id_at = unique(&r.body, PROBE_ID)?;
        let now_at = unique(&r.body, &stamp)?;
        let ((a, a_len), (b, b_len)) = if id_at < now_at {
            ((id_at, PROBE_ID.len()), (now_at, stamp.len()))
        } else {
            ((now_at, stamp.len()), (id_at, PROBE_ID.len()))
        };
        if a + a_len > b {
            return None;
        }
        let body = &r.body;
        Some(Self {
            status,
            headers,
            parts: [
                body[..a].into(),
                body[a + a_len..b].into(),
                body[b + b_len..].into(),
            ],
            id_first: id_at < now_at,
        })
    }

    fn fill_body(&self, request_id: &str, stamp: &str) -> String {
        let (first, second) = if self.id_first {
            (request_id, stamp)
        } else {
            (stamp, request_id)
        };
        let [a, b, c] = &self.parts;
        let mut body =
            String::with_capacity(a.len() + b.len() + c.len() + first.len() + second.len());
        for piece in [&**a, first, &**b, second, &**c] {
            body.push_str(piece);
        }
        body
    }

    /// The answer for one request. `None` for a request id that JSON would escape (ours
    /// never are), so that the body is still exactly what the table writes.
    fn fill(&self, request_id: &str, now: i64) -> Option<Response<Body>> {
        if !request_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let body = self.fill_body(request_id, &rfc3339(now));
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers.clone();
        Some(resp)
    }
}

/// Where `needle` occurs in `hay`, if exactly once.
fn unique(hay: &str, needle: &str) -> Option<usize> {
    let at = hay.find(needle)?;
    hay[at + needle.len()..]
        .find(needle)
        .is_none()
        .then_some(at)
}

/// Same names with the same values in the same order.
fn headers_equal(a: &HeaderMap, b: &HeaderMap) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_finds_single_occurrences_only() {
        assert_eq!(unique("a-x-b", "x"), Some(2));
        assert_eq!(unique("x-x", "x"), None);
        assert_eq!(unique("abc", "x"), None);
    }

    #[test]
    fn each_prepared_kind_has_its_own_slot() {
        // A kind with facts of its own would answer every request with the first one's.
        let mut seen = [false; KINDS];
        for d in &PREPARED_KINDS {
            let k = kind(d).unwrap();
            assert!(!seen[k], "{d:?} shares slot {k}");
            seen[k] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(kind(&Deny::TooManyAttempts { retry_after: 3 }), None);
        assert_eq!(kind(&Deny::InvalidToken { detail: "x".into() }), None);
    }
}
