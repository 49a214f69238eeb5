//! A small migrator: ordered SQL files compiled into the binary, each applied once in its own
//! transaction and recorded in `_gatehouse_migrations` with its SHA-256.
//!
//! (`sqlx::migrate!` would do this too but needs sqlx's `macros` feature, which compiles the
//! drivers a second time.)

use sqlx::{Row, SqlitePool};

use crate::error::StoreError;
use crate::shared::{AppliedMigration, Migration, check_order, checksum, latest};

/// Every migration this build knows, oldest first. Append only; never edit a released one.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "identity",
        sql: include_str!("../../migrations/sqlite/0002_identity.sql"),
    },
    Migration {
        version: 3,
        description: "audit",
        sql: include_str!("../../migrations/sqlite/0003_audit.sql"),
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _gatehouse_migrations (
    version     INTEGER NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    checksum    BLOB    NOT NULL,
    applied_at  INTEGER NOT NULL
) STRICT";

/// Brings the database up to the newest migration in `migrations`; a no-op when it is there.
///
/// Refuses a database with a version this build does not know, and one whose applied
/// migrations differ from ours. Safe against another process migrating at the same time:
/// each step re-checks under `BEGIN IMMEDIATE` (the write lock) before applying.
pub(super) async fn run(pool: &SqlitePool, migrations: &[Migration]) -> Result<(), StoreError> {
    check_order(migrations)?;
    sqlx::query(CREATE_TABLE)
        .execute(pool)
        .await
        .map_err(|e| StoreError::db("create migrations table", e))?;

    for migration in migrations {
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| StoreError::db("begin migration", e))?;
        let recorded = sqlx::query("SELECT version, checksum FROM _gatehouse_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| StoreError::db("read migrations", e))?;
        let mut already_applied = false;
        for row in &recorded {
            let version: i64 = row
                .try_get("version")
                .map_err(|e| StoreError::db("read migrations", e))?;
            let sum: Vec<u8> = row
                .try_get("checksum")
                .map_err(|e| StoreError::db("read migrations", e))?;
            match migrations.iter().find(|m| m.version == version) {
                None => {
                    return Err(StoreError::SchemaTooNew {
                        found: version,
                        supported: latest(migrations),
                    });
                }
                Some(known) if checksum(known.sql) != sum => {
                    return Err(StoreError::MigrationChanged { version });
                }
                Some(_) => already_applied |= version == migration.version,
            }
        }
        if already_applied {
            // Dropping `tx` rolls back the (empty) transaction.
            continue;
        }
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::db("apply migration", e))?;
        sqlx::query(
            "INSERT INTO _gatehouse_migrations (version, description, checksum, applied_at)
             VALUES (?, ?, ?, unixepoch())",
        )
        .bind(migration.version)
        .bind(migration.description)
        .bind(checksum(migration.sql))
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::db("record migration", e))?;
        tx.commit()
            .await
            .map_err(|e| StoreError::db("commit migration", e))?;
    }
    Ok(())
}

pub(super) async fn applied(pool: &SqlitePool) -> Result<Vec<AppliedMigration>, StoreError> {
    let rows = sqlx::query(
        "SELECT version, description, applied_at FROM _gatehouse_migrations ORDER BY version",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| StoreError::db("read migrations", e))?;
    rows.iter()
        .map(|row| {
            Ok(AppliedMigration {
                version: row.try_get("version")?,
                description: row.try_get("description")?,
                applied_at: row.try_get("applied_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| StoreError::db("read migrations", e))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
