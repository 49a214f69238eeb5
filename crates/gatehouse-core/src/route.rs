//! Route patterns and first-match routing (design §3).
//!
//! A pattern is a list of segments: literals, `*` (exactly one segment), `{name}` (one
//! segment, captured) and a final `**` (zero or more segments). Matching is a pure function
//! over the normalized, decoded path; a single trailing `/` on the request path is ignored,
//! so `/api/admin/` cannot slip past a route written as `/api/admin`.

/// One segment of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(Box<str>),
    /// `*`
    One,
    /// `{name}`
    Param(Box<str>),
    /// `**`, only last.
    Rest,
}

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Box<[Segment]>,
}

/// Why a pattern is not valid (the config parser reports these with their line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("path `{0}` must start with `/`")]
    NotAbsolute(String),
    #[error("path `{path}` contains `{found}`, which never reaches a route after normalization")]
    BadChar { path: String, found: String },
    #[error("path `{0}` has an empty segment (`//`)")]
    EmptySegment(String),
    #[error("path `{path}` has a `{segment}` segment, which normalization removes")]
    DotSegment { path: String, segment: String },
    #[error("`**` may only be the last segment of `{0}`")]
    RestNotLast(String),
    #[error(
        "parameter name `{name}` in `{path}` is not valid: use letters, digits and `_`, not starting with a digit"
    )]
    BadParam { path: String, name: String },
    #[error("parameter `{name}` appears twice in `{path}`")]
    DuplicateParam { path: String, name: String },
    #[error(
        "segment `{segment}` of `{path}` mixes `*`, `{{`, `}}` with other characters; wildcards and parameters must be whole segments"
    )]
    BadSegment { path: String, segment: String },
}

/// Paths with more segments than this match no route: `[defaults]` decide for them.
pub const MAX_SEGMENTS: usize = 64;

/// Splits a normalized path into its non-empty segments (a single trailing `/` is ignored),
/// into `buf`. `None` for a path that does not start with `/` or has more than
/// [`MAX_SEGMENTS`] segments.
pub fn split_path<'p, 'b>(
    path: &'p str,
    buf: &'b mut [&'p str; MAX_SEGMENTS],
) -> Option<&'b [&'p str]> {
    let rest = path.strip_prefix('/')?;
    let mut n = 0;
    for part in rest.split('/').filter(|s| !s.is_empty()) {
        if n == MAX_SEGMENTS {
            return None;
        }
        buf[n] = part;
        n += 1;
    }
    Some(&buf[..n])
}

/// Captured `{param}` values, in pattern order. Few routes have more than two.
pub type Params<'p> = Vec<(&'p str, &'p str)>;

impl Pattern {
    /// Parses a pattern. Anything normalization would change or refuse (`//`, `.`, `..`,
    /// `?`, `#`, `\`, control characters) is an error, since such a route could never match
    /// what it says. A single trailing `/` is ignored, as in matching.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let path = || pattern.to_owned();
        let rest = pattern
            .strip_prefix('/')
            .ok_or_else(|| PatternError::NotAbsolute(path()))?;
        if let Some(c) = pattern
            .chars()
            .find(|c| c.is_control() || matches!(c, '?' | '#' | '\\'))
        {
            return Err(PatternError::BadChar {
                path: pattern.escape_debug().to_string(),
                found: c.escape_debug().to_string(),
            });
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut segments = Vec::new();
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let seg = match *part {
                "" => return Err(PatternError::EmptySegment(path())),
                "." | ".." => {
                    return Err(PatternError::DotSegment {
                        path: path(),
                        segment: (*part).to_owned(),
                    });
                }
                "**" if i + 1 == parts.len() => Segment::Rest,
                "**" => return Err(PatternError::RestNotLast(path())),
                "*" => Segment::One,
                p if p.starts_with('{') && p.ends_with('}') && p.len() > 2 => {
                    let name = &p[1..p.len() - 1];
                    let valid = name
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err(PatternError::BadParam {
                            path: path(),
                            name: name.to_owned(),
                        });
                    }
                    if segments
                        .iter()
                        .any(|s| matches!(s, Segment::Param(n) if &**n == name))
                    {
                        return Err(PatternError::DuplicateParam {
                            path: path(),
                            name: name.to_owned(),
                        });
                    }
                    Segment::Param(name.into())
                }
                p if p.contains(['*', '{', '}']) => {
                    return Err(PatternError::BadSegment {
                        path: path(),
                        segment: p.to_owned(),
                    });
                }
                p => Segment::Literal(p.into()),
            };
            segments.push(seg);
        }
        Ok(Self {
            segments: segments.into_boxed_slice(),
        })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Does the pattern declare `{name}`?
    pub fn has_param(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Param(n) if &**n == name))
    }

    /// Matches a normalized path, returning the captured parameters.
    pub fn matches<'p>(&'p self, path: &'p str) -> Option<Params<'p>> {
        let mut buf = [""; MAX_SEGMENTS];
        let segs = split_path(path, &mut buf)?;
        self.matches_segments(segs)
    }

    /// Matches a path already split by [`split_path`]: the router splits once per request,
    /// not once per route.
    pub fn matches_segments<'p>(&'p self, parts: &[&'p str]) -> Option<Params<'p>> {
        // Cheap rejections first: too few segments, or a different first literal.
        let fixed = self.segments.len() - usize::from(self.ends_with_rest());
        if parts.len() < fixed || (!self.ends_with_rest() && parts.len() != fixed) {
            return None;
        }
        // Match first, then collect: a route that fails on a later literal allocates
        // nothing, and a matching one allocates its parameters once, at their size.
        let mut count = 0;
        for (seg, part) in self.segments.iter().zip(parts.iter()) {
            match seg {
                Segment::Rest => break,
                Segment::Literal(l) => {
                    if *part != &**l {
                        return None;
                    }
                }
                Segment::One => {}
                Segment::Param(_) => count += 1,
            }
        }
        let mut params = Vec::with_capacity(count);
        if count > 0 {
            for (seg, part) in self.segments.iter().zip(parts.iter()) {
                if let Segment::Param(name) = seg {
                    params.push((&**name, *part));
                }
            }
        }
        Some(params)
    }

    fn ends_with_rest(&self) -> bool {
        matches!(self.segments.last(), Some(Segment::Rest))
    }

    /// True when every path this pattern matches is also matched by `self`
    /// (conservative: may answer false for some covered patterns, never true wrongly).
    pub fn covers(&self, other: &Pattern) -> bool {
        let mut a = self.segments.iter();
        let mut b = other.segments.iter();
        loop {
            match (a.next(), b.next()) {
                (Some(Segment::Rest), _) => return true,
                (None, None) => return true,
                (None, Some(_)) | (Some(_), None) => return false,
                (Some(_), Some(Segment::Rest)) => return false,
                (Some(Segment::Literal(x)), Some(Segment::Literal(y))) if x == y => {}
                (Some(Segment::Literal(_)), Some(_)) => return false,
                (Some(Segment::One | Segment::Param(_)), Some(_)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn literal_and_trailing_slash() {
        assert!(p("/api/admin").matches("/api/admin").is_some());
        assert!(p("/api/admin").matches("/api/admin/").is_some());
        assert!(p("/api/admin").matches("/api/admin/x").is_none());
        assert!(p("/api/admin").matches("/api").is_none());
        assert!(p("/").matches("/").is_some());
        assert!(p("/").matches("/x").is_none());
    }

    #[test]
    fn rest_matches_zero_or_more() {
        let r = p("/api/admin/**");
        assert!(r.matches("/api/admin").is_some());
        assert!(r.matches("/api/admin/").is_some());
        assert!(r.matches("/api/admin/users/1").is_some());
        assert!(r.matches("/api/administrator").is_none());
        assert!(p("/**").matches("/").is_some());
        assert!(p("/**").matches("/anything/at/all").is_some());
    }

    #[test]
    fn params_and_star() {
        let r = p("/tenants/{tenant}/items/*");
        assert_eq!(
            r.matches("/tenants/acme/items/7").unwrap(),
            vec![("tenant", "acme")]
        );
        assert!(r.matches("/tenants/acme/items").is_none());
        assert!(r.matches("/tenants/acme/items/7/8").is_none());
        assert!(r.has_param("tenant"));
        assert!(!r.has_param("user_id"));
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(
            Pattern::parse("api"),
            Err(PatternError::NotAbsolute(_))
        ));
        assert!(matches!(
            Pattern::parse("/**/x"),
            Err(PatternError::RestNotLast(_))
        ));
        assert!(matches!(
            Pattern::parse("/{1x}"),
            Err(PatternError::BadParam { .. })
        ));
        assert!(matches!(
            Pattern::parse("/{a}/{a}"),
            Err(PatternError::DuplicateParam { .. })
        ));
        assert!(matches!(
            Pattern::parse("/a*"),
            Err(PatternError::BadSegment { .. })
        ));
        assert!(matches!(
            Pattern::parse("/a//b"),
            Err(PatternError::EmptySegment(_))
        ));
        assert!(matches!(
            Pattern::parse("/a/../b"),
            Err(PatternError::DotSegment { .. })
        ));
        assert!(matches!(
            Pattern::parse("/a?b"),
            Err(PatternError::BadChar { .. })
        ));
        assert_eq!(
            Pattern::parse("/api/").unwrap(),
            Pattern::parse("/api").unwrap()
        );
    }

    #[test]
    fn overlong_paths_match_nothing() {
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert!(p("/**").matches(&deep).is_none());
        assert!(p("/**").matches(&"/a".repeat(MAX_SEGMENTS)).is_some());
    }

    #[test]
    fn coverage_for_shadow_warnings() {
        assert!(p("/api/**").covers(&p("/api/admin/**")));
        assert!(p("/api/{x}").covers(&p("/api/admin")));
        assert!(!p("/api/admin").covers(&p("/api/{x}")));
        assert!(!p("/api/admin/**").covers(&p("/api/**")));
        assert!(!p("/api/*").covers(&p("/api/**")));
        assert!(p("/**").covers(&p("/")));
    }

    proptest::proptest! {
        /// A pattern that covers another matches every path the other matches.
        #[test]
        fn covers_is_sound(
            a in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "*", "{p}", "**"]), 0..4),
            b in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "*", "{q}", "**"]), 0..4),
            path in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "c"]), 0..5),
        ) {
            let (Ok(pa), Ok(pb)) = (Pattern::parse(&format!("/{}", a.join("/"))), Pattern::parse(&format!("/{}", b.join("/")))) else {
                return Ok(());
            };
            let path = format!("/{}", path.join("/"));
            if pa.covers(&pb) && pb.matches(&path).is_some() {
                proptest::prop_assert!(pa.matches(&path).is_some());
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,30}") {
            let _ = Pattern::parse(&s);
        }
    }
}
