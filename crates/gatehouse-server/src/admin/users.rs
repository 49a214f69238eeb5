//! The JSON shapes of users, API keys and sessions in the admin API, and the user-name rule
//! shared with the CLI.

use gatehouse_core::render::rfc3339;
use gatehouse_store::{AccountStatus, ApiKey, Session, User};
use serde_json::{Value, json};

/// A user name: 1–128 characters, no `:` (Basic's separator, RFC 7617 §2) and no control
/// characters.
pub fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 128
        || name.contains(':')
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "user name `{name}` is not valid: 1–128 characters, no `:` and no control characters"
        ));
    }
    Ok(())
}

/// A user, without any secret: whether a password and MFA are set, not what they are.
pub fn user_json(u: &User) -> Value {
    let (status, at, reason) = match &u.status {
        AccountStatus::Active => ("active", None, None),
        AccountStatus::Suspended { at, reason } => ("suspended", Some(rfc3339(*at)), Some(reason)),
    };
    json!({
        "name": u.name,
        "roles": u.roles,
        "tenant": u.tenant,
        "status": status,
        "suspended_at": at,
        "suspend_reason": reason,
        "created_at": rfc3339(u.created_at),
        "password": u.password_hash.is_some(),
        "mfa": u.mfa_secret.is_some(),
        "attributes": u.attributes,
    })
}

/// An API key as stored: never its hash.
pub fn key_json(k: &ApiKey, now: i64) -> Value {
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": k.id,
        "prefix": k.prefix,
        "user": k.user,
        "scopes": k.scopes,
        "read_only": k.read_only,
        "label": k.label,
        "state": state,
        "created_at": rfc3339(k.created_at),
        "expires_at": k.expires_at.map(rfc3339),
        "revoked_at": k.revoked_at.map(rfc3339),
        "last_used_at": k.last_used_at.map(rfc3339),
    })
}

pub fn session_json(s: &Session, now: i64) -> Value {
    let state = match (s.revoked_at, s.expires_at <= now) {
        (Some(_), _) => "revoked",
        (None, true) => "expired",
        (None, false) => "active",
    };
    json!({
        "id": s.id,
        "user": s.user,
        "acr": s.acr,
        "amr": s.amr,
        "state": state,
        "auth_time": rfc3339(s.auth_time),
        "created_at": rfc3339(s.created_at),
        "expires_at": rfc3339(s.expires_at),
        "revoked_at": s.revoked_at.map(rfc3339),
        "revoke_reason": s.revoke_reason,
    })
}
