//! `decision_stats`: per-minute rollups of answers (the admin console's charts). Shared by
//! both backends (see `src/queries.rs`). Every node adds its counts with an upsert
//! (`ON CONFLICT … DO UPDATE`, the same statement on SQLite ≥ 3.24 and PostgreSQL), so a row
//! holds the sum over the nodes.

use sqlx::{Pool, Row};

use super::dialect::{Db, begin_write};
use crate::error::StoreError;
use crate::model::{StatRow, StatsQuery};

type DbRow = <Db as sqlx::Database>::Row;

/// Rows per statement (5 parameters each).
const ROWS_PER_INSERT: usize = 200;

macro_rules! stat_columns {
    () => {
        "minute, route, status, reason, count"
    };
}
pub(super) use stat_columns;

/// `INSERT … VALUES (…), … ON CONFLICT … DO UPDATE` for `rows` rows; built from constants.
fn upsert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(160 + rows * 30);
    sql.push_str(concat!(
        "INSERT INTO decision_stats (",
        stat_columns!(),
        ") VALUES "
    ));
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..5 {
            if col > 0 {
                sql.push_str(", ");
            }
            super::dialect::push_param(&mut sql, row * 5 + col + 1);
        }
        sql.push(')');
    }
    sql.push_str(
        " ON CONFLICT (minute, route, status, reason) \
         DO UPDATE SET count = decision_stats.count + excluded.count",
    );
    sql
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) async fn add(pool: &Pool<Db>, rows: Vec<StatRow>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let err = |e: sqlx::Error| StoreError::db("add stats", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(upsert_sql(chunk.len())));
        for r in chunk {
            q = q
                .bind(r.minute)
                .bind(r.route.as_str())
                .bind(i32::from(r.status))
                .bind(r.reason.as_str())
                .bind(count(r.count));
        }
        q.execute(&mut *tx).await.map_err(err)?;
    }
    tx.commit().await.map_err(err)
}

pub(super) fn from_row(row: &DbRow) -> Result<StatRow, StoreError> {
    let read = |e: sqlx::Error| StoreError::db("read stats", e);
    let status: i32 = row.try_get("status").map_err(read)?;
    let n: i64 = row.try_get("count").map_err(read)?;
    let minute: i64 = row.try_get("minute").map_err(read)?;
    let key = minute.to_string();
    Ok(StatRow {
        minute,
        route: row.try_get("route").map_err(read)?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::corrupt("stats row", &key, "status out of range"))?,
        reason: row.try_get("reason").map_err(read)?,
        count: u64::try_from(n)
            .map_err(|_| StoreError::corrupt("stats row", &key, "negative count"))?,
    })
}

pub(super) async fn query(pool: &Pool<Db>, q: StatsQuery) -> Result<Vec<StatRow>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        stat_columns!(),
        " FROM decision_stats WHERE minute >= $1 AND minute < $2 AND ($3 IS NULL OR route = $3)"
    ))
    .bind(q.since)
    .bind(q.until)
    .bind(q.route)
    .fetch_all(pool)
    .await
    .map_err(|e| StoreError::db("read stats", e))?;
    let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    // Sorted here: the order of text is the same on both backends (bytewise).
    out.sort_unstable();
    Ok(out)
}

pub(super) async fn purge(pool: &Pool<Db>, before: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM decision_stats WHERE minute < $1")
        .bind(before)
        .execute(pool)
        .await
        .map_err(|e| StoreError::db("purge stats", e))?;
    Ok(done.rows_affected())
}
