//! Bearer token verification (design §2 rows 8 and 9) and Gatehouse's own access tokens.
//!
//! [`TokenVerifier::verify`] takes a compact JWS and the current time and returns the
//! [`Principal`] or a [`VerifyError`]:
//!
//! 1. split and decode (RFC 7515 §5.2); read only `alg`, `kid`, `typ`, `crit` of the header;
//! 2. choose the issuer by the **unverified** `iss` claim (exact string match, RFC 7519
//!    §4.1.1); from here on only that issuer's algorithms and keys count;
//! 3. the header's `alg` must be one the issuer allows *and* the key found for `kid` must be of
//!    that algorithm (RFC 8725 §3.1): the token never chooses how it is checked;
//! 4. check the signature; a `kid` the issuer does not know is [`VerifyError::UnknownKid`] so the
//!    edge can refetch the JWKS (rate-limited) and retry;
//! 5. parse the claims once and check `aud`, the subject, `nbf`, `iat`, then `exp` with the
//!    issuer's leeway. [`VerifyError::Expired`] is only ever returned for a token whose
//!    signature and other claims are fine, so a client is told to refresh only when refreshing
//!    helps.
//!
//! Verification runs on aws-lc-rs keys parsed once per [`KeySet`] (no jsonwebtoken crypto
//! provider is needed for it); signing uses jsonwebtoken, and [`sign_access_token`] installs its
//! aws-lc provider itself.
//!
//! **Key rotation.** Each [`IssuerVerifier`] holds its [`KeySet`] behind an `RwLock<Arc<_>>`:
//! verification clones the `Arc` (one atomic increment) and [`IssuerVerifier::set_keys`]
//! swaps in a freshly fetched set while requests keep verifying, with no rebuild of the
//! [`TokenVerifier`].

mod b64;
mod claims;
mod jws;
mod keys;
mod sign;

use std::borrow::Cow;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::Algorithm;

use crate::config::{IssuerConfig, TokensConfig};
use crate::deny::Deny;
use crate::principal::Principal;
use crate::scheme::Scheme;
use claims::{ClaimTree, Target, Val};

pub use claims::claim_steps;
pub use jws::JwsError;
pub use keys::{KeyError, KeySet, SkippedKey};
pub use sign::{
    ACCESS_TOKEN_TYP, AccessClaims, SignError, ed25519_jwk, ed25519_public_jwk, jwks_json,
    sign_access_token,
};

/// The `name` of the issuer of Gatehouse's own tokens (`Principal::issuer`, audit, metrics).
pub const OWN_ISSUER_NAME: &str = "gatehouse";

/// The `detail` texts of [`VerifyError::Invalid`]: short, and safe to send to any client.
pub mod msg {
    pub const MALFORMED: &str = "token is malformed";
    pub const TOO_LONG: &str = "token is too long";
    pub const ALG_NOT_ALLOWED: &str = "algorithm is not allowed";
    pub const CRIT: &str = "token has a critical header parameter that is not understood";
    pub const BAD_SIGNATURE: &str = "signature does not match";
    pub const NO_KID: &str = "token has no key id and the issuer has several keys";
    pub const NO_ISSUER: &str = "token has no issuer";
    pub const ISSUER: &str = "token issuer is not accepted";
    pub const TYP: &str = "token type is not accepted";
    pub const CLAIMS: &str = "token claims are malformed";
    pub const AUDIENCE: &str = "audience does not match";
    pub const NO_SUBJECT: &str = "token has no subject";
    pub const NO_EXPIRY: &str = "token has no expiry";
    pub const NOT_YET_VALID: &str = "token is not valid yet";
    pub const ISSUED_IN_FUTURE: &str = "token is issued in the future";
    pub const UNKNOWN_KEY: &str = "token key is not known";
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Row 8. `detail` is one of [`msg`].
    #[error("invalid token: {detail}")]
    Invalid { detail: &'static str },
    /// Row 9: signature and every other claim are fine, only `exp` (unix seconds) has passed.
    #[error("token expired at {expired_at}")]
    Expired { expired_at: i64 },
    /// The `kid` is not in the key set of issuer number `issuer` (an index into
    /// [`TokenVerifier::issuers`]). The edge refetches that issuer's JWKS (rate-limited, row 22
    /// if it cannot) and verifies again; if the key is still unknown the answer is row 8.
    #[error("token key id is not known to issuer #{issuer}")]
    UnknownKid { issuer: usize },
}

impl VerifyError {
    /// The refusal of design §2 for this error. (An `UnknownKid` here means the refetch already
    /// happened or was not allowed: row 8.)
    pub fn to_deny(&self) -> Deny {
        match *self {
            Self::Invalid { detail } => Deny::InvalidToken {
                detail: detail.to_owned(),
            },
            Self::Expired { expired_at } => Deny::TokenExpired { expired_at },
            Self::UnknownKid { .. } => Deny::InvalidToken {
                detail: msg::UNKNOWN_KEY.to_owned(),
            },
        }
    }
}

const fn invalid(detail: &'static str) -> VerifyError {
    VerifyError::Invalid { detail }
}

/// Everything needed to verify tokens of one issuer.
#[derive(Debug)]
pub struct IssuerVerifier {
    name: String,
    issuer: String,
    audience: Vec<String>,
    algorithms: Vec<Algorithm>,
    /// `typ` the header must carry (compared case-insensitively, `application/` optional,
    /// RFC 7515 §4.1.9); `None` accepts any.
    typ: Option<&'static str>,
    leeway: i64,
    tree: ClaimTreeDebug,
    /// `[[issuers]] attributes`: attribute name → claim path (issue 13).
    attributes: Vec<(String, String)>,
    /// Claim paths requirements name (`claim = "org.plan"`), kept in `Principal::claims`.
    keep_claims: Vec<String>,
    keys: RwLock<Arc<KeySet>>,
}

/// `ClaimTree` with a `Debug` that prints nothing of interest.
struct ClaimTreeDebug(ClaimTree);

impl std::fmt::Debug for ClaimTreeDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimTree")
    }
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl IssuerVerifier {
    /// An external issuer (`[[issuers]]`) with its current keys.
    pub fn from_config(config: &IssuerConfig, keys: KeySet) -> Self {
        Self {
            name: config.name.clone(),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            algorithms: config.algorithms.clone(),
            typ: None,
            leeway: seconds(config.leeway),
            tree: ClaimTreeDebug(ClaimTree::for_issuer(
                &config.subject_claim,
                &config.roles_claim,
                &config.scopes_claim,
                &config.tenant_claim,
            )),
            attributes: config.attributes.clone(),
            keep_claims: Vec::new(),
            keys: RwLock::new(Arc::new(keys)),
        }
    }

    /// Gatehouse's own issuer: `iss` = `tokens.issuer`, `aud` = `tokens.audience`, EdDSA only,
    /// `typ: at+jwt`, claims as [`AccessClaims`] writes them, named [`OWN_ISSUER_NAME`].
    /// `keys` is built with [`KeySet::from_ed25519_public_keys`].
    pub fn own(tokens: &TokensConfig, keys: KeySet) -> Self {
        Self {
            name: OWN_ISSUER_NAME.to_owned(),
            issuer: tokens.issuer.clone(),
            audience: vec![tokens.audience.clone()],
            algorithms: vec![Algorithm::EdDSA],
            typ: Some(ACCESS_TOKEN_TYP),
            leeway: seconds(tokens.leeway),
            tree: ClaimTreeDebug(ClaimTree::for_issuer("sub", "roles", "scope", "tenant")),
            attributes: Vec::new(),
            keep_claims: Vec::new(),
            keys: RwLock::new(Arc::new(keys)),
        }
    }

    /// Keeps these claim paths of every token in [`Principal::claims`] (the `claim`s route
    /// requirements name: [`crate::config::Config::required_claims`]).
    #[must_use]
    pub fn keeping_claims(mut self, paths: Vec<String>) -> Self {
        self.keep_claims = paths;
        self
    }

    /// The config `name` (`gatehouse` for our own).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `iss` value this verifier accepts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the key set (after a JWKS refetch). Verifications already running finish with
    /// the set they started with.
    pub fn set_keys(&self, keys: KeySet) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    fn typ_ok(&self, typ: Option<&str>) -> bool {
        let Some(want) = self.typ else {
            return true;
        };
        let Some(got) = typ else {
            return false;
        };
        let got = match got.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => {
                got.get(12..).unwrap_or("")
            }
            _ => got,
        };
        got.eq_ignore_ascii_case(want)
    }

    fn verify(
        &self,
        index: usize,
        header: &jws::Header<'_>,
        token: &jws::Compact<'_>,
        payload: &[u8],
        now: i64,
    ) -> Result<Principal, VerifyError> {
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid(msg::ALG_NOT_ALLOWED));
        }
        if !self.typ_ok(header.typ.as_deref()) {
            return Err(invalid(msg::TYP));
        }
        let keys = self.keys();
        jws::verify_signature(&keys, header, token).map_err(|e| match e {
            JwsError::Invalid { detail } => invalid(detail),
            JwsError::UnknownKid => VerifyError::UnknownKid { issuer: index },
        })?;
        let claims = claims::parse(&self.tree.0, payload).map_err(|()| invalid(msg::CLAIMS))?;
        let mut p = self.principal(claims, now)?;
        if !self.attributes.is_empty() || !self.keep_claims.is_empty() {
            self.map_extra(&mut p, payload)?;
        }
        Ok(p)
    }

    /// Issue 13: the issuer's `attributes` and the claims requirements name, read from the
    /// verified payload (a second parse, only for configs that ask for them; the result is
    /// cached with the token). A claim of another shape (an object, `null`, a list of
    /// non-strings) is absent.
    fn map_extra(&self, p: &mut Principal, payload: &[u8]) -> Result<(), VerifyError> {
        use crate::attributes::{Attributes, Value, json_path, map_claims};
        let doc: serde_json::Value =
            serde_json::from_slice(payload).map_err(|_| invalid(msg::CLAIMS))?;
        let pick = |path: &str| json_path(&doc, path).and_then(Value::from_json);
        let attributes = map_claims(&doc, &self.attributes);
        let claims: Attributes = self
            .keep_claims
            .iter()
            .filter_map(|path| pick(path).map(|v| (path.clone(), v)))
            .collect();
        if !attributes.is_empty() {
            p.attributes = Arc::new(attributes);
        }
        if !claims.is_empty() {
            p.claims = Arc::new(claims);
        }
        Ok(())
    }

    /// Checks the verified claims and maps them (RFC 7519 §7.2 step 10 onwards).
    fn principal(&self, mut c: claims::Claims<'_>, now: i64) -> Result<Principal, VerifyError> {
        let aud_ok = match c.take(Target::Aud) {
            Some(Val::Str(a)) => self.audience.iter().any(|x| *x == a),
            Some(Val::List(l)) => l.iter().any(|a| self.audience.iter().any(|x| x == a)),
            Some(_) => return Err(invalid(msg::CLAIMS)),
            None => false,
        };
        if !aud_ok {
            return Err(invalid(msg::AUDIENCE));
        }
        let subject = match c.take(Target::Subject) {
            Some(Val::Str(s)) if !s.is_empty() => s,
            _ => return Err(invalid(msg::NO_SUBJECT)),
        };
        let exp = number(c.take(Target::Exp))?.ok_or(invalid(msg::NO_EXPIRY))?;
        if let Some(nbf) = number(c.take(Target::Nbf))?
            && now.saturating_add(self.leeway) < nbf
        {
            return Err(invalid(msg::NOT_YET_VALID));
        }
        if let Some(iat) = number(c.take(Target::Iat))?
            && iat > now.saturating_add(self.leeway)
        {
            return Err(invalid(msg::ISSUED_IN_FUTURE));
        }
        // RFC 7519 §4.1.4: the current time MUST be before `exp`.
        if now >= exp.saturating_add(self.leeway) {
            return Err(VerifyError::Expired { expired_at: exp });
        }
        let mut p = Principal::new(subject, Scheme::Bearer);
        p.roles = words(c.take(Target::Roles))?;
        p.scopes = match c.take(Target::Scopes) {
            Some(v) => words(Some(v))?,
            None => words(c.take(Target::Scp))?,
        };
        p.tenant = string(c.take(Target::Tenant))?;
        p.acr = string(c.take(Target::Acr))?;
        p.auth_time = number(c.take(Target::AuthTime))?;
        p.token_id = string(c.take(Target::Jti))?;
        p.session_id = string(c.take(Target::Sid))?;
        p.expires_at = Some(exp);
        p.issuer = Some(self.name.clone());
        Ok(p)
    }
}

fn number(v: Option<Val<'_>>) -> Result<Option<i64>, VerifyError> {
    match v {
        None => Ok(None),
        Some(Val::Num(n)) => Ok(Some(n)),
        Some(_) => Err(invalid(msg::CLAIMS)),
    }
}

fn string(v: Option<Val<'_>>) -> Result<Option<String>, VerifyError> {
    match v {
        None => Ok(None),
        Some(Val::Str(s)) => Ok(Some(s.into_owned())),
        Some(_) => Err(invalid(msg::CLAIMS)),
    }
}

/// Roles and scopes: an array of strings, or one space-separated string (RFC 6749 §3.3).
fn words(v: Option<Val<'_>>) -> Result<Vec<String>, VerifyError> {
    match v {
        None => Ok(Vec::new()),
        Some(Val::Str(s)) => Ok(s.split_ascii_whitespace().map(str::to_owned).collect()),
        Some(Val::List(l)) => Ok(l.into_iter().map(Cow::into_owned).collect()),
        Some(_) => Err(invalid(msg::CLAIMS)),
    }
}

/// All issuers whose tokens a Gatehouse instance accepts.
#[derive(Debug)]
pub struct TokenVerifier {
    issuers: Vec<IssuerVerifier>,
}

impl TokenVerifier {
    /// Fails if two issuers share an `iss` value: the token's `iss` must pick exactly one.
    pub fn new(issuers: Vec<IssuerVerifier>) -> Result<Self, KeyError> {
        for (i, a) in issuers.iter().enumerate() {
            if issuers.iter().skip(i + 1).any(|b| b.issuer == a.issuer) {
                return Err(KeyError::DuplicateIssuer {
                    issuer: a.issuer.clone(),
                });
            }
        }
        Ok(Self { issuers })
    }

    /// The issuers, in the order given; [`VerifyError::UnknownKid`] indexes this slice.
    pub fn issuers(&self) -> &[IssuerVerifier] {
        &self.issuers
    }

    /// The issuer with config `name`, with its index.
    pub fn issuer_by_name(&self, name: &str) -> Option<(usize, &IssuerVerifier)> {
        self.issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == name)
    }

    /// Verifies a bearer token at time `now` (unix seconds). See the module documentation for
    /// the order of the checks.
    pub fn verify(&self, token: &str, now: i64) -> Result<Principal, VerifyError> {
        let compact = jws::split(token).map_err(jws_to_verify)?;
        let header_bytes = jws::b64_decode(compact.header).map_err(jws_to_verify)?;
        let header = jws::parse_header(&header_bytes).map_err(jws_to_verify)?;
        let payload = jws::b64_decode(compact.payload).map_err(jws_to_verify)?;
        // RFC 7519 §7.2 step 10: the claims set must be UTF-8 JSON (RFC 8259 §8.1). The claims
        // pass skips unmapped members without looking at their bytes, so a payload with
        // invalid UTF-8 in one was accepted (found by fuzzing): check it as a whole.
        if std::str::from_utf8(&payload).is_err() {
            return Err(invalid(msg::CLAIMS));
        }
        let iss = claims::issuer(&payload)
            .map_err(|()| invalid(msg::CLAIMS))?
            .ok_or(invalid(msg::NO_ISSUER))?;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.issuer == iss)
            .ok_or(invalid(msg::ISSUER))?;
        issuer.verify(index, &header, &compact, &payload, now)
    }
}

fn jws_to_verify(e: JwsError) -> VerifyError {
    match e {
        JwsError::Invalid { detail } => invalid(detail),
        // Not produced before a key set is consulted.
        JwsError::UnknownKid => invalid(msg::UNKNOWN_KEY),
    }
}

impl KeySet {
    /// Checks only the JWS signature of `token` against this set, allowing `algorithms`, and
    /// returns the decoded payload: no claim is looked at. For JWS uses other than access tokens
    /// and for checking RFC 7515 vectors.
    pub fn verify_jws(&self, token: &str, algorithms: &[Algorithm]) -> Result<Vec<u8>, JwsError> {
        let compact = jws::split(token)?;
        let header_bytes = jws::b64_decode(compact.header)?;
        let header = jws::parse_header(&header_bytes)?;
        if !algorithms.contains(&header.alg) {
            return Err(jws::invalid(msg::ALG_NOT_ALLOWED));
        }
        jws::verify_signature(self, &header, &compact)?;
        jws::b64_decode(compact.payload)
    }
}
