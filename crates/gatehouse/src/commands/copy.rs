//! `gatehouse copy --from URL --to URL`: every record of one store into another, empty one
//! (design §5: a single-node install becomes a cluster, or the way back). The source is
//! only read; the target is migrated, then filled in one transaction that is checked table
//! by table against the source before it commits (`Store::import_from`).
//!
//! Exit status: 0 copied; 2 bad input (a malformed or unusable URL, the same store twice, a
//! missing source file, a target that holds records), with one line on stderr; 1 anything
//! else (an unreachable database, a schema of another version, a source that changed during
//! the copy). No message shows a URL's password.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use gatehouse_store::{RecordCounts, StoreError, open_store, open_store_read_only};

/// Exit status for bad input.
const EXIT_BAD_INPUT: u8 = 2;

pub async fn copy(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let (shown_from, shown_to) = (redact(from), redact(to));
    if let Some(problem) = refuse(from, to) {
        return Ok(bad_input(&problem));
    }
    let source = match open_store_read_only(from).await {
        Ok(store) => store,
        Err(e @ (StoreError::InvalidUrl(_) | StoreError::NotFound { .. })) => {
            return Ok(bad_input(&format!("--from `{shown_from}`: {e}")));
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the store `{shown_from}`"));
        }
    };
    let target = match open_store(to).await {
        Ok(store) => store,
        Err(e @ StoreError::InvalidUrl(_)) => {
            return Ok(bad_input(&format!("--to `{shown_to}`: {e}")));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open the store `{shown_to}`")),
    };
    let counts = match target.import_from(&*source).await {
        Ok(counts) => counts,
        Err(e @ StoreError::NotEmpty { .. }) => {
            return Ok(bad_input(&format!(
                "cannot copy into `{shown_to}`: {e}; nothing was written"
            )));
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot copy `{shown_from}` into `{shown_to}`"));
        }
    };
    print_counts(&shown_from, &shown_to, &counts);
    Ok(ExitCode::SUCCESS)
}

fn bad_input(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

fn print_counts(from: &str, to: &str, counts: &RecordCounts) {
    println!("copied `{from}` into `{to}`:");
    for (table, rows) in counts.tables() {
        println!("  {table:<16}{rows:>10}");
    }
    println!("every table holds as many rows as the source's");
}

/// Why the pair of URLs cannot be copied before any database is opened, if it cannot.
fn refuse(from: &str, to: &str) -> Option<String> {
    if is_memory(to) {
        return Some(format!(
            "--to `{to}`: an in-memory database vanishes when the command ends; copy into a file \
             (`sqlite://path`) or PostgreSQL"
        ));
    }
    let same = from == to
        || matches!(
            (sqlite_file(from), sqlite_file(to)),
            (Some(a), Some(b)) if canonical(&a) == canonical(&b)
        );
    same.then(|| format!("--from and --to name the same store (`{}`)", redact(to)))
}

fn is_memory(url: &str) -> bool {
    url.strip_prefix("sqlite:")
        .map(|rest| rest.strip_prefix("//").unwrap_or(rest))
        .is_some_and(|rest| {
            let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
            database == ":memory:" || params.split('&').any(|p| p == "mode=memory")
        })
}

/// The file a `sqlite:` URL names.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// `path` with its directory resolved (the file itself may not exist yet).
fn canonical(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// `url` with any password replaced by `***`: the one of `user:password@host` and a
/// `password=` query parameter (libpq reads both).
fn redact(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{user}:***@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://gate:hunter2@db:5432/gatehouse"),
            "postgres://gate:***@db:5432/gatehouse"
        );
        assert_eq!(
            redact("postgresql://gate:p%40ss@db/g?sslmode=require&password=hunter2"),
            "postgresql://gate:***@db/g?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgres://a:b:c@d@host/db"),
            "postgres://a:***@host/db",
            "the last @ ends the userinfo"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/test?options=-c%20search_path%3Dx"),
            "postgres://postgres@127.0.0.1/test?options=-c%20search_path%3Dx"
        );
        assert_eq!(redact("sqlite://gatehouse.db"), "sqlite://gatehouse.db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn the_same_store_twice_is_refused() {
        assert!(refuse("sqlite://a.db", "sqlite://a.db").is_some());
        assert!(refuse("sqlite://a.db", "sqlite:./a.db").is_some());
        assert!(refuse("sqlite://a.db", "sqlite://b.db").is_none());
        assert!(refuse("sqlite://a.db", "postgres://h/db").is_none());
        let same = refuse("postgres://u:pw@h/db", "postgres://u:pw@h/db").unwrap_or_default();
        assert!(same.contains("u:***@h") && !same.contains("pw"), "{same}");
        assert!(refuse("sqlite://a.db", "sqlite::memory:").is_some());
        assert!(refuse("sqlite://a.db", "sqlite://x.db?mode=memory").is_some());
    }
}
