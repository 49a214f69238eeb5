//! What verifying a credential proved, shared: the verified-credential cache hands the same
//! [`Identity`] to every request of a token (a reference count, not a copy of the principal's
//! strings), and its `X-Gatehouse-*` identity header values are rendered once, on the first
//! request that needs them, then cloned into each forwarded request or forward-auth answer.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use gatehouse_core::principal::{AccountState, Principal};

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// A verified principal, shared between the requests of one credential.
pub type Identity = Arc<Verified>;

/// A verified principal and, once rendered, its identity header values.
pub struct Verified {
    principal: Principal,
    headers: OnceLock<IdentityHeaders>,
}

impl Verified {
    /// Wraps what a verification proved.
    pub fn shared(principal: Principal) -> Identity {
        Arc::new(Self {
            principal,
            headers: OnceLock::new(),
        })
    }

    /// Wraps a principal rebuilt from a cache record, with header values already rendered.
    pub fn with_headers(principal: Principal, headers: IdentityHeaders) -> Identity {
        Arc::new(Self {
            principal,
            headers: OnceLock::from(headers),
        })
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The identity header values ([`identity_headers`]), rendered on first use.
    pub fn identity_headers(&self) -> &IdentityHeaders {
        self.headers
            .get_or_init(|| IdentityHeaders::render(&self.principal))
    }

    /// The same principal in account state `state` (row 13: a suspension reaches cached
    /// tokens at once). The identity headers do not name the account state, so values
    /// already rendered are kept.
    pub fn with_account(self: &Arc<Self>, state: AccountState) -> Identity {
        if self.principal.account == state {
            return Arc::clone(self);
        }
        let headers = OnceLock::new();
        if let Some(h) = self.headers.get() {
            let _ = headers.set(h.clone());
        }
        Arc::new(Self {
            principal: Principal {
                account: state,
                ..self.principal.clone()
            },
            headers,
        })
    }
}

impl Deref for Verified {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl gatehouse_core::pipeline::Proven for Verified {
    fn principal(&self) -> &Principal {
        &self.principal
    }
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.principal.fmt(f)
    }
}

const X_GATEHOUSE_USER: HeaderName = HeaderName::from_static("x-gatehouse-user");
const X_GATEHOUSE_ROLES: HeaderName = HeaderName::from_static("x-gatehouse-roles");
const X_GATEHOUSE_TENANT: HeaderName = HeaderName::from_static("x-gatehouse-tenant");
const X_GATEHOUSE_SCOPES: HeaderName = HeaderName::from_static("x-gatehouse-scopes");
const X_GATEHOUSE_AUTH: HeaderName = HeaderName::from_static("x-gatehouse-auth");

/// The `X-Gatehouse-*` identity header values of a principal, rendered once (see
/// [`Verified`]): the subject, its roles joined by `,`, its tenant, its scopes joined by a
/// space and the scheme that proved it. A value a header cannot carry (a control character
/// in a name) is left out, as before; UTF-8 names are legal header bytes (obs-text).
#[derive(Clone)]
pub struct IdentityHeaders {
    user: Option<HeaderValue>,
    roles: Option<HeaderValue>,
    tenant: Option<HeaderValue>,
    scopes: Option<HeaderValue>,
    auth: HeaderValue,
}

impl IdentityHeaders {
    pub fn render(p: &Principal) -> Self {
        // from_bytes, not from_str: from_str would drop UTF-8 names.
        let value = |v: &str| HeaderValue::from_bytes(v.as_bytes()).ok();
        let owned = |v: String| HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).ok();
        Self {
            user: value(&p.subject),
            roles: owned(p.roles.join(",")),
            tenant: p.tenant.as_deref().and_then(value),
            scopes: owned(p.scopes.join(" ")),
            auth: HeaderValue::from_static(p.scheme.as_str()),
        }
    }

    /// The same values for another subject with the same grants (the bearer cache keeps one
    /// rendering per grant set): the shared values are reference-counted clones.
    pub fn for_subject(&self, subject: &str) -> Self {
        Self {
            user: HeaderValue::from_bytes(subject.as_bytes()).ok(),
            ..self.clone()
        }
    }
}

/// Writes the `X-Gatehouse-*` identity headers (same in proxy and forward-auth modes): the
/// values rendered once per verified principal, each a reference-counted clone.
pub fn identity_headers(headers: &mut HeaderMap, v: &Verified) {
    let h = v.identity_headers();
    for (name, value) in [
        (X_GATEHOUSE_USER, &h.user),
        (X_GATEHOUSE_ROLES, &h.roles),
        (X_GATEHOUSE_TENANT, &h.tenant),
        (X_GATEHOUSE_SCOPES, &h.scopes),
    ] {
        if let Some(value) = value {
            headers.insert(name, value.clone());
        }
    }
    headers.insert(X_GATEHOUSE_AUTH, h.auth.clone());
}

#[cfg(test)]
mod tests {
    use gatehouse_core::config::Scheme;
    use http::HeaderMap;

    use super::*;

    fn alice() -> Principal {
        let mut p = Principal::new("alice", Scheme::Bearer);
        p.roles = vec!["admin".into(), "ops".into()];
        p.scopes = vec!["a:read".into(), "b:write".into()];
        p.tenant = Some("acme".into());
        p
    }

    fn written(v: &Verified) -> HeaderMap {
        let mut h = HeaderMap::new();
        identity_headers(&mut h, v);
        h
    }

    #[test]
    fn headers_are_rendered_once_and_survive_a_changed_account() {
        let v = Verified::shared(alice());
        let first = written(&v);
        assert_eq!(first["x-gatehouse-user"], "alice");
        assert_eq!(first["x-gatehouse-roles"], "admin,ops");
        assert_eq!(first["x-gatehouse-scopes"], "a:read b:write");
        assert_eq!(first["x-gatehouse-tenant"], "acme");
        assert_eq!(first["x-gatehouse-auth"], "bearer");
        assert_eq!(written(&v), first, "a second request gets the same values");
        let suspended = AccountState::Suspended {
            at: 1,
            reason: "audit".into(),
        };
        let s = v.with_account(suspended.clone());
        assert_eq!(s.account, suspended);
        assert_eq!(
            v.account,
            AccountState::Active,
            "the shared one is unchanged"
        );
        assert_eq!(written(&s), first);
        assert!(Arc::ptr_eq(&v.with_account(AccountState::Active), &v));
    }
}
