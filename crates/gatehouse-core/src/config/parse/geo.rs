//! Row 26: `[geoip]` and a route's country keys (`countries`, `deny_countries`,
//! `unknown_country`, `geo_status`, `blocked_by`).

use super::{Ctx, Field, Table};
use crate::config::{Config, GeoIpConfig};
use crate::geo::{Country, CountryRule, UnknownCountry};

/// The country keys of a `[[route]]`.
pub(super) const ROUTE_KEYS: &[&str] = &[
    "countries",
    "deny_countries",
    "unknown_country",
    "geo_status",
    "blocked_by",
];

/// `[geoip]`.
pub(super) fn section(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<GeoIpConfig> {
    let (database, line) = ctx.path_section(
        t,
        "database",
        "the database path is empty; name a `.mmdb` file (GeoIP2/GeoLite2 Country or City)",
    )?;
    Some(GeoIpConfig { database, line })
}

/// A route's country rule; `None` when it has none or something in it is wrong (errors
/// recorded).
pub(super) fn route_rule(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<CountryRule> {
    let present: Vec<Field<'_, '_>> = ROUTE_KEYS.iter().filter_map(|k| t.get(k)).collect();
    let first = present.iter().min_by_key(|f| f.span.start)?;
    let line = ctx.line(first.span.start);
    let allow = t.get("countries").and_then(|f| list(ctx, &f));
    let deny = t.get("deny_countries").and_then(|f| list(ctx, &f));
    let unknown = t.get("unknown_country").and_then(|f| {
        ctx.choice(
            &f,
            &[
                ("deny", UnknownCountry::Deny),
                ("allow", UnknownCountry::Allow),
            ],
        )
    });
    let legal = t.get("geo_status").and_then(|f| {
        let n = ctx.u64(&f)?;
        match n {
            403 => Some(false),
            // RFC 7725 §3.
            451 => Some(true),
            _ => {
                ctx.error(
                    &f.span,
                    &f.key,
                    format!(
                        "`{n}` is not a country refusal status; expected `403` or `451` (RFC 7725)"
                    ),
                );
                None
            }
        }
    });
    let blocked_by = t
        .get("blocked_by")
        .and_then(|f| ctx.parsed(&f, blocked_by_uri));
    if t.get("countries").is_none() && t.get("deny_countries").is_none() {
        let message = "has no effect without `countries` or `deny_countries`";
        for f in &present {
            ctx.error(&f.span, &f.key, message);
        }
        return None;
    }
    if let (Some(f), Some(false) | None) = (t.get("blocked_by"), legal) {
        ctx.error(
            &f.span,
            &f.key,
            "`blocked_by` is sent only with a legal block: set `geo_status = 451` (RFC 7725 §3)",
        );
        return None;
    }
    // A list with an error is `None` here and its error is recorded, which discards the route.
    let (allow, deny) = (allow.unwrap_or_default(), deny.unwrap_or_default());
    if let Some(c) = allow.iter().find(|c| deny.contains(c))
        && let Some(f) = t.get("deny_countries")
    {
        ctx.error(
            &f.span,
            &f.key,
            format!("`{c}` is in both `countries` and `deny_countries`"),
        );
        return None;
    }
    let unknown = unknown.unwrap_or(if allow.is_empty() {
        UnknownCountry::Allow
    } else {
        UnknownCountry::Deny
    });
    Some(CountryRule {
        allow,
        deny,
        unknown,
        legal: legal.unwrap_or(false),
        blocked_by: blocked_by.map(Into::into),
        line,
    })
}

/// `countries` / `deny_countries`: distinct ISO 3166-1 alpha-2 codes, at least one.
fn list(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Option<Vec<Country>> {
    let codes = ctx.list(f, |s| {
        Country::parse(s).ok_or_else(|| {
            format!(
                "`{s}` is not a country code; expected two letters (ISO 3166-1 alpha-2), e.g. `DE`"
            )
        })
    })?;
    ctx.distinct(
        f,
        codes,
        "an empty country list; omit the key instead",
        |c| format!("`{c}`"),
    )
}

/// `blocked_by`: an absolute `http(s)` URI, sent between `<` `>` in a `Link` header.
fn blocked_by_uri(s: &str) -> Result<String, String> {
    let scheme_ok = s.starts_with("https://") || s.starts_with("http://");
    let clean = !s
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'));
    if scheme_ok && clean && s.len() > "http://".len() {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}` is not an absolute `https://` or `http://` URI without spaces, quotes or angle brackets"
        ))
    }
}

/// A route that uses countries needs `[geoip] database`: an error on the route's line.
pub(super) fn needs_database(ctx: &mut Ctx<'_>, config: &Config) {
    if config.geoip.is_some() {
        return;
    }
    for (i, r) in config.routes.iter().enumerate() {
        if let Some(rule) = &r.countries {
            ctx.errors.push(super::ConfigError {
                line: Some(rule.line),
                key: format!("route[{i}].countries"),
                message: format!(
                    "route `{}` decides by country, which needs the country database: set `[geoip] database = \"…mmdb\"`",
                    r.name
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::config::parse::errors;
    use crate::geo::{Country, UnknownCountry};

    #[test]
    fn a_route_with_countries_parses_with_its_defaults() {
        let (cfg, _) = parse(
            "[geoip]\ndatabase = \"/x.mmdb\"\n[[route]]\nname = \"a\"\npath = \"/a\"\ncountries = [\"de\", \"AT\"]\n[[route]]\nname = \"b\"\npath = \"/b\"\ndeny_countries = [\"KP\"]\ngeo_status = 451\nblocked_by = \"https://law.example/order\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.geoip.as_ref().map(|g| g.line), Some(2));
        let a = cfg.routes[0]
            .countries
            .as_ref()
            .unwrap_or_else(|| panic!("a"));
        assert_eq!(
            a.allow,
            [Country::parse("DE"), Country::parse("AT")].map(Option::unwrap)
        );
        assert_eq!(
            (a.unknown, a.legal, a.line),
            (UnknownCountry::Deny, false, 6)
        );
        let b = cfg.routes[1]
            .countries
            .as_ref()
            .unwrap_or_else(|| panic!("b"));
        assert_eq!((b.unknown, b.legal), (UnknownCountry::Allow, true));
        assert_eq!(b.blocked_by.as_deref(), Some("https://law.example/order"));
    }

    #[test]
    fn countries_without_the_database_is_an_error_on_its_line() {
        let e = errors("[[route]]\nname = \"eu\"\npath = \"/eu/**\"\n\ncountries = [\"DE\"]\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("line 5: `route[0].countries`: route `eu` decides by country"),
            "{e:?}"
        );
        assert!(e[0].contains("[geoip] database"), "{e:?}");
    }

    #[test]
    fn bad_country_keys_are_errors_with_their_lines() {
        let head = "[geoip]\ndatabase = \"/x.mmdb\"\n[[route]]\nname = \"r\"\npath = \"/r\"\n";
        for (keys, want) in [
            (
                "countries = [\"DEU\"]",
                "line 6: `route[0].countries[0]`: `DEU` is not a country code",
            ),
            (
                "countries = []",
                "line 6: `route[0].countries`: an empty country list",
            ),
            ("countries = [\"DE\", \"de\"]", "`DE` is listed twice"),
            (
                "countries = [\"DE\"]\ndeny_countries = [\"DE\"]",
                "line 7: `route[0].deny_countries`: `DE` is in both",
            ),
            (
                "unknown_country = \"deny\"",
                "line 6: `route[0].unknown_country`: has no effect without",
            ),
            (
                "countries = [\"DE\"]\nunknown_country = \"maybe\"",
                "unknown value `maybe`",
            ),
            (
                "countries = [\"DE\"]\ngeo_status = 404",
                "line 7: `route[0].geo_status`: `404` is not a country refusal status",
            ),
            (
                "countries = [\"DE\"]\nblocked_by = \"https://x.example/\"",
                "set `geo_status = 451`",
            ),
            (
                "countries = [\"DE\"]\ngeo_status = 451\nblocked_by = \"x y\"",
                "line 8: `route[0].blocked_by`: `x y` is not an absolute",
            ),
        ] {
            let e = errors(&format!("{head}{keys}\n"));
            assert!(e.iter().any(|e| e.contains(want)), "{keys}: {e:?}");
        }
        let e = errors("[geoip]\ndatabase = \"\"\n");
        assert!(
            e[0].starts_with("line 2: `geoip.database`: the database path is empty"),
            "{e:?}"
        );
        let e = errors("[geoip]\nfile = \"x\"\n");
        assert!(
            e.iter()
                .any(|e| e.contains("missing required key `database`")),
            "{e:?}"
        );
    }
}
