//! `gatehouse explain --config FILE METHOD URL [-H 'Name: value']...`

use crate::support::{Env, basic};

const CONFIG: &str = r#"[upstream]
url = "http://127.0.0.1:3000"

[defaults]
access = "authenticated"
auth = ["bearer", "api_key"]

[[route]]
name = "admin"
path = "/api/admin/**"
auth = ["bearer", "basic", "api_key"]
roles = ["admin"]
"#;

/// The line `answer: …` and everything after it.
fn answer(stdout: &str) -> &str {
    let i = stdout
        .find("\nanswer: ")
        .unwrap_or_else(|| panic!("no answer line: {stdout}"));
    &stdout[i + 1..]
}

#[test]
fn explain_shows_step_row_and_response() {
    let env = Env::new("explain", CONFIG);
    env.add_user("bob", "bob-password", &["editor"], Some("globex"));
    env.add_user("alice", "alice-password", &["admin"], Some("acme"));

    // (a) No credentials: row 5, 401 with one challenge per scheme of the route.
    let out = env.run(&["explain", "GET", "/api/admin/users"]).ok();
    let a = answer(&out.stdout);
    assert!(
        a.starts_with("answer: 401 `missing_credentials` (row 5"),
        "{a}"
    );
    assert!(a.contains("HTTP/1.1 401 Unauthorized"), "{a}");
    let challenges: Vec<&str> = a
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .collect();
    assert_eq!(challenges.len(), 3, "one per scheme of the route: {a}");
    assert!(challenges[0].contains("Bearer realm=\"api\""), "{a}");
    assert!(challenges[1].contains("Basic realm=\"api\""), "{a}");
    assert!(challenges[2].contains("ApiKey realm=\"api\""), "{a}");
    assert!(a.contains("\"error\": \"missing_credentials\""), "{a}");
    assert!(
        out.stdout
            .contains("matched route `admin` (#1, line 11) by pattern `/api/admin/**`"),
        "{out:#?}"
    );

    // (b) A known user without the role: row 15, 403 with required_roles, no challenge.
    let auth = format!("Authorization: {}", basic("bob", "bob-password"));
    let out = env
        .run(&["explain", "GET", "/api/admin/users", "-H", &auth])
        .ok();
    assert!(out.stdout.contains("verified `bob`"), "{out:#?}");
    let b = answer(&out.stdout);
    assert!(
        b.starts_with("answer: 403 `insufficient_role` (row 15"),
        "{b}"
    );
    assert!(b.contains("HTTP/1.1 403 Forbidden"), "{b}");
    assert!(b.contains("\"required_roles\""), "{b}");
    assert!(
        !b.to_ascii_lowercase().contains("www-authenticate"),
        "403 must not challenge: {b}"
    );

    // A wrong password is 401 invalid_credentials (row 11), the same as an unknown user.
    for who in [("bob", "wrong"), ("nobody", "bob-password")] {
        let auth = format!("Authorization: {}", basic(who.0, who.1));
        let out = env
            .run(&["explain", "GET", "/api/admin/users", "-H", &auth])
            .ok();
        let w = answer(&out.stdout);
        assert!(
            w.starts_with("answer: 401 `invalid_credentials` (row 11"),
            "{w}"
        );
    }

    // (c) Allowed: forwarded, with the identity the upstream would see. An absolute URL
    // works too.
    let auth = format!("Authorization: {}", basic("alice", "alice-password"));
    let out = env
        .run(&[
            "explain",
            "get",
            "http://gw.example/api/admin/users?page=2",
            "-H",
            &auth,
        ])
        .ok();
    assert!(
        out.stdout
            .starts_with("request: GET /api/admin/users?page=2 from 127.0.0.1"),
        "{out:#?}"
    );
    let c = answer(&out.stdout);
    assert!(
        c.starts_with("answer: forwarded to the upstream `http://127.0.0.1:3000`"),
        "{c}"
    );
    assert!(c.contains("X-Gatehouse-User: alice"), "{c}");

    // (d) A `..` path, raw or percent-encoded, is 400 invalid_path before any route.
    for path in ["/api/../admin/users", "/api/%2e%2e/admin/users"] {
        let out = env.run(&["explain", "GET", path]).ok();
        let d = answer(&out.stdout);
        assert!(d.starts_with("answer: 400 `invalid_path`"), "{d}");
        assert!(d.contains("HTTP/1.1 400 Bad Request"), "{d}");
        assert!(d.contains("\"error\": \"invalid_path\""), "{d}");
        assert!(out.stdout.contains("`..`"), "{out:#?}");
    }
}

#[test]
fn explain_names_the_unmet_requirements() {
    let config = format!(
        "{CONFIG}
[[route]]
name = \"checkout\"
path = \"/checkout/**\"
auth = [\"basic\"]

[[route.require]]
attribute = \"email_verified\"
present = true
code = \"email_unverified\"

[[route.require]]
attribute = \"payment_method\"
present = true
code = \"payment_method_required\"
message = \"Add a payment method.\"
"
    );
    let env = Env::new("explain-require", &config);
    env.add_user("bob", "bob-password", &["editor"], None);
    env.run(&["user", "set", "bob", "email_verified=true"]).ok();
    let auth = format!("Authorization: {}", basic("bob", "bob-password"));
    let out = env
        .run(&["explain", "GET", "/checkout/x", "-H", &auth])
        .ok();
    assert!(
        out.stdout
            .contains("requirements: unmet: [payment_method_required]"),
        "{out:#?}"
    );
    let a = answer(&out.stdout);
    assert!(
        a.starts_with("answer: 403 `requirement_not_met` (row 25"),
        "{a}"
    );
    assert!(a.contains("\"code\": \"payment_method_required\""), "{a}");
}

#[test]
fn explain_rejects_bad_input() {
    let env = Env::new("explain-bad", CONFIG);
    env.run(&["explain", "GET", "/x", "-H", "no colon here"])
        .fails_with("`no colon here` is not `Name: value`");
    env.run(&["explain", "GET", "/x", "-H", "Bad Name: v"])
        .fails_with("header name `Bad Name` is not valid");
    env.run(&["explain", "GET"]).fails_with("URL");
    env.write_config("[server]\nlisen = \"x\"\n");
    env.run(&["explain", "GET", "/x"])
        .fails_with("unknown key `lisen`");
}

#[test]
fn explain_works_with_the_store_unreachable() {
    let env = Env::new("explain-offline", CONFIG);
    // A store under a directory that does not exist cannot be opened.
    let missing = env.dir.path.join("no-such-dir").join("g.db");
    std::fs::write(
        &env.config,
        format!(
            "[store]\nurl = \"sqlite://{}\"\n\n{CONFIG}",
            missing.display()
        ),
    )
    .expect("write config");

    // Everything before verification is explained: row 5 with the route's challenges.
    let out = env.run(&["explain", "GET", "/api/admin/users"]).ok();
    assert!(out.stdout.contains("explaining without it"), "{out:#?}");
    assert!(
        out.stdout
            .contains("matched route `admin` (#1, line 11) by pattern `/api/admin/**`"),
        "{out:#?}"
    );
    let a = answer(&out.stdout);
    assert!(
        a.starts_with("answer: 401 `missing_credentials` (row 5"),
        "{a}"
    );
    assert!(a.contains("Basic realm=\"api\""), "{a}");

    // Rows 7 and 6 need no store either.
    let out = env
        .run(&[
            "explain",
            "GET",
            "/api/admin/users",
            "-H",
            "Authorization: Negotiate abc",
        ])
        .ok();
    assert!(
        answer(&out.stdout).starts_with("answer: 401 `unsupported_scheme` (row 6"),
        "{out:#?}"
    );

    // A credential to verify: the answer names the step that needs the store.
    let auth = format!("Authorization: {}", basic("bob", "bob-password"));
    let out = env
        .run(&["explain", "GET", "/api/admin/users", "-H", &auth])
        .ok();
    assert!(
        out.stdout.contains("one `basic` credential presented"),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains("verify: needs the store: verifying the `basic` credential"),
        "{out:#?}"
    );
    assert!(
        answer(&out.stdout).starts_with("answer: needs the store"),
        "{out:#?}"
    );
}

/// Row 26: `explain` names the client's country from `[geoip] database`, and says so when it
/// cannot read the database.
#[test]
fn explain_names_the_country_and_needs_the_database() {
    let env = Env::new("explain-geo", "");
    let db = env.dir.write("countries.mmdb", "");
    std::fs::write(
        &db,
        gatehouse_testkit::mmdb::country_db(&[("198.51.100.0/24", "US"), ("203.0.113.0/24", "DE")]),
    )
    .expect("write the database");
    env.write_config(&format!(
        "[geoip]\ndatabase = \"{}\"\n\n[[route]]\nname = \"eu\"\npath = \"/eu/**\"\ncountries = [\"DE\"]\ngeo_status = 451\nblocked_by = \"https://law.example/order\"\n",
        db.display()
    ));
    let out = env
        .run(&["explain", "GET", "/eu/x", "--client-ip", "198.51.100.9"])
        .ok();
    assert!(
        out.stdout.contains("country: the client address is in country `US` (MaxMind DB, `[geoip] database`): refused by countries [DE]"),
        "{out:#?}"
    );
    let a = answer(&out.stdout);
    assert!(a.starts_with("answer: 451 `geo_blocked` (row 26"), "{a}");
    assert!(
        a.contains("link: <https://law.example/order>; rel=\"blocked-by\""),
        "{a}"
    );
    assert!(a.contains("\"country\": \"US\""), "{a}");
    let out = env
        .run(&["explain", "GET", "/eu/x", "--client-ip", "203.0.113.9"])
        .ok();
    assert!(out.stdout.contains("in country `DE`"), "{out:#?}");
    assert!(
        answer(&out.stdout).starts_with("answer: 401 `missing_credentials`"),
        "{out:#?}"
    );
    // Without a readable database: the step that needs it, and no answer made up.
    std::fs::remove_file(&db).expect("remove the database");
    let out = env
        .run(&["explain", "GET", "/eu/x", "--client-ip", "198.51.100.9"])
        .ok();
    assert!(
        out.stdout.contains(
            "country: needs the country database (`[geoip] database`): [geoip] database `"
        ),
        "{out:#?}"
    );
    assert!(
        answer(&out.stdout).starts_with("answer: needs the country database: route `eu` decides by the client's country (row 26)"),
        "{out:#?}"
    );
}
