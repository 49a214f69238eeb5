//! `--preset NAME[=ARG][@PATH]`: one row of the semantics contract (design §2), answered by
//! building the same [`Deny`] the gateway builds and rendering it through core's one table,
//! so a preset cannot drift from what `gatehouse serve` answers.

use gatehouse_core::deny::Deny;
use gatehouse_core::geo::Country;
use gatehouse_core::requirements::Unmet;
use gatehouse_core::route::Pattern;
use gatehouse_core::token::msg;

/// The contract rows a preset can answer, by CLI name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    MissingCredentials,
    UnsupportedScheme,
    InvalidRequest,
    InvalidToken,
    ExpiredToken,
    RevokedToken,
    InvalidCredentials,
    StaleNonce,
    AccountSuspended,
    StepUp,
    InsufficientRole,
    InsufficientScope,
    TenantMismatch,
    NotOwner,
    ReadOnly,
    NotFound,
    IpBlocked,
    ForbiddenPath,
    TooManyAttempts,
    RateLimited,
    UpstreamUnavailable,
    UpstreamTimeout,
    AuthUnavailable,
    MfaRequired,
    GeoBlocked,
    RequirementNotMet,
}

/// Every preset with its CLI name, in contract order.
pub const PRESETS: &[(&str, Preset)] = &[
    ("forbidden-path", Preset::ForbiddenPath),
    ("ip-blocked", Preset::IpBlocked),
    ("too-many-attempts", Preset::TooManyAttempts),
    ("missing-credentials", Preset::MissingCredentials),
    ("unsupported-scheme", Preset::UnsupportedScheme),
    ("invalid-request", Preset::InvalidRequest),
    ("invalid-token", Preset::InvalidToken),
    ("expired-token", Preset::ExpiredToken),
    ("revoked-token", Preset::RevokedToken),
    ("invalid-credentials", Preset::InvalidCredentials),
    ("stale-nonce", Preset::StaleNonce),
    ("account-suspended", Preset::AccountSuspended),
    ("step-up", Preset::StepUp),
    ("insufficient-role", Preset::InsufficientRole),
    ("insufficient-scope", Preset::InsufficientScope),
    ("requirement-not-met", Preset::RequirementNotMet),
    ("tenant-mismatch", Preset::TenantMismatch),
    ("not-owner", Preset::NotOwner),
    ("read-only", Preset::ReadOnly),
    ("not-found", Preset::NotFound),
    ("upstream-unavailable", Preset::UpstreamUnavailable),
    ("upstream-timeout", Preset::UpstreamTimeout),
    ("auth-unavailable", Preset::AuthUnavailable),
    ("rate-limited", Preset::RateLimited),
    ("mfa-required", Preset::MfaRequired),
    ("geo-blocked", Preset::GeoBlocked),
];

/// Throttling presets wait this long unless `=SECONDS` says otherwise (the gateway's
/// window for failed attempts is typically a minute).
pub const DEFAULT_RETRY_AFTER: u64 = 60;
/// As `gatehouse serve` answers row 22 (the gateway's store-failure retry hint).
pub const AUTH_UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// Why a `--preset` value is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    #[error("unknown preset `{0}`; known: {known}", known = names().join(", "))]
    Unknown(String),
    #[error("preset `{name}` takes no `={arg}`")]
    NoArg { name: String, arg: String },
    #[error("preset `{name}`: `{arg}` is not a number of seconds")]
    Seconds { name: String, arg: String },
    #[error("preset `{name}`: `{arg}` is not `COUNTRY` or `COUNTRY,451` (e.g. `DE` or `DE,451`)")]
    Country { name: String, arg: String },
    #[error("preset `{name}`: {source}")]
    Path {
        name: String,
        source: gatehouse_core::route::PatternError,
    },
}

/// The CLI names of every preset.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|(n, _)| *n).collect()
}

/// One `--preset` argument, parsed.
#[derive(Debug, Clone)]
pub struct PresetSpec {
    pub name: &'static str,
    pub preset: Preset,
    /// Roles (`insufficient-role`), scopes (`insufficient-scope`), ACR values (`step-up`),
    /// requirement codes (`requirement-not-met`), seconds (throttling and
    /// `auth-unavailable`), or `COUNTRY[,451]` (`geo-blocked`).
    pub arg: Option<String>,
    /// `@PATH` in route-pattern syntax (`/api/**`); `None`: every path.
    pub path: Option<Pattern>,
    pub path_text: Option<String>,
}

impl PresetSpec {
    /// Parses `NAME[=ARG][@PATH]`.
    pub fn parse(spec: &str) -> Result<Self, PresetError> {
        let (rest, path_text) = match spec.split_once('@') {
            Some((r, p)) => (r, Some(p.to_owned())),
            None => (spec, None),
        };
        let (name, arg) = match rest.split_once('=') {
            Some((n, a)) => (n, Some(a.to_owned())),
            None => (rest, None),
        };
        let &(name, preset) = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| PresetError::Unknown(name.to_owned()))?;
        if let Some(a) = &arg {
            match preset {
                Preset::InsufficientRole
                | Preset::InsufficientScope
                | Preset::StepUp
                | Preset::RequirementNotMet => {}
                Preset::GeoBlocked => {
                    if geo_arg(a).is_none() {
                        return Err(PresetError::Country {
                            name: name.to_owned(),
                            arg: a.clone(),
                        });
                    }
                }
                Preset::TooManyAttempts | Preset::RateLimited | Preset::AuthUnavailable => {
                    if a.parse::<u64>().is_err() {
                        return Err(PresetError::Seconds {
                            name: name.to_owned(),
                            arg: a.clone(),
                        });
                    }
                }
                _ => {
                    return Err(PresetError::NoArg {
                        name: name.to_owned(),
                        arg: a.clone(),
                    });
                }
            }
        }
        let path = path_text
            .as_deref()
            .map(Pattern::parse)
            .transpose()
            .map_err(|source| PresetError::Path {
                name: name.to_owned(),
                source,
            })?;
        Ok(Self {
            name,
            preset,
            arg,
            path,
            path_text,
        })
    }

    /// Whether this preset answers `path`.
    pub fn applies(&self, path: &str) -> bool {
        self.path.as_ref().is_none_or(|p| p.matches(path).is_some())
    }

    /// The refusal and whether row 20 hides it, as the gateway would build it. `now` is unix
    /// seconds; `presented` the scheme word of the request's `Authorization` header, if any;
    /// `mfa_token` a fresh random token for `mfa-required`.
    pub fn deny(&self, now: i64, presented: Option<&str>, mfa_token: &str) -> (Deny, bool) {
        let list = |default: &str| -> Vec<String> {
            let a = self.arg.as_deref().unwrap_or(default);
            a.split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let seconds = |default: u64| {
            self.arg
                .as_deref()
                .and_then(|a| a.parse().ok())
                .unwrap_or(default)
        };
        let deny = match self.preset {
            Preset::MissingCredentials => Deny::MissingCredentials,
            Preset::UnsupportedScheme => Deny::UnsupportedScheme {
                presented: presented.unwrap_or("negotiate").to_owned(),
            },
            // The gateway's text for `Authorization: Bearer` with no token.
            Preset::InvalidRequest => Deny::InvalidRequest {
                detail: "the Bearer scheme requires a token".to_owned(),
            },
            // What a garbage token gets.
            Preset::InvalidToken => Deny::InvalidToken {
                detail: msg::MALFORMED.to_owned(),
            },
            Preset::ExpiredToken => Deny::TokenExpired {
                expired_at: now - 60,
            },
            Preset::RevokedToken => Deny::TokenRevoked,
            Preset::InvalidCredentials => Deny::InvalidCredentials,
            Preset::StaleNonce => Deny::StaleNonce,
            Preset::AccountSuspended => Deny::AccountSuspended {
                suspended_at: now - 3600,
                reason: "suspended by an administrator".to_owned(),
            },
            Preset::StepUp => Deny::InsufficientUserAuthentication {
                acr_values: Some(self.arg.clone().unwrap_or_else(|| "mfa".to_owned())),
                max_age: None,
            },
            Preset::InsufficientRole => Deny::InsufficientRole {
                required: list("admin"),
            },
            Preset::InsufficientScope => Deny::InsufficientScope {
                required: list("write"),
            },
            // Row 25: the storefront's two requirements, or the codes given (`=a,b`).
            Preset::RequirementNotMet => Deny::RequirementNotMet {
                unmet: match &self.arg {
                    None => storefront_requirements(),
                    Some(_) => list("")
                        .into_iter()
                        .map(|code| Unmet {
                            message: Some(format!("Requirement `{code}` is not met.")),
                            code,
                            remedy_url: None,
                        })
                        .collect(),
                },
            },
            Preset::TenantMismatch => Deny::TenantMismatch,
            Preset::NotOwner => Deny::NotOwner,
            Preset::ReadOnly => Deny::ReadOnly,
            // Row 20: any hideable refusal on a hidden route; the body says only `not_found`.
            Preset::NotFound => return (Deny::MissingCredentials, true),
            Preset::IpBlocked => Deny::IpBlocked,
            Preset::ForbiddenPath => Deny::ForbiddenPath,
            Preset::TooManyAttempts => Deny::TooManyAttempts {
                retry_after: seconds(DEFAULT_RETRY_AFTER),
            },
            Preset::RateLimited => Deny::RateLimited {
                retry_after: seconds(DEFAULT_RETRY_AFTER),
                limit: 100,
            },
            Preset::UpstreamUnavailable => Deny::UpstreamUnavailable,
            Preset::UpstreamTimeout => Deny::UpstreamTimeout,
            Preset::AuthUnavailable => Deny::AuthUnavailable {
                retry_after: seconds(AUTH_UNAVAILABLE_RETRY_AFTER),
            },
            Preset::MfaRequired => Deny::MfaRequired {
                mfa_token: mfa_token.to_owned(),
            },
            // Row 26: the country as the gateway's database would give it; `,451` is a route
            // with `geo_status = 451` (RFC 7725).
            Preset::GeoBlocked => {
                let (country, legal) = self
                    .arg
                    .as_deref()
                    .and_then(geo_arg)
                    .unwrap_or((Country::parse("US"), false));
                Deny::GeoBlocked {
                    country,
                    legal,
                    blocked_by: None,
                }
            }
        };
        (deny, false)
    }
}

/// What a shop's checkout answers a signed-in customer with neither a verified email nor a
/// payment method (issue 13's example).
fn storefront_requirements() -> Vec<Unmet> {
    vec![
        Unmet {
            code: "email_unverified".to_owned(),
            message: Some("Verify your email address first.".to_owned()),
            remedy_url: Some("/account/email".to_owned()),
        },
        Unmet {
            code: "payment_method_required".to_owned(),
            message: Some("Add a payment method to check out.".to_owned()),
            remedy_url: Some("/account/billing".to_owned()),
        },
    ]
}

/// `COUNTRY` or `COUNTRY,451` (`geo-blocked=DE,451`).
fn geo_arg(arg: &str) -> Option<(Option<Country>, bool)> {
    let (code, status) = arg.split_once(',').unwrap_or((arg, "403"));
    let legal = match status {
        "403" => false,
        "451" => true,
        _ => return None,
    };
    Some((Some(Country::parse(code)?), legal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_names_a_distinct_contract_code() {
        let mut codes = std::collections::HashSet::new();
        for name in names() {
            let p = PresetSpec::parse(name).unwrap();
            let (deny, hidden) = p.deny(1_700_000_000, None, "m");
            let code = if hidden { "not_found" } else { deny.code() };
            assert!(codes.insert(code), "{name} repeats {code}");
            // The CLI name is the code with dashes, but for the renamed rows.
            let expected = match name {
                "expired-token" => "token_expired",
                "revoked-token" => "token_revoked",
                "step-up" => "insufficient_user_authentication",
                n => &n.replace('-', "_"),
            };
            assert_eq!(code, expected);
        }
        assert_eq!(codes.len(), 26);
    }

    #[test]
    fn arguments_and_paths() {
        let p = PresetSpec::parse("insufficient-scope=posts:write,admin:read@/api/**").unwrap();
        assert!(p.applies("/api/x/y"));
        assert!(!p.applies("/other"));
        assert_eq!(
            p.deny(0, None, "").0,
            Deny::InsufficientScope {
                required: vec!["posts:write".into(), "admin:read".into()]
            }
        );
        let p = PresetSpec::parse("rate-limited=7").unwrap();
        assert!(p.applies("/anything"));
        assert_eq!(
            p.deny(0, None, "").0,
            Deny::RateLimited {
                retry_after: 7,
                limit: 100
            }
        );
        assert!(matches!(
            PresetSpec::parse("rate-limited=soon"),
            Err(PresetError::Seconds { .. })
        ));
        assert!(matches!(
            PresetSpec::parse("read-only=x"),
            Err(PresetError::NoArg { .. })
        ));
        let p = PresetSpec::parse("geo-blocked=de,451").unwrap();
        let (deny, _) = p.deny(0, None, "");
        assert_eq!(deny.entry().status, 451);
        assert!(matches!(
            deny,
            Deny::GeoBlocked { country: Some(c), legal: true, .. } if c.as_str() == "DE"
        ));
        assert_eq!(
            PresetSpec::parse("geo-blocked")
                .unwrap()
                .deny(0, None, "")
                .0
                .entry()
                .status,
            403
        );
        assert!(matches!(
            PresetSpec::parse("geo-blocked=DEU"),
            Err(PresetError::Country { .. })
        ));
        assert!(matches!(
            PresetSpec::parse("expired"),
            Err(PresetError::Unknown(_))
        ));
        assert!(matches!(
            PresetSpec::parse("not-owner@api"),
            Err(PresetError::Path { .. })
        ));
    }
}
