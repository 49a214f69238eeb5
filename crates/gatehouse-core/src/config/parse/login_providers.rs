//! `[[login_providers]]`: OpenID Connect providers browsers sign in through (the
//! authorization code flow with PKCE; the edge does the discovery and the exchange).

use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::fields::{algorithms, attribute_map, named_tables};
use super::{Ctx, Field, Table, values};
use crate::config::{ClientSecret, LoginProviderConfig, UserPolicy};
use crate::secret::SecretString;

const KEYS: &[&str] = &[
    "name",
    "display_name",
    "issuer",
    "client_id",
    "client_secret",
    "client_secret_file",
    "scopes",
    "algorithms",
    "username_claim",
    "roles_claim",
    "tenant_claim",
    "attributes",
    "groups_claim",
    "required_groups",
    "allowed_domains",
    "users",
    "mfa_acr",
    "leeway",
    "redirect_uri",
    "post_logout_redirect_uri",
];

const USERS: &[(&str, UserPolicy)] = &[
    ("provision", UserPolicy::Provision),
    ("link", UserPolicy::Link),
    ("existing", UserPolicy::Existing),
];

pub(super) fn login_providers(ctx: &mut Ctx<'_>, f: &Field<'_, '_>) -> Vec<LoginProviderConfig> {
    named_tables(ctx, f, "login provider", one)
}

/// A provider name: it is a path segment of `/auth/oidc/{name}/…` and a cookie field.
fn provider_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "invalid login provider name `{}`: use lower-case ascii letters, digits, `-` and `_`",
            s.escape_debug()
        ))
    }
}

/// An absolute `http(s)` URL (query allowed: some providers' issuers have none, but a
/// redirect URI must match the registration exactly, so it is taken as written).
fn absolute_url(s: &str) -> Result<String, String> {
    let lower = s.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || s.contains('#') {
        return Err(format!(
            "invalid url `{s}`: expected an absolute `https://…` url without a fragment"
        ));
    }
    Ok(s.to_owned())
}

/// A DNS domain as `allowed_domains` lists it, compared lower-case.
fn domain(s: &str) -> Result<String, String> {
    let d = s.trim_start_matches('@').to_ascii_lowercase();
    let ok = !d.is_empty()
        && !d.starts_with('.')
        && !d.ends_with('.')
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    if ok {
        Ok(d)
    } else {
        Err(format!("invalid domain `{}`", s.escape_debug()))
    }
}

/// One `[[login_providers]]` table; `None` when anything in it is wrong (errors recorded).
fn one(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<LoginProviderConfig> {
    ctx.unknown_keys(t, KEYS);
    let errors_before = ctx.errors.len();
    ctx.require(t, "name");
    ctx.require(t, "issuer");
    ctx.require(t, "client_id");
    let name = t.get("name").and_then(|f| ctx.parsed(&f, provider_name));
    let display_name = t
        .get("display_name")
        .and_then(|f| ctx.parsed(&f, values::non_empty));
    let issuer = t.get("issuer").and_then(|f| {
        let (url, s) = ctx.parsed(&f, |s| values::http_url(s).map(|u| (u, s.to_owned())))?;
        if !url.https && !url.is_loopback() {
            let line = ctx.line(f.span.start);
            ctx.warn(
                Some(line),
                format!(
                    "`{}` talks to the provider over plain http at `{}`; anyone on the path can read codes and replace keys, use https",
                    f.key, url.host
                ),
            );
        }
        Some(s)
    });
    let client_id = t
        .get("client_id")
        .and_then(|f| ctx.parsed(&f, values::non_empty));
    let client_secret = client_secret(ctx, t);
    let scopes = match t.get("scopes") {
        Some(f) => {
            let list = ctx.list(&f, values::scope)?;
            if !list.iter().any(|s| s == "openid") {
                // OpenID Connect Core §3.1.2.1: without `openid` it is plain OAuth, no ID token.
                ctx.error(
                    &f.span,
                    &f.key,
                    "must include `openid` (OpenID Connect Core §3.1.2.1)",
                );
            }
            list
        }
        None => ["openid", "email", "profile"].map(str::to_owned).to_vec(),
    };
    let algorithms = match t.get("algorithms") {
        Some(f) => {
            let algs = algorithms(ctx, &f)?;
            if let Some(a) = algs.iter().find(|a| a.family() == AlgorithmFamily::Hmac) {
                ctx.error(
                    &f.span,
                    &f.key,
                    format!("algorithm `{a:?}` is an hmac algorithm; ID tokens are checked against the provider's jwks, which only holds public keys (RFC 8725 §2.1)"),
                );
            }
            algs
        }
        None => vec![Algorithm::RS256],
    };
    let claim =
        |ctx: &mut Ctx<'_>, key: &str| t.get(key).and_then(|f| ctx.parsed(&f, values::claim_path));
    let username_claim = claim(ctx, "username_claim").unwrap_or_else(|| "email".to_owned());
    let roles_claim = claim(ctx, "roles_claim");
    let tenant_claim = claim(ctx, "tenant_claim");
    let attributes = t
        .get("attributes")
        .and_then(|f| attribute_map(ctx, &f))
        .unwrap_or_default();
    let groups_claim = claim(ctx, "groups_claim").unwrap_or_else(|| "groups".to_owned());
    let required_groups = t
        .get("required_groups")
        .and_then(|f| ctx.list(&f, values::non_empty))
        .unwrap_or_default();
    let allowed_domains = t
        .get("allowed_domains")
        .and_then(|f| ctx.list(&f, domain))
        .unwrap_or_default();
    // Deny by default: nobody gets an account just by having one at the provider.
    let users = t
        .get("users")
        .and_then(|f| ctx.choice(&f, USERS))
        .unwrap_or(UserPolicy::Existing);
    let mfa_acr = t
        .get("mfa_acr")
        .and_then(|f| ctx.parsed(&f, values::non_empty))
        .unwrap_or_else(|| "mfa".to_owned());
    let leeway = t
        .get("leeway")
        .and_then(|f| ctx.duration(&f))
        .unwrap_or(Duration::from_secs(30));
    let redirect_uri = t
        .get("redirect_uri")
        .and_then(|f| ctx.parsed(&f, absolute_url));
    let post_logout_redirect_uri = t
        .get("post_logout_redirect_uri")
        .and_then(|f| ctx.parsed(&f, absolute_url));
    if ctx.errors.len() != errors_before {
        return None;
    }
    let name = name?;
    Some(LoginProviderConfig {
        display_name: display_name.unwrap_or_else(|| name.clone()),
        name,
        issuer: issuer?,
        client_id: client_id?,
        client_secret: client_secret?,
        scopes,
        algorithms,
        username_claim,
        roles_claim,
        tenant_claim,
        attributes,
        groups_claim,
        required_groups,
        allowed_domains,
        users,
        mfa_acr,
        leeway,
        redirect_uri,
        post_logout_redirect_uri,
    })
}

/// At most one of `client_secret` (a value, or `${NAME}` for an environment variable) and
/// `client_secret_file`; neither is a public client.
fn client_secret(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<ClientSecret> {
    match (t.get("client_secret"), t.get("client_secret_file")) {
        (Some(_), Some(_)) => {
            ctx.error(
                &t.span,
                &t.path,
                "`client_secret` and `client_secret_file` are exclusive: give at most one",
            );
            None
        }
        (Some(f), None) => {
            // Never echo the value, not even in a type error.
            let Some(s) = f.val.as_str() else {
                let msg = format!("expected a string, found {}", f.val.type_str());
                ctx.error(&f.span, &f.key, msg);
                return None;
            };
            if s.is_empty() {
                ctx.error(&f.span, &f.key, "must not be empty");
                return None;
            }
            match s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                Some(var)
                    if !var.is_empty()
                        && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                {
                    Some(ClientSecret::Env(var.to_owned()))
                }
                Some(_) => {
                    ctx.error(
                        &f.span,
                        &f.key,
                        "`${…}` must name an environment variable (letters, digits, `_`)",
                    );
                    None
                }
                None => Some(ClientSecret::Value(SecretString::new(s.to_owned()))),
            }
        }
        (None, Some(f)) => {
            let path = ctx.parsed(&f, values::non_empty)?;
            Some(ClientSecret::File(path.into()))
        }
        (None, None) => Some(ClientSecret::None),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ClientSecret, UserPolicy, parse};

    const MIN: &str = r#"
[[login_providers]]
name = "corp"
issuer = "https://sso.example.com/realms/corp"
client_id = "gatehouse"
client_secret = "${CORP_SECRET}"
"#;

    #[test]
    fn defaults_deny_by_default_and_read_the_secret_from_the_environment() {
        let (c, _) = parse(MIN).expect("valid");
        let p = &c.login_providers[0];
        assert_eq!(p.display_name, "corp");
        assert_eq!(p.users, UserPolicy::Existing);
        assert_eq!(p.scopes, ["openid", "email", "profile"]);
        assert_eq!(p.algorithms, [jsonwebtoken::Algorithm::RS256]);
        assert!(matches!(&p.client_secret, ClientSecret::Env(v) if v == "CORP_SECRET"));
    }

    #[test]
    fn a_literal_secret_is_never_printed() {
        let text = MIN.replace("${CORP_SECRET}", "s3cr3t-value");
        let (c, _) = parse(&text).expect("valid");
        assert!(!format!("{:?}", c.login_providers).contains("s3cr3t"));
    }

    #[test]
    fn errors_name_their_line() {
        let text = r#"
[[login_providers]]
name = "Corp SSO"
issuer = "https://sso.example.com"
client_id = "x"
client_secret = "a"
client_secret_file = "/run/secret"
scopes = ["email"]
algorithms = ["HS256"]
users = "everyone"
"#;
        let errs = parse(text).expect_err("invalid").to_string();
        for (line, what) in [
            (3, "invalid login provider name"),
            (8, "must include `openid`"),
            (9, "hmac"),
            (10, "everyone"),
            (2, "exclusive"),
        ] {
            assert!(
                errs.contains(&format!("line {line}")) && errs.contains(what),
                "{what} on line {line}: {errs}"
            );
        }
    }

    #[test]
    fn attributes_map_claim_paths_as_issuers_do() {
        let text = format!(
            "{MIN}attributes = {{ email_verified = \"email_verified\", plan = \"org.plan\" }}\n"
        );
        let (c, _) = parse(&text).expect("valid");
        assert_eq!(
            c.login_providers[0].attributes,
            [
                ("email_verified".to_owned(), "email_verified".to_owned()),
                ("plan".to_owned(), "org.plan".to_owned())
            ]
        );
        let bad = format!("{MIN}attributes = {{ \"1plan\" = \"org.plan\" }}\n");
        let errs = parse(&bad).expect_err("bad name").to_string();
        assert!(
            errs.contains("line 7") && errs.contains("invalid attribute name"),
            "{errs}"
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = format!("{MIN}{MIN}");
        let errs = parse(&text).expect_err("duplicate").to_string();
        assert!(errs.contains("already used on line 2"), "{errs}");
    }
}
