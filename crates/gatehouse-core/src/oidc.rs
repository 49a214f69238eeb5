//! OpenID Connect sign-in, the pure parts: the PKCE challenge, the ID token checks of
//! OpenID Connect Core §3.1.3.7, the claim mapping of a `[[login_providers]]` entry, who is
//! admitted, and the Logout Token checks of OpenID Connect Back-Channel Logout §2.6. The
//! edge does the discovery, the redirects and the code exchange.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::attributes::{Attributes, map_claims};
use crate::config::LoginProviderConfig;
use crate::token::{JwsError, KeySet, claim_steps};

/// The PKCE `code_challenge` for `verifier` with method `S256` (RFC 7636 §4.2):
/// `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `application/x-www-form-urlencoded` serialization of one value (WHATWG URL §5.2): ASCII
/// alphanumerics and `*-._` as they are, space as `+`, every other byte as `%XX`. Used for
/// query strings of redirects and for form bodies sent to the provider.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
    out
}

/// Why an ID token or a logout token was not accepted. The texts are safe to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(&'static str),
    /// The `kid` is not in the provider's key set: refetch its JWKS (rate-limited) and retry.
    #[error("the token's key is not known")]
    UnknownKid,
}

fn invalid(s: &'static str) -> TokenError {
    TokenError::Invalid(s)
}

/// What the ID token check needs besides the keys.
pub struct IdTokenCheck<'a> {
    pub provider: &'a LoginProviderConfig,
    /// The `nonce` sent in the authentication request.
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// A verified ID token, mapped by the provider's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// `sub` (unique at the issuer, OIDC Core §2).
    pub subject: String,
    /// The value of `username_claim`, if present.
    pub username: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    /// `Some` when the provider maps roles (`roles_claim`): the account follows them.
    pub roles: Option<Vec<String>>,
    /// `Some` when the provider maps a tenant (`tenant_claim`) and the claim is present.
    pub tenant: Option<String>,
    pub groups: Vec<String>,
    /// The provider's `attributes` mapping read from the ID token (issue 13): the local
    /// account's attributes of those names follow it.
    pub attributes: Attributes,
    pub acr: Option<String>,
    /// Authentication methods (RFC 8176 values, OIDC Core §2), carried into the session.
    pub amr: Vec<String>,
    pub auth_time: Option<i64>,
    /// The provider's session id (OpenID Connect Back-Channel Logout §2.1), if sent.
    pub sid: Option<String>,
}

/// The claims set of a JWS whose signature `keys` accept with one of `algorithms`: the
/// header's `alg` must be listed and the key found for `kid` bound to it (RFC 8725 §3.1).
fn verified_claims(
    keys: &KeySet,
    token: &str,
    algorithms: &[Algorithm],
) -> Result<serde_json::Map<String, Value>, TokenError> {
    let payload = keys.verify_jws(token, algorithms).map_err(|e| match e {
        JwsError::UnknownKid => TokenError::UnknownKid,
        JwsError::Invalid { detail } => TokenError::Invalid(detail),
    })?;
    match serde_json::from_slice::<Value>(&payload) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid("token claims are malformed")),
    }
}

/// The value at a claim path (`realm_access.roles`, or one URI-named claim).
pub fn claim_at<'v>(claims: &'v serde_json::Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut steps = claim_steps(path).into_iter();
    let mut v = claims.get(steps.next()?)?;
    for step in steps {
        v = v.as_object()?.get(step)?;
    }
    (!v.is_null()).then_some(v)
}

/// An array of strings, or one space-separated string (as `[[issuers]]` reads roles).
fn words(v: Option<&Value>) -> Result<Vec<String>, TokenError> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_ascii_whitespace().map(str::to_owned).collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(invalid("token claims are malformed")),
        Some(_) => Err(invalid("token claims are malformed")),
    }
}

fn string(v: Option<&Value>) -> Result<Option<String>, TokenError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        // A number is a fine tenant or user id; other shapes are not.
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(invalid("token claims are malformed")),
    }
}

/// A NumericDate (RFC 7519 §2), floored.
fn number(claims: &serde_json::Map<String, Value>, name: &str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(invalid("token claims are malformed")),
        Some(_) => Err(invalid("token claims are malformed")),
    }
}

/// `iss` exact, `aud` containing `client_id`, `azp` (when present, or when there are several
/// audiences) equal to `client_id`, and `iat`/`exp` against `now` with the provider's leeway.
fn check_common(
    claims: &serde_json::Map<String, Value>,
    provider: &LoginProviderConfig,
    now: i64,
) -> Result<(), TokenError> {
    let leeway = i64::try_from(provider.leeway.as_secs()).unwrap_or(0);
    // OIDC Core §3.1.3.7 step 2: `iss` MUST exactly match the discovered issuer.
    if claims.get("iss").and_then(Value::as_str) != Some(provider.issuer.as_str()) {
        return Err(invalid("token issuer is not the provider"));
    }
    // Step 3: `aud` MUST contain our `client_id`.
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !auds.contains(&provider.client_id.as_str()) {
        return Err(invalid("audience does not match"));
    }
    // Steps 4 and 5: with several audiences `azp` should be present; when present it MUST
    // be our `client_id`.
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != provider.client_id => {
            return Err(invalid("authorized party does not match"));
        }
        None if auds.len() > 1 => return Err(invalid("several audiences and no authorized party")),
        _ => {}
    }
    // Step 9: the current time MUST be before `exp`.
    let exp = number(claims, "exp")?.ok_or(invalid("token has no expiry"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(invalid("token expired"));
    }
    // Step 10: `iat` is required; one from the future is refused.
    let iat = number(claims, "iat")?.ok_or(invalid("token has no issue time"))?;
    if iat > now.saturating_add(leeway) {
        return Err(invalid("token is issued in the future"));
    }
    Ok(())
}

/// Verifies an ID token per OpenID Connect Core §3.1.3.7 and maps its claims.
pub fn verify_id_token(
    keys: &KeySet,
    token: &str,
    check: &IdTokenCheck<'_>,
) -> Result<SignedIn, TokenError> {
    let p = check.provider;
    // Steps 6 to 8: the signature with the provider's keys and only the configured algorithms.
    let claims = verified_claims(keys, token, &p.algorithms)?;
    check_common(&claims, p, check.now)?;
    // Step 11: the `nonce` MUST be the one we sent (constant time: it is a secret until now).
    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if nonce.is_empty() || !crate::secret::ct_eq(nonce.as_bytes(), check.nonce.as_bytes()) {
        return Err(invalid("nonce does not match"));
    }
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid("token has no subject")),
    };
    let email = string(claims.get("email"))?;
    // Some providers send `"true"` as a string (AWS Cognito, older Azure AD); only `true` counts.
    let email_verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)));
    let roles = match &p.roles_claim {
        Some(path) => Some(words(claim_at(&claims, path))?),
        None => None,
    };
    let tenant = match &p.tenant_claim {
        Some(path) => string(claim_at(&claims, path))?,
        None => None,
    };
    let username = string(claim_at(&claims, &p.username_claim))?;
    let groups = words(claim_at(&claims, &p.groups_claim))?;
    let acr = string(claims.get("acr"))?;
    let amr = words(claims.get("amr"))?;
    let auth_time = number(&claims, "auth_time")?;
    let sid = string(claims.get("sid"))?;
    let attributes = if p.attributes.is_empty() {
        Attributes::new()
    } else {
        map_claims(&Value::Object(claims), &p.attributes)
    };
    Ok(SignedIn {
        username,
        subject,
        email,
        email_verified,
        roles,
        tenant,
        groups,
        attributes,
        acr,
        amr,
        auth_time,
        sid,
    })
}

/// `amr` values (RFC 8176 §2) that mean more than one factor was used.
const MULTI_FACTOR_AMR: &[&str] = &["mfa", "otp", "hwk", "swk", "sc", "sms", "fido"];

/// Whether the provider says the user signed in with more than one factor: its `acr` is
/// the provider's `mfa_acr`, or its `amr` names a second factor.
pub fn is_multi_factor(p: &LoginProviderConfig, s: &SignedIn) -> bool {
    s.acr.as_deref() == Some(p.mfa_acr.as_str())
        || s.amr.iter().any(|m| MULTI_FACTOR_AMR.contains(&m.as_str()))
}

/// Whether a sign-in is admitted, and under which local user name. `Err` is the reason to
/// show (row-less 403 `access_denied`).
pub fn admit(p: &LoginProviderConfig, s: &SignedIn) -> Result<String, String> {
    use crate::config::UserPolicy;
    let verified_email = s
        .email
        .as_deref()
        .filter(|_| s.email_verified)
        .map(str::to_ascii_lowercase);
    if !p.allowed_domains.is_empty() {
        // Only a verified address proves membership of a domain.
        let domain = verified_email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d);
        match domain {
            Some(d) if p.allowed_domains.iter().any(|a| a == d) => {}
            Some(d) => return Err(format!("the email domain `{d}` is not allowed here")),
            None => return Err("the provider did not send a verified email address".into()),
        }
    }
    if !p.required_groups.is_empty() && !s.groups.iter().any(|g| p.required_groups.contains(g)) {
        return Err("you are not in a group that may sign in here".into());
    }
    let name = match p.users {
        UserPolicy::Link => verified_email
            .ok_or_else(|| "the provider did not send a verified email address".to_owned())?,
        UserPolicy::Provision | UserPolicy::Existing => {
            let name = s
                .username
                .clone()
                .ok_or_else(|| format!("the provider did not send `{}`", p.username_claim))?;
            // An email names a user only when the provider verified it (else anyone could
            // register `ceo@example.com` at a provider that does not check, and be the CEO).
            if p.username_claim == "email" {
                if !s.email_verified {
                    return Err("the provider did not send a verified email address".into());
                }
                name.to_ascii_lowercase()
            } else {
                name
            }
        }
    };
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err("the provider sent an unusable user name".into());
    }
    Ok(name)
}

/// The OpenID Connect Back-Channel Logout event (§2.4).
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Who a verified logout token signs out: a provider session, a subject, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    pub subject: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
    pub exp: i64,
}

/// Verifies a Logout Token per OpenID Connect Back-Channel Logout 1.0 §2.6.
pub fn verify_logout_token(
    keys: &KeySet,
    token: &str,
    p: &LoginProviderConfig,
    now: i64,
) -> Result<LogoutToken, TokenError> {
    let claims = verified_claims(keys, token, &p.algorithms)?;
    check_common(&claims, p, now)?;
    // §2.4: `events` MUST hold the back-channel logout member, an object.
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(BACKCHANNEL_EVENT));
    if !matches!(event, Some(Value::Object(_))) {
        return Err(invalid("not a logout token"));
    }
    // §2.4: a logout token MUST NOT contain a `nonce` (so an ID token cannot pass for one).
    if claims.contains_key("nonce") {
        return Err(invalid("a logout token has no nonce"));
    }
    let subject = string(claims.get("sub"))?.filter(|s| !s.is_empty());
    let sid = string(claims.get("sid"))?.filter(|s| !s.is_empty());
    if subject.is_none() && sid.is_none() {
        return Err(invalid("a logout token names a subject or a session"));
    }
    let jti = string(claims.get("jti"))?
        .filter(|s| !s.is_empty())
        .ok_or(invalid("a logout token has a jti"))?;
    let exp = number(&claims, "exp")?.unwrap_or(now);
    Ok(LogoutToken {
        subject,
        sid,
        jti,
        exp,
    })
}

#[cfg(test)]
mod tests;
