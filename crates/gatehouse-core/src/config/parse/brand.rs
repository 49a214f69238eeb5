//! What operators brand: `[problems]` (the problem `type` URIs) and `[pages]` (HTML
//! templates).

use super::{Ctx, Table};
use crate::config::{PagesConfig, ProblemsConfig};

/// `[pages]`.
pub(super) fn pages(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<PagesConfig> {
    let (dir, line) = ctx.path_section(
        t,
        "dir",
        "the template directory is empty; name a directory of `.html` templates",
    )?;
    Some(PagesConfig { dir, line })
}

/// `[problems]`.
pub(super) fn problems(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> ProblemsConfig {
    ctx.unknown_keys(t, &["base_uri"]);
    let Some(f) = t.get("base_uri") else {
        return ProblemsConfig::default();
    };
    let base_uri = ctx.parsed(&f, base_uri);
    if let Some(b) = &base_uri
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        let line = ctx.line(f.span.start);
        ctx.warn(
            Some(line),
            format!(
                "`problems.base_uri` is followed directly by the code (`{b}missing_credentials`); end it with `/`, `#` or `=` to make one page per code"
            ),
        );
    }
    ProblemsConfig { base_uri }
}

/// An absolute URI (RFC 3986 §4.3: a scheme, then no spaces, quotes or controls), since the
/// `type` it starts is one (RFC 9457 §3.1.1).
fn base_uri(s: &str) -> Result<String, String> {
    let scheme = s.split_once(':').map(|(scheme, _)| scheme);
    let scheme_ok = scheme.is_some_and(|sc| {
        sc.starts_with(|c: char| c.is_ascii_alphabetic())
            && sc
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let clean = !s
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '\\'));
    if scheme_ok && clean && s.len() > scheme.map_or(0, str::len) + 1 {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}` is not an absolute URI; expected e.g. `https://docs.example.com/errors/`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    #[test]
    fn base_uri_is_an_absolute_uri() {
        let (cfg, warnings) =
            parse("[problems]\nbase_uri = \"https://docs.example.com/errors/\"\n")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cfg.problems.base_uri.as_deref(),
            Some("https://docs.example.com/errors/")
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        let (cfg, _) = parse("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.problems.base_uri, None);
        for bad in [
            "/errors/",
            "docs.example.com",
            "https://x y/",
            "https:",
            "1http://x/",
        ] {
            let e = parse(&format!("\n[problems]\nbase_uri = \"{bad}\"\n"))
                .map(|_| ())
                .expect_err(bad);
            let e = e.to_string();
            assert!(
                e.starts_with("line 3: `problems.base_uri`: `")
                    && e.contains("is not an absolute URI"),
                "{bad}: {e}"
            );
        }
        let (_, warnings) = parse("[problems]\nbase_uri = \"https://docs.example.com/errors\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, Some(2));
    }
}
