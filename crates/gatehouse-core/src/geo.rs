//! Row 26: the client's country. The edge looks the trusted client address up in a MaxMind
//! DB (`[geoip] database`); this module holds the route's rule and the pure decision on the
//! answer ([`CountryRule::refuses`]), which [`crate::pipeline`] runs right after row 3
//! (networks), before credentials. The refusal it leads to, [`crate::Deny::GeoBlocked`], is
//! built beside the other refusals ([`CountryRule::check`], in `deny.rs`).

use std::fmt;
use std::sync::Arc;

/// An ISO 3166-1 alpha-2 country code, upper case (`DE`), as MaxMind DBs record it in
/// `country.iso_code`. Two bytes, so a refusal carries it without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Two ASCII letters, either case; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        // Two ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route does with an address whose country the database does not know (private and
/// loopback ranges, anonymous networks, unassigned space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownCountry {
    Deny,
    Allow,
}

/// The route's country rule: `countries`, `deny_countries`, `unknown_country`, `geo_status`,
/// `blocked_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryRule {
    /// Only these countries pass (`countries`); empty = any country not denied.
    pub allow: Vec<Country>,
    /// These countries are refused (`deny_countries`).
    pub deny: Vec<Country>,
    /// Default: `deny` when the route has an allow list, `allow` when it only denies.
    pub unknown: UnknownCountry,
    /// `geo_status = 451`: the refusal is a legal block (RFC 7725 §3).
    pub legal: bool,
    /// `blocked_by`: the URI of the entity that requires the block, sent as
    /// `Link: <…>; rel="blocked-by"` with the 451 (RFC 7725 §3).
    pub blocked_by: Option<Arc<str>>,
    /// 1-based line of the route's first country key, for messages.
    pub line: usize,
}

impl CountryRule {
    /// Row 26: does the rule refuse `country`, the database's answer for the trusted client
    /// address (`None`: not in the database)? [`CountryRule::check`] turns a refusal into its
    /// [`crate::Deny`].
    pub fn refuses(&self, country: Option<Country>) -> bool {
        match country {
            None => self.unknown == UnknownCountry::Deny,
            Some(c) => {
                self.deny.contains(&c) || (!self.allow.is_empty() && !self.allow.contains(&c))
            }
        }
    }

    /// One line for `gatehouse explain`.
    pub fn describe(&self) -> String {
        let list = |l: &[Country]| l.iter().map(Country::as_str).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !self.allow.is_empty() {
            parts.push(format!("countries [{}]", list(&self.allow)));
        }
        if !self.deny.is_empty() {
            parts.push(format!("deny_countries [{}]", list(&self.deny)));
        }
        parts.push(format!(
            "unknown_country = \"{}\"",
            match self.unknown {
                UnknownCountry::Deny => "deny",
                UnknownCountry::Allow => "allow",
            }
        ));
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Country {
        Country::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    fn rule(allow: &[&str], deny: &[&str], unknown: UnknownCountry) -> CountryRule {
        CountryRule {
            allow: allow.iter().map(|s| c(s)).collect(),
            deny: deny.iter().map(|s| c(s)).collect(),
            unknown,
            legal: false,
            blocked_by: None,
            line: 1,
        }
    }

    #[test]
    fn codes_are_two_letters_upper_cased() {
        assert_eq!(c("de").as_str(), "DE");
        assert_eq!(format!("{:?}", c("Fr")), "FR");
        for bad in ["", "D", "DEU", "D1", "ü", "--"] {
            assert_eq!(Country::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn allow_lists_deny_lists_and_unknown_addresses() {
        let only = rule(&["DE", "AT"], &[], UnknownCountry::Deny);
        assert!(!only.refuses(Some(c("DE"))));
        assert!(only.refuses(Some(c("US"))));
        assert!(only.refuses(None));
        let not = rule(&[], &["KP"], UnknownCountry::Allow);
        assert!(!not.refuses(Some(c("DE"))));
        assert!(!not.refuses(None));
        assert!(not.refuses(Some(c("KP"))));
        // A denied country stays denied even when also listed as allowed elsewhere: deny wins.
        let both = rule(&["DE"], &["DE"], UnknownCountry::Allow);
        assert!(both.refuses(Some(c("DE"))));
    }
}
