//! The credential schemes (`bearer`, `api_key`, `basic`, `digest`, `session`): a leaf type
//! that the config, the principal, the refusals and the rendering all name. `crate::config`
//! re-exports it.

/// Credential schemes a route may accept. The order in the config is the order of the
/// challenges (RFC 9110 §11.6.1: a client picks the first it understands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Bearer,
    ApiKey,
    Basic,
    Digest,
    Session,
}

impl Scheme {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::ApiKey => "api_key",
            Self::Basic => "basic",
            Self::Digest => "digest",
            Self::Session => "session",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "bearer" => Self::Bearer,
            "api_key" => Self::ApiKey,
            "basic" => Self::Basic,
            "digest" => Self::Digest,
            "session" => Self::Session,
            _ => return None,
        })
    }
}
