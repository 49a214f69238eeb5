//! A small migrator, shared by both backends (see `src/queries.rs`): ordered SQL files
//! compiled into the binary (each backend's `dialect::MIGRATIONS`), each applied once in its
//! own transaction and recorded in `_gatehouse_migrations` with its SHA-256.
//!
//! (`sqlx::migrate!` would do this too but needs sqlx's `macros` feature, which compiles the
//! drivers a second time.)

use sqlx::{Pool, Row};

use super::dialect::{
    CREATE_MIGRATIONS_TABLE, Connection, Db, MIGRATIONS_TABLE_EXISTS, RECORD_MIGRATION,
    begin_migration,
};
use crate::error::StoreError;
use crate::shared::{AppliedMigration, Migration, check_order, checksum, latest};

/// Brings the database up to the newest migration in `migrations`; a no-op when it is there.
///
/// Refuses a database with a version this build does not know, and one whose applied
/// migrations differ from ours. Safe against another process migrating at the same time:
/// each step re-checks what is applied inside its transaction, which `begin_migration` makes
/// exclusive (`BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL).
pub(crate) async fn run(pool: &Pool<Db>, migrations: &[Migration]) -> Result<(), StoreError> {
    check_order(migrations)?;
    for migration in migrations {
        let mut tx = begin_migration(pool).await?;
        let step = async {
            // Created only when missing (PostgreSQL would log a notice for each step that
            // runs `CREATE TABLE IF NOT EXISTS` on an existing table).
            let has_table: bool = sqlx::query_scalar(MIGRATIONS_TABLE_EXISTS)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::db("read migrations", e))?;
            if !has_table {
                sqlx::query(CREATE_MIGRATIONS_TABLE)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::db("create migrations table", e))?;
            }
            if recorded_versions(&mut tx, migrations)
                .await?
                .contains(&migration.version)
            {
                return Ok(false);
            }
            sqlx::raw_sql(migration.sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::db("apply migration", e))?;
            sqlx::query(RECORD_MIGRATION)
                .bind(migration.version)
                .bind(migration.description)
                .bind(checksum(migration.sql))
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::db("record migration", e))?;
            Ok(true)
        }
        .await;
        match step {
            Ok(true) => tx
                .commit()
                .await
                .map_err(|e| StoreError::db("commit migration", e))?,
            // Roll back now (releasing the lock) rather than when the pool gets to it.
            Ok(false) => tx
                .rollback()
                .await
                .map_err(|e| StoreError::db("end migration", e))?,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The versions recorded in the migrations table, each checked against `migrations`:
/// `SchemaTooNew` for a version this build does not know, `MigrationChanged` for one whose
/// SQL differs.
async fn recorded_versions(
    conn: &mut Connection,
    migrations: &[Migration],
) -> Result<Vec<i64>, StoreError> {
    let recorded = sqlx::query("SELECT version, checksum FROM _gatehouse_migrations")
        .fetch_all(conn)
        .await
        .map_err(|e| StoreError::db("read migrations", e))?;
    let mut versions = Vec::with_capacity(recorded.len());
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
            Some(_) => versions.push(version),
        }
    }
    Ok(versions)
}

/// Checks, without changing anything, that the database is at exactly the schema of
/// `migrations`: `SchemaTooOld` when a step is missing (0 for a database without any, such
/// as an empty one or another program's), else as [`run`] refuses.
pub(crate) async fn verify(pool: &Pool<Db>, migrations: &[Migration]) -> Result<(), StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| StoreError::db("read migrations", e))?;
    let has_table: bool = sqlx::query_scalar(MIGRATIONS_TABLE_EXISTS)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| StoreError::db("read migrations", e))?;
    let versions = if has_table {
        recorded_versions(&mut conn, migrations).await?
    } else {
        Vec::new()
    };
    if versions.len() < migrations.len() {
        return Err(StoreError::SchemaTooOld {
            found: versions.iter().copied().max().unwrap_or(0),
            supported: latest(migrations),
        });
    }
    Ok(())
}

pub(crate) async fn applied(pool: &Pool<Db>) -> Result<Vec<AppliedMigration>, StoreError> {
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
