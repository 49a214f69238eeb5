//! TOML → [`Config`], collecting every error with its line.
//!
//! The file is parsed into spanned TOML values ([`toml::de::DeTable`]) and walked by hand,
//! so that one pass reports every unknown key, wrong type and invalid value at once (serde
//! derive stops at the first). Each section has its own module (readers several of them share
//! are in `fields`, plain value checks in `values`); the helpers here turn spans
//! into 1-based lines and typed values into [`ConfigError`]s.

mod brand;
#[cfg(test)]
mod doc_coverage;
mod fields;
mod geo;
mod issuers;
mod login_providers;
mod require;
mod route;
mod sections;
mod telemetry;
mod values;

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Config, Window};

pub use values::parse_duration;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `route[2].networks[0]` (array indices are 0-based). Empty for
    /// TOML syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A non-fatal finding (e.g. a route that can never match because an earlier one shadows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Parses and validates a whole config file. Returns the config and its warnings, or every
/// error in the file in line order.
pub fn parse(text: &str) -> Result<(Config, Vec<ConfigWarning>), ConfigErrors> {
    let mut ctx = Ctx::new(text);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            let mut message = format!("invalid toml: {}", e.message());
            let near = ctx.snippet(&span);
            if !near.is_empty() {
                message.push_str(&format!(" (at `{near}`)"));
            }
            ctx.error(&span, "", message);
        }
        return Err(ctx.finish_errors());
    }
    let root = Table {
        map: doc.get_ref(),
        path: String::new(),
        span: doc.span(),
    };
    let config = sections::document(&mut ctx, &root);
    if ctx.errors.is_empty() {
        ctx.warnings.sort_by_key(|w| w.line);
        Ok((config, ctx.warnings))
    } else {
        Err(ctx.finish_errors())
    }
}

/// A byte range in the config text.
type Span = Range<usize>;

/// The messages a config text fails with (none when it parses), for the sections' tests.
#[cfg(test)]
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[cfg(test)]
thread_local! {
    /// `(table path, known keys)` of every table [`Ctx::unknown_keys`] checked on this
    /// thread: the doc-coverage test reads the parser's keys off it.
    static SEEN: std::cell::RefCell<Vec<(String, Vec<String>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Error and warning sink plus line lookup.
struct Ctx<'s> {
    text: &'s str,
    /// Byte offset where each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

impl<'s> Ctx<'s> {
    fn new(text: &'s str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            text,
            line_starts,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset).max(1)
    }

    fn error(&mut self, span: &Span, key: &str, message: impl Into<String>) {
        let line = Some(self.line(span.start));
        self.errors.push(ConfigError {
            line,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn warn(&mut self, line: Option<usize>, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            line,
            message: message.into(),
        });
    }

    /// The source text of a span, first line only, shortened for messages.
    fn snippet(&self, span: &Span) -> String {
        let raw = self.text.get(span.clone()).unwrap_or_default();
        let first = raw.lines().next().unwrap_or_default().trim();
        let mut out: String = first.chars().take(40).collect();
        if out.len() < first.len() {
            out.push('…');
        }
        out
    }

    fn finish_errors(mut self) -> ConfigErrors {
        // Stable: errors on one line keep the order they were found in.
        self.errors.sort_by_key(|e| e.line);
        ConfigErrors(self.errors)
    }

    /// Reports every key of `t` that is not in `known`.
    fn unknown_keys(&mut self, t: &Table<'_, '_>, known: &[&str]) {
        #[cfg(test)]
        SEEN.with_borrow_mut(|seen| {
            seen.push((
                t.path.clone(),
                known.iter().map(|k| (*k).to_owned()).collect(),
            ));
        });
        let mut unknown = Vec::new();
        for (k, _) in t.map.iter() {
            if !known.contains(&k.get_ref().as_ref()) {
                unknown.push((k.span(), k.get_ref().to_string()));
            }
        }
        let expected = known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        for (span, k) in unknown {
            let key = t.key(&k);
            self.error(
                &span,
                &key,
                format!("unknown key `{k}`; expected one of {expected}"),
            );
        }
    }

    /// Reports a missing required key at the table's own span (its header line).
    fn require(&mut self, t: &Table<'_, '_>, key: &str) -> bool {
        let present = t.map.contains_key(key);
        if !present {
            self.error(
                &t.span,
                &t.key(key),
                format!("missing required key `{key}`"),
            );
        }
        present
    }

    fn type_error(&mut self, f: &Field<'_, '_>, expected: &str) {
        let message = format!(
            "expected {expected}, found {} `{}`",
            f.val.type_str(),
            self.snippet(&f.span)
        );
        self.error(&f.span, &f.key, message);
    }

    fn str<'a>(&mut self, f: &Field<'a, '_>) -> Option<&'a str> {
        let s = f.val.as_str();
        if s.is_none() {
            self.type_error(f, "a string");
        }
        s
    }

    /// A string validated by `parse`, whose error message is reported as is.
    fn parsed<T>(
        &mut self,
        f: &Field<'_, '_>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.str(f)?;
        match parse(s) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(&f.span, &f.key, message);
                None
            }
        }
    }

    fn bool(&mut self, f: &Field<'_, '_>) -> Option<bool> {
        let b = f.val.as_bool();
        if b.is_none() {
            self.type_error(f, "`true` or `false`");
        }
        b
    }

    fn u64(&mut self, f: &Field<'_, '_>) -> Option<u64> {
        let Some(i) = f.val.as_integer() else {
            self.type_error(f, "an integer");
            return None;
        };
        let n = u64::from_str_radix(i.as_str(), i.radix()).ok();
        if n.is_none() {
            let message = format!(
                "expected a non-negative integer, found `{}`",
                self.snippet(&f.span)
            );
            self.error(&f.span, &f.key, message);
        }
        n
    }

    fn duration(&mut self, f: &Field<'_, '_>) -> Option<Duration> {
        self.parsed(f, parse_duration)
    }

    /// One of a fixed set of string values.
    fn choice<T: Copy>(&mut self, f: &Field<'_, '_>, choices: &[(&str, T)]) -> Option<T> {
        let s = self.str(f)?;
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == s) {
            return Some(*v);
        }
        let expected = choices
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        self.error(
            &f.span,
            &f.key,
            format!("unknown value `{s}`; expected one of {expected}"),
        );
        None
    }

    fn array<'a, 'i>(&mut self, f: &Field<'a, 'i>) -> Option<Vec<Field<'a, 'i>>> {
        let Some(items) = f.val.as_array() else {
            self.type_error(f, "an array");
            return None;
        };
        Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| Field {
                    val: v.get_ref(),
                    span: v.span(),
                    key: format!("{}[{i}]", f.key),
                })
                .collect(),
        )
    }

    /// An array of strings, each validated by `parse`. `None` if anything was wrong.
    fn list<T>(
        &mut self,
        f: &Field<'_, '_>,
        mut parse: impl FnMut(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let items = self.array(f)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in &items {
            match self.parsed(item, &mut parse) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A section whose one required key is a path (`[geoip] database`, `[pages] dir`): the
    /// path and its line; `empty` is the message for `""`.
    fn path_section(
        &mut self,
        t: &Table<'_, '_>,
        key: &str,
        empty: &str,
    ) -> Option<(std::path::PathBuf, usize)> {
        self.unknown_keys(t, &[key]);
        if !self.require(t, key) {
            return None;
        }
        let f = t.get(key)?;
        let line = self.line(f.span.start);
        let path = self.parsed(&f, |s| {
            if s.trim().is_empty() {
                Err(empty.to_owned())
            } else {
                Ok(std::path::PathBuf::from(s))
            }
        })?;
        Some((path, line))
    }

    /// `list` when it is non-empty and repeats nothing; otherwise `empty`, or "`name` is
    /// listed twice", reported on `f`.
    fn distinct<T: PartialEq>(
        &mut self,
        f: &Field<'_, '_>,
        list: Vec<T>,
        empty: &str,
        name: impl Fn(&T) -> String,
    ) -> Option<Vec<T>> {
        if list.is_empty() {
            self.error(&f.span, &f.key, empty);
            return None;
        }
        if let Some(dup) = list
            .iter()
            .enumerate()
            .find_map(|(i, v)| list[..i].contains(v).then_some(v))
        {
            let message = format!("{} is listed twice", name(dup));
            self.error(&f.span, &f.key, message);
            return None;
        }
        Some(list)
    }

    fn table<'a, 'i>(&mut self, f: &Field<'a, 'i>) -> Option<Table<'a, 'i>> {
        let Some(map) = f.val.as_table() else {
            self.type_error(f, "a table");
            return None;
        };
        Some(Table {
            map,
            path: f.key.clone(),
            span: f.span.clone(),
        })
    }

    /// `{ max = 20, per = "1m" }`: `max` ≥ 1 (fits u32), `per` a duration.
    fn window(&mut self, f: &Field<'_, '_>) -> Option<Window> {
        let t = self.table(f)?;
        self.unknown_keys(&t, &["max", "per"]);
        self.require(&t, "max");
        self.require(&t, "per");
        let max = t.get("max").and_then(|m| {
            let n = self.u64(&m)?;
            match u32::try_from(n) {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    self.error(
                        &m.span,
                        &m.key,
                        format!("`{n}` is out of range: expected 1 to {}", u32::MAX),
                    );
                    None
                }
            }
        });
        let per = t.get("per").and_then(|p| self.duration(&p));
        Some(Window {
            max: max?,
            per: per?,
        })
    }
}

/// A TOML table with the dotted path that leads to it.
struct Table<'a, 'i> {
    map: &'a DeTable<'i>,
    path: String,
    /// The header (`[server]`, `[[route]]`) or inline table.
    span: Span,
}

impl<'a, 'i> Table<'a, 'i> {
    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_owned()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    fn get(&self, k: &str) -> Option<Field<'a, 'i>> {
        let v: &'a Spanned<DeValue<'i>> = self.map.get(k)?;
        Some(Field {
            val: v.get_ref(),
            span: v.span(),
            key: self.key(k),
        })
    }

    /// 1-based line of the table's header.
    fn line(&self, ctx: &Ctx<'_>) -> usize {
        ctx.line(self.span.start)
    }
}

/// One value with its span and dotted key.
struct Field<'a, 'i> {
    val: &'a DeValue<'i>,
    span: Span,
    key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let ctx = Ctx::new("a\nbb\n\nc");
        assert_eq!(ctx.line(0), 1);
        assert_eq!(ctx.line(1), 1);
        assert_eq!(ctx.line(2), 2);
        assert_eq!(ctx.line(5), 3);
        assert_eq!(ctx.line(6), 4);
    }

    #[test]
    fn display_formats() {
        let e = ConfigError {
            line: Some(3),
            key: "server.listen".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "line 3: `server.listen`: bad");
        let e = ConfigError {
            line: Some(1),
            key: String::new(),
            message: "invalid toml".into(),
        };
        assert_eq!(e.to_string(), "line 1: invalid toml");
    }
}
