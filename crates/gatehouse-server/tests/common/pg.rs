//! The end-to-end suites on PostgreSQL: with `GATEHOUSE_TEST_STORE=postgres` and
//! `GATEHOUSE_TEST_POSTGRES_URL` set, every harness gets a store in a schema of its own,
//! dropped when the harness is (`.ci/run` runs the semantics suites this way too).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

/// The PostgreSQL URL to use, when the run asks for PostgreSQL. Asking without a URL is a
/// mistake, not a reason to test SQLite again under PostgreSQL's name.
pub fn wanted() -> Option<String> {
    if std::env::var("GATEHOUSE_TEST_STORE").ok().as_deref() != Some("postgres") {
        return None;
    }
    let url = gatehouse_testkit::env("GATEHOUSE_TEST_POSTGRES_URL");
    assert!(
        url.is_some(),
        "GATEHOUSE_TEST_STORE=postgres needs GATEHOUSE_TEST_POSTGRES_URL: {}",
        gatehouse_testkit::POSTGRES.how
    );
    url
}

/// A schema of its own, dropped (with everything in it) on drop.
pub struct Schema {
    base: String,
    pub name: String,
}

impl Schema {
    pub async fn create(base: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "gh_e2e_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(base)
            .await
            .expect("connect to PostgreSQL");
        // `name` is [a-z0-9_] only.
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create schema");
        let _ = conn.close().await;
        Self {
            base: base.to_owned(),
            name,
        }
    }

    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}options=-c%20search_path%3D{n}&application_name={n}",
            self.base,
            n = self.name
        )
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&base).await.ok()?;
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                )
                .bind(&name)
                .execute(&mut conn)
                .await;
                let _ = sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")))
                    .execute(&mut conn)
                    .await;
                conn.close().await.ok()
            })
        })
        .join();
    }
}
