//! The migrator of the PostgreSQL backend: the same shape as the SQLite one
//! (`src/sqlite/migrate.rs`): ordered SQL files compiled into the binary, each applied once
//! in its own transaction and recorded in `_gatehouse_migrations` with its SHA-256.
//!
//! Several nodes may start at once against one database: each step runs under
//! `pg_advisory_xact_lock`, re-reading what is applied after taking it, so exactly one node
//! applies a step and the others see it recorded.

use sqlx::{PgConnection, PgPool, Row};

use crate::error::StoreError;
use crate::shared::{AppliedMigration, Migration, check_order, checksum, latest};

/// Every migration this build knows, oldest first. Append only; never edit a released one.
/// Versions and descriptions match the SQLite list, so one version number means the same
/// schema on both backends.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "identity",
        sql: include_str!("../../migrations/postgres/0002_identity.sql"),
    },
    Migration {
        version: 3,
        description: "audit",
        sql: include_str!("../../migrations/postgres/0003_audit.sql"),
    },
];

/// Key of the advisory lock migrations take (arbitrary, fixed: "GHMIGRAT").
const MIGRATION_LOCK: i64 = 0x4748_4D49_4752_4154;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _gatehouse_migrations (
    version     BIGINT NOT NULL PRIMARY KEY,
    description TEXT   NOT NULL,
    checksum    BYTEA  NOT NULL,
    applied_at  BIGINT NOT NULL
)";

/// Brings the database up to the newest migration in `migrations`; a no-op when it is there.
///
/// Refuses a database with a version this build does not know, and one whose applied
/// migrations differ from ours.
pub(super) async fn run(pool: &PgPool, migrations: &[Migration]) -> Result<(), StoreError> {
    check_order(migrations)?;
    for migration in migrations {
        let mut tx = pool
            .begin()
            .await
            .map_err(|e| StoreError::db("begin migration", e))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::db("lock migrations", e))?;
        // Under the lock, so two nodes cannot both create it (CREATE TABLE IF NOT EXISTS
        // alone races on the catalog's unique index).
        sqlx::query(CREATE_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::db("create migrations table", e))?;
        let applied = match is_applied(&mut tx, migration, migrations).await {
            Ok(applied) => applied,
            Err(e) => {
                // Roll back now (releasing the lock) rather than when the pool gets to it.
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        if applied {
            tx.rollback()
                .await
                .map_err(|e| StoreError::db("end migration", e))?;
            continue;
        }
        if let Err(e) = sqlx::raw_sql(migration.sql).execute(&mut *tx).await {
            let _ = tx.rollback().await;
            return Err(StoreError::db("apply migration", e));
        }
        sqlx::query(
            "INSERT INTO _gatehouse_migrations (version, description, checksum, applied_at)
             VALUES ($1, $2, $3, extract(epoch FROM now())::bigint)",
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

/// Checks every recorded migration against `migrations` and says whether `migration` is
/// among them.
async fn is_applied(
    conn: &mut PgConnection,
    migration: &Migration,
    migrations: &[Migration],
) -> Result<bool, StoreError> {
    let recorded = sqlx::query("SELECT version, checksum FROM _gatehouse_migrations")
        .fetch_all(conn)
        .await
        .map_err(|e| StoreError::db("read migrations", e))?;
    let mut applied = false;
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
            Some(_) => applied |= version == migration.version,
        }
    }
    Ok(applied)
}

pub(super) async fn applied(pool: &PgPool) -> Result<Vec<AppliedMigration>, StoreError> {
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

    #[test]
    fn the_shipped_list_is_ordered_and_matches_sqlite_versions() {
        assert!(check_order(MIGRATIONS).is_ok());
        assert_eq!(latest(MIGRATIONS), MIGRATIONS.len() as i64);
        assert_eq!(
            latest(MIGRATIONS),
            crate::SqliteStore::supported_schema_version(),
            "both backends must know the same schema versions"
        );
    }
}
