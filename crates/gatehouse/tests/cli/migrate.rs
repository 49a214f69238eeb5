//! `gatehouse migrate`: applies the store's migrations and lists them.

use crate::support::Env;

#[test]
fn migrate_applies_and_lists_the_sqlite_schema() {
    let env = Env::new("migrate", "");
    let out = env.run(&["migrate"]).ok();
    // Every migration this build has, whatever their number.
    let latest = gatehouse_store::SqliteStore::supported_schema_version();
    for v in 1..=latest {
        let v = v.to_string();
        assert!(
            out.stdout.lines().any(|l| l.trim_start().starts_with(&v)),
            "version {v} missing: {}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .contains(&format!("store is at schema version {latest}")),
        "{}",
        out.stdout
    );
    // Idempotent: a second run applies nothing new and says the same.
    let again = env.run(&["migrate"]).ok();
    assert_eq!(out.stdout.lines().count(), again.stdout.lines().count());
}

#[test]
fn migrate_reports_an_unreachable_postgres_without_its_password() {
    let env = Env::new("migrate-pg", "");
    std::fs::write(
        &env.config,
        "[store]\nurl = \"postgres://user:hunter2@127.0.0.1:1/db\"\n",
    )
    .unwrap();
    let out = env.run(&["migrate"]).fails_with("cannot open the store");
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}
