//! The shared migrator (`src/queries/migrate.rs`) on SQLite: steps apply once, upgrades add only
//! the new steps, and a newer, edited or failing migration leaves the database as it was.

use sqlx::{Row, SqlitePool};

use super::dialect::MIGRATIONS;
use super::queries::migrate::{applied, run};
use crate::error::StoreError;
use crate::shared::{Migration, check_order, latest};

async fn pool() -> Result<SqlitePool, StoreError> {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await
        .map_err(|e| StoreError::db("open", e))
}

const FIRST: Migration = Migration {
    version: 1,
    description: "one",
    sql: "CREATE TABLE t (a INTEGER NOT NULL); INSERT INTO t VALUES (1);",
};
const SECOND: Migration = Migration {
    version: 2,
    description: "two",
    sql: "INSERT INTO t VALUES (2);",
};

async fn rows_of_t(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT count(*) FROM t")
        .fetch_one(pool)
        .await?
        .try_get(0)
}

#[test]
fn the_shipped_list_is_ordered() {
    assert!(check_order(MIGRATIONS).is_ok());
    assert_eq!(latest(MIGRATIONS), MIGRATIONS.len() as i64);
    let gap = [
        FIRST,
        Migration {
            version: 3,
            ..SECOND
        },
    ];
    assert!(check_order(&gap).is_err());
}

#[tokio::test]
async fn applies_each_step_once_and_upgrades() -> Result<(), Box<dyn std::error::Error>> {
    let pool = pool().await?;
    run(&pool, &[FIRST]).await?;
    run(&pool, &[FIRST]).await?;
    assert_eq!(rows_of_t(&pool).await?, 1, "step 1 ran twice");
    run(&pool, &[FIRST, SECOND]).await?;
    run(&pool, &[FIRST, SECOND]).await?;
    assert_eq!(rows_of_t(&pool).await?, 2);
    let versions: Vec<i64> = applied(&pool).await?.iter().map(|m| m.version).collect();
    assert_eq!(versions, [1, 2]);
    Ok(())
}

#[tokio::test]
async fn newer_database_is_refused() -> Result<(), Box<dyn std::error::Error>> {
    let pool = pool().await?;
    run(&pool, &[FIRST, SECOND]).await?;
    let err = run(&pool, &[FIRST]).await.err();
    assert_eq!(
        err,
        Some(StoreError::SchemaTooNew {
            found: 2,
            supported: 1
        })
    );
    Ok(())
}

#[tokio::test]
async fn edited_migration_is_refused() -> Result<(), Box<dyn std::error::Error>> {
    let pool = pool().await?;
    run(&pool, &[FIRST]).await?;
    let edited = Migration {
        sql: "CREATE TABLE t (a INTEGER);",
        ..FIRST
    };
    let err = run(&pool, &[edited]).await.err();
    assert_eq!(err, Some(StoreError::MigrationChanged { version: 1 }));
    Ok(())
}

#[tokio::test]
async fn failing_step_leaves_nothing_behind() -> Result<(), Box<dyn std::error::Error>> {
    let pool = pool().await?;
    let broken = Migration {
        version: 2,
        description: "broken",
        sql: "INSERT INTO t VALUES (2); INSERT INTO no_such_table VALUES (1);",
    };
    let err = run(&pool, &[FIRST, broken]).await.err();
    assert!(matches!(err, Some(StoreError::Unavailable(_))), "{err:?}");
    assert_eq!(rows_of_t(&pool).await?, 1, "half of step 2 was kept");
    let versions: Vec<i64> = applied(&pool).await?.iter().map(|m| m.version).collect();
    assert_eq!(versions, [1]);
    Ok(())
}
