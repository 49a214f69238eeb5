//! What verifying a credential proved, shared: the verified-credential cache hands the same
//! [`Identity`] to every request of a token (a reference count, not a copy of the principal's
//! strings), and its `X-Gatehouse-*` identity header values are rendered once, on the first
//! request that needs them, then cloned into each forwarded request or forward-auth answer.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use gatehouse_core::principal::{AccountState, Principal};

use crate::proxy::IdentityHeaders;

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

    /// The identity header values (proxy.rs `identity_headers`), rendered on first use.
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
        crate::proxy::identity_headers(&mut h, v);
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
