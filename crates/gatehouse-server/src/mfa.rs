//! The second step of a login with MFA (RFC 6238 TOTP): the `mfa_token` that carries the
//! half-finished login, and its completion with a code. A time-step is accepted once per
//! user (RFC 6238 §5.2, recorded atomically in the store) and an `mfa_token` allows
//! [`MFA_MAX_ATTEMPTS`] wrong codes before it is spent. The endpoints that hand out and take
//! these tokens are `auth`'s (`/auth/login`, `/auth/mfa`).

use std::collections::HashMap;
use std::sync::Mutex;

use gatehouse_core::deny::Deny;
use gatehouse_core::sealed::{field, open, seal, unfield};
use gatehouse_core::totp::Totp;
use gatehouse_store::{Store, User};

use crate::keys::Secrets;

/// Wrong TOTP codes one `mfa_token` may try before it is spent.
pub const MFA_MAX_ATTEMPTS: u8 = 5;
/// Purposes of keys derived from the master secret.
pub const KEY_MFA_TOKEN: &str = "gatehouse/mfa-token/v1";
pub const KEY_MFA_SECRET: &str = "gatehouse/mfa-secret-at-rest/v1";

/// Wrong-code counts per `mfa_token` nonce (bounded: entries expire with their token).
#[derive(Default)]
pub struct Attempts {
    map: Mutex<HashMap<String, (u8, i64)>>,
}

impl Attempts {
    /// Counts one attempt; false when the token has used up its attempts.
    fn try_once(&self, nonce: &str, expires_at: i64, now: i64) -> bool {
        let mut map = match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if map.len() > 10_000 {
            map.retain(|_, (_, exp)| *exp > now);
        }
        let entry = map.entry(nonce.to_owned()).or_insert((0, expires_at));
        if entry.0 >= MFA_MAX_ATTEMPTS {
            return false;
        }
        entry.0 += 1;
        true
    }

    fn spend(&self, nonce: &str, expires_at: i64) {
        if let Ok(mut map) = self.map.lock() {
            map.insert(nonce.to_owned(), (MFA_MAX_ATTEMPTS, expires_at));
        }
    }
}

/// `v1.<user>.<expires_at>.<nonce>` sealed with the MFA-token key.
pub fn mfa_token(secrets: &Secrets, user: &str, expires_at: i64) -> String {
    use base64::Engine as _;
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(crate::random::random_bytes::<12>());
    let payload = format!("v1.{}.{expires_at}.{nonce}", field(user));
    seal(&secrets.derive(KEY_MFA_TOKEN), &payload)
}

/// Decrypts a user's TOTP secret (AES-256-GCM at rest, the user name as associated data).
pub fn totp_secret(secrets: &Secrets, user: &User) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let sealed = user.mfa_secret.as_ref()?;
    gatehouse_core::secretbox::open(
        &secrets.derive(KEY_MFA_SECRET),
        sealed,
        user.name.as_bytes(),
    )
    .ok()
}

/// Encrypts a TOTP secret for the store.
pub fn seal_totp_secret(secrets: &Secrets, user: &str, secret: &[u8]) -> Result<Vec<u8>, String> {
    let nonce = crate::random::random_bytes::<12>();
    gatehouse_core::secretbox::seal(
        &secrets.derive(KEY_MFA_SECRET),
        &nonce,
        secret,
        user.as_bytes(),
    )
    .map_err(|e| e.to_string())
}

/// Checks the token and the code (the token's wrong codes counted in `attempts`, the
/// user's TOTP secret and used time-steps in `store`); the user on success.
pub async fn complete(
    secrets: &Secrets,
    attempts: &Attempts,
    store: &dyn Store,
    token: &str,
    code: &str,
    now: i64,
) -> Result<User, Deny> {
    let bad_token = || Deny::InvalidToken {
        detail: "mfa token is not valid or has expired".to_owned(),
    };
    let key = secrets.derive(KEY_MFA_TOKEN);
    let payload = open(&key, token).ok_or_else(bad_token)?;
    let mut parts = payload.split('.');
    let (Some("v1"), Some(user), Some(exp), Some(nonce), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad_token());
    };
    let exp: i64 = exp.parse().map_err(|_| bad_token())?;
    let user = unfield(user).ok_or_else(bad_token)?;
    if exp <= now || !attempts.try_once(nonce, exp, now) {
        return Err(bad_token());
    }
    let unavailable = |e: gatehouse_store::StoreError| {
        tracing::error!(error = %e, "store unavailable during MFA");
        Deny::AuthUnavailable {
            retry_after: crate::unavailable::RETRY_AFTER_UNAVAILABLE,
        }
    };
    let user = store
        .get_user(&user)
        .await
        .map_err(unavailable)?
        .ok_or(Deny::InvalidCredentials)?;
    let secret = totp_secret(secrets, &user).ok_or(Deny::InvalidCredentials)?;
    let step = Totp::new(&secret)
        .verify(code, now, 1)
        .ok_or(Deny::InvalidCredentials)?;
    // A time-step is good once: a code seen by a shoulder-surfer or a proxy log cannot be
    // replayed (RFC 6238 §5.2).
    if !store
        .accept_totp_step(&user.name, step)
        .await
        .map_err(unavailable)?
    {
        return Err(Deny::InvalidCredentials);
    }
    attempts.spend(nonce, exp);
    if let gatehouse_core::AccountState::Suspended { at, reason } = &user.status {
        return Err(Deny::AccountSuspended {
            suspended_at: *at,
            reason: reason.clone(),
        });
    }
    Ok(user)
}
