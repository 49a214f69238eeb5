//! `gatehouse user …`, `key …` and `import-htpasswd`.

use std::path::PathBuf;

use crate::support::{Env, basic, json_lines};

fn user<'a>(users: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    users
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no user {name} in {users:#?}"))
}

#[test]
fn user_add_list_suspend_unsuspend() {
    let env = Env::new("users", "");
    let out = env
        .run_stdin(
            &[
                "user",
                "add",
                "bob",
                "--role",
                "editor",
                "--role",
                "ops",
                "--tenant",
                "globex",
                "--password-stdin",
            ],
            "bob-password\n",
        )
        .ok();
    assert!(out.stdout.contains("created user `bob`"), "{out:#?}");
    assert!(
        !out.stdout.contains("bob-password") && !out.stderr.contains("bob-password"),
        "the password was echoed: {out:#?}"
    );

    // Bad input: a duplicate, no --password-stdin, an empty password, a bad name.
    env.run_stdin(&["user", "add", "bob", "--password-stdin"], "other\n")
        .fails_with("user `bob` already exists");
    env.run_stdin(&["user", "add", "dave"], "pw\n")
        .fails_with("--password-stdin");
    env.run_stdin(&["user", "add", "dave", "--password-stdin"], "\n")
        .fails_with("empty");
    env.run_stdin(&["user", "add", "da:ve", "--password-stdin"], "pw\n")
        .fails_with("`da:ve` is not valid");

    let table = env.run(&["user", "list"]).ok().stdout;
    let header = table.lines().next().unwrap_or_default();
    for col in ["NAME", "ROLES", "TENANT", "STATUS"] {
        assert!(header.contains(col), "{table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("bob "))
        .unwrap_or_else(|| panic!("no row for bob: {table}"));
    assert!(
        row.contains("editor,ops") && row.contains("globex") && row.contains("active"),
        "{row}"
    );
    assert_eq!(table.lines().count(), 2, "only bob was created: {table}");

    let users = env.users();
    assert_eq!(users.len(), 1, "{users:#?}");
    let bob = user(&users, "bob");
    assert_eq!(bob["roles"], serde_json::json!(["editor", "ops"]));
    assert_eq!(bob["tenant"], "globex");
    assert_eq!(bob["status"], "active");

    let out = env
        .run(&[
            "user",
            "suspend",
            "bob",
            "--reason",
            "Terms of Service violation",
        ])
        .ok();
    assert!(out.stdout.contains("suspended `bob`"), "{out:#?}");
    let table = env.run(&["user", "list"]).ok().stdout;
    assert!(
        table.contains("suspended (Terms of Service violation)"),
        "{table}"
    );
    let users = env.users();
    let bob = user(&users, "bob");
    assert_eq!(bob["status"], "suspended");
    assert_eq!(bob["reason"], "Terms of Service violation");
    assert!(bob["suspended_at"].is_string(), "{bob}");

    env.run(&["user", "unsuspend", "bob"]).ok();
    let users = env.users();
    let bob = user(&users, "bob");
    assert_eq!(bob["status"], "active");
    assert!(bob["reason"].is_null(), "{bob}");

    env.run(&["user", "suspend", "nobody", "--reason", "x"])
        .fails_with("no user `nobody`");
    env.run(&["user", "unsuspend", "nobody"])
        .fails_with("no user `nobody`");
    env.run(&["user", "suspend", "bob"]).fails_with("--reason");
}

#[test]
fn user_set_unset_attributes_shown_by_list() {
    let env = Env::new("attributes", "");
    env.add_user("bob", "bob-password", &["editor"], None);
    let out = env
        .run(&[
            "user",
            "set",
            "bob",
            "email_verified=true",
            "credits=10",
            "plan=pro",
            r#"groups=["beta","eu"]"#,
            r#"zip="01234""#,
        ])
        .ok();
    assert!(out.stdout.contains("attributes of `bob`"), "{out:#?}");
    let users = env.users();
    assert_eq!(
        user(&users, "bob")["attributes"],
        serde_json::json!({
            "credits": 10, "email_verified": true, "groups": ["beta", "eu"],
            "plan": "pro", "zip": "01234"
        })
    );
    env.run(&["user", "unset", "bob", "groups", "zip"]).ok();
    env.run(&["user", "set", "bob", "plan=team"]).ok();
    let users = env.users();
    assert_eq!(
        user(&users, "bob")["attributes"],
        serde_json::json!({"credits": 10, "email_verified": true, "plan": "team"})
    );
    // Bad input: no `=`, a bad name, an unknown user, nothing to set.
    env.run(&["user", "set", "bob", "verified"])
        .fails_with("is not `KEY=VALUE`");
    env.run(&["user", "set", "bob", "e-mail=x"])
        .fails_with("invalid attribute name `e-mail`");
    env.run(&["user", "set", "nobody", "a=1"])
        .fails_with("no user `nobody`");
    env.run(&["user", "unset", "bob", "9x"])
        .fails_with("invalid attribute name");
    env.run(&["user", "set", "bob"]).fails_with("KEY=VALUE");
}

#[test]
fn key_create_list_revoke() {
    let env = Env::new("keys", "");
    env.add_user("bob", "bob-password", &["editor"], None);

    let out = env
        .run(&[
            "key",
            "create",
            "--user",
            "bob",
            "--scope",
            "posts:read",
            "--scope",
            "posts:write",
            "--read-only",
            "--expires",
            "90d",
        ])
        .ok();
    let key = out.stdout.lines().last().unwrap_or_default().to_owned();
    assert!(key.starts_with("gh_"), "last line is not the key: {out:#?}");
    assert!(!key.contains(' '), "the key is alone on its line: {key:?}");
    // `gh_<prefix>_<secret>`
    let mut parts = key.splitn(3, '_');
    let (_, prefix, secret) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
    assert!(secret.len() >= 20, "{key}");

    let table = env.run(&["key", "list"]).ok().stdout;
    let id = format!("key_{prefix}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}: {table}"));
    assert!(
        row.contains("bob") && row.contains("posts:read posts:write"),
        "{row}"
    );
    assert!(
        row.contains("read-only") && row.contains("active until"),
        "{row}"
    );
    let json = env.run(&["key", "list", "--json"]).ok().stdout;
    for listing in [&table, &json] {
        assert!(!listing.contains(secret), "the secret is listed: {listing}");
    }
    let keys = json_lines(&json);
    assert_eq!(keys.len(), 1, "{keys:#?}");
    assert_eq!(keys[0]["id"], id.as_str());
    assert_eq!(keys[0]["read_only"], true);
    assert!(keys[0]["expires_at"].is_string() && keys[0]["revoked_at"].is_null());

    // A second key, revoked by its prefix; the first by its id.
    let second = env.run(&["key", "create", "--user", "bob"]).ok().stdout;
    let second_prefix = second.lines().last().unwrap().split('_').nth(1).unwrap();
    env.run(&["key", "revoke", &id]).ok();
    env.run(&["key", "revoke", second_prefix]).ok();
    let table = env.run(&["key", "list"]).ok().stdout;
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().all(|r| r.ends_with("revoked")), "{table}");
    let keys = json_lines(&env.run(&["key", "list", "--json"]).ok().stdout);
    assert!(
        keys.iter().all(|k| k["revoked_at"].is_string()),
        "{keys:#?}"
    );

    env.run(&["key", "revoke", "key_nothere"])
        .fails_with("no API key `key_nothere`");

    // The full key as printed revokes it too (a person holding a leaked key pastes it), as
    // an argument or from standard input (`-`); a key-shaped string whose secret does not
    // match revokes nothing, and no full key is ever echoed.
    let leaked = |env: &Env| {
        let out = env.run(&["key", "create", "--user", "bob"]).ok().stdout;
        out.lines().last().unwrap().to_owned()
    };
    let state_of = |env: &Env, full: &str| {
        let id = format!("key_{}", full.split('_').nth(1).unwrap());
        let keys = json_lines(&env.run(&["key", "list", "--json"]).ok().stdout);
        let k = keys.into_iter().find(|k| k["id"] == id.as_str()).unwrap();
        k["revoked_at"].is_string()
    };
    let full = leaked(&env);
    // Same prefix, one character of the secret changed (not the last: its low bits are
    // padding), so the key still parses and only the hash tells it apart.
    let at = full.len() - 5;
    let swapped = if &full[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &full[..at], &full[at + 1..]);
    let out = env
        .run(&["key", "revoke", &forged])
        .fails_with("no API key matches the key given");
    assert!(!out.stderr.contains(&forged), "{out:#?}");
    assert!(!state_of(&env, &full), "a wrong secret revoked the key");
    let out = env.run(&["key", "revoke", &full]).ok();
    assert!(!out.stdout.contains(&full), "{out:#?}");
    assert!(state_of(&env, &full), "the full key did not revoke it");
    let piped = leaked(&env);
    env.run_stdin(&["key", "revoke", "-"], &format!("{piped}\n"))
        .ok();
    assert!(
        state_of(&env, &piped),
        "the key from stdin did not revoke it"
    );
    let out = env
        .run(&["key", "create", "--user", "bob", "--expires", "1x"])
        .fails_with("`1x`");
    assert!(out.stdout.is_empty(), "no key printed on error: {out:#?}");
    env.run(&["key", "create", "--user", "nobody"])
        .fails_with("no user `nobody`");
    assert_eq!(
        json_lines(&env.run(&["key", "list", "--json"]).ok().stdout).len(),
        4,
        "failed creates made no keys"
    );
}

fn vectors(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gatehouse-core/testdata/htpasswd")
        .join(name)
}

/// Verifies `user:password` through `explain`: the hash must work, not just be stored.
fn verifies(env: &Env, user: &str, password: &str) {
    let auth = format!("Authorization: {}", basic(user, password));
    let out = env.run(&["explain", "GET", "/api/x", "-H", &auth]).ok();
    assert!(
        out.stdout.contains(&format!("verified `{user}`")),
        "{user} did not verify: {out:#?}"
    );
}

#[test]
fn import_htpasswd_bcrypt_apr1_sha() {
    let env = Env::new("htpasswd", "[defaults]\nauth = [\"basic\"]\n");
    let file = vectors("supported.htpasswd");
    let out = env
        .run(&[
            "import-htpasswd",
            file.to_str().unwrap(),
            "--role",
            "legacy",
        ])
        .ok();
    assert!(out.stdout.contains("imported 8 user(s)"), "{out:#?}");
    let users = env.users();
    assert_eq!(users.len(), 8, "{users:#?}");
    for name in ["alice", "bob", "carol", "apr-utf8", "carol-utf8"] {
        assert_eq!(user(&users, name)["roles"], serde_json::json!(["legacy"]));
    }
    verifies(&env, "alice", "correct horse"); // $apr1$
    verifies(&env, "bob", "battery staple"); // bcrypt
    verifies(&env, "carol", "secret"); // {SHA}

    // Importing again skips existing users and says so.
    let out = env.run(&["import-htpasswd", file.to_str().unwrap()]).ok();
    assert!(out.stdout.contains("skipped 8"), "{out:#?}");
    assert!(out.stderr.contains("--update"), "{out:#?}");
}

#[test]
fn import_htpasswd_with_a_des_line_imports_nothing() {
    let env = Env::new("htpasswd-des", "");
    let supported = std::fs::read_to_string(vectors("supported.htpasswd")).unwrap();
    let unsupported = std::fs::read_to_string(vectors("unsupported.htpasswd")).unwrap();
    let des = unsupported.lines().find(|l| l.starts_with("des:")).unwrap();
    // Two good lines, then DES on line 3.
    let text = format!(
        "{}\n{des}\n",
        supported.lines().take(2).collect::<Vec<_>>().join("\n")
    );
    let file = env.dir.write("mixed.htpasswd", &text);
    let out = env
        .run(&["import-htpasswd", file.to_str().unwrap()])
        .fails_with("nothing was imported");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("DES"))
        .unwrap_or_else(|| panic!("no DES error: {out:#?}"));
    assert!(line.contains("line 3") && line.contains("`des`"), "{line}");
    assert!(env.users().is_empty(), "a rejected file imported users");

    env.run(&["import-htpasswd", "no-such-file"])
        .fails_with("cannot read `no-such-file`");
}
