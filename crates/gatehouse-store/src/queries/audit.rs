//! `audit` table: the audit trail (design §6). Shared by both backends (see
//! `src/queries.rs`); `status` and `hidden` are read and written as `i32` and `bool`, which
//! SQLite stores as integers.

use sqlx::{Pool, Row};

use super::dialect::{Db, begin_write};
use crate::error::StoreError;
use crate::model::{AuditEntry, AuditKind, AuditQuery, AuditRecord};

type DbRow = <Db as sqlx::Database>::Row;

/// Every audit column, unqualified, in the order `copy.rs` binds them (`append` binds them
/// after `seq`).
macro_rules! audit_columns {
    () => {
        "seq, time, kind, request_id, route, method, path, client_ip, principal, scheme, \
         status, error, hidden, detail"
    };
}
pub(super) use audit_columns;

/// Records per `INSERT` statement (13 parameters each, far below either backend's limit).
const ROWS_PER_INSERT: usize = 32;

/// `INSERT … VALUES ($1, …, $13), ($14, …), …` for `rows` records (`?` on SQLite, see
/// `dialect::push_param`). Built from constants only: no input reaches the SQL text.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(160 + rows * 70);
    sql.push_str(
        "INSERT INTO audit (time, kind, request_id, route, method, path, client_ip, \
         principal, scheme, status, error, hidden, detail) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..13 {
            if col > 0 {
                sql.push_str(", ");
            }
            super::dialect::push_param(&mut sql, row * 13 + col + 1);
        }
        sql.push(')');
    }
    sql
}

pub(super) async fn append(pool: &Pool<Db>, records: Vec<AuditRecord>) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let err = |e: sqlx::Error| StoreError::db("append audit", e);
    let mut tx = begin_write(pool).await.map_err(err)?;
    // Many rows per statement: a statement is a round trip (to SQLite's worker thread or to
    // the PostgreSQL server), which costs more than the insert itself when it carries one
    // record. The strings move into the bindings instead of being copied.
    let mut rows = records.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<AuditRecord> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(insert_sql(chunk.len())));
        for r in chunk {
            q = q
                .bind(r.time)
                .bind(r.kind.as_str())
                .bind(r.request_id)
                .bind(r.route)
                .bind(r.method)
                .bind(r.path)
                .bind(r.client_ip)
                .bind(r.principal)
                .bind(r.scheme)
                .bind(i32::from(r.status))
                .bind(r.error)
                .bind(r.hidden)
                .bind(r.detail);
        }
        q.execute(&mut *tx).await.map_err(err)?;
    }
    tx.commit().await.map_err(err)
}

pub(super) fn from_row(row: &DbRow) -> Result<AuditEntry, StoreError> {
    let seq: i64 = row
        .try_get("seq")
        .map_err(|e| StoreError::db("read audit", e))?;
    let key = seq.to_string();
    let read = |e: sqlx::Error| StoreError::corrupt("audit record", &key, e);
    let kind: String = row.try_get("kind").map_err(read)?;
    let kind = AuditKind::parse(&kind)
        .ok_or_else(|| StoreError::corrupt("audit record", &key, "unknown kind"))?;
    let status: i32 = row.try_get("status").map_err(read)?;
    let status = u16::try_from(status)
        .map_err(|_| StoreError::corrupt("audit record", &key, "status out of range"))?;
    Ok(AuditEntry {
        seq,
        record: AuditRecord {
            time: row.try_get("time").map_err(read)?,
            kind,
            request_id: row.try_get("request_id").map_err(read)?,
            route: row.try_get("route").map_err(read)?,
            method: row.try_get("method").map_err(read)?,
            path: row.try_get("path").map_err(read)?,
            client_ip: row.try_get("client_ip").map_err(read)?,
            principal: row.try_get("principal").map_err(read)?,
            scheme: row.try_get("scheme").map_err(read)?,
            status,
            error: row.try_get("error").map_err(read)?,
            hidden: row.try_get("hidden").map_err(read)?,
            detail: row.try_get("detail").map_err(read)?,
        },
    })
}

/// Up to `limit` entries with `seq > after_seq`, oldest first: one page of a walk through
/// the whole trail by `seq` (the primary key, so each page is one index range).
pub(super) async fn page(
    pool: &Pool<Db>,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after_seq)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(|e| StoreError::db("read audit", e))?
    .iter()
    .map(from_row)
    .collect()
}

pub(super) async fn query(pool: &Pool<Db>, q: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    // Static SQL: an absent filter binds NULL and matches everything. The two orders are two
    // constant statements (an `ORDER BY` cannot take a parameter).
    macro_rules! filtered {
        ($order:literal) => {
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit \
                 WHERE ($1 IS NULL OR time >= $1) AND ($2 IS NULL OR seq > $2) \
                   AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR error = $4) \
                   AND ($5 IS NULL OR principal = $5) AND ($6 IS NULL OR time < $6) \
                   AND ($7 IS NULL OR seq < $7) AND ($8 IS NULL OR route = $8) \
                   AND ($9 IS NULL OR client_ip = $9) AND ($10 IS NULL OR request_id = $10) \
                   AND ($11 IS NULL OR kind = $11) \
                 ORDER BY seq ",
                $order,
                " LIMIT $12"
            )
        };
    }
    let sql = if q.oldest_first {
        filtered!("ASC")
    } else {
        filtered!("DESC")
    };
    let rows = sqlx::query(sql)
        .bind(q.since)
        .bind(q.after_seq)
        .bind(q.status.map(i32::from))
        .bind(q.reason)
        .bind(q.user)
        .bind(q.until)
        .bind(q.before_seq)
        .bind(q.route)
        .bind(q.client_ip)
        .bind(q.request_id)
        .bind(q.kind.map(AuditKind::as_str))
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await
        .map_err(|e| StoreError::db("read audit", e))?;
    let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    if !q.oldest_first {
        out.reverse();
    }
    Ok(out)
}
