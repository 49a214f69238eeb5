//! `gatehouse check --config FILE`.

use crate::support::{TempDir, run_in};

#[test]
fn check_valid_file_prints_a_summary_and_exits_zero() {
    let dir = TempDir::new("check-ok");
    let db = dir.path.join("g.db");
    let cfg = dir.write(
        "g.toml",
        &format!(
            r#"[server]
listen = "127.0.0.1:18080"

[upstream]
url = "http://127.0.0.1:3000"

[store]
url = "sqlite://{}"

[[route]]
name = "admin"
path = "/api/admin/**"
auth = ["bearer", "basic", "api_key"]
roles = ["admin"]

[[route]]
name = "health"
path = "/api/public/**"
access = "public"
"#,
            db.display()
        ),
    );
    let out = run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "").ok();
    assert!(out.stdout.contains("ok"), "{out:#?}");
    assert!(out.stdout.contains("2 route(s)"), "{out:#?}");
    assert!(
        out.stdout.contains("upstream `http://127.0.0.1:3000`"),
        "{out:#?}"
    );
    assert!(!out.stderr.contains("error"), "{out:#?}");
    // `check` validates only: it must not create the store.
    assert!(!db.exists(), "check created the database");
}

#[test]
fn check_reports_every_error_with_its_line() {
    let dir = TempDir::new("check-errors");
    let cfg = dir.write(
        "bad.toml",
        r#"[server]
lisen = "127.0.0.1:8080"
trusted_proxies = ["10.0.0.999/8"]

[upstream]
url = "http://127.0.0.1:3000"
timeout = "5x"
"#,
    );
    let out = run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "")
        .fails_with("3 error(s)");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    let find = |needle: &str| {
        errors
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no error mentions {needle:?}: {out:#?}"))
    };
    assert!(find("unknown key `lisen`").contains("line 2"), "{out:#?}");
    assert!(find("`10.0.0.999/8`").contains("line 3"), "{out:#?}");
    assert!(find("`5x`").contains("line 7"), "{out:#?}");
    assert!(out.stdout.is_empty(), "no summary for a bad file: {out:#?}");
}

#[test]
fn check_warns_about_a_shadowed_route_and_still_succeeds() {
    let dir = TempDir::new("check-shadow");
    let cfg = dir.write(
        "g.toml",
        r#"[[route]]
name = "api"
path = "/api/**"

[[route]]
name = "admin"
path = "/api/admin/**"
roles = ["admin"]
"#,
    );
    let out = run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "").ok();
    let warning = out
        .stderr
        .lines()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning: {out:#?}"));
    assert!(warning.contains("line 5"), "{warning}");
    assert!(warning.contains("`admin`"), "{warning}");
    assert!(warning.contains("never reached"), "{warning}");
    assert!(out.stdout.contains("2 route(s)"), "{out:#?}");
}

#[test]
fn check_missing_file_or_flag_is_a_clear_error() {
    let dir = TempDir::new("check-missing");
    run_in(&dir.path, &["check", "--config", "nope.toml"], "")
        .fails_with("cannot read `nope.toml`");
    run_in(&dir.path, &["check"], "").fails_with("--config FILE");
}

/// Row 26: a country database that cannot be read is an error of `check`, on its line.
#[test]
fn check_opens_the_country_database() {
    let dir = TempDir::new("check-geoip");
    let db = dir.write("countries.mmdb", "not a database");
    let text = format!(
        "[geoip]\ndatabase = \"{}\"\n\n[[route]]\nname = \"eu\"\npath = \"/eu/**\"\ncountries = [\"DE\"]\n",
        db.display()
    );
    let cfg = dir.write("g.toml", &text);
    let out = run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "")
        .fails_with("line 2: `geoip.database`: [geoip] database `");
    assert!(out.stderr.contains("is not a MaxMind DB"), "{out:#?}");
    std::fs::write(
        &db,
        gatehouse_testkit::mmdb::country_db(&[("203.0.113.0/24", "DE")]),
    )
    .unwrap();
    let out = run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "").ok();
    assert!(out.stdout.contains("ok (1 route(s)"), "{out:#?}");
    // Countries without a database: the route's line.
    let cfg = dir.write(
        "h.toml",
        "[[route]]\nname = \"eu\"\npath = \"/eu/**\"\ncountries = [\"DE\"]\n",
    );
    run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "")
        .fails_with("line 4: `route[0].countries`: route `eu` decides by country");
}

/// `[pages]`: `check` renders every template once with sample data; an error names its file
/// and line.
#[test]
fn check_renders_the_page_templates() {
    let dir = TempDir::new("check-pages");
    let pages = dir.path.join("pages");
    std::fs::create_dir_all(&pages).unwrap();
    std::fs::write(
        pages.join("403.html"),
        "<h1>{{ title }}</h1>\n<p>{{ detail }}</p>\n<p>{{ request_id | shout }}</p>\n",
    )
    .unwrap();
    let text = format!("[pages]\ndir = \"{}\"\n", pages.display());
    let cfg = dir.write("g.toml", &text);
    let file = pages.join("403.html");
    let out = run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "")
        .fails_with(&format!("[pages] `{}:3`", file.display()));
    assert!(out.stderr.contains("shout"), "{out:#?}");
    std::fs::write(pages.join("403.html"), "<h1>{{ title }}</h1>\n{% if %}\n").unwrap();
    run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "")
        .fails_with(&format!("[pages] `{}:2`", file.display()));
    std::fs::write(pages.join("403.html"), "<h1>{{ title }}</h1>\n").unwrap();
    run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "").ok();
}

/// Issue 13: a `when` calling a function CEL's standard library does not have, or one with
/// the wrong number of arguments, is caught by `check` with its line — not at the first
/// request, which would be refused with `condition_error`.
#[test]
fn check_rejects_unknown_functions_in_conditions() {
    let dir = TempDir::new("check-cel");
    let cfg = dir.write(
        "g.toml",
        r#"[[route]]
name = "shop"
path = "/shop/{id}"
when = 'principal.foo.bar(1)'

[[route.require]]
when = 'nosuchfn(request.path)'
code = "x"

[[route.require]]
when = 'size(request.params.id, 2) == 1'
code = "y"
"#,
    );
    let out = run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "")
        .fails_with("3 error(s)");
    for needle in [
        "line 4: `route[0].when`: unknown function `bar` (`x.bar(…)`) in `principal.foo.bar(1)`",
        "line 7: `route[0].require[0].when`: unknown function `nosuchfn`",
        "line 11: `route[0].require[1].when`: `size(…)` takes 1 argument, not 2",
    ] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("error:") && l.contains(needle)),
            "{needle}: {out:#?}"
        );
    }
    // Fixed, the same file checks.
    let cfg = dir.write(
        "g.toml",
        "[[route]]\nname = \"shop\"\npath = \"/shop/{id}\"\n\
         when = 'request.path.startsWith(\"/shop/\") && size(request.params.id) < 9'\n",
    );
    run_in(&dir.path, &["check", "--config", cfg.to_str().unwrap()], "").ok();
}
